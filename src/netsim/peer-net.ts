/**
 * PeerNet on the simulator: request/response and message streams between simulated hosts
 * under protocol ids, shaped like src/oht's `PeerNet` (structurally: netsim does not import
 * oht; test/unit/netsim-peer-net.test.ts assigns one to the other, so the compiler checks the
 * shapes, and the shared compliance suite checks the behaviour). It raises the seam's codes
 * (OHT_…, CORE_…), not SIM_ ones, because code above the seam branches on them.
 *
 * Requests follow the rules of the host's DhtNet requests: one-way latency each way from the
 * network's model, each of the two messages lost with the loss rate, dropped across a
 * partition, unanswered by a crashed host (or refused after one round trip with
 * `unreachable: 'refuse'`). A caller that gives up sends a cancel, which aborts the
 * handler's signal when it arrives.
 *
 * Streams ride a simulated connection, as libp2p streams ride one:
 *
 *   opener ──OPEN──▶ acceptor          (refused: ERROR back; offline: as a request)
 *   opener ◀─ACCEPT─ acceptor          openStream() resolves here
 *   either ──DATA──▶ other             ordered: never overtakes an earlier frame
 *   either ◀WINDOW── other             one per message the reader consumed
 *   either ──FIN───▶ other             half-close, after every DATA queued before it
 *   either ──RESET─▶ other             abort with a code; unread messages are dropped
 *
 * - Reliable and ordered: a lost frame is resent after three one-way delays (loss shows as
 *   delay, as on TCP), and a frame never arrives before one sent earlier in its direction.
 * - Bounded window: at most `streamWindow` messages per direction are in flight or unread;
 *   `send()` waits for WINDOW frames beyond that (back-pressure from a slow reader).
 * - Breaks: when a host crashes or is removed, the other end of each of its streams fails
 *   with OHT_STREAM_CLOSED one one-way delay later (the reset reaching it); a partition
 *   that separates the ends breaks the stream for both after `breakDetectMs`. A crashed
 *   host's own calls never settle, as with DhtNet (a killed process learns nothing).
 */
import { abortReason, scopedSignal, throwIfAborted, type AbortOptions } from '../core/abort.ts'
import { AbortError, OhtStackError, TimeoutError } from '../core/errors.ts'
import type { TimerHandle } from '../core/clock.ts'
import type { SimContact, SimHost, SimNetwork } from './network.ts'
import type { Scheduler } from './scheduler.ts'

/** Same defaults as src/oht/peer-net.ts. */
export const SIM_PEER_MESSAGE_MAX_DEFAULT = 65_536
export const SIM_PEER_MESSAGE_MAX_LIMIT = 16 * 1024 * 1024
const PROTOCOL_MAX_BYTES = 128
// The same rule as src/oht's checkProtocolId.
const PROTOCOL_RE = /^(\/[a-z0-9._-]+)+$/
const REMOTE_MESSAGE_MAX = 512
/** An inbound stream whose handler returned waits this long for the peer's FIN, then resets. */
const STREAM_LINGER_MS = 30_000
/** A stream frame lost this many times in a row breaks the stream (a connection that died). */
const MAX_RESENDS = 8

export interface SimPeerNetInit {
  /** Messages per stream direction in flight or unread before `send()` waits. @default 16 */
  streamWindow?: number
  /** Deadline of a request or stream opening that names none. @default 60_000 */
  defaultTimeoutMs?: number
  /** Time for both ends of a stream cut by a partition to notice. @default 10_000 */
  breakDetectMs?: number
}

/** An error of the PeerNet seam raised by the simulator; `remote` marks a peer's code. */
export class SimPeerError extends OhtStackError {
  override name = 'SimPeerError'
  readonly remote: boolean
  constructor (code: string, message: string, options?: { cause?: unknown, remote?: boolean }) {
    super(code, message, options)
    this.remote = options?.remote ?? false
  }
}

export interface SimPeerRequestOptions extends AbortOptions { timeoutMs?: number, maxMessageBytes?: number }
export interface SimPeerStreamOptions extends AbortOptions { timeoutMs?: number, maxMessageBytes?: number }
export interface SimPeerProtocolOptions { maxMessageBytes?: number, maxInboundPerPeer?: number, inboundTimeoutMs?: number }
export type SimPeerRequestHandler = (from: SimContact, body: Uint8Array, options: AbortOptions) => Promise<Uint8Array>
export type SimPeerStreamHandler = (stream: SimPeerStream, from: SimContact) => void | Promise<void>

export interface SimPeerStream extends AsyncIterable<Uint8Array> {
  readonly remote: SimContact
  readonly protocol: string
  send(message: Uint8Array, options?: AbortOptions): Promise<void>
  close(options?: AbortOptions): Promise<void>
  abort(err?: Error): void
}

/** One host's PeerNet; the same shape as src/oht's PeerNet. */
export interface SimPeerNet {
  request(to: SimContact, protocol: string, body: Uint8Array, options?: SimPeerRequestOptions): Promise<Uint8Array>
  openStream(to: SimContact, protocol: string, options?: SimPeerStreamOptions): Promise<SimPeerStream>
  handle(protocol: string, handler: SimPeerRequestHandler, options?: SimPeerProtocolOptions): void
  handleStream(protocol: string, handler: SimPeerStreamHandler, options?: SimPeerProtocolOptions): void
  unhandle(protocol: string): void
}

export interface PeerNetStats {
  requests: number
  responses: number
  /** Request messages (requests, responses, cancels) lost or dropped by a partition. */
  requestMessagesLost: number
  streamsOpened: number
  streamsRefused: number
  streamsBroken: number
  /** DATA frames delivered. */
  messages: number
  /** Stream frames resent after a loss. */
  resent: number
  bytes: number
}

interface Registration {
  kind: 'request' | 'stream'
  request?: SimPeerRequestHandler
  stream?: SimPeerStreamHandler
  maxMessageBytes: number
  maxInboundPerPeer: number
  inboundTimeoutMs: number
  /** Inbound requests/streams in progress, by the caller's host index. */
  inbound: Map<number, number>
}

function checkProtocol (protocol: string): void {
  if (typeof protocol !== 'string' || Buffer.byteLength(protocol) > PROTOCOL_MAX_BYTES || !PROTOCOL_RE.test(protocol)) {
    throw new SimPeerError('OHT_BAD_ARGUMENT', `protocol id must be /segment[/segment…] of [a-z0-9._-], at most ${PROTOCOL_MAX_BYTES} bytes, got ${JSON.stringify(String(protocol)).slice(0, 140)}`)
  }
}

function checkLimit (n: number | undefined, what: string): number {
  const v = n ?? SIM_PEER_MESSAGE_MAX_DEFAULT
  if (!Number.isInteger(v) || v < 1 || v > SIM_PEER_MESSAGE_MAX_LIMIT) {
    throw new SimPeerError('OHT_BAD_ARGUMENT', `${what} must be an integer in [1, ${SIM_PEER_MESSAGE_MAX_LIMIT}], got ${String(n)}`)
  }
  return v
}

function tooLarge (n: number, limit: number, what: string): SimPeerError {
  return new SimPeerError('OHT_MESSAGE_TOO_LARGE', `${what} of ${n} bytes exceeds the ${limit}-byte limit`)
}

const CODE_RE = /^[A-Z][A-Z0-9_]{1,63}$/

/** What a peer learns of an error: its code if it is a coded one, else (and for local aborts and timeouts) `fallback`. */
function wireCode (err: unknown, fallback: string): { code: string, message: string } {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string' || !CODE_RE.test(code)) return { code: fallback, message: '' }
  if (code === 'CORE_ABORTED' || code === 'CORE_TIMEOUT') return { code: fallback, message: '' }
  return { code, message: truncateUtf8(String((err as Error).message ?? ''), REMOTE_MESSAGE_MAX) }
}

function truncateUtf8 (s: string, max: number): string {
  const b = Buffer.from(s)
  return b.byteLength <= max ? s : b.subarray(0, max).toString('utf8').replace(/\uFFFD+$/, '')
}

function remoteError (code: string, message: string, who: string): SimPeerError {
  return new SimPeerError(code, message === '' ? `${who} answered ${code}` : `${who}: ${message}`, { remote: true })
}

/**
 * The network-wide part: every host's PeerNet, the open streams (so crashes and partitions
 * can break them) and the counters. Made on first use, so a simulation that never touches
 * PeerNet draws no random number and schedules no event for it.
 */
export class PeerFabric {
  readonly stats: PeerNetStats = { requests: 0, responses: 0, requestMessagesLost: 0, streamsOpened: 0, streamsRefused: 0, streamsBroken: 0, messages: 0, resent: 0, bytes: 0 }
  readonly window: number
  readonly defaultTimeoutMs: number
  readonly breakDetectMs: number
  /** @internal */ readonly streams = new Set<StreamPair>()
  private readonly nets = new Map<SimHost, HostPeerNet>()

  constructor (readonly network: SimNetwork, readonly scheduler: Scheduler, init: SimPeerNetInit = {}) {
    this.window = init.streamWindow ?? 16
    this.defaultTimeoutMs = init.defaultTimeoutMs ?? 60_000
    this.breakDetectMs = init.breakDetectMs ?? 10_000
    if (!Number.isInteger(this.window) || this.window < 1) throw new SimPeerError('OHT_BAD_ARGUMENT', `streamWindow must be a positive integer, got ${this.window}`)
  }

  /** The PeerNet of `host` (made on first use). */
  of (host: SimHost): HostPeerNet {
    let net = this.nets.get(host)
    if (net === undefined) { net = new HostPeerNet(this, host); this.nets.set(host, net) }
    return net
  }

  /** @internal the host crashed: break its streams (the other ends learn after one delay). */
  hostDown (host: SimHost): void {
    for (const pair of [...this.streams]) {
      if (pair.a.host !== host && pair.b.host !== host) continue
      const other = pair.a.host === host ? pair.b : pair.a
      const blocked = this.network.isBlocked(pair.a.host.index, pair.b.host.index)
      pair.breakAll(`${host.address} went away`, (end) => end === other ? (blocked ? this.breakDetectMs : this.network.oneWayDelay(host.index, other.host.index)) : undefined)
    }
  }

  /** @internal the host is gone for good: forget its PeerNet too. */
  hostRemoved (host: SimHost): void {
    this.hostDown(host)
    this.nets.get(host)?.forget()
    this.nets.delete(host)
  }

  /** @internal a partition started: streams across it break after breakDetectMs. */
  partitioned (): void {
    for (const pair of [...this.streams]) {
      if (this.network.isBlocked(pair.a.host.index, pair.b.host.index)) {
        pair.breakAll('a partition cut the stream', () => this.breakDetectMs)
      }
    }
  }
}

/** A request's caller side: settles once. */
interface Call {
  settled: boolean
  finish(err: Error | undefined, body?: Uint8Array): void
}

export class HostPeerNet implements SimPeerNet {
  /** @internal */ readonly protocols = new Map<string, Registration>()
  private readonly network: SimNetwork

  constructor (private readonly fabric: PeerFabric, readonly host: SimHost) {
    this.network = fabric.network
  }

  /** @internal */ forget (): void { this.protocols.clear() }

  handle (protocol: string, handler: SimPeerRequestHandler, options: SimPeerProtocolOptions = {}): void {
    this.register(protocol, { kind: 'request', request: handler }, options)
  }

  handleStream (protocol: string, handler: SimPeerStreamHandler, options: SimPeerProtocolOptions = {}): void {
    this.register(protocol, { kind: 'stream', stream: handler }, options)
  }

  unhandle (protocol: string): void { this.protocols.delete(protocol) }

  private register (protocol: string, h: Pick<Registration, 'kind' | 'request' | 'stream'>, options: SimPeerProtocolOptions): void {
    checkProtocol(protocol)
    if (this.protocols.has(protocol)) throw new SimPeerError('OHT_BAD_ARGUMENT', `${protocol} already has a handler on ${this.host.address}; unhandle() it first`)
    const maxInboundPerPeer = options.maxInboundPerPeer ?? 32
    const inboundTimeoutMs = options.inboundTimeoutMs ?? 30_000
    if (!Number.isInteger(maxInboundPerPeer) || maxInboundPerPeer < 1) throw new SimPeerError('OHT_BAD_ARGUMENT', `maxInboundPerPeer must be a positive integer, got ${maxInboundPerPeer}`)
    if (!(inboundTimeoutMs > 0)) throw new SimPeerError('OHT_BAD_ARGUMENT', `inboundTimeoutMs must be positive, got ${inboundTimeoutMs}`)
    this.protocols.set(protocol, { ...h, maxMessageBytes: checkLimit(options.maxMessageBytes, 'maxMessageBytes'), maxInboundPerPeer, inboundTimeoutMs, inbound: new Map() })
  }

  /** The limit of our side of `protocol`: the call's, else our registration's, else the default. */
  private limitFor (protocol: string, asked: number | undefined): number {
    if (asked !== undefined) return checkLimit(asked, 'maxMessageBytes')
    return this.protocols.get(protocol)?.maxMessageBytes ?? SIM_PEER_MESSAGE_MAX_DEFAULT
  }

  // ------------------------------------------------------------------ requests

  async request (to: SimContact, protocol: string, body: Uint8Array, options: SimPeerRequestOptions = {}): Promise<Uint8Array> {
    checkProtocol(protocol)
    const limit = this.limitFor(protocol, options.maxMessageBytes)
    throwIfAborted(options.signal)
    if (body.byteLength > limit) throw tooLarge(body.byteLength, limit, 'request')
    const from = this.host
    const fabric = this.fabric
    fabric.stats.requests++
    const payload = body.slice()
    return await new Promise<Uint8Array>((resolve, reject) => {
      const epoch = from.epoch
      const signal = options.signal
      const timeoutMs = options.timeoutMs ?? fabric.defaultTimeoutMs
      let target: SimHost | undefined
      let cancel: (() => void) | undefined
      const call: Call = {
        settled: false,
        finish: (err, value) => {
          if (call.settled || !from.isOnline || from.epoch !== epoch) return
          call.settled = true
          timer.cancel()
          signal?.removeEventListener('abort', onAbort)
          if (err !== undefined) { reject(err); return }
          if ((value as Uint8Array).byteLength > limit) { reject(tooLarge((value as Uint8Array).byteLength, limit, 'response')); return }
          fabric.stats.responses++
          resolve(value as Uint8Array)
        }
      }
      const giveUp = (err: Error): void => {
        if (call.settled) return
        call.finish(err)
        cancel?.()
      }
      const onAbort = (): void => { giveUp(abortReason(signal as AbortSignal)) }
      const timer = from.clock.setTimeout(() => {
        giveUp(new TimeoutError(`no answer from ${to.addrs[0] ?? '(no address)'} on ${protocol} within ${Math.round(timeoutMs)} ms`))
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      if (!from.isOnline) return // a crashed caller sends nothing and learns nothing
      target = this.network.resolve(to)
      if (target === undefined || !target.isOnline) {
        this.unreachable(target, to, call)
        return
      }
      const t = target
      if (this.lost(from, t)) return
      let handlerAbort: AbortController | undefined
      let cancelled = false
      // A cancel travels like any message (it may even overtake the request); on arrival it
      // aborts the handler's signal, or keeps a request still on its way from being served.
      cancel = () => {
        if (this.lost(from, t)) return
        fabric.scheduler.schedule(this.network.oneWayDelay(from.index, t.index), () => {
          cancelled = true
          handlerAbort?.abort(new AbortError('the requester went away'))
        })
      }
      fabric.scheduler.schedule(this.network.oneWayDelay(from.index, t.index), () => {
        if (cancelled) return
        handlerAbort = fabric.of(t).serveRequest(from, protocol, payload, call)
      })
    })
  }

  private unreachable (target: SimHost | undefined, to: SimContact, call: Call): void {
    if (!this.network.refuses) return
    const idx = target?.index ?? this.host.index
    const rtt = this.network.oneWayDelay(this.host.index, idx) + this.network.oneWayDelay(idx, this.host.index)
    this.fabric.scheduler.schedule(rtt, () => {
      call.finish(new SimPeerError('OHT_PEER_UNREACHABLE', `${to.addrs.join(',') || '(no address)'} is not reachable (offline or unknown)`))
    })
  }

  /** A request-path message from `a` to `b` is lost (loss rate) or cut (partition). */
  private lost (a: SimHost, b: SimHost): boolean {
    if (this.network.isBlocked(a.index, b.index) || this.network.lossDraw()) { this.fabric.stats.requestMessagesLost++; return true }
    return false
  }

  /** @internal a request arrived here; returns the handler's abort controller (for cancels). */
  serveRequest (from: SimHost, protocol: string, body: Uint8Array, call: Call): AbortController | undefined {
    const self = this.host
    if (!self.isOnline) {
      if (this.network.refuses) this.answer(from, call, new SimPeerError('OHT_PEER_UNREACHABLE', `${self.address} went offline`))
      return undefined
    }
    const reg = this.protocols.get(protocol)
    if (reg?.kind !== 'request') {
      this.answer(from, call, remoteError('OHT_PROTOCOL_UNSUPPORTED', `no request handler for ${protocol}`, self.address))
      return undefined
    }
    if (body.byteLength > reg.maxMessageBytes) {
      this.answer(from, call, remoteError('OHT_MESSAGE_TOO_LARGE', `request of ${body.byteLength} bytes exceeds the ${reg.maxMessageBytes}-byte limit`, self.address))
      return undefined
    }
    const busy = reg.inbound.get(from.index) ?? 0
    if (busy >= reg.maxInboundPerPeer) {
      this.answer(from, call, remoteError('OHT_RATE_LIMITED', `${busy} requests from you in progress on ${protocol}`, self.address))
      return undefined
    }
    reg.inbound.set(from.index, busy + 1)
    const epoch = self.epoch
    const cancel = new AbortController()
    const scoped = scopedSignal(self.clock, reg.inboundTimeoutMs, cancel.signal, self.life.signal)
    let done = false
    const end = (err: Error | undefined, response?: Uint8Array): void => {
      if (done) return
      done = true
      scoped.clear()
      const n = (reg.inbound.get(from.index) ?? 1) - 1
      if (n <= 0) reg.inbound.delete(from.index); else reg.inbound.set(from.index, n)
      if (!self.isOnline || self.epoch !== epoch) return
      this.answer(from, call, err, response)
    }
    scoped.signal.addEventListener('abort', () => {
      if (cancel.signal.aborted) { end(undefined); return } // nobody waits for the answer
      end(remoteError('OHT_PEER_FAILED', `the handler of ${protocol} did not answer within ${reg.inboundTimeoutMs} ms`, self.address))
    }, { once: true })
    let answer: Promise<Uint8Array>
    try {
      answer = (reg.request as SimPeerRequestHandler)(from.contact, body, { signal: scoped.signal })
    } catch (err) {
      answer = Promise.reject(err)
    }
    answer.then((response) => {
      if (!(response instanceof Uint8Array)) { end(remoteError('OHT_PEER_FAILED', '', self.address)); return }
      if (response.byteLength > reg.maxMessageBytes) {
        end(remoteError('OHT_MESSAGE_TOO_LARGE', `response of ${response.byteLength} bytes exceeds the ${reg.maxMessageBytes}-byte limit`, self.address))
        return
      }
      end(undefined, response.slice())
    }, (err: unknown) => {
      const w = wireCode(err, 'OHT_PEER_FAILED')
      end(remoteError(w.code, w.message, self.address))
    })
    return cancel
  }

  /** Sends the outcome of a request back to its caller. */
  private answer (to: SimHost, call: Call, err: Error | undefined, response?: Uint8Array): void {
    if (err === undefined && response === undefined) return
    if (this.lost(this.host, to)) return
    if (response !== undefined) this.fabric.stats.bytes += response.byteLength
    this.fabric.scheduler.schedule(this.network.oneWayDelay(this.host.index, to.index), () => { call.finish(err, response) })
  }

  // ------------------------------------------------------------------ streams

  async openStream (to: SimContact, protocol: string, options: SimPeerStreamOptions = {}): Promise<SimPeerStream> {
    checkProtocol(protocol)
    const limit = this.limitFor(protocol, options.maxMessageBytes)
    throwIfAborted(options.signal)
    const from = this.host
    const fabric = this.fabric
    return await new Promise<SimPeerStream>((resolve, reject) => {
      const epoch = from.epoch
      const signal = options.signal
      const timeoutMs = options.timeoutMs ?? fabric.defaultTimeoutMs
      let pair: StreamPair | undefined
      const call: Call = {
        settled: false,
        finish: (err) => {
          if (call.settled || !from.isOnline || from.epoch !== epoch) return
          call.settled = true
          timer.cancel()
          signal?.removeEventListener('abort', onAbort)
          if (err !== undefined) { reject(err); return }
          resolve((pair as StreamPair).a)
        }
      }
      const giveUp = (err: Error): void => {
        if (call.settled) return
        call.finish(err)
        // An acceptor that did take the stream learns that nobody wants it.
        if (pair !== undefined && pair.accepted) pair.a.abort(err)
        else if (pair !== undefined) pair.abandoned = true
      }
      const onAbort = (): void => { giveUp(abortReason(signal as AbortSignal)) }
      const timer = from.clock.setTimeout(() => {
        giveUp(new TimeoutError(`${to.addrs[0] ?? '(no address)'} did not accept a ${protocol} stream within ${Math.round(timeoutMs)} ms`))
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      if (!from.isOnline) return
      const target = this.network.resolve(to)
      if (target === undefined || !target.isOnline) { this.unreachable(target, to, call); return }
      if (this.network.isBlocked(from.index, target.index)) return // a dial that never completes
      pair = new StreamPair(fabric, from, target, protocol, limit)
      pair.openCall = call
      const p = pair
      // An OPEN reaching a host that crashed meanwhile: refused or unanswered, as a request.
      p.transmit(p.a, () => { fabric.of(target).acceptStream(p, call) }, () => { this.unreachable(target, to, call) })
    })
  }

  /** @internal an OPEN arrived here. */
  acceptStream (pair: StreamPair, call: Call): void {
    const self = this.host
    const opener = pair.a.host
    const refuse = (code: string, message: string): void => {
      this.fabric.stats.streamsRefused++
      pair.transmit(pair.b, () => { call.finish(remoteError(code, message, self.address)) })
      pair.dispose()
    }
    if (!self.isOnline) return
    // the opener gave up, or crashed while its OPEN travelled (its crash broke only the streams it had)
    if (pair.abandoned || !opener.isOnline || opener.epoch !== pair.openerEpoch) { pair.dispose(); return }
    const reg = this.protocols.get(pair.protocol)
    if (reg?.kind !== 'stream') { refuse('OHT_PROTOCOL_UNSUPPORTED', `no stream handler for ${pair.protocol}`); return }
    const busy = reg.inbound.get(opener.index) ?? 0
    if (busy >= reg.maxInboundPerPeer) { refuse('OHT_RATE_LIMITED', `${busy} streams from you open on ${pair.protocol}`); return }
    reg.inbound.set(opener.index, busy + 1)
    pair.b.maxMessageBytes = reg.maxMessageBytes
    pair.b.onEnd = () => {
      const n = (reg.inbound.get(opener.index) ?? 1) - 1
      if (n <= 0) reg.inbound.delete(opener.index); else reg.inbound.set(opener.index, n)
    }
    pair.accepted = true
    this.fabric.streams.add(pair)
    this.fabric.stats.streamsOpened++
    pair.transmit(pair.b, () => { call.finish(undefined) })
    const stream = pair.b
    let result: void | Promise<void>
    try {
      result = (reg.stream as SimPeerStreamHandler)(stream, opener.contact)
    } catch (err) {
      result = Promise.reject(err)
    }
    Promise.resolve(result).then(() => { stream.handlerDone() }, (err: unknown) => {
      const w = wireCode(err, 'OHT_PEER_FAILED')
      stream.abort(new SimPeerError(w.code, w.message === '' ? 'the stream handler failed' : w.message, { cause: err }))
    })
  }
}

/**
 * Both ends of one stream and the two ordered directions between them. `a` is the opener's
 * end, `b` the acceptor's.
 */
class StreamPair {
  readonly a: StreamEnd
  readonly b: StreamEnd
  /** Virtual time of the last frame's arrival, per direction (keeps each direction FIFO). */
  private lastAtB = 0
  private lastAtA = 0
  accepted = false
  /** The opener gave up before the acceptor saw the OPEN. */
  abandoned = false
  broken = false
  /** The opener's pending openStream(): a stream that breaks before ACCEPT arrives fails it. */
  openCall: Call | undefined
  /** The opener's life when it sent the OPEN. */
  readonly openerEpoch: number

  constructor (readonly fabric: PeerFabric, opener: SimHost, acceptor: SimHost, readonly protocol: string, openerLimit: number) {
    this.openerEpoch = opener.epoch
    this.a = new StreamEnd(this, opener, acceptor.contact, openerLimit)
    this.b = new StreamEnd(this, acceptor, opener.contact, SIM_PEER_MESSAGE_MAX_DEFAULT)
    this.a.peer = this.b
    this.b.peer = this.a
  }

  /**
   * Carries one frame from `from` to the other end, in order after the earlier ones. A lost
   * frame costs three one-way delays more; a partition breaks the stream instead.
   */
  transmit (from: StreamEnd, deliver: () => void, onDead?: () => void): void {
    if (this.broken) return
    const to = from.peer
    const net = this.fabric.network
    const a = from.host.index
    const b = to.host.index
    if (!from.host.isOnline) return
    if (net.isBlocked(a, b)) { this.breakAll('a partition cut the stream', () => this.fabric.breakDetectMs); return }
    let delay = net.oneWayDelay(a, b)
    for (let tries = 0; net.lossDraw(); tries++) {
      if (tries >= MAX_RESENDS) { this.breakAll('the connection lost every resend', () => this.fabric.breakDetectMs); return }
      this.fabric.stats.resent++
      delay += 3 * net.oneWayDelay(a, b)
    }
    const scheduler = this.fabric.scheduler
    const toB = from === this.a
    const at = Math.max(scheduler.now + delay, toB ? this.lastAtB : this.lastAtA)
    if (toB) this.lastAtB = at; else this.lastAtA = at
    const epoch = to.host.epoch
    scheduler.scheduleAt(at, () => {
      if (this.broken) return
      if (!to.host.isOnline || to.host.epoch !== epoch) { onDead?.(); return }
      deliver()
    })
  }

  /** Breaks both ends: `delayOf(end)` says when that end learns (undefined: never, it is dead). */
  breakAll (why: string, delayOf: (end: StreamEnd) => number | undefined): void {
    if (this.broken) return
    this.broken = true
    this.fabric.stats.streamsBroken++
    this.dispose()
    for (const end of [this.a, this.b]) {
      if (end === this.b && !this.accepted) continue
      const d = delayOf(end)
      if (d === undefined || !end.host.isOnline) continue
      const epoch = end.host.epoch
      this.fabric.scheduler.schedule(d, () => {
        if (!end.host.isOnline || end.host.epoch !== epoch) return
        const err = new SimPeerError('OHT_STREAM_CLOSED', `the ${this.protocol} stream broke: ${why}`)
        if (end === this.a && this.openCall !== undefined && !this.openCall.settled) this.openCall.finish(err)
        end.fail(err)
      })
    }
  }

  dispose (): void {
    this.fabric.streams.delete(this)
  }

  /** Both ends are finished: drop the pair from the registry. */
  maybeDone (): void {
    if (this.a.finished && this.b.finished) this.dispose()
  }
}

interface PendingSend { message: Uint8Array, resolve: () => void, reject: (err: Error) => void, signal?: AbortSignal, onAbort?: () => void }

class StreamEnd implements SimPeerStream {
  peer!: StreamEnd
  readonly protocol: string
  /** Messages arrived and not yet read. */
  private readonly inbox: Uint8Array[] = []
  private readonly readers: Array<{ resolve: (r: IteratorResult<Uint8Array>) => void, reject: (err: Error) => void }> = []
  private readonly sendQueue: PendingSend[] = []
  private closeWaiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private credit: number
  private error: Error | undefined
  private closing = false
  private finSent = false
  private remoteClosed = false
  private owned = false
  private ended = false
  private lingerTimer: TimerHandle | undefined
  /** Called once when this end is finished (the acceptor's inbound count). */
  onEnd: (() => void) | undefined

  constructor (private readonly pair: StreamPair, readonly host: SimHost, readonly remote: SimContact, public maxMessageBytes: number) {
    this.protocol = pair.protocol
    this.credit = pair.fabric.window
  }

  get finished (): boolean { return this.error !== undefined || (this.finSent && this.remoteClosed && this.inbox.length === 0) }


  async send (message: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (this.error !== undefined) throw this.error
    if (this.closing || this.owned) throw new SimPeerError('OHT_STREAM_CLOSED', 'send after close()')
    if (message.byteLength > this.maxMessageBytes) throw tooLarge(message.byteLength, this.maxMessageBytes, 'message')
    const signal = options.signal
    if (signal?.aborted === true) { const err = abortReason(signal); this.abort(err); throw err }
    await new Promise<void>((resolve, reject) => {
      const item: PendingSend = { message: message.slice(), resolve, reject, signal }
      if (signal !== undefined) {
        item.onAbort = () => { const err = abortReason(signal); this.abort(err) }
        signal.addEventListener('abort', item.onAbort, { once: true })
      }
      this.sendQueue.push(item)
      this.pump()
    })
  }

  /** Puts queued messages on the wire while the window allows; then the FIN if asked. */
  private pump (): void {
    while (this.error === undefined && this.sendQueue.length > 0 && this.credit > 0) {
      const item = this.sendQueue.shift() as PendingSend
      this.credit--
      if (item.onAbort !== undefined) item.signal?.removeEventListener('abort', item.onAbort)
      const msg = item.message
      this.pair.fabric.stats.bytes += msg.byteLength
      this.pair.transmit(this, () => { this.peer.onData(msg) })
      item.resolve()
    }
    if (this.error === undefined && this.closing && !this.finSent && this.sendQueue.length === 0) {
      this.finSent = true
      this.pair.transmit(this, () => { this.peer.onFin() })
      for (const w of this.closeWaiters) w.resolve()
      this.closeWaiters = []
      this.checkEnd()
    }
  }

  async close (options: AbortOptions = {}): Promise<void> {
    if (this.error !== undefined) throw this.error
    if (this.finSent) return
    throwIfAborted(options.signal)
    this.closing = true
    await new Promise<void>((resolve, reject) => {
      this.closeWaiters.push({ resolve, reject })
      this.pump()
    })
  }

  abort (err?: Error): void {
    if (this.error !== undefined) return
    const e = err ?? new SimPeerError('OHT_STREAM_CLOSED', 'the stream was aborted')
    const w = wireCode(e, 'OHT_STREAM_CLOSED')
    this.fail(e)
    const peer = this.peer
    if (this.pair.accepted) this.pair.transmit(this, () => { peer.fail(remoteError(w.code, w.message, this.host.address)) })
    this.pair.dispose()
  }

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return {
      next: async () => await this.read(),
      // Leaving a loop early does not end the stream (see the contract).
      return: async () => ({ done: true, value: undefined })
    }
  }

  private async read (): Promise<IteratorResult<Uint8Array>> {
    // messages kept by a failure of our own making (see rejectInput) come before the error
    const msg = this.inbox.shift()
    if (msg !== undefined) { if (this.error === undefined) this.consumed(); return { done: false, value: msg } }
    if (this.error !== undefined) throw this.error
    if (this.remoteClosed) { this.checkEnd(); return { done: true, value: undefined } }
    return await new Promise((resolve, reject) => { this.readers.push({ resolve, reject }) })
  }

  /** A message was read: its slot in the window goes back to the sender. */
  private consumed (): void {
    const peer = this.peer
    this.pair.transmit(this, () => { peer.onWindow() })
  }

  // ---- frames arriving at this end

  onData (msg: Uint8Array): void {
    if (this.error !== undefined) return
    this.pair.fabric.stats.messages++
    if (this.owned) { this.abort(new SimPeerError('OHT_STREAM_CLOSED', 'a message arrived after the stream handler returned')); return }
    if (msg.byteLength > this.maxMessageBytes) { this.rejectInput(tooLarge(msg.byteLength, this.maxMessageBytes, 'inbound message')); return }
    const reader = this.readers.shift()
    if (reader !== undefined) { this.consumed(); reader.resolve({ done: false, value: msg }); return }
    this.inbox.push(msg)
  }

  onWindow (): void {
    if (this.error !== undefined) return
    this.credit++
    this.pump()
  }

  onFin (): void {
    if (this.error !== undefined) return
    this.remoteClosed = true
    if (this.owned) { this.lingerTimer?.cancel(); this.lingerTimer = undefined }
    for (const r of this.readers.splice(0)) r.resolve({ done: true, value: undefined })
    this.checkEnd()
  }

  /**
   * The peer's input broke the rules (too large): tell it why and reset; what it sent before
   * stays readable, then reads fail with `err`.
   */
  private rejectInput (err: Error): void {
    const w = wireCode(err, 'OHT_STREAM_CLOSED')
    this.fail(err, true)
    const peer = this.peer
    this.pair.transmit(this, () => { peer.fail(remoteError(w.code, w.message, this.host.address)) })
    this.pair.dispose()
  }

  /** Ends this side with `err`: every pending and later call rejects with it (after the kept messages). */
  fail (err: Error, keepInbox = false): void {
    if (this.error !== undefined) return
    this.error = err
    if (!keepInbox) this.inbox.length = 0
    this.lingerTimer?.cancel()
    for (const r of this.readers.splice(0)) r.reject(err)
    for (const s of this.sendQueue.splice(0)) {
      if (s.onAbort !== undefined) s.signal?.removeEventListener('abort', s.onAbort)
      s.reject(err)
    }
    for (const w of this.closeWaiters.splice(0)) w.reject(err)
    this.checkEnd()
  }

  /** The handler of this inbound stream returned: close, and reset a peer that does not. */
  handlerDone (): void {
    if (this.error !== undefined) return
    this.owned = true
    if (this.inbox.length > 0) { this.abort(new SimPeerError('OHT_STREAM_CLOSED', 'the stream handler returned with messages unread')); return }
    this.closing = true
    this.pump()
    if (!this.remoteClosed) {
      this.lingerTimer = this.host.clock.setTimeout(() => {
        this.abort(new SimPeerError('OHT_STREAM_CLOSED', `the peer did not close the ${this.protocol} stream within ${STREAM_LINGER_MS} ms of the handler's end`))
      }, STREAM_LINGER_MS)
    }
  }

  private checkEnd (): void {
    if (this.ended || !this.finished) return
    this.ended = true
    this.onEnd?.()
    this.pair.maybeDone()
  }
}
