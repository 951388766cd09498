/**
 * Record storage behind a small synchronous interface (a persistent store keeps an in-memory
 * index and writes behind). The default keeps records in memory and purges each one when its
 * lifetime ends, driven by ONE timer on the injected clock armed at the earliest expiry of a
 * min-heap (never a timer per record). Purged, replaced and wiped values are zeroed.
 */
import type { Clock, TimerHandle } from '../core/clock.ts'
import { toHex } from '../core/bytes.ts'
import { MinHeap } from './heap.ts'
import { copyRecord, type OhtRecord } from './records.ts'

export interface StoredRecord {
  readonly key: Uint8Array
  readonly record: OhtRecord
  /** Clock time (ms) at which the record is purged. */
  expiresAt: number
  /** When this node first stored this write. */
  readonly storedAt: number
  /** When a PUT last refreshed it (the replication pass skips fresh records). */
  refreshedAt: number
  /** Hex id of the peer whose PUT stored it; undefined for our own writes. */
  readonly source?: string
}

export interface StoreUsage { records: number, bytes: number }

export interface RecordStore {
  /** The live record under `key` (an expired one reads as absent). Do not keep its bytes: they are zeroed on purge. */
  get(key: Uint8Array): StoredRecord | undefined
  /** Stores (or replaces) a record; the store keeps its own copy of the value. */
  put(entry: StoredRecord): StoredRecord
  /** Moves the expiry of the record under `key` (refresh of the same write). */
  touch(key: Uint8Array, expiresAt: number, now: number): void
  delete(key: Uint8Array): boolean
  entries(): IterableIterator<StoredRecord>
  /** Records and value bytes stored on behalf of `source` (a peer's hex id). */
  usage(source: string): StoreUsage
  readonly size: number
  readonly bytes: number
  /** Purges what expired by now; returns how many. Called by the store's own timer too. */
  purgeExpired(): number
  /** Zeroes and drops every record and cancels the expiry timer. */
  clear(): void
}

export interface MemoryStoreInit {
  clock: Clock
  /** Called after a record is purged because its lifetime ended. */
  onExpire?: (key: Uint8Array) => void
  /** Expiries closer together than this share one timer firing. @default 1000 */
  granularityMs?: number
}

interface HeapItem { at: number, id: string, entry: StoredRecord }

export function createMemoryStore (init: MemoryStoreInit): RecordStore {
  return new MemoryStore(init)
}

function valueBytes (r: OhtRecord): number { return r.value.byteLength }

function wipeRecord (r: OhtRecord): void {
  r.value.fill(0)
}

class MemoryStore implements RecordStore {
  private readonly map = new Map<string, StoredRecord>()
  private readonly heap = new MinHeap<HeapItem>(i => i.at)
  private readonly perSource = new Map<string, StoreUsage>()
  private readonly clock: Clock
  private readonly granularityMs: number
  private readonly onExpire?: (key: Uint8Array) => void
  private timer?: TimerHandle
  private timerAt = Infinity
  private totalBytes = 0

  constructor (init: MemoryStoreInit) {
    this.clock = init.clock
    this.granularityMs = init.granularityMs ?? 1000
    this.onExpire = init.onExpire
  }

  get size (): number { return this.map.size }
  get bytes (): number { return this.totalBytes }

  get (key: Uint8Array): StoredRecord | undefined {
    const id = toHex(key)
    const e = this.map.get(id)
    if (e === undefined) return undefined
    if (e.expiresAt <= this.clock.now()) {
      this.drop(id, e)
      this.onExpire?.(e.key)
      return undefined
    }
    return e
  }

  put (entry: StoredRecord): StoredRecord {
    const id = toHex(entry.key)
    const old = this.map.get(id)
    if (old !== undefined) this.drop(id, old)
    const own: StoredRecord = { ...entry, key: entry.key.slice(), record: copyRecord(entry.record) }
    this.map.set(id, own)
    this.account(own, +1)
    this.schedule(id, own)
    return own
  }

  touch (key: Uint8Array, expiresAt: number, now: number): void {
    const id = toHex(key)
    const e = this.map.get(id)
    if (e === undefined) return
    e.refreshedAt = now
    if (expiresAt > e.expiresAt) {
      e.expiresAt = expiresAt
      this.schedule(id, e)
    }
  }

  delete (key: Uint8Array): boolean {
    const id = toHex(key)
    const e = this.map.get(id)
    if (e === undefined) return false
    this.drop(id, e)
    return true
  }

  entries (): IterableIterator<StoredRecord> { return this.map.values() }

  usage (source: string): StoreUsage {
    return this.perSource.get(source) ?? { records: 0, bytes: 0 }
  }

  purgeExpired (): number {
    const now = this.clock.now()
    let n = 0
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || top.at > now) break
      this.heap.pop()
      const e = this.map.get(top.id)
      // Stale heap items (replaced, deleted or extended records) are skipped.
      if (e !== top.entry || e.expiresAt > now) continue
      this.drop(top.id, e)
      n++
      this.onExpire?.(e.key)
    }
    return n
  }

  clear (): void {
    for (const e of this.map.values()) wipeRecord(e.record)
    this.map.clear()
    this.heap.clear()
    this.perSource.clear()
    this.totalBytes = 0
    this.timer?.cancel()
    this.timer = undefined
    this.timerAt = Infinity
  }

  private drop (id: string, e: StoredRecord): void {
    this.map.delete(id)
    this.account(e, -1)
    wipeRecord(e.record)
  }

  private account (e: StoredRecord, sign: 1 | -1): void {
    const b = valueBytes(e.record)
    this.totalBytes += sign * b
    if (e.source === undefined) return
    let u = this.perSource.get(e.source)
    if (u === undefined) { u = { records: 0, bytes: 0 }; this.perSource.set(e.source, u) }
    u.records += sign
    u.bytes += sign * b
    if (u.records <= 0) this.perSource.delete(e.source)
  }

  private schedule (id: string, entry: StoredRecord): void {
    this.heap.push({ at: entry.expiresAt, id, entry })
    // Stale items pile up when records are refreshed often; compact now and then.
    if (this.heap.size > 2 * this.map.size + 64) this.heap.filter(i => this.map.get(i.id) === i.entry && i.at === i.entry.expiresAt)
    this.arm()
  }

  private arm (): void {
    const top = this.heap.peek()
    if (top === undefined) return
    const at = Math.max(top.at, this.clock.now())
    if (this.timer !== undefined && this.timerAt <= at) return
    this.timer?.cancel()
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.purgeExpired()
      this.armAfterFire()
    }, at - this.clock.now() + 0)
    this.timer.unref()
  }

  private armAfterFire (): void {
    const top = this.heap.peek()
    if (top === undefined) return
    // Coalesce close expiries into one firing.
    const at = Math.max(top.at, this.clock.now() + this.granularityMs)
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.purgeExpired()
      this.armAfterFire()
    }, at - this.clock.now())
    this.timer.unref()
  }
}
