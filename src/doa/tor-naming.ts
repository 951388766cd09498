/**
 * The name-plugin side of Tor's proposal 279 ("A Name System API for Tor Onion Services"): a
 * program tor starts for a TLD (`OnionNamePlugin 0 .doa /usr/bin/oht-name-plugin`) that
 * answers name queries on its stdout. Lines, NL-terminated, keyword first (§2.9.1):
 *
 *   plugin → tor   INIT <VERSION> <STATUS_CODE> [<STATUS_MSG>]       once, when ready (§2.4)
 *   tor → plugin   RESOLVE <QUERY_ID> <NAME_STRING>                   (§2.5.1)
 *   plugin → tor   RESOLVED <QUERY_ID> <STATUS_CODE> <RESULT>          RESULT: "<56>.onion" or a message
 *   tor → plugin   CANCEL <QUERY_ID>                                   (§2.6)
 *   plugin → tor   CANCELED <QUERY_ID>
 *
 * Status codes (§2.5.2): 0 success, 1 generic failure, 2 TLD not recognized, 3 name not
 * registered, 4 timeout. Lines with unknown keywords are ignored, as the proposal asks of tor.
 * The environment (§2.7): TOR_NS_PROTO_VERSION (comma-separated versions; we speak 1) and
 * TOR_NS_PLUGIN_OPTIONS (`k=v;k=v`, `\` escapes `:;=\`): `tld` (default "doa") and `timeout`
 * (seconds, default 30). The protocol engine here is pure; `oht name tor-plugin` wires it to
 * stdin/stdout and to the daemon's resolver.
 */
import type { AbortOptions } from '../core/abort.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { errorMessage, isCodedError } from '../core/errors.ts'

export const NS_API_VERSION = '1'
export const NS_OK = 0
export const NS_FAILED = 1
export const NS_TLD_UNKNOWN = 2
export const NS_NOT_REGISTERED = 3
export const NS_TIMEOUT = 4
const MAX_LINE = 4096

/** Resolves a name (without the plugin's TLD) to a 56-character onion address. */
export type NameToOnion = (name: string, options: AbortOptions) => Promise<string>

export interface NamingPluginInit {
  /** The TLD names end in (without the dot). @default 'doa' */
  tld?: string
  /** Seconds before a query is answered with status 4. @default 30 */
  timeoutSeconds?: number
}

export interface NamingPluginComponents {
  resolve: NameToOnion
  /** Writes one line (the NL is added here). */
  write: (line: string) => void
  clock: Clock
}

export interface NamingPlugin {
  /** The INIT line: call once at start. */
  init(): void
  /** Feeds one line read from tor (without its NL). */
  onLine(line: string): void
  /** Queries in flight. */
  readonly pending: number
  /** Cancels everything in flight (stdin closed, SIGTERM). */
  close(): void
}

/** Parses TOR_NS_PLUGIN_OPTIONS: `k=v;k=v` with backslash escapes. */
export function parsePluginOptions (text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (text === undefined || text === '') return out
  let key = ''
  let value = ''
  let inValue = false
  const flush = (): void => { if (key !== '') out[key] = value; key = ''; value = ''; inValue = false }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '\\' && i + 1 < text.length) { const n = text[++i]; if (inValue) value += n; else key += n; continue }
    if (ch === ';') { flush(); continue }
    if (ch === '=' && !inValue) { inValue = true; continue }
    if (inValue) value += ch; else key += ch
  }
  flush()
  return out
}

/** Whether TOR_NS_PROTO_VERSION (comma-separated, possibly non-numeric entries) includes ours. */
export function supportsVersion (env: string | undefined): boolean {
  if (env === undefined) return false
  return env.split(',').map(v => v.trim()).includes(NS_API_VERSION)
}

function quote (message: string): string {
  return '"' + message.replace(/[\r\n]+/g, ' ').replace(/\\/g, '\\\\').replace(/"/g, '\\"').slice(0, 400) + '"'
}

export function createNamingPlugin (init: NamingPluginInit, c: NamingPluginComponents): NamingPlugin {
  const tld = (init.tld ?? 'doa').replace(/^\./, '').toLowerCase()
  const timeoutMs = Math.max(1, init.timeoutSeconds ?? 30) * 1000
  const inflight = new Map<string, { abort: AbortController, timer: TimerHandle }>()
  let closed = false

  const answer = (id: string, status: number, result: string): void => {
    const q = inflight.get(id)
    if (q === undefined) return
    q.timer.cancel()
    inflight.delete(id)
    c.write(`RESOLVED ${id} ${status} ${result}`)
  }

  const resolve = (id: string, name: string): void => {
    if (inflight.has(id)) { c.write(`RESOLVED ${id} ${NS_FAILED} ${quote('query id already in use')}`); return }
    const abort = new AbortController()
    const timer = c.clock.setTimeout(() => { abort.abort(); answer(id, NS_TIMEOUT, quote('name resolution timed out')) }, timeoutMs)
    inflight.set(id, { abort, timer })
    const n = name.trim().replace(/\.$/, '').toLowerCase()
    if (!n.endsWith('.' + tld)) { answer(id, NS_TLD_UNKNOWN, quote(`this plugin resolves .${tld} names`)); return }
    const bare = n.slice(0, -(tld.length + 1))
    if (bare === '') { answer(id, NS_NOT_REGISTERED, quote('empty name')); return }
    void c.resolve(bare, { signal: abort.signal }).then((onion) => {
      if (!/^[a-z2-7]{56}$/.test(onion)) { answer(id, NS_FAILED, quote('the name did not resolve to an onion address')); return }
      answer(id, NS_OK, `${onion}.onion`)
    }, (err: unknown) => {
      if (abort.signal.aborted) return
      const notFound = isCodedError(err, 'DOA_NOT_FOUND') || isCodedError(err, 'DOA_NAME_REVOKED') || isCodedError(err, 'DOA_NAME_EXPIRED') || isCodedError(err, 'DOA_BAD_NAME') || isCodedError(err, 'CLI_NOT_FOUND')
      answer(id, notFound ? NS_NOT_REGISTERED : NS_FAILED, quote(errorMessage(err)))
    })
  }

  return {
    init () { c.write(`INIT ${NS_API_VERSION} ${NS_OK}`) },
    get pending () { return inflight.size },
    onLine (raw) {
      if (closed) return
      const line = raw.replace(/\r$/, '')
      if (line.length === 0 || line.length > MAX_LINE) return
      const sp = line.indexOf(' ')
      const keyword = sp === -1 ? line : line.slice(0, sp)
      if (!/^[A-Za-z0-9_-]+$/.test(keyword)) return
      const args = sp === -1 ? '' : line.slice(sp + 1)
      if (keyword === 'RESOLVE') {
        const m = /^(\d{1,18}) (\S.*)$/.exec(args)
        if (m === null) return
        resolve(m[1], m[2])
      } else if (keyword === 'CANCEL') {
        const m = /^(\d{1,18})$/.exec(args.trim())
        if (m === null) return
        const q = inflight.get(m[1])
        if (q !== undefined) { q.timer.cancel(); q.abort.abort(); inflight.delete(m[1]) }
        c.write(`CANCELED ${m[1]}`)
      }
      // Anything else: ignored (§2.9.1).
    },
    close () {
      closed = true
      for (const q of inflight.values()) { q.timer.cancel(); q.abort.abort() }
      inflight.clear()
    }
  }
}
