/**
 * The OHT running on libp2p: a net node (createNetNode), the DhtNet adapter on
 * /oht/kad/1.0.0, the PeerNet adapter for direct protocols between peers, and the OHT engine,
 * joined; plus bootstrap from multiaddrs and a routing table saved to disk and tried first
 * after a restart. The DHT and every PeerNet protocol share one connection per peer (one
 * PeerConnections for both adapters).
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { cryptoRng, isCodedError, logger, systemClock, type AbortOptions, type Clock, type Logger, type Rng, type TimerHandle } from '../core/index.ts'
import { identityFromSeed } from '../crypto/index.ts'
import { createOhtNode, nodeIdFromPublicKey, type OhtNode, type OhtNodeInit, type OwnRecordJournal, type PeerContact, type RecordStore } from '../oht/index.ts'
import { createLibp2pDhtNet, type Libp2pDhtNet, type Libp2pDhtNetInit } from './dht-net.ts'
import { createPeerConnections } from './peer-connections.ts'
import { createLibp2pPeerNet, type Libp2pPeerNet, type Libp2pPeerNetInit } from './peer-net.ts'
import { NetError } from './errors.ts'
import { ed25519FromPeerId } from './identity.ts'
import { createNetNode, type NetLibp2p, type NetNodeInit } from './node.ts'
import { loadTableFile, saveTableFile } from './table-file.ts'

export interface OverlayNodeInit extends NetNodeInit {
  /** OHT engine settings (its `addrs` come from the node's listen addresses). */
  oht?: Omit<OhtNodeInit, 'addrs'>
  /**
   * DhtNet adapter settings (`onionOnly` follows the node's). Its `identifyWaitMs` and
   * `idleTimeoutMs` apply to the connections the DHT and PeerNet share.
   */
  dhtNet?: Omit<Libp2pDhtNetInit, 'onionOnly'>
  /** PeerNet adapter settings (direct protocols between peers). @default {} */
  peerNet?: Pick<Libp2pPeerNetInit, 'defaultTimeoutMs' | 'maxOutboundStreams'>
  /** Multiaddrs with /p2p/ of nodes to join through, used when the saved table gives no peer. @default [] */
  bootstrap?: string[]
  /** Where the routing table is saved; it is tried first at start. @default undefined (not saved) */
  tablePath?: string
  /** How often the table is saved while running (also on stop). @default 300_000 */
  saveIntervalMs?: number
  /** Join the network during creation (errors if nobody answers and bootstrap peers were given). @default true */
  join?: boolean
}

export interface OverlayNodeComponents {
  /** @default systemClock */
  clock?: Clock
  /** @default cryptoRng */
  rng?: Rng
  store?: RecordStore
  log?: Logger
  /** Keeps the node's own records and seqs across restarts (the SDK gives a file journal). @default none */
  journal?: OwnRecordJournal
}

export interface JoinResult {
  peers: number
  /** Which contacts got us in: the saved routing table, or the bootstrap list. */
  via: 'saved-table' | 'bootstrap' | 'none'
}

export interface OverlayNode {
  readonly libp2p: NetLibp2p
  readonly oht: OhtNode
  readonly net: Libp2pDhtNet
  /** Direct protocols between peers (request/response and streams), on the same connections. */
  readonly peers: Libp2pPeerNet
  /** Our contact as other OHT nodes store it. */
  readonly contact: PeerContact
  /** Dialable multiaddrs with /p2p/, to hand to others as bootstrap addresses. */
  readonly multiaddrs: string[]
  /** The outcome of the join during creation (or of the last join() call). */
  readonly joined: JoinResult
  /** Saved table first, then the bootstrap list (or `bootstrap` when given). */
  join(bootstrap?: string[], options?: AbortOptions): Promise<JoinResult>
  saveTable(): Promise<void>
  stop(): Promise<void>
}

/** A PeerContact from a multiaddr carrying /p2p/<Ed25519 peer id>. */
export function contactFromMultiaddr (addr: string): PeerContact {
  let ma
  try { ma = multiaddr(addr) } catch (err) {
    throw new NetError('NET_BAD_MULTIADDR', `not a multiaddr: ${addr.slice(0, 120)}`, { cause: err })
  }
  const id = ma.getComponents().findLast(c => c.code === 421)?.value
  if (id === undefined) throw new NetError('NET_BAD_MULTIADDR', `a bootstrap address needs /p2p/<peer id>: ${addr.slice(0, 120)}`)
  let publicKey: Uint8Array | undefined
  try { publicKey = ed25519FromPeerId(peerIdFromString(id)) } catch (err) {
    throw new NetError('NET_BAD_MULTIADDR', `bad peer id in ${addr.slice(0, 120)}`, { cause: err })
  }
  if (publicKey === undefined) throw new NetError('NET_BAD_MULTIADDR', `only Ed25519 peers take part in the OHT: ${addr.slice(0, 120)}`)
  return { publicKey, addrs: [ma.decapsulateCode(421).toString()] }
}

/**
 * @example
 * const a = await createOverlayNode({ seed: seedA })
 * const b = await createOverlayNode({ seed: seedB, bootstrap: a.multiaddrs, tablePath: '/var/lib/oht/table.json' })
 * const { key } = await b.oht.putImmutable(bytes)
 * a.peers.handle('/hello/1', async (from, body) => body)        // direct protocols, same connections
 * const echo = await b.peers.request(a.contact, '/hello/1', bytes)
 */
export async function createOverlayNode (init: OverlayNodeInit, components: OverlayNodeComponents = {}): Promise<OverlayNode> {
  const clock = components.clock ?? systemClock
  const rng = components.rng ?? cryptoRng
  const log = components.log ?? logger('net:overlay')
  const libp2p = await createNetNode(init)
  const identity = identityFromSeed(init.seed)
  let oht: OhtNode | undefined
  const connections = createPeerConnections({
    onionOnly: init.onionOnly ?? false, identifyWaitMs: init.dhtNet?.identifyWaitMs, idleTimeoutMs: init.dhtNet?.idleTimeoutMs
  }, {
    libp2p,
    clock,
    log: log.extend('connections'),
    // routing-table peers keep their connection: over tor a new one costs a rendezvous
    keepPeer: (pk) => oht?.routingTable.has(nodeIdFromPublicKey(pk)) === true
  })
  const net = createLibp2pDhtNet({ ...init.dhtNet, onionOnly: init.onionOnly ?? false }, { libp2p, clock, log: log.extend('dht'), connections })
  const peers = createLibp2pPeerNet({ ...init.peerNet }, { libp2p, clock, log: log.extend('peers'), connections })
  try {
    connections.start()
    await net.start()
    await peers.start()
    oht = createOhtNode({ ...init.oht, addrs: net.ownContact().addrs }, { identity, net, clock, rng, store: components.store, log: log.extend('oht'), ...(components.journal !== undefined ? { journal: components.journal } : {}) })
    await oht.start()
  } catch (err) {
    await peers.stop().catch(() => {})
    await net.stop().catch(() => {})
    connections.stop()
    await Promise.resolve(libp2p.stop()).catch(() => {})
    identity.destroy()
    throw err
  }
  const node = new OverlayNodeImpl(libp2p, oht, net, peers, () => { connections.stop() }, identity, init, clock, log)
  if (init.join !== false) {
    try {
      await node.join()
    } catch (err) {
      await node.stop().catch(() => {})
      throw err
    }
  }
  return node
}

class OverlayNodeImpl implements OverlayNode {
  joined: JoinResult = { peers: 0, via: 'none' }
  private saveTimer: TimerHandle | undefined
  private stopped = false

  constructor (
    readonly libp2p: NetLibp2p,
    readonly oht: OhtNode,
    readonly net: Libp2pDhtNet,
    readonly peers: Libp2pPeerNet,
    private readonly stopConnections: () => void,
    private readonly identity: { destroy(): void },
    private readonly init: OverlayNodeInit,
    private readonly clock: Clock,
    private readonly log: Logger
  ) {
    if (init.tablePath !== undefined) {
      this.saveTimer = clock.setInterval(() => {
        this.saveTable().catch((err: Error) => { this.log.warn('saving the routing table failed: %s', err.message) })
      }, init.saveIntervalMs ?? 300_000).unref()
    }
  }

  get contact (): PeerContact { return this.oht.contact }

  get multiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  async join (bootstrap?: string[], options: AbortOptions = {}): Promise<JoinResult> {
    if (this.init.tablePath !== undefined) {
      const saved = (await loadTableFile(this.init.tablePath)).filter(c => this.net.usableAddrs(c.publicKey, c.addrs).length > 0)
      if (saved.length > 0) {
        try {
          const { peers } = await this.oht.bootstrap(saved, options)
          this.joined = { peers, via: 'saved-table' }
          this.log('joined through %d saved contacts (%d peers)', saved.length, peers)
          return this.joined
        } catch (err) {
          if (!isCodedError(err, 'OHT_NO_PEERS')) throw err
          this.log('no saved contact answered; trying the bootstrap list')
        }
      }
    }
    const list = bootstrap ?? this.init.bootstrap ?? []
    const own = this.libp2p.peerId.toString()
    const contacts = list.filter(a => !a.endsWith(`/p2p/${own}`)).map(contactFromMultiaddr)
    if (contacts.length === 0) { this.joined = { peers: 0, via: 'none' }; return this.joined }
    const { peers } = await this.oht.bootstrap(contacts, options)
    this.joined = { peers, via: 'bootstrap' }
    return this.joined
  }

  async saveTable (): Promise<void> {
    if (this.init.tablePath === undefined || this.stopped) return
    const contacts = this.oht.routingTable.contacts()
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .map(e => e.contact)
    if (contacts.length === 0) return
    await saveTableFile(this.init.tablePath, contacts, this.clock.now())
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.saveTimer?.cancel()
    // save before the engine forgets its peers
    await this.saveTable().catch((err: Error) => { this.log.warn('saving the routing table failed: %s', err.message) })
    this.stopped = true
    await this.oht.stop().catch(() => {})
    await this.peers.stop().catch(() => {})
    await this.net.stop().catch(() => {})
    this.stopConnections()
    await Promise.resolve(this.libp2p.stop()).catch(() => {})
    this.identity.destroy()
  }
}
