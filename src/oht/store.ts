/**
 * Record storage behind a small synchronous interface (a persistent store keeps an in-memory
 * index and writes behind). The default keeps records in memory and purges each one when its
 * lifetime ends, driven by ONE timer on the injected clock armed at the earliest expiry of a
 * min-heap (never a timer per record). Purged, replaced and wiped records are zeroed.
 *
 * Single-record kinds (immutable, mutable) hold one record per key; value kinds hold a bounded
 * set per (key, kind), one value per (writer, id) slot, kept in slot order.
 *
 * Memory: what a record costs is counted against every limit, not only its value. Each record
 * is ONE array (key, then the record in its wire form) plus one small entry object; the index
 * chains entries by the key's first 48 bits (no string per key), sources are interned, and the
 * expiry heap holds each entry at most once. `recordCost()` is the estimate the limits use;
 * bench/store-memory.ts measures the real heap per record against it.
 */
import type { Clock, TimerHandle } from '../core/clock.ts'
import { toHex } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { decodeRecordAt, DIGEST_BYTES, encodeRecordAt } from './codec.ts'
import { MinHeap } from './heap.ts'
import { idPrefixAt, idsEqualAt } from './id-map.ts'
import { DEFAULT_KINDS, type RecordKinds } from './kinds.ts'
import { KEY_BYTES, type OhtRecord, type ValueRecord } from './records.ts'

/**
 * Heap bytes a stored record costs beyond its key and wire bytes: the entry object, the
 * array's header and backing store, index and heap slots (measured by bench/store-memory.ts).
 */
export const RECORD_OVERHEAD_BYTES = 448
/** Heap bytes a value set costs by itself (its index object and list), counted when it is made. */
export const VALUE_SET_OVERHEAD_BYTES = 320

/** What a record counts against the store's byte limits. */
export function recordCost (wireBytes: number): number {
  return RECORD_OVERHEAD_BYTES + KEY_BYTES + wireBytes
}

export interface StoredRecord {
  /** A view into the stored bytes: copy it to keep it (the bytes are zeroed on purge). */
  readonly key: Uint8Array
  /** Decoded on each read (views into the stored bytes; the same rule as `key`). */
  readonly record: OhtRecord
  /** The record's kind code (0 immutable, 1 mutable, 2+ value kinds). */
  readonly kind: number
  /** Clock time (ms) at which the record is purged. */
  readonly expiresAt: number
  /** When this node first stored this write. */
  readonly storedAt: number
  /** When a PUT last refreshed it (the replication pass skips fresh records). */
  readonly refreshedAt: number
  /** Hex id of the peer whose PUT stored it; undefined for our own writes. */
  readonly source?: string
  /** Bytes it counts against the limits (see recordCost). */
  readonly cost: number
}

export interface NewRecord {
  key: Uint8Array
  record: OhtRecord
  expiresAt: number
  storedAt: number
  refreshedAt: number
  source?: string
}

export interface StoreUsage { records: number, bytes: number }

export interface RecordStore {
  /** The live single-kind record under `key` (an expired one reads as absent). */
  get(key: Uint8Array): StoredRecord | undefined
  /** The live value of `writer`/`id` under (`key`, `kind`). */
  getValue(key: Uint8Array, kind: number, writer: Uint8Array, id: Uint8Array): StoredRecord | undefined
  /** Live values under (`key`, `kind`) in slot order (writer key, then id). Do not keep the array. */
  values(key: Uint8Array, kind: number): readonly StoredRecord[]
  /** Values of `writer` under (`key`, `kind`), tombstones included. */
  writerCount(key: Uint8Array, kind: number, writer: Uint8Array): number
  /** SHA-256 over the set's (slot, seq) pairs in slot order: equal sets have equal digests. */
  digest(key: Uint8Array, kind: number): Uint8Array
  /** Stores (or replaces the same slot's) record; the store keeps its own copy. */
  put(entry: NewRecord): StoredRecord
  /** Moves an entry's expiry later and marks it refreshed `now` (a refresh of the same write). */
  touch(entry: StoredRecord, expiresAt: number, now: number): void
  /** Removes a single-kind record by key, or one entry. */
  delete(target: Uint8Array | StoredRecord): boolean
  entries(): IterableIterator<StoredRecord>
  /** Records and cost bytes stored on behalf of `source` (a peer's hex id). */
  usage(source: string): StoreUsage
  readonly size: number
  /** Cost bytes of everything stored (recordCost, not just values). */
  readonly bytes: number
  /** Purges what expired by now; returns how many. Called by the store's own timer too. */
  purgeExpired(): number
  /** Zeroes and drops every record and cancels the expiry timer. */
  clear(): void
}

export interface MemoryStoreInit {
  clock: Clock
  /** Kinds the records belong to (value kinds' namespaces). @default the built-in kinds */
  kinds?: RecordKinds
  /** Called after a record is purged because its lifetime ended. */
  onExpire?: (key: Uint8Array) => void
  /** Expiries closer together than this share one timer firing. @default 1000 */
  granularityMs?: number
}

export function createMemoryStore (init: MemoryStoreInit): RecordStore {
  return new MemoryStore(init)
}

interface Source { readonly hex: string, records: number, bytes: number }

const SLOT_AT = KEY_BYTES + 1 // a value record's writer key sits right after the kind byte

class Entry implements StoredRecord {
  /** The next entry in the index chain of the same 48-bit key prefix. */
  next: Entry | undefined = undefined
  dead = false
  inHeap = false
  /** The expiry it was filed under in the heap (a refresh moves expiresAt, not the heap). */
  heapTime = 0
  constructor (
    readonly bytes: Uint8Array,
    readonly kind: number,
    public expiresAt: number,
    readonly storedAt: number,
    public refreshedAt: number,
    readonly src: Source | undefined,
    readonly kinds: RecordKinds
  ) {}

  get key (): Uint8Array { return this.bytes.subarray(0, KEY_BYTES) }
  get record (): OhtRecord { return decodeRecordAt(this.bytes, KEY_BYTES, this.kinds, this.kind > 1 ? this.key : undefined) }
  get source (): string | undefined { return this.src?.hex }
  get cost (): number { return recordCost(this.bytes.byteLength - KEY_BYTES) }
}

/** The values of one (key, kind), in slot order. */
class ValueSet {
  next: ValueSet | undefined = undefined
  digestCache: Uint8Array | undefined = undefined
  /** Never empty while the set is indexed; every entry's first 32 bytes are the set's key. */
  constructor (readonly list: Entry[], readonly kind: number) {}
  get keyBytes (): Uint8Array { return this.list[0].bytes }
}

/** Compares the slots (writer key, then id) of a value entry and of (writer, id). */
function compareSlot (e: Entry, writer: Uint8Array, id: Uint8Array): number {
  const b = e.bytes
  for (let i = 0; i < 32; i++) {
    const d = b[SLOT_AT + i] - writer[i]
    if (d !== 0) return d
  }
  const idLen = b[SLOT_AT + 32]
  const n = Math.min(idLen, id.byteLength)
  for (let i = 0; i < n; i++) {
    const d = b[SLOT_AT + 33 + i] - id[i]
    if (d !== 0) return d
  }
  return idLen - id.byteLength
}

function sameWriter (e: Entry, writer: Uint8Array): boolean {
  const b = e.bytes
  for (let i = 0; i < 32; i++) if (b[SLOT_AT + i] !== writer[i]) return false
  return true
}

/** The seq of a value entry, read in place (after writer, id length and id). */
function valueSeq (e: Entry): number {
  const b = e.bytes
  let o = SLOT_AT + 33 + b[SLOT_AT + 32]
  let hi = 0
  for (let i = 0; i < 4; i++) hi = hi * 256 + b[o++]
  let lo = 0
  for (let i = 0; i < 4; i++) lo = lo * 256 + b[o++]
  return hi * 2 ** 32 + lo
}

class MemoryStore implements RecordStore {
  private readonly singles = new Map<number, Entry>()
  private readonly sets = new Map<number, ValueSet>()
  /** Each live entry at most once, by the expiry it was filed under (heapTime). */
  private readonly heap = new MinHeap<Entry>(e => e.heapTime)
  private readonly sources = new Map<string, Source>()
  private readonly clock: Clock
  private readonly kinds: RecordKinds
  private readonly granularityMs: number
  private readonly onExpire?: (key: Uint8Array) => void
  private timer?: TimerHandle
  private timerAt = Infinity
  private count = 0
  private totalBytes = 0

  constructor (init: MemoryStoreInit) {
    this.clock = init.clock
    this.kinds = init.kinds ?? DEFAULT_KINDS
    this.granularityMs = init.granularityMs ?? 1000
    this.onExpire = init.onExpire
  }

  get size (): number { return this.count }
  get bytes (): number { return this.totalBytes }

  // ---------------------------------------------------------------- reading

  private single (key: Uint8Array): Entry | undefined {
    for (let e = this.singles.get(idPrefixAt(key, 0)); e !== undefined; e = e.next) if (idsEqualAt(e.bytes, 0, key, 0)) return e
    return undefined
  }

  private set (key: Uint8Array, kind: number): ValueSet | undefined {
    for (let s = this.sets.get(idPrefixAt(key, 0)); s !== undefined; s = s.next) if (s.kind === kind && idsEqualAt(s.keyBytes, 0, key, 0)) return s
    return undefined
  }

  /** An entry found expired is purged on the spot and reads as absent. */
  private live (e: Entry | undefined): Entry | undefined {
    if (e === undefined) return undefined
    if (e.expiresAt <= this.clock.now()) { this.expire(e); return undefined }
    return e
  }

  get (key: Uint8Array): StoredRecord | undefined {
    if (key.byteLength !== KEY_BYTES) return undefined
    return this.live(this.single(key))
  }

  getValue (key: Uint8Array, kind: number, writer: Uint8Array, id: Uint8Array): StoredRecord | undefined {
    const s = key.byteLength === KEY_BYTES ? this.set(key, kind) : undefined
    if (s === undefined) return undefined
    const i = this.slotIndex(s, writer, id)
    return i >= 0 ? this.live(s.list[i]) : undefined
  }

  values (key: Uint8Array, kind: number): readonly StoredRecord[] {
    const s = key.byteLength === KEY_BYTES ? this.set(key, kind) : undefined
    if (s === undefined) return []
    const now = this.clock.now()
    // Expired values go first, so the list returned is all live.
    for (let i = s.list.length - 1; i >= 0; i--) if (s.list[i].expiresAt <= now) this.expire(s.list[i])
    return s.list
  }

  writerCount (key: Uint8Array, kind: number, writer: Uint8Array): number {
    const s = this.set(key, kind)
    if (s === undefined) return 0
    let n = 0
    for (const e of s.list) if (sameWriter(e, writer)) n++
    return n
  }

  digest (key: Uint8Array, kind: number): Uint8Array {
    const s = this.set(key, kind)
    if (s === undefined) return new Uint8Array(DIGEST_BYTES)
    this.values(key, kind)
    if (s.digestCache !== undefined) return s.digestCache
    const parts: Uint8Array[] = []
    for (const e of s.list) {
      const idLen = e.bytes[SLOT_AT + 32]
      parts.push(e.bytes.subarray(SLOT_AT, SLOT_AT + 33 + idLen + 8)) // writer, id length, id, seq
    }
    s.digestCache = sha256(...parts)
    return s.digestCache
  }

  /** Binary search for a slot: its index, or -(insertion point) - 1. */
  private slotIndex (s: ValueSet, writer: Uint8Array, id: Uint8Array): number {
    let lo = 0; let hi = s.list.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const c = compareSlot(s.list[mid], writer, id)
      if (c === 0) return mid
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return -lo - 1
  }

  // ---------------------------------------------------------------- writing

  put (n: NewRecord): StoredRecord {
    const rec = n.record
    const kind = rec.kind === 'immutable' ? 0 : rec.kind === 'mutable' ? 1 : this.kinds.valueKind(rec.namespace).code
    const bytes = encodeRecordAt(rec, this.kinds, KEY_BYTES)
    bytes.set(n.key.subarray(0, KEY_BYTES), 0)
    const src = n.source === undefined ? undefined : this.source(n.source)
    const e = new Entry(bytes, kind, n.expiresAt, n.storedAt, n.refreshedAt, src, this.kinds)
    const key = e.key
    const prefix = idPrefixAt(key, 0)
    if (kind <= 1) {
      const old = this.single(key)
      if (old !== undefined) this.drop(old)
      e.next = this.singles.get(prefix)
      this.singles.set(prefix, e)
    } else {
      const v = rec as ValueRecord
      let s = this.set(key, kind)
      if (s === undefined) {
        s = new ValueSet([e], kind)
        s.next = this.sets.get(prefix)
        this.sets.set(prefix, s)
        this.totalBytes += VALUE_SET_OVERHEAD_BYTES
      } else {
        const i = this.slotIndex(s, v.writer, v.id)
        if (i >= 0) {
          // Replaced in place: the set keeps its key (this entry has it too) while the old one is zeroed.
          const old = s.list[i]
          s.list[i] = e
          this.drop(old, false)
        } else {
          s.list.splice(-i - 1, 0, e)
        }
      }
      s.digestCache = undefined
    }
    this.account(e, +1)
    this.schedule(e)
    return e
  }

  touch (entry: StoredRecord, expiresAt: number, now: number): void {
    const e = entry as Entry
    if (!(e instanceof Entry) || e.dead) return
    e.refreshedAt = now
    if (expiresAt > e.expiresAt) {
      e.expiresAt = expiresAt // the heap keeps it at its old time and re-files it when it comes up
    }
  }

  delete (target: Uint8Array | StoredRecord): boolean {
    const e = target instanceof Uint8Array ? (target.byteLength === KEY_BYTES ? this.single(target) : undefined) : target as Entry
    if (!(e instanceof Entry) || e.dead) return false
    this.drop(e)
    return true
  }

  * entries (): IterableIterator<StoredRecord> {
    for (const head of this.singles.values()) for (let e: Entry | undefined = head; e !== undefined; e = e.next) yield e
    for (const head of this.sets.values()) for (let s: ValueSet | undefined = head; s !== undefined; s = s.next) yield * s.list
  }

  usage (source: string): StoreUsage {
    const s = this.sources.get(source)
    return s === undefined ? { records: 0, bytes: 0 } : { records: s.records, bytes: s.bytes }
  }

  purgeExpired (): number {
    const now = this.clock.now()
    let n = 0
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || top.heapTime > now) break
      this.heap.pop()
      top.inHeap = false
      if (top.dead) continue
      if (top.expiresAt > now) { this.heapPush(top); continue } // extended by a refresh
      this.expire(top)
      n++
    }
    return n
  }

  clear (): void {
    for (const e of this.entries()) { (e as Entry).bytes.fill(0); (e as Entry).dead = true }
    this.singles.clear()
    this.sets.clear()
    this.heap.clear()
    this.sources.clear()
    this.count = 0
    this.totalBytes = 0
    this.timer?.cancel()
    this.timer = undefined
    this.timerAt = Infinity
  }

  // ---------------------------------------------------------------- internals

  private source (hex: string): Source {
    let s = this.sources.get(hex)
    if (s === undefined) { s = { hex, records: 0, bytes: 0 }; this.sources.set(hex, s) }
    return s
  }

  private expire (e: Entry): void {
    const key = e.key.slice()
    this.drop(e)
    this.onExpire?.(key)
  }

  /** Unlinks an entry from the index (unless it is being replaced in place), accounts and zeroes it. */
  private drop (e: Entry, unlink = true): void {
    if (e.dead) return
    e.dead = true
    if (unlink) {
      const prefix = idPrefixAt(e.bytes, 0)
      if (e.kind <= 1) {
        let prev: Entry | undefined
        for (let c = this.singles.get(prefix); c !== undefined; prev = c, c = c.next) {
          if (c !== e) continue
          if (prev !== undefined) prev.next = c.next
          else if (c.next === undefined) this.singles.delete(prefix)
          else this.singles.set(prefix, c.next)
          break
        }
      } else {
        let prev: ValueSet | undefined
        for (let s = this.sets.get(prefix); s !== undefined; prev = s, s = s.next) {
          if (s.kind !== e.kind || !idsEqualAt(s.keyBytes, 0, e.bytes, 0)) continue
          const i = s.list.indexOf(e)
          if (i >= 0) s.list.splice(i, 1)
          s.digestCache = undefined
          if (s.list.length === 0) {
            if (prev !== undefined) prev.next = s.next
            else if (s.next === undefined) this.sets.delete(prefix)
            else this.sets.set(prefix, s.next)
            this.totalBytes -= VALUE_SET_OVERHEAD_BYTES
          }
          break
        }
      }
    }
    this.account(e, -1)
    e.bytes.fill(0)
  }

  private account (e: Entry, sign: 1 | -1): void {
    const c = e.cost
    this.count += sign
    this.totalBytes += sign * c
    const s = e.src
    if (s === undefined) return
    s.records += sign
    s.bytes += sign * c
    if (s.records <= 0) this.sources.delete(s.hex)
  }

  private schedule (e: Entry): void {
    this.heapPush(e)
    // Dead entries (replaced, deleted) wait in the heap until their time; compact now and then.
    if (this.heap.size > 2 * this.count + 64) {
      this.heap.filter(x => { if (x.dead) x.inHeap = false; return !x.dead })
    }
    this.arm()
  }

  private heapPush (e: Entry): void {
    if (e.inHeap) return
    e.inHeap = true
    e.heapTime = e.expiresAt
    this.heap.push(e)
  }

  private arm (): void {
    const top = this.heap.peek()
    if (top === undefined) return
    const at = Math.max(top.heapTime, this.clock.now())
    if (this.timer !== undefined && this.timerAt <= at) return
    this.setTimer(at)
  }

  private setTimer (at: number): void {
    this.timer?.cancel()
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.purgeExpired()
      const top = this.heap.peek()
      // Coalesce close expiries into one firing.
      if (top !== undefined) this.setTimer(Math.max(top.heapTime, this.clock.now() + this.granularityMs))
    }, at - this.clock.now())
    this.timer.unref()
  }
}

/** Hex id of a 32-byte key (for maps of the engine's own bookkeeping). */
export function keyId (key: Uint8Array): string { return toHex(key) }
