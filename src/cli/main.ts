/**
 * `oht`: the command line of the OHT stack. `runCli()` is what bin/oht.js calls; `main()` runs
 * one command against injected IO so tests can drive it in process.
 *
 * @example
 * // oht init && oht daemon &        (a node with its own tor)
 * // oht put "hello"                  → 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
 * // oht get 2cf24dba…                → hello
 */
import { errorMessage, systemClock } from '../core/index.ts'
import { formatFlags, GLOBAL_FLAGS, parseArgs } from './args.ts'
import { CommandContext, type Command } from './command.ts'
import { appCommand } from './commands/app.ts'
import { daemonCommand } from './commands/daemon.ts'
import { endpointsCommand } from './commands/endpoints.ts'
import { gatewayCommand } from './commands/gateway.ts'
import { getCommand } from './commands/get.ts'
import { idCommand } from './commands/id.ts'
import { initCommand } from './commands/init.ts'
import { metricsCommand } from './commands/metrics.ts'
import { nameCommand } from './commands/name.ts'
import { oniCommand } from './commands/oni.ts'
import { peersCommand } from './commands/peers.ts'
import { putCommand } from './commands/put.ts'
import { statusCommand } from './commands/status.ts'
import { testnetCommand } from './commands/testnet.ts'
import { CliError, EXIT } from './errors.ts'
import { readAll, type CliIo } from './io.ts'

export const COMMANDS: Command[] = [initCommand, idCommand, daemonCommand, statusCommand, peersCommand, putCommand, getCommand, endpointsCommand, oniCommand, gatewayCommand, appCommand, nameCommand, metricsCommand, testnetCommand]

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    the operation failed (network, tor or daemon-side error)
  2    bad usage: unknown flag, missing or malformed argument, oversized value (nothing changed)
  3    configuration file missing, unreadable or invalid (the message names the field)
  4    no daemon answers on the API socket (start one with: oht daemon)
  5    permission denied: socket or token not accessible, or token refused
  6    not found: oht get (no record under that key), oht app/name (no such app, release or name)
  7    tor is missing or did not bootstrap (install it: apt-get install -y tor)
  8    oht put --cas N: the record's current seq is not N (nothing was written)
  130  interrupted (SIGINT/SIGTERM)`

function topHelp (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length))
  return `oht: the onion hash table of Multiverse OS

Usage: oht [global flags] <command> [flags]

Commands:
${COMMANDS.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Flags every command takes (before or after the command):
${formatFlags([...GLOBAL_FLAGS, { name: 'version', short: 'V', type: 'boolean', description: 'print the version of oht and node (first, on its own)' }])}

Environment: OHT_CONFIG, OHT_STATE_DIR, OHT_SOCKET, OHT_TOKEN_FILE, XDG_CONFIG_HOME, XDG_DATA_HOME.
Run "oht <command> --help" for a command's own flags.

${EXIT_CODES_HELP}
`
}

function commandHelp (path: string, cmd: Command): string {
  const parts = [`${path}: ${cmd.summary}`, '', 'Usage:', ...cmd.usage.map(u => `  oht ${u}`)]
  if (cmd.subcommands !== undefined) {
    const width = Math.max(...cmd.subcommands.map(c => c.name.length))
    parts.push('', 'Subcommands:', ...cmd.subcommands.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`))
  }
  if (cmd.details !== undefined) parts.push('', cmd.details)
  if (cmd.flags.length > 0) parts.push('', 'Flags:', formatFlags(cmd.flags))
  parts.push('', 'Flags every command takes:', formatFlags(GLOBAL_FLAGS), '', EXIT_CODES_HELP, '')
  return parts.join('\n')
}

/**
 * Takes the global flags (GLOBAL_FLAGS) that stand before the command word, or between a
 * command and its subcommand, so `oht --state-dir X put v` means `oht put v --state-dir X`.
 * Returns the flag tokens as given and the index of the first word that is not one of them.
 */
export function takeGlobalFlags (argv: readonly string[], from: number): { tokens: string[], next: number } {
  const tokens: string[] = []
  let i = from
  while (i < argv.length) {
    const arg = argv[i]
    if (arg === '-' || arg === '--' || !arg.startsWith('-')) break
    const eq = arg.indexOf('=')
    const name = arg.startsWith('--') ? arg.slice(2, eq === -1 ? undefined : eq) : undefined
    const spec = GLOBAL_FLAGS.find(f => name !== undefined ? f.name === name : arg.length === 2 && f.short === arg.slice(1))
    if (spec === undefined) {
      const shown = name !== undefined ? `--${name}` : arg
      throw new CliError('CLI_UNKNOWN_FLAG', `oht: ${shown} is not a flag every command takes; a command's own flags go after it (see oht --help)`)
    }
    tokens.push(arg)
    i++
    if (spec.type !== 'boolean' && eq === -1) {
      if (i >= argv.length) throw new CliError('CLI_BAD_ARGUMENT', `oht: --${spec.name} needs a value ${spec.valueName ?? ''}`.trimEnd())
      tokens.push(argv[i++])
    }
  }
  return { tokens, next: i }
}

/** Runs one `oht` invocation; returns its exit code. Never throws. */
export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  let label = 'oht'
  try {
    if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
      const { packageVersion } = await import('./version.ts')
      io.stdout.write(`oht ${packageVersion()} (node ${process.version})\n`)
      return EXIT.OK
    }
    if (argv[0] === 'help') { io.stdout.write(topHelp()); return EXIT.OK }
    const lead = takeGlobalFlags(argv, 0)
    const first = argv[lead.next]
    const wantsHelp = lead.tokens.includes('--help') || lead.tokens.includes('-h')
    if (first === undefined) {
      if (wantsHelp) { io.stdout.write(topHelp()); return EXIT.OK }
      io.stderr.write(topHelp())
      return EXIT.USAGE
    }
    if (first.startsWith('-')) throw new CliError('CLI_USAGE', `oht: a command comes before ${JSON.stringify(first)} (see oht --help)`)
    let cmd = COMMANDS.find(c => c.name === first)
    if (cmd === undefined) throw new CliError('CLI_UNKNOWN_COMMAND', `oht: unknown command ${JSON.stringify(first)} (see oht --help)`)
    const globals = [...lead.tokens]
    let rest = argv.slice(lead.next + 1)
    let path = `oht ${cmd.name}`
    label = path
    if (cmd.subcommands !== undefined) {
      const between = takeGlobalFlags(rest, 0)
      globals.push(...between.tokens)
      rest = rest.slice(between.next)
      const sub = rest[0]
      const help = globals.includes('--help') || globals.includes('-h')
      if (sub === undefined || help) {
        if (sub === undefined && !help) { io.stderr.write(commandHelp(path, cmd)); return EXIT.USAGE }
        if (sub === undefined) { io.stdout.write(commandHelp(path, cmd)); return EXIT.OK }
      }
      const found = cmd.subcommands.find(c => c.name === sub)
      if (found === undefined) throw new CliError('CLI_UNKNOWN_COMMAND', `${path}: unknown subcommand ${JSON.stringify(sub)} (see ${path} --help)`)
      cmd = found
      rest = rest.slice(1)
      path = `${path} ${cmd.name}`
      label = path
    }
    const args = parseArgs(path.slice(4), [...globals, ...rest], cmd.flags, cmd.positionals, { variadic: cmd.variadic === true })
    if (args.flags.help === true) { io.stdout.write(commandHelp(path, cmd)); return EXIT.OK }
    if (cmd.run === undefined) throw new CliError('CLI_USAGE', `${path}: needs a subcommand (see ${path} --help)`)
    return await cmd.run(new CommandContext(io, args, path))
  } catch (err) {
    if (io.signal.aborted && !(err instanceof CliError && err.exitCode !== EXIT.FAILURE)) {
      io.stderr.write(`${label}: interrupted\n`)
      return EXIT.INTERRUPTED
    }
    const message = errorMessage(err).split('\n')[0]
    io.stderr.write(`${message.startsWith('oht') ? message : `${label}: ${message}`}\n`)
    if (err instanceof CliError) return err.exitCode
    return EXIT.FAILURE
  }
}

/** The process entry: real stdio, env and signals; exits with main()'s code. */
export async function runCli (argv: readonly string[]): Promise<never> {
  const controller = new AbortController()
  let signals = 0
  const onSignal = (): void => {
    signals++
    if (signals > 1) process.exit(EXIT.INTERRUPTED)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const io: CliIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: async (max) => await readAll(process.stdin, max),
    env: process.env,
    clock: systemClock,
    signal: controller.signal
  }
  const code = await main(argv, io)
  process.exit(code)
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await runCli(process.argv.slice(2))
}
