/**
 * The PeerNet seam (src/oht/peer-net.ts) over libp2p. Each PeerNet protocol id becomes two
 * libp2p protocols on the node's existing connections (shared with the DHT, see
 * peer-connections.ts):
 *
 *   /oht/req/1<id>      one request per stream      e.g. /oht/req/1/wormhole/deliver/1
 *   /oht/stream/1<id>   one PeerNet stream each     e.g. /oht/stream/1/chat/1
 *
 * so a request to a stream protocol (or the reverse) fails in libp2p's protocol negotiation,
 * as an unknown protocol does (OHT_PROTOCOL_UNSUPPORTED). The `1` is the version of the
 * frames below (peer-frames.ts draws them):
 *
 *   request:  initiator ─DATA(request)─FIN─▶        ◀─DATA(response) | ERROR(code)─FIN─ responder
 *   stream:   opener ◀─ACCEPT | ERROR(code)─ acceptor, then DATA* both ways, FIN (half-close)
 *             or ERROR(code) + reset (abort)
 *
 * `from` (and a stream's `remote`) is the Ed25519 key the peer proved in the noise handshake,
 * with the addresses it announced through identify (onion ones checked against that key).
 * Back-pressure is in-band: `send()` waits while 1 MiB of our messages are unread by the peer
 * (WINDOW credit, see peer-frames.ts), so what a stream holds is bounded whatever the muxer's
 * own window grew to, and a half-closed side still grants window. A connection with an open stream or request in flight is never closed for
 * idleness. Malformed frames from a peer end that one request or stream with OHT_BAD_FRAME
 * (or OHT_MESSAGE_TOO_LARGE) and an ERROR frame to the peer; they never reach a handler.
 */
import { setMaxListeners } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import {
  abortReason, isCodedError, logger, scopedSignal,
  type AbortOptions, type Clock, type Logger, type TimerHandle
} from '../core/index.ts'
import {
  checkProtocolId, OhtError, OhtRemoteError, PEER_MESSAGE_MAX_DEFAULT, PEER_MESSAGE_MAX_LIMIT,
  type PeerContact, type PeerNet, type PeerProtocolOptions, type PeerRequestHandler, type PeerRequestOptions,
  type PeerStream, type PeerStreamHandler, type PeerStreamOptions
} from '../oht/index.ts'
import { ed25519FromPeerId } from './identity.ts'
import type { NetLibp2p } from './node.ts'
import { createPeerConnections, type PeerConnections } from './peer-connections.ts'
import { encodeError, encodeFrame, encodeWindow, FRAME_ACCEPT, FRAME_CLOSE, FRAME_DATA, FrameReader, STREAM_WINDOW_BYTES, wireCode, writeFrame } from './peer-frames.ts'

export const PEER_REQUEST_PROTOCOL_PREFIX = '/oht/req/1'
export const PEER_STREAM_PROTOCOL_PREFIX = '/oht/stream/1'
/** An inbound stream whose handler returned waits this long for the peer's FIN, then resets. */
const STREAM_LINGER_MS = 30_000

export interface Libp2pPeerNetInit {
  /** Deadline of a request or stream opening that names none. @default 60_000 */
  defaultTimeoutMs?: number
  /** Outbound streams of one protocol on one connection. @default 1024 */
  maxOutboundStreams?: number
  /** Only /onion3 addresses are dialled and reported; ignored with `connections`. @default false */
  onionOnly?: boolean
  /** How long an inbound call waits for identify to learn the caller's addresses; ignored with `connections`. @default 5_000 */
  identifyWaitMs?: number
  /** Connections unused this long are closed; ignored with `connections`. @default 300_000 */
  idleTimeoutMs?: number
}

export interface Libp2pPeerNetComponents {
  libp2p: NetLibp2p
  clock: Clock
  log?: Logger
  /** The node's shared connection machinery (see Libp2pDhtNetComponents); without it the adapter runs its own. */
  connections?: PeerConnections
}

export interface Libp2pPeerNetStats {
  requestsOut: number
  requestsIn: number
  streamsOut: number
  streamsIn: number
  /** Calls that found no open connection and had to dial. */
  dials: number
  /** Calls served on an already open connection. */
  reusedConnections: number
  /** Outbound calls that failed (any reason, aborts and timeouts included). */
  failuresOut: number
  /** Inbound requests and streams refused: unknown kind, over the per-peer cap or the size limit. */
  refusedIn: number
  /** Inbound requests and streams ended because the peer sent malformed frames. */
  badFramesIn: number
  /** Streams open now (both directions). */
  readonly openStreams: number
}

export interface Libp2pPeerNet extends PeerNet {
  start(): Promise<void>
  /** Aborts every open stream and inbound call and removes the protocols. */
  stop(): Promise<void>
  readonly stats: Libp2pPeerNetStats
}

/**
 * @example
 * const peers = createLibp2pPeerNet({}, { libp2p, clock: systemClock })
 * await peers.start()
 * peers.handle('/echo/1', async (_from, body) => body)
 * const answer = await peers.request(contact, '/echo/1', bytes, { timeoutMs: 10_000 })
 */
export function createLibp2pPeerNet (init: Libp2pPeerNetInit, components: Libp2pPeerNetComponents): Libp2pPeerNet {
  return new Libp2pPeerNetImpl(init, components)
}

interface Registration {
  kind: 'request' | 'stream'
  request?: PeerRequestHandler
  stream?: PeerStreamHandler
  maxMessageBytes: number
  maxInboundPerPeer: number
  inboundTimeoutMs: number
  /** Inbound calls in progress, by peer id string. */
  inbound: Map<string, number>
}

function protocolOf (kind: 'request' | 'stream', protocol: string): string {
  return (kind === 'request' ? PEER_REQUEST_PROTOCOL_PREFIX : PEER_STREAM_PROTOCOL_PREFIX) + protocol
}

function checkLimit (n: number | undefined): number {
  const v = n ?? PEER_MESSAGE_MAX_DEFAULT
  if (!Number.isInteger(v) || v < 1 || v > PEER_MESSAGE_MAX_LIMIT) {
    throw new OhtError('OHT_BAD_ARGUMENT', `maxMessageBytes must be an integer in [1, ${PEER_MESSAGE_MAX_LIMIT}], got ${String(n)}`)
  }
  return v
}

function tooLarge (n: number, limit: number, what: string): OhtError {
  return new OhtError('OHT_MESSAGE_TOO_LARGE', `${what} of ${n} bytes exceeds the ${limit}-byte limit`)
}

// a function, so TypeScript does not keep a narrowing of `signal.aborted` across an await
function isAborted (signal: AbortSignal | undefined): signal is AbortSignal { return signal?.aborted === true }

function nameOf (peerId: PeerId): string { return `peer ${peerId.toString()}` }

class Libp2pPeerNetImpl implements Libp2pPeerNet {
  readonly stats: Libp2pPeerNetStats
  private readonly protocols = new Map<string, Registration>()
  private readonly streams = new Set<Libp2pPeerStream>()
  private readonly connections: PeerConnections
  private readonly ownsConnections: boolean
  private readonly defaultTimeoutMs: number
  private readonly maxOutboundStreams: number
  private readonly log: Logger
  private running = false
  private shutdown = new AbortController()

  constructor (init: Libp2pPeerNetInit, private readonly components: Libp2pPeerNetComponents) {
    this.defaultTimeoutMs = init.defaultTimeoutMs ?? 60_000
    this.maxOutboundStreams = init.maxOutboundStreams ?? 1024
    this.log = components.log ?? logger('net:peers')
    this.ownsConnections = components.connections === undefined
    this.connections = components.connections ?? createPeerConnections(
      { onionOnly: init.onionOnly, identifyWaitMs: init.identifyWaitMs, idleTimeoutMs: init.idleTimeoutMs },
      { libp2p: components.libp2p, clock: components.clock, log: this.log }
    )
    const streams = this.streams
    this.stats = {
      requestsOut: 0, requestsIn: 0, streamsOut: 0, streamsIn: 0, dials: 0, reusedConnections: 0, failuresOut: 0, refusedIn: 0, badFramesIn: 0,
      get openStreams () { return streams.size }
    }
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    if (this.shutdown.signal.aborted) { this.shutdown = new AbortController(); setMaxListeners(Infinity, this.shutdown.signal) }
    if (this.ownsConnections) this.connections.start()
    await Promise.all([...this.protocols.entries()].map(async ([p, reg]) => { await this.install(p, reg) }))
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort(new OhtError('OHT_STREAM_CLOSED', 'the node is stopping'))
    for (const s of [...this.streams]) s.abort(new OhtError('OHT_STREAM_CLOSED', 'the node is stopping'))
    await Promise.all([...this.protocols.entries()].map(async ([p, reg]) => {
      await this.components.libp2p.unhandle(protocolOf(reg.kind, p)).catch(() => {})
    }))
    if (this.ownsConnections) this.connections.stop()
  }

  // ------------------------------------------------------------------ handlers

  handle (protocol: string, handler: PeerRequestHandler, options: PeerProtocolOptions = {}): void {
    this.register(protocol, { kind: 'request', request: handler }, options)
  }

  handleStream (protocol: string, handler: PeerStreamHandler, options: PeerProtocolOptions = {}): void {
    this.register(protocol, { kind: 'stream', stream: handler }, options)
  }

  unhandle (protocol: string): void {
    const reg = this.protocols.get(protocol)
    if (reg === undefined) return
    this.protocols.delete(protocol)
    if (this.running) void this.components.libp2p.unhandle(protocolOf(reg.kind, protocol)).catch(() => {})
  }

  private register (protocol: string, h: Pick<Registration, 'kind' | 'request' | 'stream'>, options: PeerProtocolOptions): void {
    checkProtocolId(protocol)
    if (this.protocols.has(protocol)) throw new OhtError('OHT_BAD_ARGUMENT', `${protocol} already has a handler; unhandle() it first`)
    const maxInboundPerPeer = options.maxInboundPerPeer ?? 32
    const inboundTimeoutMs = options.inboundTimeoutMs ?? 30_000
    if (!Number.isInteger(maxInboundPerPeer) || maxInboundPerPeer < 1) throw new OhtError('OHT_BAD_ARGUMENT', `maxInboundPerPeer must be a positive integer, got ${maxInboundPerPeer}`)
    if (!(inboundTimeoutMs > 0)) throw new OhtError('OHT_BAD_ARGUMENT', `inboundTimeoutMs must be positive, got ${inboundTimeoutMs}`)
    const reg: Registration = { ...h, maxMessageBytes: checkLimit(options.maxMessageBytes), maxInboundPerPeer, inboundTimeoutMs, inbound: new Map() }
    this.protocols.set(protocol, reg)
    if (this.running) {
      this.install(protocol, reg).catch((err: Error) => { this.log.warn('registering %s failed: %s', protocol, err.message) })
    }
  }

  private async install (protocol: string, reg: Registration): Promise<void> {
    const { libp2p } = this.components
    await libp2p.handle(protocolOf(reg.kind, protocol), async (stream, connection) => {
      // the registration may have been replaced since
      if (this.protocols.get(protocol) !== reg) { stream.abort(new OhtError('OHT_PROTOCOL_UNSUPPORTED', 'unhandled')); return }
      if (reg.kind === 'request') await this.onRequest(protocol, reg, stream, connection)
      else await this.onStream(protocol, reg, stream, connection)
    }, {
      // ours is the coded limit (OHT_RATE_LIMITED); libp2p's, a silent reset, sits above it
      maxInboundStreams: reg.maxInboundPerPeer * 2 + 8,
      maxOutboundStreams: this.maxOutboundStreams
    })
  }

  private limitFor (protocol: string, asked: number | undefined): number {
    if (asked !== undefined) return checkLimit(asked)
    return this.protocols.get(protocol)?.maxMessageBytes ?? PEER_MESSAGE_MAX_DEFAULT
  }

  /** Counts an inbound call of `peer`, or returns false when it is over the protocol's cap. */
  private admit (reg: Registration, peer: string): boolean {
    const busy = reg.inbound.get(peer) ?? 0
    if (busy >= reg.maxInboundPerPeer) return false
    reg.inbound.set(peer, busy + 1)
    return true
  }

  private leave (reg: Registration, peer: string): void {
    const n = (reg.inbound.get(peer) ?? 1) - 1
    if (n <= 0) reg.inbound.delete(peer); else reg.inbound.set(peer, n)
  }

  /**
   * Answers with an ERROR frame, closes our side, and resets the stream if the peer does not
   * close its own soon (it cannot keep us holding a refused stream).
   */
  private refuse (stream: Stream, code: string, message: string): void {
    this.stats.refusedIn++
    void (async () => {
      try {
        await writeFrame(stream, encodeError(code, message))
        await stream.close({ signal: this.shutdown.signal })
      } catch { stream.abort(new OhtError('OHT_STREAM_CLOSED', 'refused')); return }
      if (stream.status !== 'open') return
      const timer = this.components.clock.setTimeout(() => { stream.abort(new OhtError('OHT_STREAM_CLOSED', 'refused')) }, STREAM_LINGER_MS)
      stream.addEventListener('close', () => { timer.cancel() }, { once: true })
    })()
  }

  // ------------------------------------------------------------------ outbound

  async request (to: PeerContact, protocol: string, body: Uint8Array, options: PeerRequestOptions = {}): Promise<Uint8Array> {
    checkProtocolId(protocol)
    const limit = this.limitFor(protocol, options.maxMessageBytes)
    if (!this.running) throw new OhtError('OHT_NOT_STARTED', 'the PeerNet adapter is not started')
    if (options.signal?.aborted === true) throw abortReason(options.signal)
    if (body.byteLength > limit) throw tooLarge(body.byteLength, limit, 'request')
    this.stats.requestsOut++
    const scoped = scopedSignal(this.components.clock, options.timeoutMs ?? this.defaultTimeoutMs, options.signal, this.shutdown.signal)
    const signal = scoped.signal
    let stream: Stream | undefined
    let reader: FrameReader | undefined
    let release: (() => void) | undefined
    try {
      const { connection, peerId } = await this.connect(to, signal)
      release = this.connections.hold(peerId)
      stream = await this.newStream(connection, protocolOf('request', protocol), signal)
      const s = stream
      reader = new FrameReader(stream, { maxMessageBytes: limit, who: nameOf(peerId), stream: false, onError: (err) => { this.resetWith(s, err) } })
      await writeFrame(stream, encodeFrame(FRAME_DATA, body), signal)
      await stream.close({ signal })
      const frame = await reader.next(signal)
      if (frame === undefined) throw new OhtError('OHT_STREAM_CLOSED', `${nameOf(peerId)} closed the request stream without answering`)
      if (frame.type !== FRAME_DATA) throw new OhtError('OHT_BAD_FRAME', `${nameOf(peerId)} answered a request with a frame of type ${frame.type}`)
      return frame.body
    } catch (err) {
      this.stats.failuresOut++
      // the peer's own verdict (an ERROR frame) wins over what the reset did to our write
      const e = this.typed(reader?.error ?? err, signal)
      stream?.abort(e)
      throw e
    } finally {
      reader?.detach()
      release?.()
      scoped.clear()
    }
  }

  async openStream (to: PeerContact, protocol: string, options: PeerStreamOptions = {}): Promise<PeerStream> {
    checkProtocolId(protocol)
    const limit = this.limitFor(protocol, options.maxMessageBytes)
    if (!this.running) throw new OhtError('OHT_NOT_STARTED', 'the PeerNet adapter is not started')
    if (options.signal?.aborted === true) throw abortReason(options.signal)
    this.stats.streamsOut++
    const scoped = scopedSignal(this.components.clock, options.timeoutMs ?? this.defaultTimeoutMs, options.signal, this.shutdown.signal)
    const signal = scoped.signal
    let stream: Stream | undefined
    let reader: FrameReader | undefined
    let release: (() => void) | undefined
    try {
      const { connection, peerId } = await this.connect(to, signal)
      release = this.connections.hold(peerId)
      stream = await this.newStream(connection, protocolOf('stream', protocol), signal)
      const s = stream
      let ps: Libp2pPeerStream | undefined
      reader = new FrameReader(stream, { maxMessageBytes: limit, who: nameOf(peerId), stream: true, onError: (err) => { if (ps !== undefined) ps.rejectInput(err); else this.resetWith(s, err) } })
      const first = await reader.next(signal)
      if (first === undefined) throw new OhtError('OHT_STREAM_CLOSED', `${nameOf(peerId)} closed the stream without accepting it`)
      if (first.type !== FRAME_ACCEPT) throw new OhtError('OHT_BAD_FRAME', `${nameOf(peerId)} sent a frame of type ${first.type} before accepting the stream`)
      const remote: PeerContact = { publicKey: to.publicKey, addrs: this.connections.usableAddrs(to.publicKey, to.addrs).map(a => a.toString()) }
      ps = new Libp2pPeerStream(stream, reader, remote, protocol, limit, this.components.clock, nameOf(peerId), release)
      release = undefined
      this.track(ps)
      return ps
    } catch (err) {
      this.stats.failuresOut++
      const e = this.typed(reader?.error ?? err, signal)
      stream?.abort(e)
      reader?.detach()
      throw e
    } finally {
      release?.()
      scoped.clear()
    }
  }

  private track (ps: Libp2pPeerStream): void {
    this.streams.add(ps)
    ps.onEnd(() => { this.streams.delete(ps) })
  }

  private async connect (to: PeerContact, signal: AbortSignal): Promise<{ connection: Connection, peerId: PeerId }> {
    try {
      const { connection, dialed } = await this.connections.connect(to, signal)
      if (dialed) this.stats.dials++; else this.stats.reusedConnections++
      return { connection, peerId: connection.remotePeer }
    } catch (err) {
      if (signal.aborted) throw abortReason(signal)
      throw new OhtError('OHT_PEER_UNREACHABLE', `cannot reach the peer: ${(err as Error)?.message ?? String(err)}`, { cause: err })
    }
  }

  private async newStream (connection: Connection, protocol: string, signal: AbortSignal): Promise<Stream> {
    try {
      return await connection.newStream(protocol, { signal, maxOutboundStreams: this.maxOutboundStreams })
    } catch (err) {
      if (signal.aborted) throw abortReason(signal)
      const name = (err as Error)?.name
      if (name === 'UnsupportedProtocolError') {
        throw new OhtRemoteError('OHT_PROTOCOL_UNSUPPORTED', `${nameOf(connection.remotePeer)} does not speak ${protocol}`, { cause: err })
      }
      if (name === 'TooManyOutboundProtocolStreamsError') {
        throw new OhtError('OHT_RATE_LIMITED', `this node already has ${this.maxOutboundStreams} streams of ${protocol} open to the peer`, { cause: err })
      }
      throw new OhtError('OHT_PEER_UNREACHABLE', `the connection to ${nameOf(connection.remotePeer)} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
    }
  }

  /** Malformed or oversized input from the peer: tell it why, then reset. */
  private resetWith (stream: Stream, err: OhtError): void {
    try { if (stream.writeStatus === 'writable') stream.send(encodeError(err.code, err.message)) } catch {}
    stream.abort(err)
  }

  private typed (err: unknown, signal: AbortSignal): Error {
    if (err instanceof OhtError) return err
    if (signal.aborted) {
      const reason: unknown = signal.reason
      // the node stopping is not the caller's abort
      if (reason instanceof OhtError) return reason
      return abortReason(signal)
    }
    if (isCodedError(err) && (err.code === 'CORE_ABORTED' || err.code === 'CORE_TIMEOUT')) return err
    return new OhtError('OHT_STREAM_CLOSED', `the stream broke: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  // ------------------------------------------------------------------ inbound

  private async onRequest (protocol: string, reg: Registration, stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer
    const publicKey = ed25519FromPeerId(peerId)
    if (publicKey === undefined) { stream.abort(new OhtError('OHT_BAD_ARGUMENT', 'only Ed25519 peers take part')); return }
    this.stats.requestsIn++
    const key = peerId.toString()
    const who = nameOf(peerId)
    if (!this.admit(reg, key)) { this.refuse(stream, 'OHT_RATE_LIMITED', `${reg.maxInboundPerPeer} requests from you are in progress on ${protocol}`); return }
    const release = this.connections.hold(peerId)
    // the requester resetting the stream (it gave up) aborts the handler
    const gone = new AbortController()
    const onClose = (evt: Event): void => { if ((evt as Event & { error?: Error }).error !== undefined) gone.abort(new OhtError('OHT_STREAM_CLOSED', 'the requester went away')) }
    stream.addEventListener('close', onClose)
    const scoped = scopedSignal(this.components.clock, reg.inboundTimeoutMs, gone.signal, this.shutdown.signal)
    const signal = scoped.signal
    let malformed = false
    const reader = new FrameReader(stream, { maxMessageBytes: reg.maxMessageBytes, who, stream: false, onError: (err) => {
      malformed = true
      if (err.code === 'OHT_MESSAGE_TOO_LARGE') this.stats.refusedIn++; else this.stats.badFramesIn++
      this.resetWith(stream, err)
    } })
    try {
      const frame = await reader.next(signal)
      if (frame === undefined || frame.type !== FRAME_DATA) {
        this.stats.badFramesIn++
        this.resetWith(stream, new OhtError('OHT_BAD_FRAME', 'a request stream must begin with one DATA frame'))
        return
      }
      const from: PeerContact = { publicKey, addrs: await this.connections.addrsOf(peerId, signal) }
      let reply: Uint8Array
      try {
        const response = await (reg.request as PeerRequestHandler)(from, frame.body, { signal })
        if (signal.aborted) throw abortReason(signal)
        reply = response.byteLength > reg.maxMessageBytes
          ? encodeError('OHT_MESSAGE_TOO_LARGE', `response of ${response.byteLength} bytes exceeds the ${reg.maxMessageBytes}-byte limit`)
          : encodeFrame(FRAME_DATA, response)
      } catch (err) {
        if (gone.signal.aborted || this.shutdown.signal.aborted) throw err
        if (signal.aborted) {
          reply = encodeError('OHT_PEER_FAILED', `the handler of ${protocol} did not answer within ${reg.inboundTimeoutMs} ms`)
        } else {
          const w = wireCode(err, 'OHT_PEER_FAILED')
          if (w.code === 'OHT_PEER_FAILED') this.log('the handler of %s failed for %s: %s', protocol, key, (err as Error)?.message)
          reply = encodeError(w.code, w.message)
        }
      }
      await writeFrame(stream, reply, this.shutdown.signal)
      await stream.close({ signal: this.shutdown.signal })
    } catch (err) {
      if (!malformed) stream.abort(err as Error)
    } finally {
      stream.removeEventListener('close', onClose)
      reader.detach()
      scoped.clear()
      release()
      this.leave(reg, key)
    }
  }

  private async onStream (protocol: string, reg: Registration, stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer
    const publicKey = ed25519FromPeerId(peerId)
    if (publicKey === undefined) { stream.abort(new OhtError('OHT_BAD_ARGUMENT', 'only Ed25519 peers take part')); return }
    this.stats.streamsIn++
    const key = peerId.toString()
    const who = nameOf(peerId)
    if (!this.admit(reg, key)) { this.refuse(stream, 'OHT_RATE_LIMITED', `${reg.maxInboundPerPeer} streams from you are open on ${protocol}`); return }
    const release = this.connections.hold(peerId)
    let ps: Libp2pPeerStream | undefined
    try {
      const identify = scopedSignal(this.components.clock, reg.inboundTimeoutMs, this.shutdown.signal)
      const addrs = await this.connections.addrsOf(peerId, identify.signal).finally(() => { identify.clear() })
      const from: PeerContact = { publicKey, addrs }
      const reader = new FrameReader(stream, {
        maxMessageBytes: reg.maxMessageBytes,
        who,
        stream: true,
        onError: (err) => {
          if (err.code === 'OHT_BAD_FRAME') this.stats.badFramesIn++
          // before ACCEPT went out the opener had no business sending anything
          if (ps !== undefined) ps.rejectInput(err); else this.resetWith(stream, err)
        }
      })
      await writeFrame(stream, encodeFrame(FRAME_ACCEPT), this.shutdown.signal)
      ps = new Libp2pPeerStream(stream, reader, from, protocol, reg.maxMessageBytes, this.components.clock, who, () => { release(); this.leave(reg, key) })
      this.track(ps)
    } catch (err) {
      stream.abort(err as Error)
      release()
      this.leave(reg, key)
      return
    }
    const owned = ps
    try {
      await (reg.stream as PeerStreamHandler)(owned, owned.remote)
      owned.handlerDone()
    } catch (err) {
      const w = wireCode(err, 'OHT_PEER_FAILED')
      if (w.code === 'OHT_PEER_FAILED') this.log('the stream handler of %s failed for %s: %s', protocol, key, (err as Error)?.message)
      owned.abort(new OhtError(w.code, w.message === '' ? 'the stream handler failed' : w.message, { cause: err }))
    }
  }
}

/**
 * One PeerNet stream over one libp2p stream, with the in-band flow control of peer-frames.ts:
 * send() waits while STREAM_WINDOW_BYTES of our messages are unconsumed by the peer, reads
 * return WINDOW credit, and close() sends CLOSE (the libp2p stream closes once both sides
 * did).
 */
class Libp2pPeerStream implements PeerStream {
  private error: Error | undefined
  private writing: Promise<void> = Promise.resolve()
  private closing = false
  private closeSent = false
  private remoteClosed = false
  private owned = false
  private ended = false
  private lingerTimer: TimerHandle | undefined
  /** Our DATA bytes the peer has not credited back yet. */
  private unacked = 0
  /** DATA bytes our reader consumed and not yet credited to the peer. */
  private consumed = 0
  private creditWaiters: Array<() => void> = []
  private readonly endHooks: Array<() => void> = []

  constructor (
    private readonly stream: Stream,
    private readonly reader: FrameReader,
    readonly remote: PeerContact,
    readonly protocol: string,
    private readonly maxMessageBytes: number,
    private readonly clock: Clock,
    private readonly who: string,
    release: () => void
  ) {
    this.endHooks.push(release)
    reader.onPeerError = (err) => { this.fail(err) }
    reader.onWindow = (bytes) => {
      this.unacked = Math.max(0, this.unacked - bytes)
      this.wakeSenders()
    }
    // the peer's libp2p side closed: it can grant no more window
    reader.onRemoteEnd = () => { this.wakeSenders() }
    stream.addEventListener('close', (evt) => {
      const error = (evt as Event & { error?: Error }).error
      if (error !== undefined) this.fail(new OhtError('OHT_STREAM_CLOSED', `the stream with ${who} was reset`, { cause: error }))
      else this.end()
    })
  }

  onEnd (hook: () => void): void {
    if (this.ended) hook(); else this.endHooks.push(hook)
  }

  private wakeSenders (): void {
    for (const w of this.creditWaiters.splice(0)) w()
  }

  async send (message: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (this.error !== undefined) throw this.error
    if (this.closing || this.owned) throw new OhtError('OHT_STREAM_CLOSED', 'send after close()')
    if (message.byteLength > this.maxMessageBytes) throw tooLarge(message.byteLength, this.maxMessageBytes, 'message')
    const signal = options.signal
    if (signal?.aborted === true) { const err = abortReason(signal); this.abort(err); throw err }
    const frame = encodeFrame(FRAME_DATA, message)
    const n = message.byteLength
    const write = this.writing.then(async () => {
      await this.waitCredit(n, signal)
      this.unacked += n
      await writeFrame(this.stream, frame, signal)
    })
    this.writing = write.catch(() => {})
    try {
      await write
    } catch (err) {
      // a half-sent message cannot stay: the stream goes with it
      if (isAborted(signal)) { const e = abortReason(signal); this.abort(e); throw e }
      throw this.error ?? (err instanceof OhtError ? err : new OhtError('OHT_STREAM_CLOSED', `the stream with ${this.who} broke`, { cause: err }))
    }
  }

  /** Waits until the peer's window takes `n` more bytes (one message always fits when nothing is outstanding). */
  private async waitCredit (n: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (this.error !== undefined) throw this.error
      if (this.unacked === 0 || this.unacked + n <= STREAM_WINDOW_BYTES) return
      if (this.reader.remoteEnded) throw new OhtError('OHT_STREAM_CLOSED', `${this.who} closed the stream and takes no more messages`)
      if (signal?.aborted === true) throw abortReason(signal)
      await new Promise<void>((resolve) => {
        const onAbort = (): void => { resolve() }
        this.creditWaiters.push(() => { signal?.removeEventListener('abort', onAbort); resolve() })
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  async close (options: AbortOptions = {}): Promise<void> {
    if (this.error !== undefined) throw this.error
    if (this.closeSent) return
    this.closing = true
    await this.writing
    if (this.error !== undefined) throw this.error
    if (this.closeSent) return
    this.closeSent = true
    try {
      await writeFrame(this.stream, encodeFrame(FRAME_CLOSE), options.signal)
    } catch (err) {
      throw this.error ?? new OhtError('OHT_STREAM_CLOSED', `closing the stream with ${this.who} failed`, { cause: err })
    }
    this.maybeFinish()
  }

  /** Both CLOSEs passed: close the libp2p stream (its 'close' event ends this one). */
  private maybeFinish (): void {
    if (!this.closeSent || !this.remoteClosed || this.error !== undefined) return
    this.stream.close().catch(() => {})
    if (this.reader.remoteEnded) this.end()
  }

  abort (err?: Error): void {
    if (this.error !== undefined) return
    const e = err ?? new OhtError('OHT_STREAM_CLOSED', 'the stream was aborted')
    const w = wireCode(e, 'OHT_STREAM_CLOSED')
    try { if (this.stream.writeStatus === 'writable') this.stream.send(encodeError(w.code, w.message)) } catch {}
    this.fail(e)
  }

  /**
   * The peer's input broke the rules (too large, malformed): tell it why and reset; what it
   * sent before stays readable, then reads fail with `err`.
   */
  rejectInput (err: OhtError): void {
    if (this.error !== undefined) return
    try { if (this.stream.writeStatus === 'writable') this.stream.send(encodeError(err.code, err.message)) } catch {}
    this.fail(err, true)
  }

  /** Ends this side with `err` and resets the libp2p stream. */
  private fail (err: Error, keepQueued = false): void {
    if (this.error !== undefined) return
    this.error = err
    this.lingerTimer?.cancel()
    this.reader.fail(err, keepQueued)
    this.wakeSenders()
    if (this.stream.status === 'open') this.stream.abort(err)
    this.end()
  }

  private end (): void {
    if (this.ended) return
    this.ended = true
    this.lingerTimer?.cancel()
    this.reader.detach()
    for (const h of this.endHooks.splice(0)) h()
  }

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return {
      next: async () => await this.read(),
      // leaving a loop early does not end the stream (see the contract)
      return: async () => ({ done: true, value: undefined })
    }
  }

  private async read (): Promise<IteratorResult<Uint8Array>> {
    if (this.remoteClosed) return { done: true, value: undefined }
    if (this.error !== undefined && this.reader.pending === 0) throw this.error
    let frame
    try {
      frame = await this.reader.next()
    } catch (err) {
      throw this.error ?? err
    }
    if (frame === undefined || frame.type === FRAME_CLOSE) {
      // CLOSE, or the peer's libp2p side closed without one: its messages are over
      this.remoteClosed = true
      this.maybeFinish()
      return { done: true, value: undefined }
    }
    if (frame.type !== FRAME_DATA) {
      const err = new OhtError('OHT_BAD_FRAME', `${this.who} sent a frame of type ${frame.type} inside a stream`)
      this.rejectInput(err)
      throw err
    }
    this.credit(frame.body.byteLength)
    return { done: false, value: frame.body }
  }

  /**
   * Returns window to the peer for what we read: in batches of a quarter window, or at once
   * when nothing more waits unread (so a reader taking one message at a time never stalls
   * its peer).
   */
  private credit (n: number): void {
    this.consumed += n
    if (this.error !== undefined || this.stream.writeStatus !== 'writable') return
    if (this.consumed < STREAM_WINDOW_BYTES / 4 && this.reader.pending > 0) return
    if (this.consumed === 0) return
    const bytes = this.consumed
    this.consumed = 0
    this.reader.credit(bytes)
    try { this.stream.send(encodeWindow(bytes)) } catch {}
  }

  /** The handler of this inbound stream returned: close, and reset a peer that goes on. */
  handlerDone (): void {
    if (this.error !== undefined) return
    this.owned = true
    if (this.reader.pendingData > 0 && !this.remoteClosed) { this.abort(new OhtError('OHT_STREAM_CLOSED', 'the stream handler returned with messages unread')); return }
    this.closing = true
    void (async () => {
      try { await this.close() } catch { return }
      if (this.remoteClosed) return
      this.lingerTimer = this.clock.setTimeout(() => {
        this.abort(new OhtError('OHT_STREAM_CLOSED', `the peer did not close the ${this.protocol} stream within ${STREAM_LINGER_MS} ms of the handler's end`))
      }, STREAM_LINGER_MS)
      try {
        const next = await this.reader.next()
        if (next === undefined || next.type === FRAME_CLOSE) {
          this.lingerTimer?.cancel()
          this.remoteClosed = true
          this.maybeFinish()
        } else {
          this.abort(new OhtError('OHT_STREAM_CLOSED', 'a message arrived after the stream handler returned'))
        }
      } catch {}
    })()
  }
}
