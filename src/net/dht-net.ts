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
 */
import { setMaxListeners } from 'node:events'
import { lpStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import {
  abortReason, bytesEqual, isCodedError, logger, scopedSignal, withTimeout,
  type AbortOptions, type Clock, type Logger, type TimerHandle
} from '../core/index.ts'
import type { DhtNet, DhtRequestHandler, DhtRequestOptions, PeerContact } from '../oht/network.ts'
import { NetError } from './errors.ts'
import { ed25519FromPeerId, peerIdFromEd25519 } from './identity.ts'
import { isOnion3, parseOnion3Multiaddr } from './onion-addr.ts'
import type { NetLibp2p } from './node.ts'

export const OHT_KAD_PROTOCOL = '/oht/kad/1.0.0'
const KEEP_TAG = 'oht-routing-table'

const STATUS_OK = 0
const STATUS_ERROR = 1

export interface Libp2pDhtNetInit {
  /** Largest request or response frame accepted or sent. @default 262_144 */
  maxFrameBytes?: number
  /** Only /onion3 contact addresses are used (and announced in `from`). @default false */
  onionOnly?: boolean
  /** Inbound: time for the peer to send its request and for our handler to answer. @default 30_000 */
  inboundTimeoutMs?: number
  /** Inbound: how long to wait for identify before answering a peer whose addresses we do not know. @default 5_000 */
  identifyWaitMs?: number
  /** Connections unused this long are closed unless `keepPeer` says otherwise. @default 300_000 */
  idleTimeoutMs?: number
  /** Concurrent streams per connection for this protocol, each way. @default 256 */
  maxStreams?: number
}

export interface Libp2pDhtNetComponents {
  libp2p: NetLibp2p
  clock: Clock
  log?: Logger
  /** Connections to these peers are never closed for idleness (e.g. routing-table peers). */
  keepPeer?: (publicKey: Uint8Array) => boolean
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
  idleClosed: number
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

function stripPeerId (ma: Multiaddr): Multiaddr {
  return ma.decapsulateCode(421)
}

class Libp2pDhtNetImpl implements Libp2pDhtNet {
  readonly stats: Libp2pDhtNetStats = {
    requestsOut: 0, requestsIn: 0, dials: 0, reusedConnections: 0, failuresOut: 0, failuresIn: 0, bytesOut: 0, bytesIn: 0, idleClosed: 0
  }

  private handler: DhtRequestHandler | undefined
  private readonly maxFrameBytes: number
  private readonly onionOnly: boolean
  private readonly inboundTimeoutMs: number
  private readonly identifyWaitMs: number
  private readonly idleTimeoutMs: number
  private readonly maxStreams: number
  private readonly log: Logger
  private readonly lastUsed = new Map<string, number>()
  private readonly identified = new Map<string, string[]>()
  private readonly tagged = new Set<string>()
  private readonly identifyWaiters = new Map<string, Set<() => void>>()
  private idleTimer: TimerHandle | undefined
  private running = false
  private readonly shutdown = new AbortController()
  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, listenAddrs: Multiaddr[] }>): void => {
    const key = evt.detail.peerId.toString()
    this.identified.set(key, this.filterAddrs(evt.detail.peerId, evt.detail.listenAddrs).map(a => a.toString()))
    const waiters = this.identifyWaiters.get(key)
    if (waiters !== undefined) { this.identifyWaiters.delete(key); for (const w of waiters) w() }
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.lastUsed.delete(evt.detail.toString())
    this.identified.delete(evt.detail.toString())
  }

  constructor (init: Libp2pDhtNetInit, private readonly components: Libp2pDhtNetComponents) {
    this.maxFrameBytes = init.maxFrameBytes ?? 262_144
    this.onionOnly = init.onionOnly ?? false
    this.inboundTimeoutMs = init.inboundTimeoutMs ?? 30_000
    this.identifyWaitMs = init.identifyWaitMs ?? 5_000
    this.idleTimeoutMs = init.idleTimeoutMs ?? 300_000
    this.maxStreams = init.maxStreams ?? 256
    this.log = components.log ?? logger('net:dht')
    // every inbound request listens on this signal
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  handle (handler: DhtRequestHandler): void {
    this.handler = handler
  }

  async start (): Promise<void> {
    if (this.running) return
    const { libp2p, clock } = this.components
    await libp2p.handle(OHT_KAD_PROTOCOL, async (stream, connection) => { await this.onInbound(stream, connection) }, {
      maxInboundStreams: this.maxStreams, maxOutboundStreams: this.maxStreams
    })
    libp2p.addEventListener('peer:identify', this.onIdentify)
    libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.idleTimer = clock.setInterval(() => { this.pruneIdle() }, Math.max(1_000, this.idleTimeoutMs / 4)).unref()
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort()
    this.idleTimer?.cancel()
    const { libp2p } = this.components
    libp2p.removeEventListener('peer:identify', this.onIdentify)
    libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const waiters of this.identifyWaiters.values()) for (const w of waiters) w()
    this.identifyWaiters.clear()
    await libp2p.unhandle(OHT_KAD_PROTOCOL).catch(() => {})
  }

  ownContact (): PeerContact {
    const { libp2p } = this.components
    const publicKey = ed25519FromPeerId(libp2p.peerId)
    if (publicKey === undefined) throw new NetError('NET_BAD_CONFIG', 'the node key must be Ed25519')
    const addrs = libp2p.getMultiaddrs().map(stripPeerId).filter(a => !this.onionOnly || isOnion3(a)).map(a => a.toString())
    return { publicKey, addrs: [...new Set(addrs)] }
  }

  usableAddrs (publicKey: Uint8Array, addrs: string[]): Multiaddr[] {
    const out: Multiaddr[] = []
    for (const a of addrs.slice(0, 16)) {
      let ma: Multiaddr
      try { ma = stripPeerId(multiaddr(a)) } catch { continue }
      if (isOnion3(ma)) {
        try {
          if (!bytesEqual(parseOnion3Multiaddr(ma).publicKey, publicKey)) continue
        } catch { continue }
      } else if (this.onionOnly) {
        continue
      }
      out.push(ma)
    }
    return out
  }

  private filterAddrs (peerId: PeerId, addrs: Multiaddr[]): Multiaddr[] {
    const key = ed25519FromPeerId(peerId)
    if (key === undefined) return []
    return this.usableAddrs(key, addrs.map(a => a.toString()))
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
      const peerId = peerIdFromEd25519(to.publicKey)
      const connection = await this.connectionTo(peerId, to, signal)
      this.lastUsed.set(peerId.toString(), this.components.clock.monotonic())
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

  /** An open connection to the peer, or a new one dialled at its contact addresses. */
  private async connectionTo (peerId: PeerId, to: PeerContact, signal?: AbortSignal): Promise<Connection> {
    const { libp2p } = this.components
    const addrs = this.usableAddrs(to.publicKey, to.addrs)
    const onions = to.addrs.filter(a => { try { return isOnion3(multiaddr(a)) } catch { return false } })
    // a contact claiming someone else's onion is refused even if we know the key already
    if (onions.length > 0 && !addrs.some(a => isOnion3(a))) {
      throw new NetError('NET_ONION_MISMATCH', 'the contact\'s onion addresses do not belong to its key')
    }
    const open = libp2p.getConnections(peerId).find(c => c.status === 'open')
    if (open !== undefined) { this.stats.reusedConnections++; return open }
    if (addrs.length === 0) throw new NetError('NET_DIAL_DENIED', 'the contact has no address this node may dial')
    this.stats.dials++
    await libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
    const conn = await libp2p.dial(peerId, { signal })
    // transports that do not bind the expected key (memory) must not fool us
    if (!conn.remotePeer.equals(peerId)) {
      void conn.close().catch(() => {})
      throw new NetError('NET_DIAL_FAILED', `the peer at ${addrs[0].toString()} is not ${peerId.toString()}`)
    }
    return conn
  }

  private async onInbound (stream: Stream, connection: Connection): Promise<void> {
    const scoped = scopedSignal(this.components.clock, this.inboundTimeoutMs, this.shutdown.signal)
    const signal = scoped.signal
    this.stats.requestsIn++
    const peerId = connection.remotePeer
    this.lastUsed.set(peerId.toString(), this.components.clock.monotonic())
    const lp = lpStream(stream, { maxDataLength: this.maxFrameBytes })
    try {
      const publicKey = ed25519FromPeerId(peerId)
      if (publicKey === undefined) throw new NetError('NET_PROTOCOL', 'only Ed25519 peers take part in the OHT')
      const raw = (await lp.read({ signal })).subarray()
      const request = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
      this.stats.bytesIn += request.byteLength
      const handler = this.handler
      if (handler === undefined) throw new NetError('NET_NOT_STARTED', 'no request handler installed')
      const from: PeerContact = { publicKey, addrs: await this.addrsOf(peerId, signal) }
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

  /** The peer's announced addresses; waits a little for identify on a fresh connection. */
  private async addrsOf (peerId: PeerId, signal: AbortSignal): Promise<string[]> {
    const key = peerId.toString()
    const known = this.identified.get(key)
    if (known !== undefined) return known
    try {
      const peer = await this.components.libp2p.peerStore.get(peerId, { signal })
      const addrs = this.filterAddrs(peerId, peer.addresses.map(a => a.multiaddr))
      if (addrs.length > 0) return addrs.map(a => a.toString())
    } catch {}
    await new Promise<void>((resolve) => {
      const set = this.identifyWaiters.get(key) ?? new Set()
      this.identifyWaiters.set(key, set)
      const done = (): void => { timer.cancel(); set.delete(done); signal.removeEventListener('abort', done); resolve() }
      const timer = this.components.clock.setTimeout(done, this.identifyWaitMs)
      signal.addEventListener('abort', done, { once: true })
      set.add(done)
    })
    return this.identified.get(key) ?? []
  }

  /**
   * Tags routing-table peers in libp2p's peer store, so that when the connection limit is
   * reached libp2p prunes other connections first.
   */
  private tagIfKept (peerId: PeerId): void {
    const { libp2p, keepPeer } = this.components
    const key = peerId.toString()
    const pk = ed25519FromPeerId(peerId)
    const keep = pk !== undefined && keepPeer?.(pk) === true
    if (keep === this.tagged.has(key)) return
    if (keep) this.tagged.add(key); else this.tagged.delete(key)
    void libp2p.peerStore.merge(peerId, { tags: { [KEEP_TAG]: keep ? { value: 50 } : undefined } }).catch(() => {})
  }

  private pruneIdle (): void {
    const { libp2p, clock, keepPeer } = this.components
    const now = clock.monotonic()
    for (const conn of libp2p.getConnections()) {
      const key = conn.remotePeer.toString()
      this.tagIfKept(conn.remotePeer)
      const last = this.lastUsed.get(key)
      // a connection we never used is timed from the first sweep that sees it
      if (last === undefined) { this.lastUsed.set(key, now); continue }
      if (now - last < this.idleTimeoutMs) continue
      const pk = ed25519FromPeerId(conn.remotePeer)
      if (pk !== undefined && keepPeer?.(pk) === true) continue
      this.stats.idleClosed++
      this.lastUsed.delete(key)
      void conn.close().catch(() => {})
    }
  }
}
