/**
 * Debug-namespace logger. Enable with OHT_DEBUG (or DEBUG), comma-separated patterns with `*`:
 * `OHT_DEBUG=tor:*,oht:lookup`. Output goes to stderr. Never pass private keys, control
 * cookies or plaintext payloads to a logger; `redact()` helps for values that might hold them.
 */
export interface Logger {
  (message: string, ...args: unknown[]): void
  readonly enabled: boolean
  readonly namespace: string
  error(message: string, ...args: unknown[]): void
  warn(message: string, ...args: unknown[]): void
  extend(sub: string): Logger
}

export type LogSink = (line: string) => void

let sink: LogSink = (line) => { process.stderr.write(line + '\n') }
let patterns: RegExp[] | undefined

function compile (spec: string | undefined): RegExp[] {
  if (spec == null || spec.trim() === '') return []
  return spec.split(/[\s,]+/).filter(Boolean).map(p =>
    new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$'))
}

function isEnabled (ns: string): boolean {
  patterns ??= compile(process.env.OHT_DEBUG ?? process.env.DEBUG)
  return patterns.some(p => p.test(ns))
}

/** Replaces the output sink (tests capture logs with this) and re-reads the env patterns. */
export function setLogSink (next: LogSink, spec?: string): void {
  sink = next
  patterns = spec === undefined ? undefined : compile(spec)
}

function format (args: unknown[]): string {
  return args.map(a => {
    if (a instanceof Error) return `${a.name}: ${a.message}`
    if (typeof a === 'string') return a
    if (a instanceof Uint8Array) return `<${a.byteLength} bytes>`
    try { return JSON.stringify(a) } catch { return String(a) }
  }).join(' ')
}

/**
 * @example
 * const log = logger('tor:control')
 * log('sent %s', 'GETINFO version')
 */
export function logger (namespace: string): Logger {
  const write = (level: string, message: string, args: unknown[]): void => {
    sink(`${namespace} ${level}${message}${args.length > 0 ? ' ' + format(args) : ''}`)
  }
  const log = ((message: string, ...args: unknown[]) => {
    if (isEnabled(namespace)) write('', message, args)
  }) as Logger
  Object.defineProperty(log, 'enabled', { get: () => isEnabled(namespace) })
  Object.defineProperty(log, 'namespace', { value: namespace })
  log.error = (message, ...args) => { write('error: ', message, args) }
  log.warn = (message, ...args) => { if (isEnabled(namespace) || isEnabled('warn')) write('warn: ', message, args) }
  log.extend = (sub) => logger(`${namespace}:${sub}`)
  return log
}

/** Shows only that a secret exists and its length. */
export function redact (secret: string | Uint8Array | undefined): string {
  if (secret === undefined) return '<none>'
  return `<redacted ${secret.length}>`
}
