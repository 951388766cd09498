/**
 * The node's operations: iterative lookups (and their API stream), bootstrap, puts (single
 * records, and values of multi-value keys in batches), gets (the best single record; the merged
 * set of a multi-value key, page by page).
 */
import { scopedSignal, throwIfAborted, type AbortOptions } from '../core/abort.ts'
import { bytesEqual, toHex } from '../core/bytes.ts'
import { isCodedError } from '../core/errors.ts'
import { MAX_PUT_MANY, type OhtRequest, type PutManyItem, type WireContact } from './codec.ts'
import { compareDistance, ID_BITS } from './distance.ts'
import { OhtError, OhtRemoteError } from './errors.ts'
import { idPrefix } from './id-map.ts'
import type { GetResult, GetValuesOptions, LookupOptions, PutError, PutMutableOptions, PutResult, PutValueOptions, ValuesResult } from './index.ts'
import type { RecordKind } from './kinds.ts'
import { runLookup, type Candidate, type LookupEvent, type LookupOutcome } from './lookup.ts'
import type { PeerContact } from './network.ts'
import type { OhtNodeImpl, OwnRecord } from './node.ts'
import { copyRecord, recordKey, type ImmutableRecord, type MutableRecord, sameWrite, signMutable, signValue, validateRecord, valueSlot, type OhtRecord, type ValueRecord } from './records.ts'
import type { RoutingEntry } from './routing-table.ts'
import type { QueryKind } from './rpc.ts'
import type { LookupPurpose } from './stats.ts'

export interface IterateOptions {
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
  /** The value kind asked for by 'values' / 'values-meta' lookups. */
  valueKind?: number
}

/** Most pages fetched from one holder for one get of a value set. */
const MAX_PAGES = 64

export class Operations {
  constructor (private readonly n: OhtNodeImpl) {}

  // ---------------------------------------------------------------- lookups

  async iterate (target: Uint8Array, kind: QueryKind, purpose: LookupPurpose, options: IterateOptions): Promise<LookupOutcome> {
    const n = this.n
    n.assertRunning()
    if (!(target instanceof Uint8Array) || target.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'lookup target must be 32 bytes')
    n.stats.lookups++
    const by = n.stats.lookupsBy[purpose]
    by.lookups++
    const d = options.disjointPaths ?? n.cfg.disjointPaths
    const bucket = n.routingTable.bucketIndex(target)
    if (bucket < ID_BITS) n.routingTable.markRefreshed(bucket, n.clock.now())
    const op = n.opSignal(options.signal)
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

  private async runIterate (target: Uint8Array, kind: QueryKind, d: number, options: IterateOptions, signal: AbortSignal, by: { queries: number, failed: number }): Promise<LookupOutcome> {
    const n = this.n
    const valueKind = options.valueKind ?? 0
    return await runLookup({
      target,
      selfId: n.id,
      seeds: options.seeds ?? this.seedsFor(target, n.cfg.k * Math.max(1, d)),
      k: Math.min(2 * n.cfg.k, options.width ?? n.cfg.k),
      alpha: n.cfg.alpha,
      disjointPaths: d,
      verifyId: (id, pk) => n.verifyId(id, pk),
      skip: (prefix) => n.isUnreachable(prefix),
      query: async (c, querySignal) => {
        n.stats.lookupQueries++; by.queries++
        try { return await n.rpc.query(c, kind, target, querySignal, valueKind) } catch (err) { by.failed++; throw err }
      },
      clock: n.clock,
      stallAfter: (c) => n.rtt.stallAfter(idPrefix(c.id)),
      waitForStalled: options.complete === true,
      onEvent: options.onEvent,
      onValue: options.onValue,
      done: options.done,
      signal
    })
  }

  /**
   * A lookup's starting contacts: the `want` closest that did not fail their last request, from
   * a window half again as wide (spares, so a lookup under churn does not run dry below k
   * answers while we know live peers); failed ones only when nothing better is known.
   */
  seedsFor (target: Uint8Array, want: number): RoutingEntry[] {
    const seeds: RoutingEntry[] = []
    let failed: RoutingEntry[] | undefined
    for (const e of this.n.routingTable.closest(target, want + Math.ceil(want / 2))) {
      if (e.failures > 0) { (failed ??= []).push(e); continue }
      seeds.push(e)
    }
    if (failed !== undefined) for (let i = 0; i < failed.length && seeds.length < want; i++) seeds.push(failed[i])
    return seeds
  }

  /** Streams a lookup's progress; ends with a `final-peers` event. */
  async * lookup (target: Uint8Array, options: LookupOptions = {}): AsyncGenerator<LookupEvent, void, undefined> {
    const controller = new AbortController()
    const scoped = scopedSignal(this.n.clock, undefined, options.signal, controller.signal)
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

  // ---------------------------------------------------------------- bootstrap

  async bootstrap (contacts: PeerContact[], options: AbortOptions = {}): Promise<{ peers: number }> {
    const n = this.n
    n.assertRunning()
    const others = contacts.filter(c => !bytesEqual(c.publicKey, n.contact.publicKey))
    if (others.length === 0 && n.routingTable.size === 0) return { peers: 0 }
    const given = others.map(c => ({ id: n.idOf(c.publicKey), contact: c }))
    // Joining (an empty table): the self-lookup starts at the given peers, and its FIND_NODE
    // is their first contact (every peer that answers enters the table), so no separate ping.
    // Already joined: the lookup may never ask a far given peer, so it is pinged first.
    if (n.routingTable.size > 0 && given.length > 0) await this.pingAll(given, options)
    await this.iterate(n.id, 'find-node', 'bootstrap', { signal: options.signal, seeds: [...given, ...this.seedsFor(n.id, n.cfg.k)] })
    // Our own records (a restart's journal, or written while we had no peers) go out now.
    if (n.routingTable.size > 0 && n.own.size > 0) n.maintenance.republishOwnNow()
    if (others.length > 0 && n.routingTable.size === 0) {
      throw new OhtError('OHT_NO_PEERS', `none of the ${others.length} bootstrap peers answered: check their addresses and that they are running`)
    }
    if (n.routingTable.size > 0) {
      // Fill the farthest buckets too (they cover most of the id space); the rest fill from
      // inbound traffic and the maintenance refresh, which keeps joins cheap under churn.
      const deepest = n.routingTable.deepestBucket
      for (let i = 0; i < deepest && i < n.cfg.bootstrapRefreshes; i++) {
        if (n.routingTable.bucketSize(i) >= n.cfg.k) continue
        await this.iterate(this.randomIdInBucket(i), 'find-node', 'bootstrap', { signal: options.signal, width: this.fillWidth })
      }
    }
    return { peers: n.routingTable.size }
  }

  /** Pings each peer once (failures are only logged: bootstrap judges by the table). */
  private async pingAll (peers: Array<{ id: Uint8Array, contact: PeerContact }>, options: AbortOptions): Promise<void> {
    const n = this.n
    const op = n.opSignal(options.signal)
    try {
      await Promise.all(peers.map(async (p) => {
        try {
          n.stats.probes++
          await n.rpc.request(p, { type: 'ping', addrs: n.contact.addrs }, op.signal)
        } catch (err) {
          throwIfAborted(op.signal)
          n.log('bootstrap peer unreachable: %s', String(err))
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
  get fillWidth (): number { return Math.max(this.n.cfg.alpha, Math.ceil(this.n.cfg.k / 4)) }

  randomIdInBucket (index: number): Uint8Array {
    const self = this.n.id
    const id = this.n.rng.bytes(32)
    const byte = index >> 3
    const bit = 7 - (index & 7)
    for (let i = 0; i < byte; i++) id[i] = self[i]
    const keepMask = (0xff << (bit + 1)) & 0xff // bits above `bit` come from our id
    const flip = 1 << bit
    id[byte] = (self[byte] & keepMask) | ((~self[byte]) & flip) | (id[byte] & (flip - 1))
    return id
  }

  // ---------------------------------------------------------------- put

  async putImmutable (value: Uint8Array, options: { ttlMs?: number } & AbortOptions = {}): Promise<PutResult> {
    const kind = this.n.cfg.kinds.byCode(0) as RecordKind
    return await this.put({ kind: 'immutable', value: value.slice(), ttlMs: options.ttlMs ?? kind.policy.ttlDefaultMs }, options)
  }

  async putMutable (options: PutMutableOptions): Promise<PutResult> {
    const n = this.n
    n.assertRunning()
    const kind = n.cfg.kinds.byCode(1) as RecordKind
    const salt = options.salt ?? new Uint8Array(0)
    const key = n.idOfRecordKey(n.identity.publicKey, salt)
    const ttlMs = options.ttlMs ?? kind.policy.ttlDefaultMs
    const max = Math.min(n.cfg.maxValueBytes, kind.policy.maxValueBytes)
    if (options.value.byteLength > max) {
      throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${options.value.byteLength} bytes; at most ${max} are allowed`)
    }
    n.stats.puts++
    // One lookup learns both the write tokens and the highest valid seq out there.
    let highest = -1
    const mine = n.own.get(toHex(key))
    if (mine?.seq !== undefined) highest = mine.seq
    const local = n.store.get(key)?.record
    if (local?.kind === 'mutable') highest = Math.max(highest, local.seq)
    const found = await this.iterate(key, 'get', 'put', { signal: options.signal, complete: true })
    for (const c of found.closest) {
      const r = c.result?.record
      if (r?.kind !== 'mutable' || r.seq <= highest) continue
      try { validateRecord(key, r, n.cfg.maxValueBytes, n.verifier); highest = r.seq } catch {}
    }
    if (options.cas !== undefined && highest !== options.cas) {
      throw new OhtError('OHT_CAS_MISMATCH', `compare-and-swap failed: the current seq is ${highest < 0 ? 'none' : highest}, expected ${options.cas}`)
    }
    const seq = options.seq ?? highest + 1
    const record = signMutable(n.identity, { salt: salt.slice(), seq, ttlMs, value: options.value.slice() })
    await n.journalSave(key, record, n.clock.now() + n.policy.clampTtl(kind, ttlMs))
    return await this.commit(key, record, found, ttlMs, { cas: options.cas, signal: options.signal })
  }

  /** Stores a ready-made (e.g. already signed) record at the k closest nodes. */
  async put (record: OhtRecord, options: AbortOptions = {}): Promise<PutResult> {
    const n = this.n
    n.assertRunning()
    if (record.kind === 'value') return await this.putValues(record.key, [record], options)
    const kind = n.cfg.kinds.of(record)
    const key = recordKey(record)
    validateRecord(key, record, Math.min(n.cfg.maxValueBytes, kind.policy.maxValueBytes), n.verifier)
    if (record.kind === 'immutable') n.stats.puts++
    await n.journalSave(key, record, n.clock.now() + n.policy.clampTtl(kind, record.ttlMs))
    const found = await this.iterate(key, 'get-meta', 'put', { signal: options.signal, complete: true })
    return await this.commit(key, record, found, record.ttlMs, { signal: options.signal })
  }

  /** Whether this node is among the k closest to `key` of those the lookup found. */
  private storesHere (key: Uint8Array, candidates: Candidate[]): boolean {
    const kth = candidates[this.n.cfg.k - 1]
    return kth !== undefined ? compareDistance(this.n.id, kth.id, key) < 0 : this.n.routingTable.size < this.n.cfg.k
  }

  /**
   * PUTs `record` to the k closest answered peers (and here, if we are among them). A PUT that
   * fails hands its slot to the next-closest peer that answered the lookup, so churn between
   * the lookup and the write does not cost replicas.
   */
  async commit (key: Uint8Array, record: OhtRecord, found: LookupOutcome | undefined, remainingMs: number, options: { cas?: number, signal?: AbortSignal, republish?: boolean }): Promise<PutResult> {
    const n = this.n
    // Whole milliseconds on the wire: clocks (the simulator's among them) may tell fractions.
    remainingMs = Math.floor(remainingMs)
    const errors: PutError[] = []
    const k = n.cfg.k
    const candidates = (found?.answered ?? []).filter(c => c.result?.token !== undefined)
    let stored = 0
    let attempted = 0
    // Store here too when we are among the k closest (or the network is smaller than k).
    const local = this.storesHere(key, candidates)
    let slots = k
    if (local) {
      attempted++
      slots--
      try { n.policy.store(key, record, remainingMs, undefined, options.cas); stored++ } catch (err) {
        errors.push({ peer: n.contact, code: isCodedError(err) ? err.code : 'OHT_INTERNAL', message: err instanceof Error ? err.message : String(err) })
      }
    }
    const sent = await this.toHolders(candidates, slots, errors, options.signal, async (c, signal) => {
      const req: OhtRequest = { type: 'put', addrs: n.contact.addrs, token: c.result?.token as Uint8Array, key, remainingMs, record }
      if (options.cas !== undefined) req.cas = options.cas
      const res = await n.rpc.request(c, req, signal)
      if (res.type !== 'stored') throw new OhtError('OHT_BAD_RESPONSE', `peer answered PUT with a ${res.type} frame`)
      return true
    })
    stored += sent.stored
    attempted += sent.attempted
    if (options.republish !== true) {
      const now = n.clock.now()
      const own: OwnRecord = { key, record, expiresAt: now + remainingMs, nextAt: now + n.cfg.republishIntervalMs }
      if (record.kind === 'mutable') own.seq = record.seq
      n.own.set(toHex(key), own)
    }
    const result: PutResult = { key, stored, attempted, wanted: Math.min(k, candidates.length + (local ? 1 : 0)) || 1, storedHere: local && errors.every(e => e.peer !== n.contact), closest: (found?.closest ?? []).map(c => c.contact), errors }
    if (record.kind === 'mutable') result.seq = record.seq
    return result
  }

  /** Writes one value of a multi-value key (signed here, or by `options.signer`). */
  async putValue (key: Uint8Array, options: PutValueOptions): Promise<PutResult> {
    const n = this.n
    n.assertRunning()
    const kind = n.cfg.kinds.valueKind(options.kind ?? 'set')
    checkKey(key)
    const signer = options.signer ?? n.identity
    const id = options.id
    const slotId = ownValueId(key, kind.code, signer.publicKey, id)
    const last = n.own.get(slotId)?.seq ?? -1
    // Without a seq of our own: above anything we wrote, and the clock (a writer that lost its
    // journal still moves forward).
    const seq = options.seq ?? Math.max(last + 1, Math.floor(n.clock.now()))
    const record = signValue(signer, {
      namespace: kind.name, kindCode: kind.code, key: key.slice(), id: id.slice(), seq,
      ttlMs: options.ttlMs ?? kind.policy.ttlDefaultMs,
      ...(options.deleted === true ? { deleted: true } : { value: (options.value ?? new Uint8Array(0)).slice() })
    })
    return await this.putValues(key, [record], options)
  }

  /**
   * Stores ready-made values of one multi-value key at its k closest nodes: one lookup, then
   * PUT_MANY batches to each holder (a value refused by a holder is reported, the rest stored).
   * `stored` counts holders that stored every value.
   */
  async putValues (key: Uint8Array, records: ValueRecord[], options: AbortOptions & { republish?: boolean, found?: LookupOutcome } = {}): Promise<PutResult> {
    const n = this.n
    n.assertRunning()
    checkKey(key)
    if (records.length === 0) throw new OhtError('OHT_BAD_ARGUMENT', 'no values to put')
    const kind = n.cfg.kinds.valueKind(records[0].namespace)
    const now = n.clock.now()
    for (const r of records) {
      if (r.namespace !== kind.name) throw new OhtError('OHT_BAD_ARGUMENT', 'values of one put share one kind')
      validateRecord(key, r, Math.min(n.cfg.maxValueBytes, kind.policy.maxValueBytes), n.verifier, kind.code)
      if (options.republish !== true) await n.journalSaveValue(key, kind.code, r, now + n.policy.clampTtl(kind, r.ttlMs))
    }
    if (options.republish !== true) n.stats.puts++
    const found = options.found ?? await this.iterate(key, 'values-meta', 'put', { signal: options.signal, complete: true, valueKind: kind.code })
    const remaining = (r: ValueRecord): number => {
      const own = n.own.get(ownValueId(key, kind.code, r.writer, r.id))
      return Math.floor(own !== undefined && own.record !== undefined && sameWrite(own.record, r) ? own.expiresAt - n.clock.now() : r.ttlMs)
    }
    const items: PutManyItem[] = records.map(r => ({ remainingMs: Math.max(1, remaining(r)), record: r }))
    const errors: PutError[] = []
    const candidates = (found?.answered ?? []).filter(c => c.result?.token !== undefined)
    const local = this.storesHere(key, candidates)
    let stored = 0
    let attempted = 0
    let slots = n.cfg.k
    if (local) {
      attempted++
      slots--
      let all = true
      for (const it of items) {
        try { n.policy.store(key, it.record, it.remainingMs, undefined) } catch (err) {
          all = false
          errors.push({ peer: n.contact, code: isCodedError(err) ? err.code : 'OHT_INTERNAL', message: err instanceof Error ? err.message : String(err) })
        }
      }
      if (all) stored++
    }
    const sent = await this.toHolders(candidates, slots, errors, options.signal, async (c, signal) => {
      let all = true
      for (let i = 0; i < items.length; i += MAX_PUT_MANY) {
        const batch = items.slice(i, i + MAX_PUT_MANY)
        const res = await n.rpc.request(c, { type: 'put-many', addrs: n.contact.addrs, token: c.result?.token as Uint8Array, key, kind: kind.code, items: batch }, signal)
        if (res.type !== 'stored-many' || res.results.length !== batch.length) throw new OhtError('OHT_BAD_RESPONSE', `peer answered PUT_MANY with a ${res.type} frame`)
        for (const r of res.results) {
          if ('code' in r) { all = false; errors.push({ peer: c.contact, code: r.code, message: `value refused: ${r.code}` }) }
        }
      }
      return all
    })
    stored += sent.stored
    attempted += sent.attempted
    if (options.republish !== true) {
      const t = n.clock.now()
      for (const it of items) {
        const r = it.record
        n.own.set(ownValueId(key, kind.code, r.writer, r.id), { key, record: r, expiresAt: t + it.remainingMs, nextAt: t + n.cfg.republishIntervalMs, seq: r.seq, kind: kind.code })
      }
    }
    return { key, stored, attempted, wanted: Math.min(n.cfg.k, candidates.length + (local ? 1 : 0)) || 1, storedHere: local && errors.every(e => e.peer !== n.contact), closest: (found?.closest ?? []).map(c => c.contact), errors }
  }

  /**
   * Sends a write to `slots` holders from `candidates`, closest first. A send that fails hands
   * its slot to the next-closest candidate, so churn between the lookup and the write does not
   * cost replicas; a refusal (stale seq, CAS mismatch, quota) is an answer and does not.
   * `send` resolves true when the holder stored everything.
   */
  private async toHolders (candidates: Candidate[], slots: number, errors: PutError[], signal: AbortSignal | undefined, send: (c: Candidate, signal: AbortSignal) => Promise<boolean>): Promise<{ stored: number, attempted: number }> {
    const op = this.n.opSignal(signal)
    let next = 0
    let stored = 0
    let attempted = 0
    const worker = async (): Promise<void> => {
      while (next < candidates.length && !op.signal.aborted) {
        const c = candidates[next++]
        attempted++
        try {
          if (await send(c, op.signal)) stored++
          return
        } catch (err) {
          errors.push({ peer: c.contact, code: isCodedError(err) ? err.code : 'OHT_INTERNAL', message: err instanceof Error ? err.message : String(err) })
          if (!retryable(err)) return
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(slots, candidates.length) }, worker))
    op.clear()
    throwIfAborted(signal)
    return { stored, attempted }
  }

  // ---------------------------------------------------------------- get

  async get (key: Uint8Array, options: AbortOptions = {}): Promise<GetResult | undefined> {
    const n = this.n
    n.assertRunning()
    checkKey(key)
    n.stats.gets++
    let best: OhtRecord | undefined
    let responses = 0
    const consider = (r: OhtRecord): void => {
      if (r.kind === 'value') return
      if (best !== undefined) {
        if (best.kind === 'immutable' || r.kind === 'immutable') { if (r.kind === best.kind) responses++; return }
        if (best.kind === 'value') return
        if (r.seq < best.seq) return
        if (r.seq === best.seq) { if (sameWrite(best, r)) responses++; return }
      }
      try { validateRecord(key, r, n.cfg.maxValueBytes, n.verifier) } catch { return }
      best = r
      responses = 1
    }
    const local = n.store.get(key)
    if (local !== undefined) consider(local.record)
    if (best?.kind !== 'immutable' && n.routingTable.size > 0) {
      await this.iterate(key, 'get', 'user', {
        signal: options.signal,
        onValue: consider,
        done: () => best?.kind === 'immutable'
      })
      // Nothing among the k closest: under churn they may all be newcomers the record has not
      // reached yet (republish and replication run hourly), while its holders sit just
      // beyond them. A miss costs one wider lookup: the 2k closest must answer.
      if (best === undefined && n.routingTable.size > 0) {
        n.stats.widenedGets++
        await this.iterate(key, 'get', 'user', {
          signal: options.signal,
          onValue: consider,
          done: () => best !== undefined,
          width: 2 * n.cfg.k
        })
      }
    }
    if (best === undefined) return undefined
    const record = copyRecord(best as ImmutableRecord | MutableRecord)
    const out: GetResult = { record, value: record.value.slice(), responses }
    if (record.kind === 'mutable') out.seq = record.seq
    return out
  }

  /**
   * The values of a multi-value key, merged over its holders: every value verified, the highest
   * seq of each (writer, id) kept, deleted ones left out (unless `includeDeleted`), in slot order.
   */
  async getValues (key: Uint8Array, options: GetValuesOptions = {}): Promise<ValuesResult> {
    const n = this.n
    n.assertRunning()
    checkKey(key)
    const kind = n.cfg.kinds.valueKind(options.kind ?? 'set')
    n.stats.gets++
    const merged = new Map<string, ValueRecord>()
    const holders = new Set<string>()
    const consider = (r: ValueRecord, from: string): void => {
      const slot = valueSlot(r)
      const prev = merged.get(slot)
      if (prev !== undefined && prev.seq >= r.seq) { if (prev.seq === r.seq) holders.add(from); return }
      try { validateRecord(key, r, kind.policy.maxValueBytes, n.verifier, kind.code) } catch { return }
      merged.set(slot, r)
      holders.add(from)
    }
    for (const e of n.store.values(key, kind.code)) consider(copyRecord(e.record as ValueRecord), 'self')
    if (n.routingTable.size > 0) {
      const found = await this.iterate(key, 'values', 'user', { signal: options.signal, valueKind: kind.code })
      const op = n.opSignal(options.signal)
      try {
        await Promise.all(found.answered.map(async (c) => {
          const res = c.result
          if (res?.values === undefined) return
          const from = toHex(c.id)
          for (const r of res.values) consider(r, from)
          // Further pages from holders whose set did not fit one answer.
          let cursor = res.next ?? 0
          for (let page = 0; cursor > 0 && page < MAX_PAGES && merged.size < kind.policy.maxValuesPerKey * 4; page++) {
            const more = await n.rpc.query(c, 'values', key, op.signal, kind.code, cursor).catch(() => undefined)
            if (more?.values === undefined) break
            for (const r of more.values) consider(r, from)
            cursor = more.next ?? 0
          }
        }))
      } finally {
        op.clear()
      }
    }
    const values = [...merged.entries()].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0).map(([, r]) => r)
    return { values: options.includeDeleted === true ? values : values.filter(v => !v.deleted), holders: holders.size }
  }
}

/** Refusals (stale seq, CAS mismatch, quota) are answers: they do not pass the slot on. */
function retryable (err: unknown): boolean {
  return !(err instanceof OhtRemoteError) || err.code === 'OHT_RATE_LIMITED' || err.code === 'OHT_NOT_STARTED'
}

function checkKey (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'key must be 32 bytes')
}

/** The id of an own value among the node's own records (and in the journal). */
export function ownValueId (key: Uint8Array, kind: number, writer: Uint8Array, id: Uint8Array): string {
  return `${toHex(key)}/${kind}/${toHex(writer)}/${toHex(id)}`
}
