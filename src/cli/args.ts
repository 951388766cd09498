/**
 * Argument parsing for `oht` commands: declared flags only (an unknown flag is an error, never
 * ignored), `--flag value` and `--flag=value`, short aliases, `--` ends the flags, and `-` is a
 * positional (stdin). Parsing has no side effects, so bad input changes nothing.
 */
import { CliError } from './errors.ts'

export type FlagType = 'boolean' | 'string' | 'number'

export interface FlagSpec {
  /** Long name without dashes, e.g. `state-dir`. */
  name: string
  short?: string
  type: FlagType
  description: string
  /** Shown in help for valued flags, e.g. `<dir>`. */
  valueName?: string
}

export interface PositionalSpec {
  name: string
  description: string
  optional?: boolean
}

export interface ParsedArgs {
  flags: Record<string, string | number | boolean | undefined>
  positionals: string[]
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', description: 'show help for this command' },
  { name: 'json', type: 'boolean', description: 'print machine-readable JSON on stdout' },
  { name: 'config', type: 'string', valueName: '<file>', description: 'config file (default $OHT_CONFIG, else $XDG_CONFIG_HOME/multiverse/oht.{toml,json})' },
  { name: 'state-dir', type: 'string', valueName: '<dir>', description: 'state directory (default $OHT_STATE_DIR, else $XDG_DATA_HOME/multiverse/oht)' },
  { name: 'socket', type: 'string', valueName: '<path>', description: 'API socket of the daemon (default $OHT_SOCKET, else <state-dir>/run/api.sock)' }
]

/**
 * Parses `argv` against `flags` (plus GLOBAL_FLAGS). Throws CliError CLI_UNKNOWN_FLAG,
 * CLI_BAD_ARGUMENT (missing/malformed value, repeated flag) or CLI_USAGE (wrong positional
 * count), each message naming the command and the flag.
 */
export function parseArgs (command: string, argv: readonly string[], flags: readonly FlagSpec[], positionals: readonly PositionalSpec[], options: { variadic?: boolean } = {}): ParsedArgs {
  const all = [...GLOBAL_FLAGS, ...flags]
  const byLong = new Map(all.map(f => [f.name, f]))
  const byShort = new Map(all.filter(f => f.short !== undefined).map(f => [f.short as string, f]))
  const out: ParsedArgs = { flags: {}, positionals: [] }
  const hint = `see oht ${command} --help`.replace(/\s+/g, ' ')
  let i = 0
  let flagsDone = false
  while (i < argv.length) {
    const arg = argv[i++]
    if (flagsDone || arg === '-' || !arg.startsWith('-')) { out.positionals.push(arg); continue }
    if (arg === '--') { flagsDone = true; continue }
    let spec: FlagSpec | undefined
    let inline: string | undefined
    let shown = arg
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      if (eq !== -1) inline = arg.slice(eq + 1)
      shown = `--${name}`
      spec = byLong.get(name)
    } else if (arg.length === 2) {
      spec = byShort.get(arg.slice(1))
    }
    if (spec === undefined) throw new CliError('CLI_UNKNOWN_FLAG', `oht ${command}: unknown flag ${shown} (${hint})`)
    if (out.flags[spec.name] !== undefined) throw new CliError('CLI_BAD_ARGUMENT', `oht ${command}: --${spec.name} given twice`)
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new CliError('CLI_BAD_ARGUMENT', `oht ${command}: --${spec.name} takes no value`)
      out.flags[spec.name] = true
      continue
    }
    let value = inline
    if (value === undefined) {
      if (i >= argv.length) throw new CliError('CLI_BAD_ARGUMENT', `oht ${command}: --${spec.name} needs a value ${spec.valueName ?? ''}`.trimEnd())
      value = argv[i++]
    }
    if (spec.type === 'number') {
      if (!/^\d+$/.test(value)) throw new CliError('CLI_BAD_ARGUMENT', `oht ${command}: --${spec.name} must be a whole number, got ${JSON.stringify(value)}`)
      out.flags[spec.name] = Number(value)
    } else {
      out.flags[spec.name] = value
    }
  }
  if (out.flags.help === true) return out
  const required = positionals.filter(p => p.optional !== true).length
  if (out.positionals.length < required) {
    const missing = positionals.slice(out.positionals.length).filter(p => p.optional !== true).map(p => `<${p.name}>`).join(' ')
    throw new CliError('CLI_USAGE', `oht ${command}: missing ${missing} (${hint})`)
  }
  if (options.variadic !== true && out.positionals.length > positionals.length) {
    throw new CliError('CLI_USAGE', `oht ${command}: unexpected argument ${JSON.stringify(out.positionals[positionals.length])} (${hint})`)
  }
  return out
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses a duration such as `90s`, `10m`, `2h`, `7d`, `1500ms` (a bare number means seconds) to ms. */
export function parseDuration (text: string, what: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new CliError('CLI_BAD_ARGUMENT', `${what} must be a duration such as 90s, 10m, 2h or 7d, got ${JSON.stringify(text)}`)
  const ms = Number(m[1]) * UNITS[m[2] ?? 's']
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new CliError('CLI_BAD_ARGUMENT', `${what} must be positive, got ${JSON.stringify(text)}`)
  return ms
}

/** Formats flag help lines, aligned. */
export function formatFlags (flags: readonly FlagSpec[]): string {
  const rows = flags.map(f => [`${f.short !== undefined ? `-${f.short}, ` : '    '}--${f.name}${f.valueName !== undefined ? ' ' + f.valueName : ''}`, f.description])
  const width = Math.max(0, ...rows.map(r => r[0].length))
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`).join('\n')
}
