/**
 * Asynchronous events (status 650) parsed into typed objects. Events are declared as data:
 * a table maps each event keyword to its parser; keywords without a parser arrive as
 * `RawTorEvent` (type 'RAW', `name` holding the keyword) with their lines intact.
 *
 * ```
 * 650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"
 * 650 HS_DESC UPLOADED <address> UNKNOWN <$fp~nick> <descid> [REASON=..] [HSDIR_INDEX=..]
 * 650 CIRC <id> <status> [<path>] [BUILD_FLAGS=..] [PURPOSE=..] [REASON=..] ...
 * 650 STREAM <id> <status> <circ id> <target> [REASON=..] [SOURCE_ADDR=..] [PURPOSE=..] ...
 * 650-CONF_CHANGED            (multi-line event: one line per changed option)
 * 650-SocksPort=9050
 * 650 OK
 * ```
 */
import { TorError } from '../errors.ts'
import type { ControlReply, ReplyLine } from './framing.ts'
import { splitArgs } from './quoting.ts'

interface EventBase {
  /** The event keyword as tor sent it (e.g. 'HS_DESC'). */
  name: string
  /** Every line of the event, as framed (data blocks included). */
  lines: ReplyLine[]
  /** Keyword arguments of the first line, values unquoted. */
  args: Record<string, string>
}

export interface StatusEvent extends EventBase {
  type: 'STATUS_CLIENT' | 'STATUS_GENERAL' | 'STATUS_SERVER'
  severity: string
  /** E.g. 'BOOTSTRAP', 'CIRCUIT_ESTABLISHED'. */
  action: string
  /** Set for BOOTSTRAP status events. */
  bootstrap?: { progress: number, tag: string, summary: string, warning?: string, reason?: string }
}

export interface HsDescEvent extends EventBase {
  type: 'HS_DESC'
  /** REQUESTED, UPLOAD, RECEIVED, UPLOADED, IGNORE, FAILED, CREATED. */
  action: string
  /** Onion address without ".onion", or 'UNKNOWN'. */
  address: string
  authType: string
  /** The HSDir as `$FINGERPRINT~nick`, or 'UNKNOWN'. */
  hsDir: string
  descriptorId?: string
  reason?: string
  replica?: string
  hsDirIndex?: string
}

export interface CircEvent extends EventBase {
  type: 'CIRC'
  circuitId: string
  /** LAUNCHED, BUILT, GUARD_WAIT, EXTENDED, FAILED, CLOSED. */
  status: string
  /** Relays as `$FINGERPRINT~nick`; empty when tor sent no path. */
  path: string[]
  buildFlags: string[]
  purpose?: string
  hsState?: string
  rendQuery?: string
  reason?: string
  remoteReason?: string
  socksUsername?: string
}

export interface StreamEvent extends EventBase {
  type: 'STREAM'
  streamId: string
  /** NEW, NEWRESOLVE, REMAP, SENTCONNECT, SENTRESOLVE, SUCCEEDED, FAILED, CLOSED, DETACHED... */
  status: string
  circuitId: string
  /** `host:port` target. */
  target: string
  reason?: string
  remoteReason?: string
  source?: string
  sourceAddr?: string
  purpose?: string
  socksUsername?: string
}

/** Any event without a typed parser. */
export interface RawTorEvent extends EventBase {
  type: 'RAW'
  /** The first line's text after the keyword. */
  body: string
}

export type TorEvent = StatusEvent | HsDescEvent | CircEvent | StreamEvent | RawTorEvent

function protocolError (name: string, cause?: unknown): TorError {
  return new TorError('TOR_CONTROL_PROTOCOL', `malformed ${name} event from tor`, { cause })
}

type Parser = (name: string, positional: string[], args: Record<string, string>, base: EventBase) => TorEvent

function opt<T extends object> (target: T, key: keyof T, value: string | undefined): void {
  if (value !== undefined) (target as Record<keyof T, unknown>)[key] = value
}

const parseStatus: Parser = (name, positional, args, base) => {
  if (positional.length < 2) throw new Error('status event needs severity and action')
  const ev: StatusEvent = { ...base, type: name as StatusEvent['type'], severity: positional[0], action: positional[1] }
  if (positional[1] === 'BOOTSTRAP') {
    const progress = Number(args.PROGRESS)
    if (!Number.isInteger(progress) || progress < 0 || progress > 100) throw new Error('BOOTSTRAP without a valid PROGRESS')
    ev.bootstrap = { progress, tag: args.TAG ?? '', summary: args.SUMMARY ?? '' }
    if (args.WARNING !== undefined) ev.bootstrap.warning = args.WARNING
    if (args.REASON !== undefined) ev.bootstrap.reason = args.REASON
  }
  return ev
}

const parseHsDesc: Parser = (_name, positional, args, base) => {
  if (positional.length < 4) throw new Error('HS_DESC needs action, address, auth type and HSDir')
  const ev: HsDescEvent = { ...base, type: 'HS_DESC', action: positional[0], address: positional[1], authType: positional[2], hsDir: positional[3] }
  opt(ev, 'descriptorId', positional[4])
  opt(ev, 'reason', args.REASON)
  opt(ev, 'replica', args.REPLICA)
  opt(ev, 'hsDirIndex', args.HSDIR_INDEX)
  return ev
}

const parseCirc: Parser = (_name, positional, args, base) => {
  if (positional.length < 2) throw new Error('CIRC needs id and status')
  const ev: CircEvent = {
    ...base,
    type: 'CIRC',
    circuitId: positional[0],
    status: positional[1],
    path: positional[2] !== undefined ? positional[2].split(',').filter(s => s !== '') : [],
    buildFlags: args.BUILD_FLAGS !== undefined ? args.BUILD_FLAGS.split(',').filter(s => s !== '') : []
  }
  opt(ev, 'purpose', args.PURPOSE)
  opt(ev, 'hsState', args.HS_STATE)
  opt(ev, 'rendQuery', args.REND_QUERY)
  opt(ev, 'reason', args.REASON)
  opt(ev, 'remoteReason', args.REMOTE_REASON)
  opt(ev, 'socksUsername', args.SOCKS_USERNAME)
  return ev
}

const parseStream: Parser = (_name, positional, args, base) => {
  if (positional.length < 4) throw new Error('STREAM needs id, status, circuit id and target')
  const ev: StreamEvent = { ...base, type: 'STREAM', streamId: positional[0], status: positional[1], circuitId: positional[2], target: positional[3] }
  opt(ev, 'reason', args.REASON)
  opt(ev, 'remoteReason', args.REMOTE_REASON)
  opt(ev, 'source', args.SOURCE)
  opt(ev, 'sourceAddr', args.SOURCE_ADDR)
  opt(ev, 'purpose', args.PURPOSE)
  opt(ev, 'socksUsername', args.SOCKS_USERNAME)
  return ev
}

/** The typed events; add a keyword here to parse it. */
const PARSERS: Readonly<Record<string, Parser>> = Object.freeze({
  STATUS_CLIENT: parseStatus,
  STATUS_GENERAL: parseStatus,
  STATUS_SERVER: parseStatus,
  HS_DESC: parseHsDesc,
  CIRC: parseCirc,
  STREAM: parseStream
})

/** Event keywords that have a typed parser. */
export const TYPED_EVENTS: readonly string[] = Object.keys(PARSERS)

/**
 * Parses one 650 reply. Throws TOR_CONTROL_PROTOCOL when a typed event lacks its
 * mandatory fields; unknown events never throw.
 */
export function parseEvent (reply: ControlReply): TorEvent {
  const first = reply.lines[0]
  const sp = first.text.indexOf(' ')
  const name = sp === -1 ? first.text : first.text.slice(0, sp)
  const body = sp === -1 ? '' : first.text.slice(sp + 1)
  if (!/^[A-Z0-9_]+$/.test(name)) throw protocolError('event', new Error(`bad event keyword ${JSON.stringify(name.slice(0, 40))}`))
  const parser = PARSERS[name]
  let split: { positional: string[], keywords: Record<string, string> }
  try {
    split = splitArgs(body)
  } catch (err) {
    if (parser !== undefined) throw protocolError(name, err)
    return { type: 'RAW', name, lines: reply.lines, args: {}, body }
  }
  const base: EventBase = { name, lines: reply.lines, args: split.keywords }
  if (parser === undefined) return { ...base, type: 'RAW', body }
  try {
    return parser(name, split.positional, split.keywords, base)
  } catch (err) {
    throw protocolError(name, err)
  }
}
