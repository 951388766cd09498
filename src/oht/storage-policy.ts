/**
 * What a storing node accepts, in order of cost: kind known, size, key, lifetime, selection
 * (seq / CAS for mutable records, (writer, id) slots for values), signature, the kind's own
 * check, then quotas (per key and per writer for value kinds, per requesting peer, whole store),
 * all counted in what a record really costs (recordCost), not only its value bytes.
 */
import { bytesEqual } from '../core/bytes.ts'
import { recordWireSize, type OhtRequest, type PutManyResult } from './codec.ts'
import { OhtError } from './errors.ts'
import type { RecordKind } from './kinds.ts'
import type { OhtNodeImpl } from './node.ts'
import { recordKey, sameWrite, validateRecord, type OhtRecord, type ValueRecord } from './records.ts'
import { recordCost, VALUE_SET_OVERHEAD_BYTES, type StoredRecord } from './store.ts'
import { isCodedError } from '../core/errors.ts'

export class StoragePolicy {
  constructor (private readonly n: OhtNodeImpl) {}

  /** Validates and stores a PUT; returns the granted lifetime or throws a coded OhtError. */
  acceptPut (requester: Uint8Array, source: string, req: Extract<OhtRequest, { type: 'put' }>): number {
    const n = this.n
    try {
      if (!n.tokens.check(requester, req.key, req.token)) {
        throw new OhtError('OHT_BAD_TOKEN', 'write token missing, wrong or expired: send GET or FIND_NODE for this key first')
      }
      return this.store(req.key, req.record, req.remainingMs, source, req.cas)
    } catch (err) {
      n.stats.recordsRejected++
      throw err
    }
  }

  /** A PUT_MANY: one token for the key, then each value on its own (one refusal refuses only it). */
  acceptPutMany (requester: Uint8Array, source: string, req: Extract<OhtRequest, { type: 'put-many' }>): PutManyResult[] {
    const n = this.n
    if (!n.tokens.check(requester, req.key, req.token)) {
      n.stats.recordsRejected += req.items.length
      throw new OhtError('OHT_BAD_TOKEN', 'write token missing, wrong or expired: send GET or FIND_NODE for this key first')
    }
    return req.items.map((it) => {
      try {
        return { grantedMs: this.store(req.key, it.record, it.remainingMs, source) }
      } catch (err) {
        n.stats.recordsRejected++
        return { code: isCodedError(err) ? err.code : 'OHT_INTERNAL' }
      }
    })
  }

  /** The lifetime this node grants a record of `kind` asking for `ttlMs`. */
  clampTtl (kind: RecordKind, ttlMs: number): number {
    return Math.min(kind.policy.ttlMaxMs, Math.max(kind.policy.ttlMinMs, ttlMs))
  }

  /**
   * The storing node's checks, then the store. `source` is the requesting peer's hex id
   * (undefined: our own write). Returns the lifetime granted.
   */
  store (key: Uint8Array, record: OhtRecord, remainingMs: number, source: string | undefined, cas?: number): number {
    const n = this.n
    const kind = n.cfg.kinds.of(record)
    const maxValueBytes = Math.min(n.cfg.maxValueBytes, kind.policy.maxValueBytes)
    if (record.value.byteLength > maxValueBytes) {
      throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${record.value.byteLength} bytes; this node stores at most ${maxValueBytes} for ${kind.name} records`)
    }
    if (!bytesEqual(recordKey(record), key)) throw new OhtError('OHT_KEY_MISMATCH', 'record does not hash to the key it was sent under')
    // The lifetime left (a replica carries less than the writer's TTL) within the kind's bounds.
    if (remainingMs <= 0) throw new OhtError('OHT_EXPIRED', 'record lifetime is over: publish a fresh one')
    const granted = this.clampTtl(kind, Math.min(record.ttlMs, remainingMs))
    const now = n.clock.now()
    if (record.kind === 'value') return this.storeValue(kind, key, record, granted, source, now)
    const held = n.store.get(key)
    const heldRecord = held?.record
    if (heldRecord !== undefined && heldRecord.kind === 'mutable' && record.kind === 'mutable') {
      if (cas !== undefined && heldRecord.seq !== cas) {
        throw new OhtError('OHT_CAS_MISMATCH', `compare-and-swap failed: stored seq is ${heldRecord.seq}, expected ${cas}`)
      }
      if (sameWrite(heldRecord, record)) {
        n.store.touch(held as StoredRecord, now + granted, now)
        return granted
      }
      if (record.seq <= heldRecord.seq) {
        throw new OhtError('OHT_SEQ_STALE', `seq ${record.seq} is not above the stored seq ${heldRecord.seq}: write with a higher seq`)
      }
    }
    validateRecord(key, record, maxValueBytes, n.verifier)
    kind.check?.(key, record)
    if (heldRecord !== undefined && heldRecord.kind === 'immutable') {
      n.store.touch(held as StoredRecord, now + granted, now)
      return granted
    }
    this.checkQuota(record, held, source)
    n.store.put({ key, record, expiresAt: now + granted, storedAt: now, refreshedAt: now, source })
    n.stats.recordsStored++
    n.watches.stored(key, kind.code, record)
    return granted
  }

  private storeValue (kind: RecordKind, key: Uint8Array, record: ValueRecord, granted: number, source: string | undefined, now: number): number {
    const n = this.n
    const held = n.store.getValue(key, kind.code, record.writer, record.id)
    if (held !== undefined) {
      const h = held.record as ValueRecord
      if (sameWrite(h, record)) {
        n.store.touch(held, now + granted, now)
        return granted
      }
      if (record.seq <= h.seq) {
        throw new OhtError('OHT_SEQ_STALE', `seq ${record.seq} is not above the stored seq ${h.seq} of this value: write with a higher seq`)
      }
    }
    validateRecord(key, record, kind.policy.maxValueBytes, n.verifier, kind.code)
    kind.check?.(key, record)
    if (held === undefined) {
      const p = kind.policy
      if (n.store.values(key, kind.code).length >= p.maxValuesPerKey) {
        throw new OhtError('OHT_QUOTA', `this ${kind.name} key is full here (${p.maxValuesPerKey} values): let older values expire or delete some`)
      }
      if (n.store.writerCount(key, kind.code, record.writer) >= p.maxValuesPerWriter) {
        throw new OhtError('OHT_QUOTA', `this writer already has ${p.maxValuesPerWriter} values under this ${kind.name} key here: delete or let some expire first`)
      }
    }
    // The first value of a key also makes its set (VALUE_SET_OVERHEAD_BYTES of the store's own).
    this.checkQuota(record, held, source, n.store.values(key, kind.code).length === 0 ? VALUE_SET_OVERHEAD_BYTES : 0)
    n.store.put({ key, record, expiresAt: now + granted, storedAt: now, refreshedAt: now, source })
    n.stats.recordsStored++
    n.watches.stored(key, kind.code, record)
    return granted
  }

  /** Per-peer and whole-store limits, in recordCost bytes; a replaced write frees its own. */
  private checkQuota (record: OhtRecord, held: StoredRecord | undefined, source: string | undefined, storeExtra = 0): void {
    const n = this.n
    const cost = recordCost(recordWireSize(record))
    const heldCost = held?.cost ?? 0
    if (source !== undefined) {
      const u = n.store.usage(source)
      const mine = held?.source === source
      if (u.records + (mine ? 0 : 1) > n.cfg.maxRecordsPerPeer || u.bytes + cost - (mine ? heldCost : 0) > n.cfg.maxBytesPerPeer) {
        throw new OhtError('OHT_QUOTA', 'this peer is over its storage quota here: let older records expire first')
      }
    }
    if (n.store.size + (held === undefined ? 1 : 0) > n.cfg.maxStoreRecords || n.store.bytes + cost + storeExtra - heldCost > n.cfg.maxStoreBytes) {
      throw new OhtError('OHT_QUOTA', 'this node is full: try other nodes or later')
    }
  }
}
