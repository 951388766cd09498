/**
 * The DhtNet seam (src/oht/network.ts) over libp2p: one request/response per stream on
 * `/oht/kad/1.0.0`, on long-lived multiplexed connections. A request to a peer we are already
 * connected to opens a new yamux stream on that connection (tens of ms over tor) instead of a
 * new rendezvous (seconds).
 *
 * Wire layout (each frame is a varint length prefix + bytes, `maxFrameBytes` at most):
 *
 *   request:   [varint len][ OHT request frame ................. ]
 *   response:  [varint len][status:u8][ OHT response frame | UTF-8 error code ]
 *              status 0 = ok, 1 = the remote handler failed (body: its error code)
 *
 * `from` of an inbound request is the Ed25519 key the peer proved in the noise handshake and
 * the addresses it announced through identify (onion ones checked against that key).
 * Connections come from peer-connections.ts, shared with the PeerNet adapter.
 */
import { setMaxListeners } from 'node:events'
import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import {
  abortReason, isCodedError, logger, scopedSignal, withTimeout,
  type Clock, type Logger
} from '../core/index.ts'
import type { DhtNet, DhtRequestHandler, DhtRequestOptions, PeerContact } from '../oht/network.ts'
import { NetError } from './errors.ts'
import { ed25519FromPeerId } from './identity.ts'
import type { NetLibp2p } from './node.ts'
import { createPeerConnections, type PeerConnections } from './peer-connections.ts'

export const OHT_KAD_PROTOCOL = '/oht/kad/1.0.0'

const STATUS_OK = 0
const STATUS_ERROR = 1

export interface Libp2pDhtNetInit {
  /** Largest request or response frame accepted or sent. @default 262_144 */
  maxFrameBytes?: number
  /** Only /onion3 contact addresses are used (and announced in `from`); ignored with `connections`. @default false */
  onionOnly?: boolean
  /** Inbound: time for the peer to send its request and for our handler to answer. @default 30_000 */
  inboundTimeoutMs?: number
  /** Inbound: how long to wait for identify before answering a peer whose addresses we do not know; ignored with `connections`. @default 5_000 */
  identifyWaitMs?: number
  /** Connections unused this long are closed unless `keepPeer` says otherwise; ignored with `connections`. @default 300_000 */
  idleTimeoutMs?: number
  /** Concurrent streams per connection for this protocol, each way. @default 256 */
  maxStreams?: number
}

export interface Libp2pDhtNetComponents {
  libp2p: NetLibp2p
  clock: Clock
  log?: Logger
  /** Connections to these peers are never closed for idleness (e.g. routing-table peers); ignored with `connections`. */
  keepPeer?: (publicKey: Uint8Array) => boolean
  /**
   * The node's shared connection machinery (one connection per peer for the DHT and PeerNet),
   * started and stopped by its owner. Without it the adapter makes and runs its own.
   */
  connections?: PeerConnections
}

export interface Libp2pDhtNetStats {
  requestsOut: number
  requestsIn: number
  /** Requests that found no open connection and had to dial. */
  dials: number
  /** Requests served on an already open connection. */
  reusedConnections: number
  failuresOut: number
  failuresIn: number
  bytesOut: number
  bytesIn: number
  /** Connections the shared machinery closed for idleness (not only the DHT's). */
  readonly idleClosed: number
}

export interface Libp2pDhtNet extends DhtNet {
  start(): Promise<void>
  stop(): Promise<void>
  readonly stats: Libp2pDhtNetStats
  /** The contact others should store for this node. */
  ownContact(): PeerContact
  /** Contact addresses we would use for a peer, validated (onion3 must match the key). */
  usableAddrs(publicKey: Uint8Array, addrs: string[]): Multiaddr[]
}

export function createLibp2pDhtNet (init: Libp2pDhtNetInit, components: Libp2pDhtNetComponents): Libp2pDhtNet {
  return new Libp2pDhtNetImpl(init, components)
}

class Libp2pDhtNetImpl implements Libp2pDhtNet {
  readonly stats: Libp2pDhtNetStats

  private handler: DhtRequestHandler | undefined
  private readonly maxFrameBytes: number
  private readonly inboundTimeoutMs: number
  private readonly maxStreams: number
  private readonly log: Logger
  private readonly connections: PeerConnections
  private readonly ownsConnections: boolean
  private running = false
  private readonly shutdown = new AbortController()

  constructor (init: Libp2pDhtNetInit, private readonly components: Libp2pDhtNetComponents) {
    this.maxFrameBytes = init.maxFrameBytes ?? 262_144
    this.inboundTimeoutMs = init.inboundTimeoutMs ?? 30_000
    this.maxStreams = init.maxStreams ?? 256
    this.log = components.log ?? logger('net:dht')
    this.ownsConnections = components.connections === undefined
    this.connections = components.connections ?? createPeerConnections(
      { onionOnly: init.onionOnly, identifyWaitMs: init.identifyWaitMs, idleTimeoutMs: init.idleTimeoutMs },
      { libp2p: components.libp2p, clock: components.clock, log: this.log, keepPeer: components.keepPeer }
    )
    const connections = this.connections
    this.stats = {
      requestsOut: 0, requestsIn: 0, dials: 0, reusedConnections: 0, failuresOut: 0, failuresIn: 0, bytesOut: 0, bytesIn: 0,
      get idleClosed () { return connections.stats.idleClosed }
    }
    // every inbound request listens on this signal
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  handle (handler: DhtRequestHandler): void {
    this.handler = handler
  }

  async start (): Promise<void> {
    if (this.running) return
    const { libp2p } = this.components
    await libp2p.handle(OHT_KAD_PROTOCOL, async (stream, connection) => { await this.onInbound(stream, connection) }, {
      maxInboundStreams: this.maxStreams, maxOutboundStreams: this.maxStreams
    })
    if (this.ownsConnections) this.connections.start()
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort()
    if (this.ownsConnections) this.connections.stop()
    await this.components.libp2p.unhandle(OHT_KAD_PROTOCOL).catch(() => {})
  }

  ownContact (): PeerContact {
    return this.connections.ownContact()
  }

  usableAddrs (publicKey: Uint8Array, addrs: string[]): Multiaddr[] {
    return this.connections.usableAddrs(publicKey, addrs)
  }

  async request (to: PeerContact, frame: Uint8Array, options: DhtRequestOptions = {}): Promise<Uint8Array> {
    if (!this.running) throw new NetError('NET_NOT_STARTED', 'the DHT network adapter is not started')
    if (frame.byteLength > this.maxFrameBytes) {
      throw new NetError('NET_FRAME_TOO_LARGE', `request frame of ${frame.byteLength} bytes exceeds the ${this.maxFrameBytes}-byte limit`)
    }
    if (options.timeoutMs === undefined) return await this.exchange(to, frame, options.signal)
    // The engine's adaptive timeout: one signal that aborts the dial, the stream and the read.
    return await withTimeout(this.components.clock, options.timeoutMs, async (signal) => await this.exchange(to, frame, signal), options.signal)
  }

  private async exchange (to: PeerContact, frame: Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
    this.stats.requestsOut++
    let stream: Stream | undefined
    try {
      const { connection, dialed } = await this.connections.connect(to, signal)
      if (dialed) this.stats.dials++; else this.stats.reusedConnections++
      stream = await connection.newStream(OHT_KAD_PROTOCOL, { signal, maxOutboundStreams: this.maxStreams })
      const lp = lpStream(stream, { maxDataLength: this.maxFrameBytes + 1 })
      await lp.write(frame, { signal })
      this.stats.bytesOut += frame.byteLength
      const reply = (await lp.read({ signal })).subarray()
      this.stats.bytesIn += reply.byteLength
      await stream.close({ signal }).catch(() => {})
      if (reply.byteLength === 0) throw new NetError('NET_PROTOCOL', 'empty response frame')
      if (reply[0] === STATUS_ERROR) {
        const code = new TextDecoder().decode(reply.subarray(1, 81))
        throw new NetError('NET_REMOTE_ERROR', `the peer could not answer the request (${code})`)
      }
      if (reply[0] !== STATUS_OK) throw new NetError('NET_PROTOCOL', `unknown response status ${reply[0]}`)
      // a plain Uint8Array view: callers compare and copy bytes, not Buffers
      return new Uint8Array(reply.buffer, reply.byteOffset + 1, reply.byteLength - 1)
    } catch (err) {
      this.stats.failuresOut++
      stream?.abort(err as Error)
      throw this.typed(err, signal)
    }
  }

  private typed (err: unknown, signal?: AbortSignal): Error {
    if (signal?.aborted === true) return abortReason(signal)
    if (err instanceof NetError) return err
    if (isCodedError(err) && (err.code === 'CORE_ABORTED' || err.code === 'CORE_TIMEOUT')) return err
    const name = (err as Error)?.name
    if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') {
      return new NetError('NET_FRAME_TOO_LARGE', `response frame exceeds the ${this.maxFrameBytes}-byte limit`, { cause: err })
    }
    if (name === 'UnexpectedEOFError') return new NetError('NET_PROTOCOL', 'the peer closed the stream without answering', { cause: err })
    return new NetError('NET_DIAL_FAILED', `request failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  private async onInbound (stream: Stream, connection: Connection): Promise<void> {
    const scoped = scopedSignal(this.components.clock, this.inboundTimeoutMs, this.shutdown.signal)
    const signal = scoped.signal
    this.stats.requestsIn++
    const peerId = connection.remotePeer
    this.connections.touch(peerId)
    const lp = lpStream(stream, { maxDataLength: this.maxFrameBytes })
    try {
      const publicKey = ed25519FromPeerId(peerId)
      if (publicKey === undefined) throw new NetError('NET_PROTOCOL', 'only Ed25519 peers take part in the OHT')
      const raw = (await lp.read({ signal })).subarray()
      const request = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
      this.stats.bytesIn += request.byteLength
      const handler = this.handler
      if (handler === undefined) throw new NetError('NET_NOT_STARTED', 'no request handler installed')
      const from: PeerContact = { publicKey, addrs: await this.connections.addrsOf(peerId, signal) }
      let reply: Uint8Array
      try {
        const response = await handler(from, request, { signal })
        if (response.byteLength + 1 > this.maxFrameBytes) {
          throw new NetError('NET_FRAME_TOO_LARGE', `response frame of ${response.byteLength} bytes exceeds the limit`)
        }
        reply = new Uint8Array(response.byteLength + 1)
        reply[0] = STATUS_OK
        reply.set(response, 1)
      } catch (err) {
        if (signal.aborted) throw err
        this.log('handler failed for %s: %s', peerId.toString(), (err as Error).message)
        const code = new TextEncoder().encode(isCodedError(err) ? err.code : 'ERROR')
        reply = new Uint8Array(code.byteLength + 1)
        reply[0] = STATUS_ERROR
        reply.set(code, 1)
      }
      await lp.write(reply, { signal })
      this.stats.bytesOut += reply.byteLength
      await stream.close({ signal })
    } catch (err) {
      this.stats.failuresIn++
      this.log('inbound request from %s failed: %s', peerId.toString(), (err as Error).message)
      stream.abort(err as Error)
    } finally {
      scoped.clear()
    }
  }
}
