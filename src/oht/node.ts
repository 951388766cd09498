/**
 * The OHT node: routing table + RPC handler + iterative lookups + records + maintenance.
 * Everything time- or chance-dependent goes through the injected Clock and Rng; the network
 * only through DhtNet. One maintenance timer per node does the periodic work that is due.
 */
import { setMaxListeners } from 'node:events'
import { scopedSignal, throwIfAborted, type AbortOptions, type ScopedSignal } from '../core/abort.ts'
import { bytesEqual, toHex } from '../core/bytes.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { isCodedError, OhtStackError } from '../core/errors.ts'
import { logger, type Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import { sha256 } from '../crypto/index.ts'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, MAX_CONTACTS, type OhtRequest, type OhtResponse, type WireContact } from './codec.ts'
import { compareDistance, ID_BITS } from './distance.ts'
import { OhtError, OhtRemoteError } from './errors.ts'
import { IdMap, idPrefix, isView } from './id-map.ts'
import { runLookup, type LookupEvent, type LookupOutcome, type QueryResult } from './lookup.ts'
import type { DhtNet, PeerContact } from './network.ts'
import { createRateLimiter, type RateLimiter } from './rate-limit.ts'
import { copyRecord, createSignatureVerifier, recordKey, sameWrite, signMutable, validateRecord, type OhtRecord, type SignatureVerifier } from './records.ts'
import { createRoutingTable, type RoutingEntry, type RoutingTable } from './routing-table.ts'
import { createRttEstimator, type RttEstimator } from './rtt.ts'
import { createStats, type LookupPurpose, type OhtStats } from './stats.ts'
import type { GetResult, LookupOptions, OhtNodeComponents, OhtNodeInit, OwnRecordEntry, OwnRecordJournal, PutError, PutMutableOptions, PutResult } from './index.ts'
import { createMemoryStore, type RecordStore, type StoredRecord } from './store.ts'
import { createWriteTokens, type WriteTokens } from './tokens.ts'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE

/**
 * The engine's defaults for the settings of OhtNodeInit that are plain numbers (milliseconds
 * where the name says so). Read-only; pass an OhtNodeInit to change them for one node.
 */
export const OHT_DEFAULTS = Object.freeze({
  k: 20,
  alpha: 3,
  maxValueBytes: 65_536,
  ttlMinMs: MINUTE,
  ttlMaxMs: 48 * HOUR,
  ttlDefaultMs: 2 * HOUR,
  maintenanceIntervalMs: 5 * MINUTE,
  refreshIntervalMs: 6 * HOUR,
  republishIntervalMs: HOUR,
  replicateIntervalMs: HOUR,
  probeAfterMs: HOUR,
  probeIntervalMs: 20 * MINUTE,
  staleAfterMs: HOUR,
  unreachableForMs: 10 * MINUTE
})


interface OwnRecord { key: Uint8Array, record?: OhtRecord, expiresAt: number, nextAt: number, seq?: number }

interface Resolved {
  k: number
  alpha: number
  disjointPaths: number
  maxValueBytes: number
  ttlMin: number
  ttlMax: number
  ttlDefault: number
  maintenanceIntervalMs: number
  refreshIntervalMs: number
  republishIntervalMs: number
  replicateIntervalMs: number
  refreshesPerTick: number
  replicationsPerTick: number
  probeAfterMs: number
  probeIntervalMs: number
  staleAfterMs: number
  silentNear: number
  silentFar: number
  unreachableForMs: number
  maxBytesPerPeer: number
  maxRecordsPerPeer: number
  maxStoreBytes: number
  maxStoreRecords: number
}

function nonNegative (v: number | undefined, def: number, what: string): number {
  const x = v ?? def
  if (!(Number.isFinite(x) && x >= 0)) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be a non-negative number, got ${String(v)}`)
  return x
}

function positive (v: number | undefined, def: number, what: string): number {
  const x = v ?? def
  if (!(Number.isFinite(x) && x > 0)) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be a positive number, got ${String(v)}`)
  return x
}

export class OhtNodeImpl {
  readonly id: Uint8Array
  readonly contact: PeerContact
  readonly routingTable: RoutingTable
  readonly store: RecordStore
  readonly stats: OhtStats = createStats()

  private readonly cfg: Resolved
  private readonly identity: OhtNodeComponents['identity']
  private readonly net: DhtNet
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly log: Logger
  private readonly verifier: SignatureVerifier
  private readonly journal: OwnRecordJournal | undefined
  private tokens: WriteTokens
  private readonly tokenRotateMs: number
  private readonly rateLimiter: RateLimiter
  private readonly rtt: RttEstimator
  private readonly own = new Map<string, OwnRecord>()
  private readonly replicationQueue: string[] = []
  private nextReplicationPass = 0
  private nextProbeAt = 0
  private nextSweepAt = 0
  private readonly unreachable = new Map<number, number>()
  private nextRefreshCheckAt = 0
  private running = false
  private controller = new AbortController()
  private tickTimer?: TimerHandle
  private ticking = false
  private background = 0
  private readonly bootstrapRefreshes: number

  constructor (init: OhtNodeInit, components: OhtNodeComponents) {
    const lim = init.limits ?? {}
    const D = OHT_DEFAULTS
    this.cfg = {
      k: Math.min(MAX_CONTACTS, Math.floor(positive(init.k, D.k, 'k'))),
      alpha: Math.floor(positive(init.alpha, D.alpha, 'alpha')),
      disjointPaths: Math.floor(positive(init.disjointPaths, 1, 'disjointPaths')),
      maxValueBytes: Math.floor(positive(init.maxValueBytes, D.maxValueBytes, 'maxValueBytes')),
      ttlMin: positive(init.ttl?.minMs, D.ttlMinMs, 'ttl.minMs'),
      ttlMax: positive(init.ttl?.maxMs, D.ttlMaxMs, 'ttl.maxMs'),
      ttlDefault: positive(init.ttl?.defaultMs, D.ttlDefaultMs, 'ttl.defaultMs'),
      maintenanceIntervalMs: positive(init.maintenanceIntervalMs, D.maintenanceIntervalMs, 'maintenanceIntervalMs'),
      refreshIntervalMs: positive(init.refreshIntervalMs, D.refreshIntervalMs, 'refreshIntervalMs'),
      republishIntervalMs: positive(init.republishIntervalMs, D.republishIntervalMs, 'republishIntervalMs'),
      replicateIntervalMs: positive(init.replicateIntervalMs, D.replicateIntervalMs, 'replicateIntervalMs'),
      refreshesPerTick: Math.floor(positive(init.refreshesPerTick, 1, 'refreshesPerTick')),
      replicationsPerTick: Math.floor(positive(init.replicationsPerTick, 20, 'replicationsPerTick')),
      probeAfterMs: positive(init.probeAfterMs, D.probeAfterMs, 'probeAfterMs'),
      probeIntervalMs: positive(init.probeIntervalMs, D.probeIntervalMs, 'probeIntervalMs'),
      staleAfterMs: positive(init.staleAfterMs, D.staleAfterMs, 'staleAfterMs'),
      silentNear: Math.floor(nonNegative(init.silentInAnswers?.near, 12, 'silentInAnswers.near')),
      silentFar: Math.floor(nonNegative(init.silentInAnswers?.far, 5, 'silentInAnswers.far')),
      unreachableForMs: positive(init.unreachableForMs, D.unreachableForMs, 'unreachableForMs'),
      maxBytesPerPeer: positive(lim.maxBytesPerPeer, 16 * 1024 * 1024, 'limits.maxBytesPerPeer'),
      maxRecordsPerPeer: positive(lim.maxRecordsPerPeer, 4096, 'limits.maxRecordsPerPeer'),
      maxStoreBytes: positive(lim.maxStoreBytes, 512 * 1024 * 1024, 'limits.maxStoreBytes'),
      maxStoreRecords: positive(lim.maxStoreRecords, 200_000, 'limits.maxStoreRecords')
    }
    if (this.cfg.ttlMin > this.cfg.ttlMax) throw new OhtError('OHT_BAD_ARGUMENT', 'ttl.minMs must not exceed ttl.maxMs')
    this.identity = components.identity
    this.net = components.net
    this.clock = components.clock
    this.rng = components.rng
    this.log = components.log ?? logger('oht:node')
    this.verifier = components.verifier ?? createSignatureVerifier()
    this.journal = components.journal
    this.id = sha256(this.identity.publicKey)
    this.contact = { publicKey: this.identity.publicKey, addrs: [...init.addrs] }
    const displaceSilentAfterMs = init.displaceSilentAfterMs === Infinity ? Infinity : positive(init.displaceSilentAfterMs, HOUR, 'displaceSilentAfterMs')
    this.routingTable = createRoutingTable(this.id, { k: this.cfg.k, maxFailures: init.maxFailures ?? 3, displaceSilentAfterMs }, this.clock.now())
    this.store = components.store ?? createMemoryStore({ clock: this.clock, onExpire: () => { this.stats.recordsExpired++ } })
    this.tokenRotateMs = positive(init.tokenRotateMs, 5 * MINUTE, 'tokenRotateMs')
    this.tokens = createWriteTokens(this.clock, this.rng, this.tokenRotateMs)
    this.rateLimiter = createRateLimiter(this.clock, { ratePerSecond: lim.requestsPerSecondPerPeer ?? 50, burst: lim.burst ?? 100 })
    this.rtt = createRttEstimator(init.requestTimeout ?? {})
    this.bootstrapRefreshes = init.bootstrapRefreshes ?? 0
  }

  // ------------------------------------------------------------------ lifecycle

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.controller = new AbortController()
    setMaxListeners(0, this.controller.signal) // every request in flight listens to it
    this.tokens = createWriteTokens(this.clock, this.rng, this.tokenRotateMs) // fresh secrets per run
    if (this.journal !== undefined) {
      try {
        await this.loadJournal(this.journal)
      } catch (err) {
        this.running = false
        throw err
      }
    }
    this.net.handle(async (from, frame, options) => await this.handle(from, frame, options))
    this.nextReplicationPass = this.clock.now() + this.cfg.replicateIntervalMs
    // A random phase keeps thousands of simulated nodes from ticking in lockstep.
    const first = this.rng.int(Math.max(1, Math.floor(this.cfg.maintenanceIntervalMs)))
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = this.clock.setInterval(() => { this.tick() }, this.cfg.maintenanceIntervalMs).unref()
      this.tick()
    }, first).unref()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.tickTimer?.cancel()
    this.tickTimer = undefined
    this.controller.abort(new OhtError('OHT_NOT_STARTED', 'the OHT node was stopped'))
    this.store.clear()
    this.own.clear()
    this.replicationQueue.length = 0
    this.routingTable.clear()
    this.rateLimiter.clear()
    this.rtt.clear()
    this.unreachable.clear()
    this.tokens.destroy()
  }

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
      const alive = e.record !== undefined && e.expiresAt > now
      const own: OwnRecord = { key: e.key, expiresAt: e.expiresAt, nextAt: now }
      if (e.seq !== undefined) own.seq = e.seq
      if (alive && e.record !== undefined) {
        try {
          validateRecord(e.key, e.record, this.cfg.maxValueBytes, this.verifier)
          this.store.put({ key: e.key, record: e.record, expiresAt: e.expiresAt, storedAt: now, refreshedAt: now })
          own.record = e.record
          if (e.record.kind === 'mutable') own.seq = Math.max(own.seq ?? -1, e.record.seq)
        } catch (err) {
          this.log.warn('journal entry %s dropped: %s', e.id, err instanceof Error ? err.message : String(err))
        }
      }
      if (own.record !== undefined || own.seq !== undefined) this.own.set(e.id, own)
    }
  }

  /** Write-ahead: the journal has the record before any peer does. */
  private async journalSave (key: Uint8Array, record: OhtRecord, expiresAt: number): Promise<void> {
    if (this.journal === undefined) return
    const entry: OwnRecordEntry = { id: toHex(key), key, record, expiresAt }
    if (record.kind === 'mutable') entry.seq = record.seq
    await this.journal.save(entry)
  }

  private journalExpire (id: string): void {
    if (this.journal === undefined) return
    this.journal.expire(id).catch((err: unknown) => { this.log.warn('journal expire failed: %s', err instanceof Error ? err.message : String(err)) })
  }

  private assertRunning (): void {
    if (!this.running) throw new OhtError('OHT_NOT_STARTED', 'the OHT node is not running: call start() first')
  }

  /** Checks a claimed id against a key; a routing-table entry (verified on entry) saves the hash. */
  private verifyId (id: Uint8Array, publicKey: Uint8Array): boolean {
    const known = this.routingTable.get(id)
    if (known !== undefined && bytesEqual(known.contact.publicKey, publicKey)) return true
    const seen = verifiedKeys.get(id)
    if (seen !== undefined && bytesEqual(seen, publicKey)) return true
    if (!bytesEqual(this.idOf(publicKey), id)) return false
    if (verifiedKeys.size >= VERIFIED_KEYS_MAX) verifiedKeys.clear()
    verifiedKeys.set(id.slice(), publicKey.slice())
    return true
  }

  idOf (publicKey: Uint8Array): Uint8Array {
    let id = idsByKeyObject.get(publicKey)
    if (id === undefined) {
      id = sha256(publicKey)
      if (isView(publicKey)) return id // a key inside a frame: caching it would pin the frame
      idsByKeyObject.set(publicKey, id)
    }
    return id
  }

  // ------------------------------------------------------------------ outbound requests

  /**
   * A signal for one API operation: aborts when the caller's does or the node stops. Requests
   * then listen to this one signal only (one listener per request, not two).
   */
  private opSignal (signal?: AbortSignal): ScopedSignal {
    const op = scopedSignal(this.clock, undefined, signal, this.controller.signal)
    setMaxListeners(0, op.signal)
    return op
  }

  /**
   * One request/response with adaptive timeout and routing-table upkeep. `signal` must follow
   * the node's lifetime (an opSignal, a lookup's signal or the node's own).
   */
  private async request (peer: { id: Uint8Array, contact: PeerContact }, req: OhtRequest, signal: AbortSignal): Promise<OhtResponse> {
    const key = idPrefix(peer.id)
    const counters = this.stats.requestsOut
    if (req.type === 'ping') counters.ping++
    else if (req.type === 'find-node') counters.findNode++
    else if (req.type === 'get') counters.get++
    else counters.put++
    // Encoded outside the try below: a request we cannot encode is our fault, not the peer's.
    let frame: Uint8Array | undefined = encodeRequest(req)
    this.stats.bytesOut += frame.byteLength
    // The transport enforces the timeout: no signal, listener and timer of our own per request.
    const timeoutMs = this.rtt.timeout(key)
    const started = this.clock.monotonic()
    let answer: Uint8Array
    try {
      throwIfAborted(signal)
      const pending = this.net.request(peer.contact, frame, { signal, timeoutMs })
      // Not held while we wait (a suspended call keeps its locals): the frame shares a slab
      // with other frames (allocFrame), and would keep it alive until the answer.
      frame = undefined
      answer = await pending
    } catch (err) {
      this.stats.requestFailures++
      const timedOut = isCodedError(err, 'CORE_TIMEOUT')
      const callerAborted = !timedOut && signal.aborted
      if (timedOut) { this.stats.timeouts++; this.rtt.timedOut(key) }
      if (!callerAborted && this.running) {
        this.routingTable.markFailed(peer.id)
        this.noteUnreachable(key)
      }
      throw err
    }
    this.rtt.sample(key, this.clock.monotonic() - started)
    if (this.unreachable.size > 0) this.unreachable.delete(key)
    this.stats.bytesIn += answer.byteLength
    let res: OhtResponse
    try {
      res = decodeResponse(answer, { maxValueBytes: this.cfg.maxValueBytes })
    } catch (err) {
      // A peer that answers garbage is dropped, not just counted as slow.
      this.stats.badFrames++
      this.stats.requestFailures++
      this.routingTable.remove(peer.id)
      throw err
    }
    if (this.running) this.routingTable.add(peer.id, peer.contact, this.clock.now())
    if (res.type === 'error') {
      this.stats.remoteErrors++
      throw new OhtRemoteError(res.code, `peer ${toHex(peer.id.subarray(0, 6))} refused: ${res.message}`)
    }
    return res
  }

  private async query (peer: { id: Uint8Array, contact: PeerContact }, kind: 'find-node' | 'get' | 'get-meta', target: Uint8Array, signal: AbortSignal): Promise<QueryResult> {
    const addrs = this.contact.addrs
    const req: OhtRequest = kind === 'find-node'
      ? { type: 'find-node', addrs, target }
      : { type: 'get', addrs, key: target, metadataOnly: kind === 'get-meta' }
    const res = await this.request(peer, req, signal)
    // What a lookup keeps past this answer is copied out of its frame (the contacts it keeps
    // are copied by the lookup): a view would keep the frame's whole slab alive (allocFrame).
    if (res.type === 'nodes') return res.token === undefined ? { closer: res.contacts } : { closer: res.contacts, token: res.token.slice() }
    if (res.type === 'value') return { closer: res.contacts, token: res.token.slice(), record: res.record === undefined ? undefined : copyRecord(res.record), seq: res.seq }
    throw new OhtError('OHT_BAD_RESPONSE', `peer answered ${kind} with a ${res.type} frame`)
  }

  // ------------------------------------------------------------------ inbound requests

  async handle (from: PeerContact, frame: Uint8Array, _options: AbortOptions): Promise<Uint8Array> {
    try {
      return this.handleFrame(from, frame)
    } catch (err) {
      this.stats.errorsSent++
      if (isCodedError(err, 'OHT_BAD_FRAME')) this.stats.badFrames++
      const code = err instanceof OhtStackError ? err.code : 'OHT_INTERNAL'
      const message = err instanceof OhtStackError ? err.message : 'internal error'
      if (!(err instanceof OhtStackError)) this.log.warn('handler failed: %s', String(err))
      return encodeResponse({ type: 'error', code, message })
    }
  }

  private handleFrame (from: PeerContact, frame: Uint8Array): Uint8Array {
    if (!this.running) throw new OhtError('OHT_NOT_STARTED', 'node is stopped')
    this.stats.bytesIn += frame.byteLength
    const fromId = this.idOf(from.publicKey)
    const fromKey = idPrefix(fromId)
    // A peer that talks to us is back (a restarted onion service): lookups may ask it again.
    if (this.unreachable.size > 0) this.unreachable.delete(fromKey)
    if (!this.rateLimiter.take(fromKey)) {
      this.stats.rateLimited++
      throw new OhtError('OHT_RATE_LIMITED', 'too many requests: slow down and retry later')
    }
    const req = decodeRequest(frame, { maxValueBytes: this.cfg.maxValueBytes })
    // A sender that declares no dial addresses is a client: it is answered, never routed to.
    // Declared addresses can only be for the sender's own, transport-authenticated key. The
    // key and our hash of it are not frame views, and decoded address strings are fresh: no copy.
    if (req.addrs.length > 0) this.routingTable.add(fromId, { publicKey: from.publicKey, addrs: req.addrs }, this.clock.now(), true)
    let res: OhtResponse
    switch (req.type) {
      case 'ping':
        this.stats.requestsIn.ping++
        res = { type: 'pong' }
        break
      case 'find-node':
        this.stats.requestsIn.findNode++
        // No write token here: every PUT path looks up with GET, and an HMAC per FIND_NODE adds up.
        res = { type: 'nodes', contacts: this.closerContacts(req.target, fromId) }
        break
      case 'get': {
        this.stats.requestsIn.get++
        const held = this.store.get(req.key)
        const v: OhtResponse = { type: 'value', token: this.tokens.issue(from.publicKey, req.key), contacts: this.closerContacts(req.key, fromId, true) }
        if (held !== undefined) {
          v.seq = held.record.kind === 'mutable' ? held.record.seq : 0
          if (!req.metadataOnly) v.record = held.record
        }
        res = v
        break
      }
      case 'put':
        this.stats.requestsIn.put++
        res = { type: 'stored', grantedMs: this.acceptPut(from.publicKey, toHex(fromId), req) }
        break
    }
    const out = encodeResponse(res)
    this.stats.bytesOut += out.byteLength
    return out
  }

  /**
   * The k closest contacts we would vouch for: not the requester, and not contacts whose last
   * request failed (under churn, dead entries would otherwise crowd live peers out of every
   * answer; they return to answers as soon as they answer again). Contacts silent for
   * `staleAfterMs` only fill what fresh ones leave, up to `silentInAnswers` contacts in all:
   * few for a far target (that answer only has to move the asker one hop closer, which fresh
   * contacts do without timeouts), more for a target in our own neighbourhood, and all k for a
   * record's key there (`forRecord`: a writer must find every live one of the k closest, and we
   * are who knows them). The asker sorts by distance itself.
   */
  private closerContacts (target: Uint8Array, exclude: Uint8Array, forRecord = false): WireContact[] {
    const out: WireContact[] = []
    const k = this.cfg.k
    const freshSince = this.clock.now() - this.cfg.staleAfterMs
    let silent: RoutingEntry[] | undefined
    // The requester was just added to the table (if routable): skip its entry by identity.
    const requester = this.routingTable.get(exclude)
    for (const e of this.routingTable.closest(target, k + Math.ceil(k / 2))) {
      if (e.failures > 0 || e === requester) continue
      if (e.lastSeen < freshSince) { (silent ??= []).push(e); continue }
      out.push(e)
      if (out.length >= k) return out
    }
    const fillTo = this.routingTable.bucketIndex(target) < this.hoodBucket() ? this.cfg.silentFar : forRecord ? k : this.cfg.silentNear
    if (silent !== undefined) for (let i = 0; i < silent.length && out.length < fillTo; i++) out.push(silent[i])
    return out
  }

  private hoodAt = -Infinity
  private hood = 0
  /** neighbourhoodBucket(), recomputed at most once a minute (answers ask for it on every request). */
  private hoodBucket (): number {
    const now = this.clock.now()
    if (now - this.hoodAt >= MINUTE) {
      this.hoodAt = now
      this.hood = this.neighbourhoodBucket()
    }
    return this.hood
  }

  /** The bucket holding our k-th closest contact (0 while we know fewer than k): where our neighbourhood starts. */
  private neighbourhoodBucket (): number {
    // Every contact of a deeper bucket is closer to us than any of a shallower one: counting
    // bucket sizes from the deepest finds the k-th closest's bucket without ranking anyone.
    const table = this.routingTable
    let seen = 0
    for (let i = table.deepestBucket; i >= 0; i--) {
      seen += table.bucketSize(i)
      if (seen >= this.cfg.k) return i
    }
    return 0
  }

  /** Validates and stores a PUT; returns the granted lifetime or throws a coded OhtError. */
  private acceptPut (requester: Uint8Array, source: string, req: Extract<OhtRequest, { type: 'put' }>): number {
    try {
      if (!this.tokens.check(requester, req.key, req.token)) {
        throw new OhtError('OHT_BAD_TOKEN', 'write token missing, wrong or expired: send GET or FIND_NODE for this key first')
      }
      return this.storeRecord(req.key, req.record, req.remainingMs, source, req.cas)
    } catch (err) {
      this.stats.recordsRejected++
      throw err
    }
  }

  /** The storing node's checks, in order of cost: size, key, seq/CAS, signature, quotas. */
  private storeRecord (key: Uint8Array, record: OhtRecord, remainingMs: number, source: string | undefined, cas?: number): number {
    const { maxValueBytes } = this.cfg
    if (record.value.byteLength > maxValueBytes) {
      throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${record.value.byteLength} bytes; this node stores at most ${maxValueBytes}`)
    }
    if (!bytesEqual(recordKey(record), key)) throw new OhtError('OHT_KEY_MISMATCH', 'record does not hash to the key it was sent under')
    const now = this.clock.now()
    const held = this.store.get(key)
    // The lifetime left (a replica carries less than the writer's TTL) within the node's bounds.
    if (remainingMs <= 0) throw new OhtError('OHT_EXPIRED', 'record lifetime is over: publish a fresh one')
    const granted = this.clampTtl(Math.min(record.ttlMs, remainingMs))
    if (held !== undefined && held.record.kind === 'mutable' && record.kind === 'mutable') {
      if (cas !== undefined && held.record.seq !== cas) {
        throw new OhtError('OHT_CAS_MISMATCH', `compare-and-swap failed: stored seq is ${held.record.seq}, expected ${cas}`)
      }
      if (sameWrite(held.record, record)) {
        this.store.touch(key, now + granted, now)
        return granted
      }
      if (record.seq <= held.record.seq) {
        throw new OhtError('OHT_SEQ_STALE', `seq ${record.seq} is not above the stored seq ${held.record.seq}: write with a higher seq`)
      }
    }
    validateRecord(key, record, maxValueBytes, this.verifier)
    if (held !== undefined && held.record.kind === 'immutable') {
      this.store.touch(key, now + granted, now)
      return granted
    }
    const size = record.value.byteLength
    const heldBytes = held?.record.value.byteLength ?? 0
    if (source !== undefined) {
      const u = this.store.usage(source)
      const mine = held?.source === source
      if (u.records + (mine ? 0 : 1) > this.cfg.maxRecordsPerPeer || u.bytes + size - (mine ? heldBytes : 0) > this.cfg.maxBytesPerPeer) {
        throw new OhtError('OHT_QUOTA', 'this peer is over its storage quota here: let older records expire first')
      }
    }
    if (this.store.size + (held === undefined ? 1 : 0) > this.cfg.maxStoreRecords || this.store.bytes + size - heldBytes > this.cfg.maxStoreBytes) {
      throw new OhtError('OHT_QUOTA', 'this node is full: try other nodes or later')
    }
    this.store.put({ key, record, expiresAt: now + granted, storedAt: now, refreshedAt: now, source })
    this.stats.recordsStored++
    return granted
  }

  private clampTtl (ttlMs: number): number {
    return Math.min(this.cfg.ttlMax, Math.max(this.cfg.ttlMin, ttlMs))
  }

  // ------------------------------------------------------------------ lookups

  private async iterate (target: Uint8Array, kind: 'find-node' | 'get' | 'get-meta', purpose: LookupPurpose, options: {
    disjointPaths?: number
    signal?: AbortSignal
    onEvent?: (e: LookupEvent) => void
    onValue?: (record: OhtRecord) => void
    done?: () => boolean
    /** Completeness over latency (writes, findClosest). */
    complete?: boolean
    /** How many closest peers must answer (default k): fewer when only contacts are wanted. */
    width?: number
    /** Starting contacts instead of our routing table's closest (bootstrap). */
    seeds?: WireContact[]
  }): Promise<LookupOutcome> {
    this.assertRunning()
    if (!(target instanceof Uint8Array) || target.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'lookup target must be 32 bytes')
    this.stats.lookups++
    const by = this.stats.lookupsBy[purpose]
    by.lookups++
    const d = options.disjointPaths ?? this.cfg.disjointPaths
    const bucket = this.routingTable.bucketIndex(target)
    if (bucket < ID_BITS) this.routingTable.markRefreshed(bucket, this.clock.now())
    const op = this.opSignal(options.signal)
    try {
      const outcome = await this.runIterate(target, kind, d, options, op.signal, by)
      // Late answers still update the routing table; the op signal lives until they land.
      void outcome.drained.then(() => { op.clear() })
      return outcome
    } catch (err) {
      op.clear()
      throw err
    }
  }

  private async runIterate (target: Uint8Array, kind: 'find-node' | 'get' | 'get-meta', d: number, options: {
    onEvent?: (e: LookupEvent) => void
    onValue?: (record: OhtRecord) => void
    done?: () => boolean
    complete?: boolean
    width?: number
    seeds?: WireContact[]
  }, signal: AbortSignal, by: { queries: number, failed: number }): Promise<LookupOutcome> {
    return await runLookup({
      target,
      selfId: this.id,
      seeds: options.seeds ?? this.seedsFor(target, this.cfg.k * Math.max(1, d)),
      k: Math.min(2 * this.cfg.k, options.width ?? this.cfg.k),
      alpha: this.cfg.alpha,
      disjointPaths: d,
      verifyId: (id, pk) => this.verifyId(id, pk),
      skip: (prefix) => this.isUnreachable(prefix),
      query: async (c, querySignal) => {
        this.stats.lookupQueries++; by.queries++
        try { return await this.query(c, kind, target, querySignal) } catch (err) { by.failed++; throw err }
      },
      clock: this.clock,
      stallAfter: (c) => this.rtt.stallAfter(idPrefix(c.id)),
      waitForStalled: options.complete === true,
      onEvent: options.onEvent,
      onValue: options.onValue,
      done: options.done,
      signal
    })
  }

  /**
   * Peers whose last request failed, by id prefix, until `unreachableForMs` passes: other
   * peers' answers keep naming a departed peer for a while (they have not asked it since), and
   * without this memory every lookup that meets it again pays a full timeout again.
   * Bounded; the oldest entry goes first.
   */
  private noteUnreachable (key: number): void {
    const u = this.unreachable
    u.delete(key)
    if (u.size >= UNREACHABLE_MAX) u.delete(u.keys().next().value as number)
    u.set(key, this.clock.now() + this.cfg.unreachableForMs)
  }

  private isUnreachable (key: number): boolean {
    if (this.unreachable.size === 0) return false
    const until = this.unreachable.get(key)
    if (until === undefined) return false
    if (until > this.clock.now()) return true
    this.unreachable.delete(key)
    return false
  }

  /**
   * A lookup's starting contacts: the `want` closest that did not fail their last request, from
   * a window half again as wide (spares, so a lookup under churn does not run dry below k
   * answers while we know live peers); failed ones only when nothing better is known.
   */
  private seedsFor (target: Uint8Array, want: number): RoutingEntry[] {
    const seeds: RoutingEntry[] = []
    let failed: RoutingEntry[] | undefined
    for (const e of this.routingTable.closest(target, want + Math.ceil(want / 2))) {
      if (e.failures > 0) { (failed ??= []).push(e); continue }
      seeds.push(e)
    }
    if (failed !== undefined) for (let i = 0; i < failed.length && seeds.length < want; i++) seeds.push(failed[i])
    return seeds
  }

  /** Streams a lookup's progress; ends with a `final-peers` event. */
  async * lookup (target: Uint8Array, options: LookupOptions = {}): AsyncGenerator<LookupEvent, void, undefined> {
    const controller = new AbortController()
    const scoped = scopedSignal(this.clock, undefined, options.signal, controller.signal)
    const queue: LookupEvent[] = []
    let wake: (() => void) | undefined
    let finished = false
    let failure: unknown
    this.iterate(target, 'find-node', 'user', {
      disjointPaths: options.disjointPaths,
      signal: scoped.signal,
      complete: true,
      onEvent: (e) => { queue.push(e); wake?.() }
    }).then(() => { finished = true; wake?.() }, (err: unknown) => { failure = err; finished = true; wake?.() })
    try {
      for (;;) {
        const e = queue.shift()
        if (e !== undefined) { yield e; continue }
        if (finished) break
        await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
      }
      if (failure !== undefined) throw failure
    } finally {
      controller.abort() // the consumer stopped early: cancel the requests in flight
      scoped.clear()
    }
  }

  async findClosest (target: Uint8Array, options: AbortOptions = {}): Promise<PeerContact[]> {
    const { closest } = await this.iterate(target, 'find-node', 'user', { signal: options.signal, complete: true })
    return closest.map(c => c.contact)
  }

  // ------------------------------------------------------------------ bootstrap

  async bootstrap (contacts: PeerContact[], options: AbortOptions = {}): Promise<{ peers: number }> {
    this.assertRunning()
    const others = contacts.filter(c => !bytesEqual(c.publicKey, this.identity.publicKey))
    if (others.length === 0 && this.routingTable.size === 0) return { peers: 0 }
    const given = others.map(c => ({ id: this.idOf(c.publicKey), contact: c }))
    // Joining (an empty table): the self-lookup starts at the given peers, and its FIND_NODE
    // is their first contact (every peer that answers enters the table), so no separate ping.
    // Already joined: the lookup may never ask a far given peer, so it is pinged first.
    if (this.routingTable.size > 0 && given.length > 0) await this.pingAll(given, options)
    await this.iterate(this.id, 'find-node', 'bootstrap', { signal: options.signal, seeds: [...given, ...this.seedsFor(this.id, this.cfg.k)] })
    // Our own records (a restart's journal, or written while we had no peers) go out now.
    if (this.routingTable.size > 0 && this.own.size > 0) {
      const now = this.clock.now()
      for (const own of this.own.values()) if (own.record !== undefined) own.nextAt = Math.min(own.nextAt, now)
      this.republishDue(now)
    }
    if (others.length > 0 && this.routingTable.size === 0) {
      throw new OhtError('OHT_NO_PEERS', `none of the ${others.length} bootstrap peers answered: check their addresses and that they are running`)
    }
    if (this.routingTable.size > 0) {
      // Fill the farthest buckets too (they cover most of the id space); the rest fill from
      // inbound traffic and the maintenance refresh, which keeps joins cheap under churn.
      const deepest = this.routingTable.deepestBucket
      for (let i = 0; i < deepest && i < this.bootstrapRefreshes; i++) {
        if (this.routingTable.bucketSize(i) >= this.cfg.k) continue
        await this.iterate(this.randomIdInBucket(i), 'find-node', 'bootstrap', { signal: options.signal, width: this.fillWidth })
      }
    }
    return { peers: this.routingTable.size }
  }

  /** Pings each peer once (failures are only logged: bootstrap judges by the table). */
  private async pingAll (peers: Array<{ id: Uint8Array, contact: PeerContact }>, options: AbortOptions): Promise<void> {
    const op = this.opSignal(options.signal)
    try {
      await Promise.all(peers.map(async (p) => {
        try {
          this.stats.probes++
          await this.request(p, { type: 'ping', addrs: this.contact.addrs }, op.signal)
        } catch (err) {
          throwIfAborted(op.signal)
          this.log('bootstrap peer unreachable: %s', String(err))
        }
      }))
    } finally {
      op.clear()
    }
  }

  /**
   * A far bucket is filled, not announced to: every peer that answers a lookup enters the
   * table, so a lookup that stops once a quarter of k answered fills it for a third of the
   * messages of a full one (the self-lookup, which tells our neighbourhood we exist, stays full).
   */
  private get fillWidth (): number { return Math.max(this.cfg.alpha, Math.ceil(this.cfg.k / 4)) }

  randomIdInBucket (index: number): Uint8Array {
    const id = this.rng.bytes(32)
    const byte = index >> 3
    const bit = 7 - (index & 7)
    for (let i = 0; i < byte; i++) id[i] = this.id[i]
    const keepMask = (0xff << (bit + 1)) & 0xff // bits above `bit` come from our id
    const flip = 1 << bit
    id[byte] = (this.id[byte] & keepMask) | ((~this.id[byte]) & flip) | (id[byte] & (flip - 1))
    return id
  }

  // ------------------------------------------------------------------ put

  async putImmutable (value: Uint8Array, options: { ttlMs?: number } & AbortOptions = {}): Promise<PutResult> {
    return await this.put({ kind: 'immutable', value: value.slice(), ttlMs: options.ttlMs ?? this.cfg.ttlDefault }, options)
  }

  async putMutable (options: PutMutableOptions): Promise<PutResult> {
    this.assertRunning()
    const salt = options.salt ?? new Uint8Array(0)
    const key = recordKeyOf(this.identity.publicKey, salt)
    const ttlMs = options.ttlMs ?? this.cfg.ttlDefault
    if (options.value.byteLength > this.cfg.maxValueBytes) {
      throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${options.value.byteLength} bytes; at most ${this.cfg.maxValueBytes} are allowed`)
    }
    this.stats.puts++
    // One lookup learns both the write tokens and the highest valid seq out there.
    let highest = -1
    const mine = this.own.get(toHex(key))
    if (mine?.seq !== undefined) highest = mine.seq
    const local = this.store.get(key)
    if (local?.record.kind === 'mutable') highest = Math.max(highest, local.record.seq)
    const found = await this.iterate(key, 'get', 'put', { signal: options.signal, complete: true })
    for (const c of found.closest) {
      const r = c.result?.record
      if (r?.kind !== 'mutable' || r.seq <= highest) continue
      try { validateRecord(key, r, this.cfg.maxValueBytes, this.verifier); highest = r.seq } catch {}
    }
    if (options.cas !== undefined && highest !== options.cas) {
      throw new OhtError('OHT_CAS_MISMATCH', `compare-and-swap failed: the current seq is ${highest < 0 ? 'none' : highest}, expected ${options.cas}`)
    }
    const seq = options.seq ?? highest + 1
    const record = signMutable(this.identity, { salt: salt.slice(), seq, ttlMs, value: options.value.slice() })
    await this.journalSave(key, record, this.clock.now() + this.clampTtl(ttlMs))
    return await this.commit(key, record, found, ttlMs, { cas: options.cas, signal: options.signal })
  }

  async put (record: OhtRecord, options: AbortOptions = {}): Promise<PutResult> {
    this.assertRunning()
    const key = recordKey(record)
    validateRecord(key, record, this.cfg.maxValueBytes, this.verifier)
    if (record.kind === 'immutable') this.stats.puts++
    await this.journalSave(key, record, this.clock.now() + this.clampTtl(record.ttlMs))
    const found = await this.iterate(key, 'get-meta', 'put', { signal: options.signal, complete: true })
    return await this.commit(key, record, found, record.ttlMs, { signal: options.signal })
  }

  /**
   * PUTs `record` to the k closest answered peers (and here, if we are among them). A PUT that
   * fails hands its slot to the next-closest peer that answered the lookup, so churn between
   * the lookup and the write does not cost replicas.
   */
  private async commit (key: Uint8Array, record: OhtRecord, found: LookupOutcome, remainingMs: number, options: { cas?: number, signal?: AbortSignal, republish?: boolean }): Promise<PutResult> {
    // Whole milliseconds on the wire: clocks (the simulator's among them) may tell fractions.
    remainingMs = Math.floor(remainingMs)
    const errors: PutError[] = []
    const k = this.cfg.k
    const candidates = found.answered.filter(c => c.result?.token !== undefined)
    let stored = 0
    let attempted = 0
    // Store here too when we are among the k closest (or the network is smaller than k).
    const kth = candidates[k - 1]
    const local = kth !== undefined ? compareDistance(this.id, kth.id, key) < 0 : this.routingTable.size < k
    let slots = k
    if (local) {
      attempted++
      slots--
      try { this.storeRecord(key, record, remainingMs, undefined, options.cas); stored++ } catch (err) {
        errors.push({ peer: this.contact, code: isCodedError(err) ? err.code : 'OHT_INTERNAL', message: err instanceof Error ? err.message : String(err) })
      }
    }
    const op = this.opSignal(options.signal)
    let next = 0
    // Refusals (stale seq, CAS mismatch, quota) are answers: they do not pass the slot on.
    const retryable = (err: unknown): boolean => !(err instanceof OhtRemoteError) || err.code === 'OHT_RATE_LIMITED' || err.code === 'OHT_NOT_STARTED'
    const worker = async (): Promise<void> => {
      while (next < candidates.length && !op.signal.aborted) {
        const c = candidates[next++]
        attempted++
        try {
          const req: OhtRequest = { type: 'put', addrs: this.contact.addrs, token: c.result?.token as Uint8Array, key, remainingMs, record }
          if (options.cas !== undefined) req.cas = options.cas
          const res = await this.request(c, req, op.signal)
          if (res.type !== 'stored') throw new OhtError('OHT_BAD_RESPONSE', `peer answered PUT with a ${res.type} frame`)
          stored++
          return
        } catch (err) {
          errors.push({ peer: c.contact, code: isCodedError(err) ? err.code : 'OHT_INTERNAL', message: err instanceof Error ? err.message : String(err) })
          if (!retryable(err)) return
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(slots, candidates.length) }, worker))
    op.clear()
    throwIfAborted(options.signal)
    if (options.republish !== true) {
      const now = this.clock.now()
      const own: OwnRecord = { key, record, expiresAt: now + remainingMs, nextAt: now + this.cfg.republishIntervalMs }
      if (record.kind === 'mutable') own.seq = record.seq
      this.own.set(toHex(key), own)
    }
    const result: PutResult = { key, stored, attempted, closest: found.closest.map(c => c.contact), errors }
    if (record.kind === 'mutable') result.seq = record.seq
    return result
  }

  // ------------------------------------------------------------------ get

  async get (key: Uint8Array, options: AbortOptions = {}): Promise<GetResult | undefined> {
    this.assertRunning()
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'key must be 32 bytes')
    this.stats.gets++
    let best: OhtRecord | undefined
    let responses = 0
    const consider = (r: OhtRecord): void => {
      if (best !== undefined) {
        if (best.kind === 'immutable' || r.kind === 'immutable') { if (r.kind === best.kind) responses++; return }
        if (r.seq < best.seq) return
        if (r.seq === best.seq) { if (sameWrite(best, r)) responses++; return }
      }
      try { validateRecord(key, r, this.cfg.maxValueBytes, this.verifier) } catch { return }
      best = r
      responses = 1
    }
    const local = this.store.get(key)
    if (local !== undefined) consider(local.record)
    if (best?.kind !== 'immutable' && this.routingTable.size > 0) {
      await this.iterate(key, 'get', 'user', {
        signal: options.signal,
        onValue: consider,
        done: () => best?.kind === 'immutable'
      })
      // Nothing among the k closest: under churn they may all be newcomers the record has not
      // reached yet (republish and replication run hourly), while its holders sit just
      // beyond them. A miss costs one wider lookup: the 2k closest must answer.
      if (best === undefined && this.routingTable.size > 0) {
        this.stats.widenedGets++
        await this.iterate(key, 'get', 'user', {
          signal: options.signal,
          onValue: consider,
          done: () => best !== undefined,
          width: 2 * this.cfg.k
        })
      }
    }
    if (best === undefined) return undefined
    const value = best.value.slice()
    const record: OhtRecord = best.kind === 'immutable' ? { ...best, value } : { ...best, value, salt: best.salt.slice(), publicKey: best.publicKey.slice(), signature: best.signature.slice() }
    const out: GetResult = { record, value: value.slice(), responses }
    if (record.kind === 'mutable') out.seq = record.seq
    return out
  }

  // ------------------------------------------------------------------ maintenance

  /** One maintenance tick: all periodic work that is due, bounded per tick. */
  private tick (): void {
    if (!this.running || this.ticking) return
    this.ticking = true
    try {
      const now = this.clock.now()
      // Expired records go by the store's own timer; idle rate-limit buckets every few minutes.
      if (now >= this.nextSweepAt) {
        this.nextSweepAt = now + 5 * MINUTE
        this.rateLimiter.sweep()
      }
      this.probeStaleBuckets(now)
      this.refreshBuckets(now)
      this.republishDue(now)
      this.replicateDue(now)
    } finally {
      this.ticking = false
    }
  }

  /** Runs background work that dies with the node. */
  private spawn (what: string, work: (signal: AbortSignal) => Promise<unknown>): void {
    this.background++
    work(this.controller.signal).catch((err: unknown) => {
      if (this.running) this.log('%s failed: %s', what, err instanceof Error ? err.message : String(err))
    }).finally(() => { this.background-- })
  }

  /**
   * One liveness probe per `probeIntervalMs`: first the least recently seen of our own k
   * closest contacts (the ones we hand out for keys near us: a dead one there crowds live peers
   * out of our answers until a failed request marks it), else the least recently seen contact
   * of a full bucket whose replacement candidates wait for a slot. Only contacts silent for
   * `probeAfterMs` are probed.
   */
  private probeStaleBuckets (now: number): void {
    if (now < this.nextProbeAt || this.routingTable.size === 0) return
    const silent = (e: RoutingEntry | undefined): boolean => e !== undefined && now - e.lastSeen >= this.cfg.probeAfterMs
    let target: RoutingEntry | undefined
    for (const e of this.routingTable.closest(this.id, this.cfg.k)) {
      if (silent(e) && (target === undefined || e.lastSeen < target.lastSeen)) target = e
    }
    const deepest = this.routingTable.deepestBucket
    for (let i = 0; i <= deepest && target === undefined; i++) {
      if (this.routingTable.replacementCount(i) === 0) continue
      const oldest = this.routingTable.oldest(i)
      if (silent(oldest)) target = oldest
    }
    // Looked at most once per interval, found or not: the scan itself is not free either.
    this.nextProbeAt = now + this.cfg.probeIntervalMs
    if (target === undefined) return
    const peer = target
    this.stats.probes++
    this.spawn('probe', async (signal) => {
      try { await this.request(peer, { type: 'ping', addrs: this.contact.addrs }, signal) } catch (err) { this.stats.probesFailed++; throw err }
    })
  }


  /**
   * Bucket refresh, Kademlia style but frugal (every message is an onion round trip): the
   * buckets of our own neighbourhood (from the one holding our k-th closest contact down) are
   * all refreshed by one self-lookup; a farther bucket gets a random lookup only when no lookup
   * went through it for `refreshIntervalMs` and it holds fewer than α contacts (its dead
   * contacts are found by lookups and probes and replaced from its candidates).
   */
  private refreshBuckets (now: number): void {
    const table = this.routingTable
    if (table.size === 0) return
    const interval = this.cfg.refreshIntervalMs
    // Cheap checks first: most ticks find nothing due, and until the soonest bucket comes due
    // (lookups only push that time back) there is nothing to look at.
    if (now < this.nextRefreshCheckAt) return
    let due = false
    let soonest = Infinity
    for (let i = 0, deepest = table.deepestBucket + 1; i <= deepest && i < ID_BITS; i++) {
      const at = table.lastRefreshed(i) + interval
      if (at <= now) { due = true; break }
      if (at < soonest) soonest = at
    }
    if (!due) { this.nextRefreshCheckAt = soonest; return }
    const hood = this.neighbourhoodBucket()
    let started = 0
    for (let i = 0; i < hood && started < this.cfg.refreshesPerTick; i++) {
      if (now - table.lastRefreshed(i) < interval) continue
      table.markRefreshed(i, now)
      // A far bucket only serves first hops: α contacts (one lookup's first round) will do.
      // Inbound requests keep filling it; the deep ones of a big network can never be full.
      if (table.bucketSize(i) >= this.cfg.alpha) continue
      started++
      const target = this.randomIdInBucket(i)
      this.spawn('refresh', async (signal) => await this.iterate(target, 'find-node', 'refresh', { signal, width: this.fillWidth }))
    }
    // The self-lookup covers every bucket from the neighbourhood's down (and the first empty
    // one below): any of them due makes it due, or a new deep bucket would stay due forever.
    const deepest = Math.min(ID_BITS - 1, Math.max(hood, table.deepestBucket + 1))
    let hoodDue = false
    for (let i = Math.min(hood, ID_BITS - 1); i <= deepest && !hoodDue; i++) hoodDue = now - table.lastRefreshed(i) >= interval
    if (started < this.cfg.refreshesPerTick && hoodDue) {
      for (let i = hood; i <= deepest; i++) table.markRefreshed(i, now)
      // Half of k answering is enough: it tells our nearest neighbours we are alive and finds
      // who joined near us; the farther half hears of us in their answers (measured on 10,000
      // simulated nodes over 9 h: 7 % fewer requests, GET success and write reach unchanged).
      this.spawn('refresh', async (signal) => await this.iterate(this.id, 'find-node', 'refresh', { signal, width: Math.ceil(this.cfg.k / 2) }))
    }
  }


  private republishDue (now: number): void {
    for (const [id, own] of this.own) {
      const record = own.record
      if (record === undefined) continue // only a seq is kept
      if (own.expiresAt <= now) {
        // A mutable key keeps its seq (the next write goes above it); the rest is forgotten.
        if (own.seq !== undefined) own.record = undefined
        else this.own.delete(id)
        this.journalExpire(id)
        continue
      }
      if (own.nextAt > now) continue
      own.nextAt = now + this.cfg.republishIntervalMs
      this.stats.republished++
      this.spawn('republish', async (signal) => {
        const found = await this.iterate(own.key, 'get-meta', 'republish', { signal, complete: true })
        await this.commit(own.key, record, found, own.expiresAt - this.clock.now(), { signal, republish: true })
      })
    }
  }

  /**
   * Records held for others that no PUT refreshed for a replicate interval are PUT again to
   * the current k closest. Holders of the same write just refresh it (no signature check), and
   * that refresh resets their own replication clock, so about one holder per interval does the
   * work instead of all k.
   */
  private replicateDue (now: number): void {
    if (now >= this.nextReplicationPass) {
      this.nextReplicationPass = now + this.cfg.replicateIntervalMs / 2
      for (const e of this.store.entries()) {
        if (e.source !== undefined && now - e.refreshedAt >= this.cfg.replicateIntervalMs) this.replicationQueue.push(toHex(e.key))
      }
    }
    let started = 0
    while (started < this.cfg.replicationsPerTick && this.replicationQueue.length > 0) {
      const id = this.replicationQueue.shift() as string
      const entry = this.store.get(fromHexKey(id))
      if (entry === undefined || now - entry.refreshedAt < this.cfg.replicateIntervalMs) continue
      this.store.touch(entry.key, entry.expiresAt, now)
      // Our own table already knows k live contacts closer to the key: we have drifted out of
      // its k closest, and the holders inside do the work (no lookup spent to learn it).
      if (this.outsideClosest(entry.key)) { this.stats.replicationsSkipped++; continue }
      started++
      this.spawn('replicate', async (signal) => { await this.replicate(entry, signal) })
    }
  }

  /**
   * True if the routing table holds k contacts closer to `key` than this node that answered
   * recently (within `staleAfterMs`, none failing): only then is it safe to leave replication
   * to them. Contacts merely never tried count for nothing, since under churn many are gone.
   */
  private outsideClosest (key: Uint8Array): boolean {
    const k = this.cfg.k
    const freshSince = this.clock.now() - this.cfg.staleAfterMs
    let closer = 0
    for (const e of this.routingTable.closest(key, 2 * k)) {
      if (compareDistance(e.id, this.id, key) > 0) return false
      if (e.failures === 0 && e.lastSeen >= freshSince && ++closer >= k) return true
    }
    return false
  }

  private async replicate (entry: StoredRecord, signal: AbortSignal): Promise<void> {
    const key = entry.key.slice()
    const { closest } = await this.iterate(key, 'get-meta', 'replicate', { signal, complete: true })
    const current = this.store.get(key)
    if (current === undefined) return
    // Nodes that joined closer to the key have pushed us out of its k closest: the holders
    // still inside do the replicating (otherwise every former holder would, every interval).
    const kth = closest[this.cfg.k - 1]
    if (kth !== undefined && compareDistance(this.id, kth.id, key) > 0) { this.stats.replicationsSkipped++; return }
    const record = current.record
    const seq = record.kind === 'mutable' ? record.seq : 0
    // A peer holding a newer write needs nothing from us.
    const targets = closest.filter(c => c.result?.seq === undefined || c.result.seq <= seq)
    const remainingMs = Math.floor(current.expiresAt - this.clock.now())
    if (remainingMs <= 0) return
    await Promise.all(targets.map(async (c) => {
      const token = c.result?.token
      if (token === undefined) return
      try {
        await this.request(c, { type: 'put', addrs: this.contact.addrs, token, key, remainingMs, record }, signal)
        this.stats.replicated++
      } catch {}
    }))
  }

  /** Background operations still running (tests wait for zero). */
  get pendingWork (): number { return this.background }

  /** Runs one maintenance tick now (tests and the simulator's fast paths). */
  runMaintenance (): void { this.tick() }
}

/**
 * Node ids by public-key object, for every node in the process: transports hand out the same
 * authenticated key object for every request of a connection (the simulator one per host), so
 * each is hashed once. Weak: an entry lives as long as its key object. Keys are never mutated
 * after a transport authenticated them.
 */
const idsByKeyObject = new WeakMap<Uint8Array, Uint8Array>()

/** Peers remembered as unreachable, per node (the oldest goes first). */
const UNREACHABLE_MAX = 256

/**
 * Public keys whose hash was checked against the id a peer claimed for them, by id, for every
 * node in the process (a memo of SHA-256, not a trust decision: a hit needs the same key bytes).
 * Lookups meet the same contacts again and again in answers; in the simulator thousands of
 * nodes share it. Bounded: emptied when full.
 */
const verifiedKeys = new IdMap<Uint8Array>()
const VERIFIED_KEYS_MAX = 65_536

function recordKeyOf (publicKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return sha256(publicKey, salt)
}

function fromHexKey (hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

