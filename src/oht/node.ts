/**
 * The OHT node: its state, its lifecycle, and the public API, delegating by concern:
 *   config.ts          the resolved settings
 *   rpc.ts             outbound requests and the inbound handler
 *   storage-policy.ts  what a storing node accepts (kinds, TTLs, quotas)
 *   operations.ts      lookups, bootstrap, puts, gets
 *   maintenance.ts     the single maintenance tick (probes, refresh, republish, replication)
 *   watch.ts           watches (holder and watcher sides)
 * Everything time- or chance-dependent goes through the injected Clock and Rng; the network
 * only through DhtNet.
 */
import { setMaxListeners } from 'node:events'
import { scopedSignal, type AbortOptions, type ScopedSignal } from '../core/abort.ts'
import { bytesEqual, toHex } from '../core/bytes.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { logger, type Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import { sha256 } from '../crypto/index.ts'
import { resolveConfig, type ResolvedConfig } from './config.ts'
import { OhtError } from './errors.ts'
import { IdMap } from './id-map.ts'
import type {
  GetResult, GetValuesOptions, LookupOptions, OhtNodeComponents, OhtNodeInit, OwnRecordEntry, OwnRecordJournal,
  PutMutableOptions, PutResult, PutValueOptions, ValuesResult, WatchEvent, WatchOptions
} from './index.ts'
import type { LookupEvent } from './lookup.ts'
import { Maintenance } from './maintenance.ts'
import type { DhtNet, PeerContact } from './network.ts'
import { Operations, ownValueId } from './operations.ts'
import { createRateLimiter, type RateLimiter } from './rate-limit.ts'
import { createSignatureVerifier, validateRecord, type OhtRecord, type SignatureVerifier, type ValueRecord } from './records.ts'
import { createRoutingTable, type RoutingTable } from './routing-table.ts'
import { Rpc } from './rpc.ts'
import { createRttEstimator, type RttEstimator } from './rtt.ts'
import { createStats, type OhtStats } from './stats.ts'
import { StoragePolicy } from './storage-policy.ts'
import { createMemoryStore, type RecordStore } from './store.ts'
import { createWriteTokens, type WriteTokens } from './tokens.ts'
import { Watches } from './watch.ts'

export { OHT_DEFAULTS } from './config.ts'

/** One of our own records: republished while it lives; its seq outlives it. */
export interface OwnRecord { key: Uint8Array, record?: OhtRecord, expiresAt: number, nextAt: number, seq?: number, kind?: number }

/** Peers remembered as unreachable, per node (the oldest goes first). */
const UNREACHABLE_MAX = 256

export class OhtNodeImpl {
  readonly id: Uint8Array
  readonly contact: PeerContact
  readonly routingTable: RoutingTable
  readonly store: RecordStore
  readonly stats: OhtStats = createStats()

  readonly cfg: ResolvedConfig
  readonly identity: OhtNodeComponents['identity']
  readonly net: DhtNet
  readonly clock: Clock
  readonly rng: Rng
  readonly log: Logger
  readonly verifier: SignatureVerifier
  private readonly journal: OwnRecordJournal | undefined
  tokens: WriteTokens
  readonly rateLimiter: RateLimiter
  readonly rtt: RttEstimator
  readonly own = new Map<string, OwnRecord>()
  private readonly unreachable = new Map<number, number>()
  running = false
  private controller = new AbortController()
  private tickTimer?: TimerHandle
  private background = 0

  readonly rpc: Rpc
  readonly policy: StoragePolicy
  readonly ops: Operations
  readonly maintenance: Maintenance
  readonly watches: Watches

  constructor (init: OhtNodeInit, components: OhtNodeComponents) {
    this.cfg = resolveConfig(init)
    this.identity = components.identity
    this.net = components.net
    this.clock = components.clock
    this.rng = components.rng
    this.log = components.log ?? logger('oht:node')
    this.verifier = components.verifier ?? createSignatureVerifier()
    this.journal = components.journal
    this.id = sha256(this.identity.publicKey)
    this.contact = { publicKey: this.identity.publicKey, addrs: [...init.addrs] }
    this.routingTable = createRoutingTable(this.id, { k: this.cfg.k, maxFailures: this.cfg.maxFailures, displaceSilentAfterMs: this.cfg.displaceSilentAfterMs }, this.clock.now())
    this.store = components.store ?? createMemoryStore({ clock: this.clock, kinds: this.cfg.kinds, onExpire: () => { this.stats.recordsExpired++ } })
    this.tokens = createWriteTokens(this.clock, this.rng, this.cfg.tokenRotateMs)
    this.rateLimiter = createRateLimiter(this.clock, { ratePerSecond: this.cfg.requestsPerSecondPerPeer, burst: this.cfg.burst })
    this.rtt = createRttEstimator(init.requestTimeout ?? {})
    this.rpc = new Rpc(this)
    this.policy = new StoragePolicy(this)
    this.ops = new Operations(this)
    this.maintenance = new Maintenance(this)
    this.watches = new Watches(this)
  }

  // ------------------------------------------------------------------ lifecycle

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.controller = new AbortController()
    setMaxListeners(0, this.controller.signal) // every request in flight listens to it
    this.tokens = createWriteTokens(this.clock, this.rng, this.cfg.tokenRotateMs) // fresh secrets per run
    if (this.journal !== undefined) {
      try {
        await this.loadJournal(this.journal)
      } catch (err) {
        this.running = false
        throw err
      }
    }
    this.net.handle(async (from, frame, options) => await this.rpc.handle(from, frame, options))
    this.maintenance.reset(this.clock.now())
    // A random phase keeps thousands of simulated nodes from ticking in lockstep.
    const first = this.rng.int(Math.max(1, Math.floor(this.cfg.maintenanceIntervalMs)))
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = this.clock.setInterval(() => { this.maintenance.tick() }, this.cfg.maintenanceIntervalMs).unref()
      this.maintenance.tick()
    }, first).unref()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.tickTimer?.cancel()
    this.tickTimer = undefined
    this.watches.clear()
    this.controller.abort(new OhtError('OHT_NOT_STARTED', 'the OHT node was stopped'))
    this.store.clear()
    this.own.clear()
    this.maintenance.reset(this.clock.now())
    this.routingTable.clear()
    this.rateLimiter.clear()
    this.rtt.clear()
    this.unreachable.clear()
    this.tokens.destroy()
  }

  /** Aborts when the node stops (requests and background work listen to it). */
  get lifetimeSignal (): AbortSignal { return this.controller.signal }

  assertRunning (): void {
    if (!this.running) throw new OhtError('OHT_NOT_STARTED', 'the OHT node is not running: call start() first')
  }

  /** Runs background work that dies with the node. */
  spawn (what: string, work: (signal: AbortSignal) => Promise<unknown>): void {
    this.background++
    work(this.controller.signal).catch((err: unknown) => {
      if (this.running) this.log('%s failed: %s', what, err instanceof Error ? err.message : String(err))
    }).finally(() => { this.background-- })
  }

  /**
   * A signal for one API operation: aborts when the caller's does or the node stops. Requests
   * then listen to this one signal only (one listener per request, not two).
   */
  opSignal (signal?: AbortSignal): ScopedSignal {
    const op = scopedSignal(this.clock, undefined, signal, this.controller.signal)
    setMaxListeners(0, op.signal)
    return op
  }

  // ------------------------------------------------------------------ journal

  /**
   * Our own records from the journal: those still alive are stored here at once (a node with
   * no peers still serves them) and republished at the first tick and after each bootstrap;
   * expired ones keep their seq so the next write goes above it.
   */
  private async loadJournal (journal: OwnRecordJournal): Promise<void> {
    const entries = await journal.load()
    const now = this.clock.now()
    for (const e of entries) {
      if (!(e.key instanceof Uint8Array) || e.key.byteLength !== 32) continue
      const own: OwnRecord = { key: e.key, expiresAt: e.expiresAt, nextAt: now }
      if (e.seq !== undefined) own.seq = e.seq
      const r = e.record
      if (r !== undefined && e.expiresAt > now) {
        try {
          const kind = this.cfg.kinds.of(r)
          validateRecord(e.key, r, this.cfg.maxValueBytes, this.verifier, kind.code)
          this.store.put({ key: e.key, record: r, expiresAt: e.expiresAt, storedAt: now, refreshedAt: now })
          own.record = r
          if (r.kind !== 'immutable') own.seq = Math.max(own.seq ?? -1, r.seq)
          if (r.kind === 'value') own.kind = kind.code
        } catch (err) {
          this.log.warn('journal entry %s dropped: %s', e.id, err instanceof Error ? err.message : String(err))
        }
      }
      if (own.record !== undefined || own.seq !== undefined) this.own.set(e.id, own)
    }
  }

  /** Write-ahead: the journal has the record before any peer does. */
  async journalSave (key: Uint8Array, record: OhtRecord, expiresAt: number): Promise<void> {
    if (this.journal === undefined) return
    const entry: OwnRecordEntry = { id: toHex(key), key, record, expiresAt }
    if (record.kind === 'mutable') entry.seq = record.seq
    await this.journal.save(entry)
  }

  async journalSaveValue (key: Uint8Array, kind: number, record: ValueRecord, expiresAt: number): Promise<void> {
    if (this.journal === undefined) return
    await this.journal.save({ id: ownValueId(key, kind, record.writer, record.id), key, record, expiresAt, seq: record.seq })
  }

  journalExpire (id: string): void {
    if (this.journal === undefined) return
    this.journal.expire(id).catch((err: unknown) => { this.log.warn('journal expire failed: %s', err instanceof Error ? err.message : String(err)) })
  }

  // ------------------------------------------------------------------ ids and reachability

  /** Checks a claimed id against a key; a routing-table entry (verified on entry) saves the hash. */
  verifyId (id: Uint8Array, publicKey: Uint8Array): boolean {
    const known = this.routingTable.get(id)
    if (known !== undefined && bytesEqual(known.contact.publicKey, publicKey)) return true
    const seen = verifiedKeys.get(id)
    if (seen !== undefined && bytesEqual(seen, publicKey)) return true
    if (!bytesEqual(this.idOf(publicKey), id)) return false
    if (verifiedKeys.size >= VERIFIED_KEYS_MAX) verifiedKeys.clear()
    verifiedKeys.set(id.slice(), publicKey.slice())
    return true
  }

  /** SHA-256 of a public key, memoised by the key's bytes (never by the array object). */
  idOf (publicKey: Uint8Array): Uint8Array {
    if (publicKey.byteLength === 32) {
      const hit = keyIds.get(publicKey)
      if (hit !== undefined) return hit.id
    }
    const id = sha256(publicKey)
    if (publicKey.byteLength === 32) {
      if (keyIds.size >= KEY_IDS_MAX) keyIds.clear()
      keyIds.set(publicKey.slice(), { id })
    }
    return id
  }

  /** The key of our mutable record under `salt`: SHA-256(publicKey || salt). */
  idOfRecordKey (publicKey: Uint8Array, salt: Uint8Array): Uint8Array {
    return sha256(publicKey, salt)
  }

  /**
   * Peers whose last request failed, by id prefix, until `unreachableForMs` passes: other
   * peers' answers keep naming a departed peer for a while (they have not asked it since), and
   * without this memory every lookup that meets it again pays a full timeout again.
   * Bounded; the oldest entry goes first.
   */
  noteUnreachable (key: number): void {
    const u = this.unreachable
    u.delete(key)
    if (u.size >= UNREACHABLE_MAX) u.delete(u.keys().next().value as number)
    u.set(key, this.clock.now() + this.cfg.unreachableForMs)
  }

  clearUnreachable (key: number): void {
    if (this.unreachable.size > 0) this.unreachable.delete(key)
  }

  isUnreachable (key: number): boolean {
    if (this.unreachable.size === 0) return false
    const until = this.unreachable.get(key)
    if (until === undefined) return false
    if (until > this.clock.now()) return true
    this.unreachable.delete(key)
    return false
  }

  // ------------------------------------------------------------------ public API

  async bootstrap (contacts: PeerContact[], options?: AbortOptions): Promise<{ peers: number }> { return await this.ops.bootstrap(contacts, options) }
  async putImmutable (value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<PutResult> { return await this.ops.putImmutable(value, options) }
  async putMutable (options: PutMutableOptions): Promise<PutResult> { return await this.ops.putMutable(options) }
  async put (record: OhtRecord, options?: AbortOptions): Promise<PutResult> { return await this.ops.put(record, options) }
  async putValue (key: Uint8Array, options: PutValueOptions): Promise<PutResult> { return await this.ops.putValue(key, options) }
  async deleteValue (key: Uint8Array, options: Omit<PutValueOptions, 'value' | 'deleted'>): Promise<PutResult> { return await this.ops.putValue(key, { ...options, deleted: true }) }
  async get (key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined> { return await this.ops.get(key, options) }
  async getValues (key: Uint8Array, options?: GetValuesOptions): Promise<ValuesResult> { return await this.ops.getValues(key, options) }
  watch (key: Uint8Array, options?: WatchOptions): AsyncIterable<WatchEvent> { return this.watches.watch(key, options) }
  lookup (target: Uint8Array, options?: LookupOptions): AsyncIterable<LookupEvent> { return this.ops.lookup(target, options) }
  async findClosest (target: Uint8Array, options?: AbortOptions): Promise<PeerContact[]> { return await this.ops.findClosest(target, options) }
  randomIdInBucket (index: number): Uint8Array { return this.ops.randomIdInBucket(index) }

  /** Background operations still running (tests wait for zero). */
  get pendingWork (): number { return this.background }

  /** Runs one maintenance tick now (tests and the simulator's fast paths). */
  runMaintenance (): void { this.maintenance.tick() }
}

/**
 * Node ids by public key, for every node in the process (a memo of SHA-256 keyed by the key's
 * bytes: transports hand out the same keys again and again, the simulator thousands of nodes'
 * worth). Bounded: emptied when full.
 */
const keyIds = new IdMap<{ id: Uint8Array }>()
const KEY_IDS_MAX = 65_536

/**
 * Public keys whose hash was checked against the id a peer claimed for them, by id, for every
 * node in the process (a memo of SHA-256, not a trust decision: a hit needs the same key bytes).
 * Lookups meet the same contacts again and again in answers; in the simulator thousands of
 * nodes share it. Bounded: emptied when full.
 */
const verifiedKeys = new IdMap<Uint8Array>()
const VERIFIED_KEYS_MAX = 65_536
