/**
 * Kademlia k-bucket routing table, indexed by the common prefix length of a contact's id with
 * our own id (bucket 0 = the farther half of the id space). It prefers long-lived contacts: a
 * full bucket keeps the contacts it has and parks a newcomer in that bucket's replacement cache;
 * a contact leaves only after `maxFailures` consecutive unanswered requests (one, when a
 * candidate waits for the slot), and the freshest replacement then takes its place.
 */
import { toHex } from '../core/bytes.ts'
import { IdMap, isView } from './id-map.ts'
import { commonPrefixLength, compareDistance, ID_BITS } from './distance.ts'
import type { PeerContact } from './network.ts'

export interface RoutingEntry {
  readonly id: Uint8Array
  /** Hex of `id` (computed on first use). */
  readonly key: string
  contact: PeerContact
  readonly addedAt: number
  lastSeen: number
  failures: number
}

export interface RoutingTableInit {
  /** Contacts per bucket. @default 20 */
  k?: number
  /** Replacement candidates kept per bucket (the freshest). @default 8 */
  replacementCacheSize?: number
  /** Consecutive failures after which a contact is evicted. @default 3 */
  maxFailures?: number
  /** The same when its bucket has replacement candidates waiting. @default 1 */
  failuresWithReplacement?: number
  /**
   * A full bucket gives the slot of a contact silent this long (not seen alive: no answer, no
   * request) to a newcomer that was just seen alive; the silent one waits in the replacement
   * cache. Long-lived contacts are preferred only while there is evidence they still live:
   * under churn most contacts silent for hours have left, and a bucket that keeps them serves
   * timeouts. Infinity: classic Kademlia (a full bucket never displaces anyone). @default Infinity
   */
  displaceSilentAfterMs?: number
}

export type AddOutcome = 'added' | 'updated' | 'replacement' | 'self' | 'ignored'

interface Bucket {
  entries: RoutingEntry[] // insertion order; oldest() scans lastSeen (k is small, updates are hot)
  replacements: RoutingEntry[] // most recently seen last
  lastRefreshed: number
}

export interface RoutingTable {
  readonly size: number
  /** Contacts that lost their slot to a newcomer after a long silence (displaceSilentAfterMs). */
  readonly displaced: number
  readonly k: number
  readonly selfId: Uint8Array
  /**
   * Adds or refreshes a contact seen alive at `now`. The table copies the bytes it keeps unless
   * `owned` says they are not views into a frame (e.g. the transport's authenticated contact).
   */
  add(id: Uint8Array, contact: PeerContact, now: number, owned?: boolean): AddOutcome
  /** Removes a contact outright; the freshest replacement takes its place. */
  remove(id: Uint8Array): boolean
  /** Counts an unanswered request; evicts after `maxFailures` in a row. Returns true if evicted. */
  markFailed(id: Uint8Array): boolean
  get(id: Uint8Array): RoutingEntry | undefined
  has(id: Uint8Array): boolean
  /** The `n` known contacts closest to `target`, closest first. */
  closest(target: Uint8Array, n?: number): RoutingEntry[]
  contacts(): RoutingEntry[]
  /** Indices of non-empty buckets and the bucket of our nearest neighbour. */
  bucketIndex(id: Uint8Array): number
  bucketSize(index: number): number
  replacementCount(index: number): number
  /** Least recently seen entry of a bucket (the one to probe when candidates wait). */
  oldest(index: number): RoutingEntry | undefined
  lastRefreshed(index: number): number
  markRefreshed(index: number, now: number): void
  /** Highest index of a non-empty bucket, or -1. */
  readonly deepestBucket: number
  clear(): void
}

export function createRoutingTable (selfId: Uint8Array, init: RoutingTableInit = {}, now = 0): RoutingTable {
  return new KBucketTable(selfId, init, now)
}

class KBucketTable implements RoutingTable {
  readonly k: number
  private readonly replacementCacheSize: number
  private readonly maxFailures: number
  private readonly failuresWithReplacement: number
  private readonly displaceSilentAfterMs: number
  private readonly buckets: Array<Bucket | undefined> = new Array(ID_BITS)
  private readonly byId = new IdMap<RoutingEntry>()
  private readonly createdAt: number

  constructor (readonly selfId: Uint8Array, init: RoutingTableInit, now: number) {
    this.k = init.k ?? 20
    this.replacementCacheSize = init.replacementCacheSize ?? Math.min(8, this.k)
    this.maxFailures = init.maxFailures ?? 3
    this.failuresWithReplacement = init.failuresWithReplacement ?? 1
    this.displaceSilentAfterMs = init.displaceSilentAfterMs ?? Infinity
    this.createdAt = now
  }

  get size (): number { return this.byId.size }
  displaced = 0

  /** Kept up to date on add/remove: lookups ask for it on every call. */
  private deepest = -1

  get deepestBucket (): number { return this.deepest }

  private recomputeDeepest (): void {
    let i = ID_BITS - 1
    while (i >= 0 && (this.buckets[i]?.entries.length ?? 0) === 0) i--
    this.deepest = i
  }

  bucketIndex (id: Uint8Array): number { return commonPrefixLength(this.selfId, id) }

  /** A bucket, created on first use; a new one counts as refreshed at `now` (it just got a contact). */
  private bucket (index: number, now: number): Bucket {
    let b = this.buckets[index]
    if (b === undefined) {
      b = { entries: [], replacements: [], lastRefreshed: now }
      this.buckets[index] = b
    }
    return b
  }

  add (id: Uint8Array, contact: PeerContact, now: number, owned = false): AddOutcome {
    const index = commonPrefixLength(this.selfId, id)
    if (index === ID_BITS) return 'self'
    if (contact.addrs.length === 0) return 'ignored' // cannot be dialled back: not routable
    const existing = this.byId.get(id)
    if (existing !== undefined) {
      if (!sameAddrs(existing.contact.addrs, contact.addrs)) existing.contact = { publicKey: existing.contact.publicKey, addrs: contact.addrs.slice() }
      existing.lastSeen = now
      existing.failures = 0
      return 'updated'
    }
    const b = this.bucket(index, now)
    if (b.entries.length < this.k) {
      const entry = newEntry(id, contact, now, owned)
      b.entries.push(entry)
      this.byId.set(entry.id, entry)
      if (index > this.deepest) this.deepest = index
      return 'added'
    }
    // Full: the newcomer takes the slot of a contact silent for too long (which becomes the
    // least fresh candidate), else it waits as a candidate itself.
    const r = b.replacements.findIndex(e => sameBytes(e.id, id))
    const silent = this.displaceSilentAfterMs < Infinity ? oldestOf(b.entries) : undefined
    if (silent !== undefined && now - silent.lastSeen >= this.displaceSilentAfterMs) {
      if (r >= 0) b.replacements.splice(r, 1)
      b.entries.splice(b.entries.indexOf(silent), 1)
      this.byId.delete(silent.id)
      // Kept as the least fresh candidate while there is room (fresher candidates come first).
      if (b.replacements.length < this.replacementCacheSize) b.replacements.unshift(silent)
      const entry = newEntry(id, contact, now, owned)
      b.entries.push(entry)
      this.byId.set(entry.id, entry)
      this.displaced++
      return 'added'
    }
    if (r >= 0) {
      const e = b.replacements[r]
      b.replacements.splice(r, 1)
      e.lastSeen = now
      b.replacements.push(e)
    } else {
      b.replacements.push(newEntry(id, contact, now, owned))
      if (b.replacements.length > this.replacementCacheSize) b.replacements.shift()
    }
    return 'replacement'
  }

  remove (id: Uint8Array): boolean {
    const entry = this.byId.get(id)
    const b = this.buckets[commonPrefixLength(this.selfId, id)]
    if (entry === undefined || b === undefined) {
      if (b !== undefined) {
        const r = b.replacements.findIndex(e => sameBytes(e.id, id))
        if (r >= 0) b.replacements.splice(r, 1)
      }
      return false
    }
    const at = b.entries.indexOf(entry)
    if (at >= 0) b.entries.splice(at, 1)
    this.byId.delete(id)
    const promoted = b.replacements.pop()
    if (promoted !== undefined) {
      promoted.failures = 0
      b.entries.push(promoted)
      this.byId.set(promoted.id, promoted)
    }
    if (b.entries.length === 0) this.recomputeDeepest()
    return true
  }

  markFailed (id: Uint8Array): boolean {
    const entry = this.byId.get(id)
    if (entry === undefined) {
      // A failing candidate is dropped from the replacement cache.
      const b = this.buckets[commonPrefixLength(this.selfId, id)]
      const r = b?.replacements.findIndex(e => sameBytes(e.id, id)) ?? -1
      if (r >= 0) b?.replacements.splice(r, 1)
      return false
    }
    entry.failures++
    // With a fresher candidate waiting, one unanswered request (after an adaptive timeout) is
    // enough: under churn, keeping a dead contact for maxFailures more lookups costs a timeout
    // in each of them. Without one, the contact stays (a bucket with a gap serves no one).
    const b = this.buckets[commonPrefixLength(this.selfId, id)]
    const limit = (b?.replacements.length ?? 0) > 0 ? Math.min(this.maxFailures, this.failuresWithReplacement) : this.maxFailures
    if (entry.failures < limit) return false
    return this.remove(id)
  }

  get (id: Uint8Array): RoutingEntry | undefined { return this.byId.get(id) }
  has (id: Uint8Array): boolean { return this.byId.has(id) }

  closest (target: Uint8Array, n = this.k): RoutingEntry[] {
    const out: RoutingEntry[] = []
    if (n > 0) this.collect(target, 0, out, n)
    return out
  }

  /**
   * Appends the entries of buckets `from`.. in XOR order to `target`, which shares its first
   * `from` bits with our id. Sorts one bucket (≤ k entries) at a time, never the whole table:
   * bucket i = cpl(self, target) holds the contacts sharing more than i bits with the target;
   * all deeper buckets sit at distance 2^(255−i) + (their XOR with the target's bit i flipped),
   * which is the same problem one level down; shallower buckets get farther one bit at a time.
   */
  private collect (target: Uint8Array, from: number, out: RoutingEntry[], n: number): void {
    const i = commonPrefixLength(this.selfId, target)
    if (i === ID_BITS) {
      // The target is our own id: deeper buckets are closer.
      for (let j = ID_BITS - 1; j >= from && out.length < n; j--) {
        const b = this.buckets[j]
        if (b !== undefined && b.entries.length > 0) sortedInto(b.entries, target, out, n)
      }
      return
    }
    const same = this.buckets[i]
    if (same !== undefined && same.entries.length > 0) sortedInto(same.entries, target, out, n)
    if (out.length < n && i + 1 <= this.deepest) {
      const flipped = target.slice()
      flipped[i >> 3] ^= 0x80 >> (i & 7)
      this.collect(flipped, i + 1, out, n)
    }
    for (let j = i - 1; j >= from && out.length < n; j--) {
      const b = this.buckets[j]
      if (b !== undefined && b.entries.length > 0) sortedInto(b.entries, target, out, n)
    }
  }

  contacts (): RoutingEntry[] { return [...this.byId.values()] }
  bucketSize (index: number): number { return this.buckets[index]?.entries.length ?? 0 }
  replacementCount (index: number): number { return this.buckets[index]?.replacements.length ?? 0 }
  oldest (index: number): RoutingEntry | undefined { return oldestOf(this.buckets[index]?.entries ?? []) }
  lastRefreshed (index: number): number { return this.buckets[index]?.lastRefreshed ?? this.createdAt }
  markRefreshed (index: number, now: number): void { this.bucket(index, now).lastRefreshed = now }

  clear (): void {
    this.buckets.fill(undefined)
    this.byId.clear()
    this.deepest = -1
  }
}

function oldestOf (entries: RoutingEntry[]): RoutingEntry | undefined {
  let best: RoutingEntry | undefined
  for (const e of entries) if (best === undefined || e.lastSeen < best.lastSeen) best = e
  return best
}

function sameAddrs (a: string[], b: string[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

class Entry implements RoutingEntry {
  private hex?: string
  failures = 0
  constructor (readonly id: Uint8Array, public contact: PeerContact, readonly addedAt: number, public lastSeen: number) {}
  get key (): string { this.hex ??= toHex(this.id); return this.hex }
}

/**
 * The table never pins a decoded frame: views are copied; standalone arrays, as the transport
 * and the simulator hand out, are kept as they are. Copies are separate 32-byte slices: V8
 * keeps arrays that small inside its own heap, while views of one shared 64-byte buffer forced
 * it to give each entry an external backing store (~1 µs more per entry, and GC work).
 */
function newEntry (id: Uint8Array, contact: PeerContact, now: number, owned: boolean): RoutingEntry {
  if (owned) return new Entry(id, contact, now, now)
  const idView = isView(id)
  const keyView = isView(contact.publicKey)
  if (!idView && !keyView) return new Entry(id, contact, now, now)
  return new Entry(idView ? id.slice() : id, { publicKey: keyView ? contact.publicKey.slice() : contact.publicKey, addrs: contact.addrs.slice() }, now, now)
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return a.byteLength === b.byteLength
}

const SCRATCH = new Float64Array(8192)

/**
 * Appends `group` to `out` in XOR order to `target`, up to `n` in total. Sorts packed numbers
 * (top 40 bits of the distance, then the index) in a Float64Array instead of calling a
 * comparator; entries whose top 40 bits tie are then ordered exactly by the full distance.
 */
function sortedInto (group: RoutingEntry[], target: Uint8Array, out: RoutingEntry[], n: number): void {
  const m = group.length
  if (m > 8192) { // beyond the index bits: plain comparator sort (never with sane k)
    const copy = group.slice().sort((a, b) => compareDistance(a.id, b.id, target))
    for (const e of copy) { if (out.length >= n) return; out.push(e) }
    return
  }
  const keys = SCRATCH.subarray(0, m) // no allocation per call (nothing here re-enters)
  const thi = (target[0] << 16) | (target[1] << 8) | target[2]
  const tlo = (target[3] << 8) | target[4]
  for (let k = 0; k < m; k++) {
    const id = group[k].id
    const hi = ((id[0] << 16) | (id[1] << 8) | id[2]) ^ thi
    const lo = ((id[3] << 8) | id[4]) ^ tlo
    keys[k] = (hi * 65536 + lo) * 8192 + k
  }
  keys.sort()
  const start = out.length
  for (let k = 0; k < m; k++) {
    // Past n, keep going only while the 40-bit prefix ties (the exact order may differ there).
    if (out.length >= n && Math.floor(keys[k] / 8192) !== Math.floor(keys[k - 1] / 8192)) break
    out.push(group[keys[k] % 8192])
  }
  // Exact order among 40-bit ties (insertion sort over the rare equal runs).
  for (let a = start + 1; a < out.length; a++) {
    if (Math.floor(keys[a - start] / 8192) !== Math.floor(keys[a - start - 1] / 8192)) continue
    for (let b = a; b > start && Math.floor(keys[b - start] / 8192) === Math.floor(keys[b - start - 1] / 8192) && compareDistance(out[b].id, out[b - 1].id, target) < 0; b--) {
      const t = out[b]; out[b] = out[b - 1]; out[b - 1] = t
    }
  }
  if (out.length > n) out.length = n
}
