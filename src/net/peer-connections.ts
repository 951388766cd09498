/**
 * The connection machinery the DhtNet and PeerNet adapters share, so one node keeps one
 * long-lived multiplexed connection per peer for the DHT and every PeerNet protocol (over
 * tor a new connection costs a rendezvous: seconds; a new stream on an open one, tens of ms):
 *
 * - connect(): an open connection to the contact's key, or a dial to its validated addresses
 *   (an /onion3 address must encode that key; in onion-only mode nothing else is dialled);
 *   a transport that answers with another key (memory) is refused.
 * - addrsOf(): the addresses a peer announced through identify, onion ones checked against
 *   its key, waiting a little on a fresh connection.
 * - Idle pruning: connections unused for `idleTimeoutMs` are closed, unless `keepPeer` says
 *   the peer is worth keeping (routing-table peers) or a user holds it (an open PeerNet
 *   stream, a request in flight).
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { bytesEqual, logger, type Clock, type Logger, type TimerHandle } from '../core/index.ts'
import type { PeerContact } from '../oht/network.ts'
import { NetError } from './errors.ts'
import { ed25519FromPeerId, peerIdFromEd25519 } from './identity.ts'
import { isOnion3, parseOnion3Multiaddr } from './onion-addr.ts'
import type { NetLibp2p } from './node.ts'

const KEEP_TAG = 'oht-routing-table'

export interface PeerConnectionsInit {
  /** Only /onion3 contact addresses are used (and announced in `from`). @default false */
  onionOnly?: boolean
  /** How long to wait for identify before answering a peer whose addresses we do not know. @default 5_000 */
  identifyWaitMs?: number
  /** Connections unused this long are closed unless kept or held. @default 300_000 */
  idleTimeoutMs?: number
}

export interface PeerConnectionsComponents {
  libp2p: NetLibp2p
  clock: Clock
  log?: Logger
  /** Connections to these peers are never closed for idleness (e.g. routing-table peers). */
  keepPeer?: (publicKey: Uint8Array) => boolean
}

export interface PeerConnectionsStats {
  /** Connections closed for idleness. */
  idleClosed: number
}

export interface PeerConnections {
  readonly onionOnly: boolean
  readonly stats: PeerConnectionsStats
  start(): void
  stop(): void
  /** The contact others should store for this node. */
  ownContact(): PeerContact
  /** Contact addresses we would use for a peer, validated (onion3 must match the key). */
  usableAddrs(publicKey: Uint8Array, addrs: string[]): Multiaddr[]
  /**
   * A connection to `to`: an open one (`dialed: false`) or a new dial. Throws NET_ONION_MISMATCH
   * (a contact claiming someone else's onion), NET_DIAL_DENIED (no address we may dial),
   * NET_DIAL_FAILED (or libp2p's own error when the dial itself fails).
   */
  connect(to: PeerContact, signal?: AbortSignal): Promise<{ connection: Connection, dialed: boolean }>
  /** Marks the connection to `peerId` as used now. */
  touch(peerId: PeerId): void
  /** Keeps the connection to `peerId` from being closed for idleness until the returned release is called. */
  hold(peerId: PeerId): () => void
  /** The peer's announced addresses; waits up to identifyWaitMs for identify on a fresh connection. */
  addrsOf(peerId: PeerId, signal: AbortSignal): Promise<string[]>
}

export function createPeerConnections (init: PeerConnectionsInit, components: PeerConnectionsComponents): PeerConnections {
  return new PeerConnectionsImpl(init, components)
}

function stripPeerId (ma: Multiaddr): Multiaddr {
  return ma.decapsulateCode(421)
}

class PeerConnectionsImpl implements PeerConnections {
  readonly stats: PeerConnectionsStats = { idleClosed: 0 }
  readonly onionOnly: boolean
  private readonly identifyWaitMs: number
  private readonly idleTimeoutMs: number
  private readonly log: Logger
  private readonly lastUsed = new Map<string, number>()
  private readonly holds = new Map<string, number>()
  private readonly identified = new Map<string, string[]>()
  private readonly tagged = new Set<string>()
  private readonly identifyWaiters = new Map<string, Set<() => void>>()
  private idleTimer: TimerHandle | undefined
  private running = false
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

  constructor (init: PeerConnectionsInit, private readonly components: PeerConnectionsComponents) {
    this.onionOnly = init.onionOnly ?? false
    this.identifyWaitMs = init.identifyWaitMs ?? 5_000
    this.idleTimeoutMs = init.idleTimeoutMs ?? 300_000
    this.log = components.log ?? logger('net:connections')
  }

  start (): void {
    if (this.running) return
    const { libp2p, clock } = this.components
    libp2p.addEventListener('peer:identify', this.onIdentify)
    libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.idleTimer = clock.setInterval(() => { this.pruneIdle() }, Math.max(1_000, this.idleTimeoutMs / 4)).unref()
    this.running = true
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    this.idleTimer?.cancel()
    const { libp2p } = this.components
    libp2p.removeEventListener('peer:identify', this.onIdentify)
    libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const waiters of this.identifyWaiters.values()) for (const w of waiters) w()
    this.identifyWaiters.clear()
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

  async connect (to: PeerContact, signal?: AbortSignal): Promise<{ connection: Connection, dialed: boolean }> {
    const { libp2p } = this.components
    const peerId = peerIdFromEd25519(to.publicKey)
    const addrs = this.usableAddrs(to.publicKey, to.addrs)
    const onions = to.addrs.filter(a => { try { return isOnion3(multiaddr(a)) } catch { return false } })
    // a contact claiming someone else's onion is refused even if we know the key already
    if (onions.length > 0 && !addrs.some(a => isOnion3(a))) {
      throw new NetError('NET_ONION_MISMATCH', 'the contact\'s onion addresses do not belong to its key')
    }
    const open = libp2p.getConnections(peerId).find(c => c.status === 'open')
    if (open !== undefined) { this.touch(peerId); return { connection: open, dialed: false } }
    if (addrs.length === 0) throw new NetError('NET_DIAL_DENIED', 'the contact has no address this node may dial')
    await libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
    const conn = await libp2p.dial(peerId, { signal })
    // transports that do not bind the expected key (memory) must not fool us
    if (!conn.remotePeer.equals(peerId)) {
      void conn.close().catch(() => {})
      throw new NetError('NET_DIAL_FAILED', `the peer at ${addrs[0].toString()} is not ${peerId.toString()}`)
    }
    this.touch(peerId)
    return { connection: conn, dialed: true }
  }

  touch (peerId: PeerId): void {
    this.lastUsed.set(peerId.toString(), this.components.clock.monotonic())
  }

  hold (peerId: PeerId): () => void {
    const key = peerId.toString()
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.holds.get(key) ?? 1) - 1
      if (n <= 0) this.holds.delete(key); else this.holds.set(key, n)
      // idleness counts from the end of the last use
      this.lastUsed.set(key, this.components.clock.monotonic())
    }
  }

  async addrsOf (peerId: PeerId, signal: AbortSignal): Promise<string[]> {
    const key = peerId.toString()
    const known = this.identified.get(key)
    if (known !== undefined) return known
    try {
      const peer = await this.components.libp2p.peerStore.get(peerId, { signal })
      const addrs = this.filterAddrs(peerId, peer.addresses.map(a => a.multiaddr))
      if (addrs.length > 0) return addrs.map(a => a.toString())
    } catch {}
    if (!this.running) return []
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
      if (this.holds.has(key)) continue
      const last = this.lastUsed.get(key)
      // a connection we never used is timed from the first sweep that sees it
      if (last === undefined) { this.lastUsed.set(key, now); continue }
      if (now - last < this.idleTimeoutMs) continue
      const pk = ed25519FromPeerId(conn.remotePeer)
      if (pk !== undefined && keepPeer?.(pk) === true) continue
      this.stats.idleClosed++
      this.lastUsed.delete(key)
      this.log('closing the idle connection to %s', key)
      void conn.close().catch(() => {})
    }
  }
}
