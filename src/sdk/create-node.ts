/**
 * createNode(): one call that gives a running OHT node, over tor (onion-only: it launches a
 * tor or attaches to a running one, publishes the node's onion service under its own key and
 * never connects outside tor), over TCP (LAN/dev), or `local` (the same engine with no
 * network), with put/get, joining, peers, counters, a tor reconnect that keeps the node's own
 * records, and stop(). This node is the facade the daemon and applications use.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { cryptoRng, errorMessage, isCodedError, logger, systemClock, wipe, type AbortOptions, type Clock, type Logger, type Rng } from '../core/index.ts'
import { identityFromSeed, onionAddressFromPublicKey, type ScryptParams } from '../crypto/index.ts'
import {
  createOverlayNode, libp2pKeyFromSeed, NetError, torConnector, torPublisher,
  type JoinResult, type OverlayNode
} from '../net/index.ts'
import { createOhtNode, createStats, OHT_DEFAULTS, type GetResult, type OhtNode, type OhtNodeInit, type OhtStats, type PeerContact, type PeerNet, type PutMutableOptions, type PutResult } from '../oht/index.ts'
import { attachTor, launchTor, type LaunchTorInit, type OnionProbe, type TorControl, type TorProcess } from '../tor/index.ts'
import { StableDht, StablePeerNet } from './stable-seams.ts'
import { createFileJournal, JOURNAL_FILE, type FileJournal } from './file-journal.ts'
import { createLocalNet } from './local-net.ts'
import { onlyHere } from './put-summary.ts'

export type SdkTransport = 'tor' | 'tcp' | 'local'

/** A running tor to attach to. */
export interface TorAttach {
  controlPort: number
  host?: string
  socksPort?: number
  password?: string
  /** tor's auth cookie: trusted for COOKIE auth (SAFECOOKIE authenticates tor before reading any file). */
  cookiePath?: string
  /** Accept a tor that asks for no authentication at all. @default false */
  allowNullAuth?: boolean
}

export interface CreateNodeInit extends AbortOptions {
  /**
   * `'tor'`: onion-only, every connection through tor's SOCKS port, reachable at the node's
   * own onion address. `'tcp'`: libp2p over TCP (LAN and development). `'local'`: the OHT
   * engine with no network (offline development; every record stays on this node).
   * @default 'tor'
   */
  transport?: SdkTransport
  /** 32-byte identity seed (e.g. deriveChildSeed(master, 'universe.router.multiverse')). @default a fresh random identity */
  seed?: Uint8Array
  /**
   * Directory (0700) for the routing table, tried first after a restart, and the own-record
   * journal (`own-records.json`, 0600): what this node wrote is served and republished after a
   * restart, and a mutable seq never goes backwards. @default undefined (nothing saved)
   */
  dataDir?: string
  /** The own-record journal in `dataDir`, or false for none. @default {} (plain, 0600) */
  journal?: false | {
    /** Seal the journal with this passphrase (scrypt + XChaCha20-Poly1305). @default undefined */
    passphrase?: string
    /** @default 10000 */
    maxEntries?: number
    /** @default 67108864 */
    maxBytes?: number
    /** scrypt cost of a new sealed journal. @default N 2^16, r 8, p 1 */
    scrypt?: ScryptParams
  }
  /** Multiaddrs with /p2p/ to join through. @default [] */
  bootstrap?: string[]
  /** TCP listen addresses (transport 'tcp'). @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Tor settings (transport 'tor'). Without `attach`, a tor is launched. */
  tor?: {
    /** A running tor: its control port; the SOCKS port is asked from tor when not given. */
    attach?: TorAttach
    /** Settings for a launched tor (e.g. `{ torrc: testnet.clientTorrc() }`). @default {} */
    launch?: Omit<LaunchTorInit, 'signal' | 'socksPort'>
    /** The onion service port peers dial. @default 4001 */
    virtualPort?: number
    /** Also wait until the service is reachable through this other tor client. */
    probe?: OnionProbe
  }
  /** OHT engine settings. */
  oht?: Omit<OhtNodeInit, 'addrs'>
  /** @default systemClock */
  clock?: Clock
  /** @default cryptoRng */
  rng?: Rng
  /** @default logger('oht:sdk') */
  log?: Logger
}

/** A put's outcome: the engine's, plus what a user needs to judge it. */
export interface SdkPutResult extends PutResult {
  /** Holders asked for: the replication factor k (20 unless `oht.k` says otherwise). */
  wanted: number
  /** This node is one of the `stored` holders. */
  storedHere: boolean
  /**
   * No peer took the record: this node is its only holder (`describePut()` says
   * "stored 1 of 20: only this node holds it").
   */
  onlyHere: boolean
}

/** A routing-table peer. */
export interface SdkPeer {
  publicKey: Uint8Array
  /** Its v3 onion address (56 characters, no ".onion"). */
  onion: string
  addrs: string[]
  /** Clock time (ms) it was last heard from. */
  lastSeen: number
}

export interface SdkNodeStats {
  /** Peers in the routing table. */
  peers: number
  /** Records held in the local store (for others and our own). */
  records: number
  /** Bytes of record values held in the local store. */
  recordBytes: number
  /** Entries of the own-record journal (live records and kept seqs); undefined without one. */
  journalEntries?: number
  /** The engine's counters (a copy). */
  engine: OhtStats
}

export interface SdkJoinResult extends JoinResult {
  /** Set when joining failed (reconnectTor reports it instead of throwing). */
  error?: string
}

export interface OhtSdkNode {
  readonly transport: SdkTransport
  /** The node's Ed25519 public key (identity, PeerId, onion address). */
  readonly publicKey: Uint8Array
  /** 56-character onion address (no ".onion"); set for transport 'tor'. */
  readonly onion?: string
  /** Addresses to give others as `bootstrap` (none for 'local'). */
  readonly multiaddrs: string[]
  readonly contact: PeerContact
  /** Stores an immutable record (key = SHA-256(value)) at the k closest nodes. */
  put(value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<SdkPutResult>
  /**
   * Stores a signed mutable record (key = H(publicKey || salt)); `seq` defaults to one above
   * the highest known, `cas: n` writes only if the current seq is n (else OHT_CAS_MISMATCH).
   */
  putMutable(options: PutMutableOptions): Promise<SdkPutResult>
  get(key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined>
  /** Joins through the saved routing table, then `bootstrap` (default: the init's list). */
  join(bootstrap?: string[], options?: AbortOptions): Promise<SdkJoinResult>
  /** The routing table's peers. */
  routingPeers(): SdkPeer[]
  stats(): SdkNodeStats
  /**
   * tor restarted: rebuilds the node on the new tor (`attach`; default the same control port,
   * or a newly launched tor if this node launched its own) with the same identity and onion
   * address, reloads its own records from the journal (served at once, republished once it has
   * peers) and re-joins. Join failures are reported in the result, not thrown.
   */
  reconnectTor(attach?: TorAttach, options?: AbortOptions): Promise<SdkJoinResult>
  /** The node underneath (libp2p, the engine, the DhtNet adapter); undefined for 'local'. */
  readonly overlay: OverlayNode | undefined
  /** Stops the node (wiping its store), closes its journal and tor connection, stops a tor it launched. */
  /**
   * Direct protocols between peers: request/response and message streams to a peer's
   * contact under a protocol id, over the node's existing (onion) connections. The same object
   * for the node's whole life: handlers survive a rebuild after a tor restart.
   *
   * @example
   * node.peers.handle('/hello/1', async (from, body) => new TextEncoder().encode(`hi ${body.byteLength}`))
   * const answer = await other.peers.request(node.contact, '/hello/1', bytes, { timeoutMs: 30_000 })
   */
  readonly peers: PeerNet
  /**
   * The OHT engine's interface (records of every kind, multi-value keys, watch) for layers
   * built on the node (wormhole, DOA, apps): the same object for the node's whole life, whatever
   * engine runs underneath after a tor restart.
   */
  readonly dht: OhtNode
  stop(): Promise<void>
}

const TABLE_FILE = 'routing-table.json'

/**
 * @example
 * // join an OHT network over tor, with a tor launched for this node
 * const node = await createNode({ seed, dataDir: '/var/lib/oht', bootstrap: ['/onion3/…:4001/p2p/12D3Koo…'] })
 * const r = await node.put(new TextEncoder().encode('hello'))
 * console.log(describePut(r))        // "stored 20 of 20", or "stored 1 of 20: only this node holds it"
 * const hit = await node.get(r.key)
 * await node.putMutable({ salt, value, cas: 4 })   // only if the current seq is 4
 * await node.stop()
 *
 * @example
 * // over TCP on a LAN; or offline with transport: 'local'
 * const node = await createNode({ transport: 'tcp', listen: ['/ip4/0.0.0.0/tcp/4001'] })
 */
export async function createNode (init: CreateNodeInit = {}): Promise<OhtSdkNode> {
  const transport = init.transport ?? 'tor'
  if (!['tor', 'tcp', 'local'].includes(transport)) throw new NetError('NET_BAD_CONFIG', `transport must be "tor", "tcp" or "local", got ${JSON.stringify(transport)}`)
  const seed = init.seed !== undefined ? Uint8Array.from(init.seed) : cryptoRng.bytes(32)
  if (seed.byteLength !== 32) { wipe(seed); throw new NetError('NET_BAD_CONFIG', `the identity seed has 32 bytes, got ${seed.byteLength}`) }
  const node = new SdkNode(init, transport, seed)
  try {
    await node.open(init)
    return node
  } catch (err) {
    await node.stop().catch(() => {})
    throw err
  }
}

interface TorHandle { control: TorControl, socksPort: number, close: () => Promise<void> }

async function connectTor (init: CreateNodeInit, attach: TorAttach | undefined, clock: Clock, signal?: AbortSignal): Promise<TorHandle> {
  if (attach !== undefined) {
    const control = await attachTor({ host: attach.host ?? '127.0.0.1', port: attach.controlPort }, {
      password: attach.password, cookiePath: attach.cookiePath, allowNullAuth: attach.allowNullAuth, clock, signal
    })
    try {
      const socksPort = attach.socksPort ?? await socksPortOf(control, signal)
      return { control, socksPort, close: async () => { await control.close() } }
    } catch (err) {
      await control.close().catch(() => {})
      throw err
    }
  }
  const proc: TorProcess = await launchTor({ ...init.tor?.launch, socksPort: 'auto', clock, signal })
  try {
    if (proc.socksPort === undefined) throw new NetError('NET_BAD_CONFIG', 'the launched tor has no SOCKS port')
    // a control connection of our own: publishing changes its event subscriptions
    const control = await attachTor({ host: '127.0.0.1', port: proc.controlPort }, { cookiePath: proc.cookiePath, clock, signal })
    return {
      control,
      socksPort: proc.socksPort,
      close: async () => { await control.close().catch(() => {}); await proc.stop() }
    }
  } catch (err) {
    await proc.stop().catch(() => {})
    throw err
  }
}

/** tor's first SOCKS listener on loopback (GETINFO net/listeners/socks). */
async function socksPortOf (control: TorControl, signal?: AbortSignal): Promise<number> {
  const value = await control.getInfoOne('net/listeners/socks', { signal })
  for (const m of value.matchAll(/"?(?:127\.0\.0\.1|\[::1\]|localhost):(\d+)"?/g)) return Number(m[1])
  throw new NetError('NET_BAD_CONFIG', `the tor at this control port has no SOCKS port on loopback (${value || 'none'}): set SocksPort or pass tor.attach.socksPort`)
}

/** The engine with no network, for transport 'local'. */
class LocalBacking {
  constructor (readonly oht: OhtNode, private readonly identity: { destroy(): void }) {}
  async stop (): Promise<void> {
    await this.oht.stop()
    this.identity.destroy()
  }
}

class SdkNode implements OhtSdkNode {
  readonly onion: string | undefined
  private overlayNode: OverlayNode | undefined
  private local: LocalBacking | undefined
  readonly peers = new StablePeerNet()
  readonly dht = new StableDht(() => this.stopped ? undefined : (this.overlayNode?.oht ?? this.local?.oht))
  private tor: TorHandle | undefined
  private journal: FileJournal | undefined
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly log: Logger
  private readonly tablePath: string | undefined
  private attach: TorAttach | undefined
  private bootstrapList: string[]
  private contactCache: PeerContact | undefined
  private stopped = false

  constructor (private readonly init: CreateNodeInit, readonly transport: SdkTransport, private readonly seed: Uint8Array) {
    this.clock = init.clock ?? systemClock
    this.rng = init.rng ?? cryptoRng
    this.log = init.log ?? logger('oht:sdk')
    this.tablePath = init.dataDir !== undefined && transport !== 'local' ? join(init.dataDir, TABLE_FILE) : undefined
    this.attach = init.tor?.attach
    this.bootstrapList = init.bootstrap ?? []
    this.onion = transport === 'tor' ? onionAddressFromPublicKey(libp2pKeyFromSeed(seed).publicKey.raw) : undefined
  }

  /** Journal, then the engine (with its network) on it. */
  async open (init: CreateNodeInit): Promise<void> {
    if (init.dataDir !== undefined && init.journal !== false) {
      await mkdir(init.dataDir, { recursive: true, mode: 0o700 })
      const j = init.journal ?? {}
      this.journal = createFileJournal({
        path: join(init.dataDir, JOURNAL_FILE),
        ...(j.passphrase !== undefined ? { passphrase: j.passphrase } : {}),
        ...(j.maxEntries !== undefined ? { maxEntries: j.maxEntries } : {}),
        ...(j.maxBytes !== undefined ? { maxBytes: j.maxBytes } : {}),
        ...(j.scrypt !== undefined ? { scrypt: j.scrypt } : {})
      }, { clock: this.clock, log: this.log.extend('journal') })
      // Read it now: a damaged or locked journal stops the node before it talks to anyone.
      await this.journal.load()
    }
    if (this.transport === 'local') {
      if (this.bootstrapList.length > 0) throw new NetError('NET_BAD_CONFIG', 'the local transport has no network: bootstrap needs transport "tor" or "tcp"')
      const identity = identityFromSeed(this.seed)
      const oht = createOhtNode({ ...init.oht, addrs: [] }, {
        identity, net: createLocalNet(), clock: this.clock, rng: this.rng, log: this.log.extend('oht'),
        ...(this.journal !== undefined ? { journal: this.journal } : {})
      })
      try { await oht.start() } catch (err) { identity.destroy(); throw err }
      this.local = new LocalBacking(oht, identity)
      this.dht.engineChanged()
      return
    }
    await this.build(init.signal)
  }

  /** A new overlay (libp2p + engine) with this node's identity and journal; joins during creation. */
  private async build (signal: AbortSignal | undefined, join = true): Promise<void> {
    const common = {
      seed: this.seed,
      join,
      bootstrap: this.bootstrapList,
      ...(this.tablePath !== undefined ? { tablePath: this.tablePath } : {}),
      ...(this.init.oht !== undefined ? { oht: this.init.oht } : {})
    }
    const components = { clock: this.clock, rng: this.rng, ...(this.journal !== undefined ? { journal: this.journal } : {}) }
    if (this.transport === 'tcp') {
      this.overlayNode = await createOverlayNode({ ...common, tcp: { listen: this.init.listen ?? ['/ip4/127.0.0.1/tcp/0'] } }, components)
      this.seamsMoved()
      return
    }
    const tor = await connectTor(this.init, this.attach, this.clock, signal)
    this.tor = tor
    this.overlayNode = await createOverlayNode({
      ...common,
      onionOnly: true,
      onion: {
        connect: torConnector({ socksPort: tor.socksPort, clock: this.clock }),
        publish: torPublisher({ control: tor.control, seed: this.seed, probe: this.init.tor?.probe, clock: this.clock }),
        ...(this.init.tor?.virtualPort !== undefined ? { virtualPort: this.init.tor.virtualPort } : {})
      }
    }, components)
    this.seamsMoved()
  }

  /** The stable seams follow the node that now runs. */
  private seamsMoved (): void {
    this.peers.attach(this.overlayNode?.peers)
    this.dht.engineChanged()
  }

  private get engine (): OhtNode {
    const oht = this.overlayNode?.oht ?? this.local?.oht
    if (oht === undefined || this.stopped) throw new NetError('NET_NOT_STARTED', 'the node is stopped (or being rebuilt after a tor restart): try again shortly')
    return oht
  }

  get overlay (): OverlayNode | undefined { return this.overlayNode }
  get publicKey (): Uint8Array { return this.contact.publicKey }
  get multiaddrs (): string[] { return this.overlayNode?.multiaddrs ?? [] }
  get contact (): PeerContact {
    const live = this.overlayNode?.oht ?? this.local?.oht
    if (live !== undefined) this.contactCache = live.contact
    return this.contactCache as PeerContact
  }

  /**
   * `wanted` is the k the put asked for, so a small network reads "stored 3 of 20", not
   * "3 of 3". `storedHere` comes from the engine when it reports it; otherwise from this
   * node's store holding exactly the write just made (for an immutable record an older copy
   * held here counts too: the same bytes under the same key).
   */
  private result (oht: OhtNode, r: PutResult): SdkPutResult {
    const engine = r as PutResult & { storedHere?: boolean }
    let storedHere = engine.storedHere
    if (storedHere === undefined) {
      const held = oht.store.get(r.key)?.record
      storedHere = held !== undefined && (held.kind === 'immutable' || held.seq === r.seq)
    }
    const out = { ...r, wanted: this.init.oht?.k ?? OHT_DEFAULTS.k, storedHere: storedHere && r.stored > 0 }
    return { ...out, onlyHere: onlyHere(out) }
  }

  async put (value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<SdkPutResult> {
    const oht = this.engine
    return this.result(oht, await oht.putImmutable(value, options))
  }

  async putMutable (options: PutMutableOptions): Promise<SdkPutResult> {
    const oht = this.engine
    return this.result(oht, await oht.putMutable(options))
  }

  async get (key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined> {
    return await this.engine.get(key, options)
  }

  async join (bootstrap?: string[], options: AbortOptions = {}): Promise<SdkJoinResult> {
    if (this.transport === 'local') {
      if (bootstrap !== undefined && bootstrap.length > 0) throw new NetError('NET_BAD_CONFIG', 'the local transport has no network: set transport "tor" or "tcp" to reach peers')
      return { peers: 0, via: 'none' }
    }
    if (bootstrap !== undefined) this.bootstrapList = [...bootstrap]
    const overlay = this.overlayNode
    if (overlay === undefined || this.stopped) throw new NetError('NET_NOT_STARTED', 'the node is stopped (or being rebuilt after a tor restart): try again shortly')
    return await overlay.join(this.bootstrapList, options)
  }

  routingPeers (): SdkPeer[] {
    const oht = this.overlayNode?.oht ?? this.local?.oht
    if (oht === undefined) return []
    return oht.routingTable.contacts().map(e => ({
      publicKey: e.contact.publicKey.slice(),
      onion: onionAddressFromPublicKey(e.contact.publicKey),
      addrs: [...e.contact.addrs],
      lastSeen: e.lastSeen
    }))
  }

  stats (): SdkNodeStats {
    const oht = this.overlayNode?.oht ?? this.local?.oht
    const engine = structuredClone(oht?.stats ?? createStats())
    return {
      peers: oht?.routingTable.size ?? 0,
      records: oht?.store.size ?? 0,
      recordBytes: oht?.store.bytes ?? 0,
      ...(this.journal !== undefined ? { journalEntries: this.journal.size } : {}),
      engine
    }
  }

  async reconnectTor (attach?: TorAttach, options: AbortOptions = {}): Promise<SdkJoinResult> {
    if (this.transport !== 'tor') throw new NetError('NET_BAD_CONFIG', `reconnectTor needs transport "tor" (this node's is "${this.transport}")`)
    if (this.stopped) throw new NetError('NET_NOT_STARTED', 'the node is stopped')
    if (attach !== undefined) this.attach = attach
    // The old libp2p node cannot move to the new tor: stop it (its table is saved, its store
    // wiped) and build the same node anew. The journal stays open: the new engine loads the
    // own records from it, serves them at once and republishes them once it has peers.
    const old = this.overlayNode
    this.overlayNode = undefined
    this.peers.attach(undefined)
    this.dht.engineChanged()
    await old?.stop().catch((err: unknown) => { this.log.warn('stopping the old node failed: %s', errorMessage(err)) })
    await this.tor?.close().catch(() => {})
    this.tor = undefined
    // Joined separately: a join failure must not cost the rebuilt node.
    await this.build(options.signal, false)
    try {
      return await this.join(undefined, options)
    } catch (err) {
      if (!isCodedError(err, 'OHT_NO_PEERS')) this.log.warn('re-join after the tor restart failed: %s', errorMessage(err))
      return { peers: this.stats().peers, via: 'none', error: errorMessage(err) }
    }
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.peers.attach(undefined)
    this.dht.engineChanged(true)
    await this.overlayNode?.stop().catch((err: unknown) => { this.log.warn('stopping the node failed: %s', errorMessage(err)) })
    await this.local?.stop().catch(() => {})
    await this.tor?.close().catch(() => {})
    await this.journal?.close().catch(() => {})
    wipe(this.seed)
  }
}
