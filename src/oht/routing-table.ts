/**
 * Kademlia k-bucket routing table, indexed by the common prefix length of a contact's id with
 * our own id (bucket 0 = the farther half of the id space). It prefers long-lived contacts: a
 * full bucket keeps the contacts it has and parks a newcomer in that bucket's replacement cache;
 * a contact leaves only after `maxFailures` consecutive unanswered requests (one, when a
 * candidate waits for the slot), and the freshest replacement then takes its place.
 */
import { toHex } from '../core/bytes.ts'
import { commonPrefixLength, compareDistance, ID_BITS } from './distance.ts'
import { idHi24, idLo24 } from './id-map.ts'
import type { PeerContact } from './network.ts'
import { contactWireBlock } from './codec.ts'

export interface RoutingEntry {
  readonly id: Uint8Array
  /** Hex of `id` (computed on first use). */
  readonly key: string
  readonly contact: PeerContact
  /** The contact's wire form (WireContact.block), built by the table on first use and rebuilt when the contact changes. */
  readonly block: Uint8Array
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

/**
 * One bucket: its entries in insertion order, with the first 48 bits of each entry's id kept
 * beside them in two arrays of small integers (24 bits each; plain arrays, as typed arrays
 * over 64 bytes get a separately allocated backing store, and tables make many buckets). Finding an id and ranking a bucket by
 * distance read these packed numbers, never the entries: a table's entries are scattered over
 * the heap (a simulator holds millions of them), so each entry touched is a likely cache miss.
 */
interface Bucket {
  entries: Entry[] // insertion order; oldest() scans lastSeen (k is small, updates are hot)
  hi: number[] // id bits 0-23 of entries[i]
  lo: number[] // id bits 24-47 of entries[i]
  replacements: Entry[] // most recently seen last
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
   * `owned` says they are never mutated and not views into a frame (e.g. the transport's
   * authenticated contact, or a node's own contact).
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
  private count = 0
  private readonly createdAt: number

  constructor (readonly selfId: Uint8Array, init: RoutingTableInit, now: number) {
    this.k = init.k ?? 20
    this.replacementCacheSize = init.replacementCacheSize ?? Math.min(8, this.k)
    this.maxFailures = init.maxFailures ?? 3
    this.failuresWithReplacement = init.failuresWithReplacement ?? 1
    this.displaceSilentAfterMs = init.displaceSilentAfterMs ?? Infinity
    this.createdAt = now
  }

  get size (): number { return this.count }
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
      b = { entries: [], hi: [], lo: [], replacements: [], lastRefreshed: now }
      this.buckets[index] = b
    }
    return b
  }

  /** Appends an entry to a bucket with room. */
  private append (b: Bucket, e: Entry): void {
    b.entries.push(e)
    b.hi.push(idHi24(e.id))
    b.lo.push(idLo24(e.id))
    this.count++
  }

  /** Takes the entry at `at` out of its bucket (the order of the others is kept). */
  private removeAt (b: Bucket, at: number): void {
    b.entries.splice(at, 1)
    b.hi.splice(at, 1)
    b.lo.splice(at, 1)
    this.count--
  }

  add (id: Uint8Array, contact: PeerContact, now: number, owned = false): AddOutcome {
    const index = commonPrefixLength(this.selfId, id)
    if (index === ID_BITS) return 'self'
    if (contact.addrs.length === 0) return 'ignored' // cannot be dialled back: not routable
    const b = this.bucket(index, now)
    const at = indexIn(b, id)
    if (at >= 0) {
      const existing = b.entries[at]
      if (!sameAddrs(existing.contact.addrs, contact.addrs)) {
        existing.setContact({ publicKey: existing.contact.publicKey, addrs: contact.addrs.slice() })
      }
      existing.lastSeen = now
      existing.failures = 0
      return 'updated'
    }
    if (b.entries.length < this.k) {
      this.append(b, newEntry(id, contact, now, owned))
      if (index > this.deepest) this.deepest = index
      return 'added'
    }
    // Full: the newcomer takes the slot of a contact silent for too long (which becomes the
    // least fresh candidate), else it waits as a candidate itself.
    const r = b.replacements.findIndex(e => sameBytes(e.id, id))
    const silent = this.displaceSilentAfterMs < Infinity ? oldestOf(b.entries) : undefined
    if (silent !== undefined && now - silent.lastSeen >= this.displaceSilentAfterMs) {
      if (r >= 0) b.replacements.splice(r, 1)
      this.removeAt(b, b.entries.indexOf(silent))
      // Kept as the least fresh candidate while there is room (fresher candidates come first).
      if (b.replacements.length < this.replacementCacheSize) b.replacements.unshift(silent)
      this.append(b, newEntry(id, contact, now, owned))
      this.displaced++
      return 'added'
    }
    if (r >= 0) {
      const e = b.replacements[r]
      b.replacements.splice(r, 1)
      e.lastSeen = now
      b.replacements.push(e)
    } else {
      // A full cache drops its stalest candidate; one that nobody outside the table ever saw
      // is refilled in place (most candidates are dropped unused, and each one made anew was
      // four small copies that often outlived the young generation).
      const dropped = b.replacements.length >= this.replacementCacheSize ? b.replacements.shift() : undefined
      b.replacements.push(dropped?.private === true && !owned ? dropped.refill(id, contact, now) : newReplacement(id, contact, now, owned))
    }
    return 'replacement'
  }

  remove (id: Uint8Array): boolean {
    const index = commonPrefixLength(this.selfId, id)
    const b = this.buckets[index]
    if (b === undefined) return false
    const at = indexIn(b, id)
    if (at < 0) {
      const r = b.replacements.findIndex(e => sameBytes(e.id, id))
      if (r >= 0) b.replacements.splice(r, 1)
      return false
    }
    this.removeAt(b, at)
    const promoted = b.replacements.pop()
    if (promoted !== undefined) {
      promoted.failures = 0
      promoted.private = false // listed from now on: closest() hands it out
      this.append(b, promoted)
    }
    if (b.entries.length === 0) this.recomputeDeepest()
    return true
  }

  markFailed (id: Uint8Array): boolean {
    const b = this.buckets[commonPrefixLength(this.selfId, id)]
    if (b === undefined) return false
    const at = indexIn(b, id)
    if (at < 0) {
      // A failing candidate is dropped from the replacement cache.
      const r = b.replacements.findIndex(e => sameBytes(e.id, id))
      if (r >= 0) b.replacements.splice(r, 1)
      return false
    }
    const entry = b.entries[at]
    entry.failures++
    // With a fresher candidate waiting, one unanswered request (after an adaptive timeout) is
    // enough: under churn, keeping a dead contact for maxFailures more lookups costs a timeout
    // in each of them. Without one, the contact stays (a bucket with a gap serves no one).
    const limit = b.replacements.length > 0 ? Math.min(this.maxFailures, this.failuresWithReplacement) : this.maxFailures
    if (entry.failures < limit) return false
    return this.remove(id)
  }

  get (id: Uint8Array): RoutingEntry | undefined {
    const b = this.buckets[commonPrefixLength(this.selfId, id)]
    if (b === undefined) return undefined
    const at = indexIn(b, id)
    return at >= 0 ? b.entries[at] : undefined
  }

  has (id: Uint8Array): boolean { return this.get(id) !== undefined }

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
        if (b !== undefined && b.entries.length > 0) sortedInto(b, target, out, n)
      }
      return
    }
    const same = this.buckets[i]
    if (same !== undefined && same.entries.length > 0) sortedInto(same, target, out, n)
    if (out.length < n && i + 1 <= this.deepest) {
      const flipped = target.slice()
      flipped[i >> 3] ^= 0x80 >> (i & 7)
      this.collect(flipped, i + 1, out, n)
    }
    for (let j = i - 1; j >= from && out.length < n; j--) {
      const b = this.buckets[j]
      if (b !== undefined && b.entries.length > 0) sortedInto(b, target, out, n)
    }
  }

  contacts (): RoutingEntry[] {
    const out: RoutingEntry[] = []
    for (const b of this.buckets) if (b !== undefined) for (const e of b.entries) out.push(e)
    return out
  }

  bucketSize (index: number): number { return this.buckets[index]?.entries.length ?? 0 }
  replacementCount (index: number): number { return this.buckets[index]?.replacements.length ?? 0 }
  oldest (index: number): RoutingEntry | undefined { return oldestOf(this.buckets[index]?.entries ?? []) }
  lastRefreshed (index: number): number { return this.buckets[index]?.lastRefreshed ?? this.createdAt }
  markRefreshed (index: number, now: number): void { this.bucket(index, now).lastRefreshed = now }

  clear (): void {
    this.buckets.fill(undefined)
    this.count = 0
    this.deepest = -1
  }
}

/** Position of `id` among a bucket's entries, or -1: packed prefixes first, full bytes on a match. */
function indexIn (b: Bucket, id: Uint8Array): number {
  const h = idHi24(id)
  const l = idLo24(id)
  const { hi, lo, entries } = b
  for (let i = 0; i < entries.length; i++) {
    if (hi[i] === h && lo[i] === l && sameBytes(entries[i].id, id)) return i
  }
  return -1
}

function oldestOf<E extends RoutingEntry> (entries: E[]): E | undefined {
  let best: E | undefined
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
  /** The wire form of `contact`, built on first use, dropped when the contact changes. */
  private wire: Uint8Array | undefined = undefined
  /**
   * A replacement candidate whose bytes are the table's own copies and that was never listed
   * in a bucket: nothing outside the table holds it, so it may be refilled in place.
   */
  private = false
  constructor (readonly id: Uint8Array, public contact: PeerContact, public addedAt: number, public lastSeen: number) {}
  get key (): string { this.hex ??= toHex(this.id); return this.hex }
  get block (): Uint8Array { return this.wire ??= contactWireBlock(this.contact) }

  setContact (contact: PeerContact): void {
    this.contact = contact
    this.wire = undefined
  }

  /** Becomes a new candidate (only while `private`): its id and key arrays are overwritten. */
  refill (id: Uint8Array, contact: PeerContact, now: number): this {
    const key = this.contact.publicKey
    if (id.byteLength !== this.id.byteLength || contact.publicKey.byteLength !== key.byteLength) {
      return newReplacement(id, contact, now, false) as this
    }
    this.id.set(id)
    key.set(contact.publicKey)
    this.contact = { publicKey: key, addrs: contact.addrs.slice() }
    this.addedAt = now
    this.lastSeen = now
    this.failures = 0
    this.wire = undefined
    this.hex = undefined
    return this
  }
}

/**
 * The table never pins a decoded frame: unless the caller says it owns the bytes (`owned`: the
 * transport's authenticated key, a node's own contact), the id, key and address list are
 * copied. Copies are separate 32-byte slices: V8 keeps arrays that small inside its own heap,
 * while views of one shared 64-byte buffer forced it to give each entry an external backing
 * store. (Asking an array whether it is a view reads its `.buffer`, which moves a small array
 * out of V8's heap for good: copying is cheaper than checking.) Each table keeps its own
 * copies: sharing one copy per peer across the tables of a process (the simulator's thousands
 * of nodes) saved memory but measured 9-14 % slower at 10,000 nodes.
 */
function newEntry (id: Uint8Array, contact: PeerContact, now: number, owned: boolean): Entry {
  if (owned) return new Entry(id, contact, now, now)
  return new Entry(id.slice(), { publicKey: contact.publicKey.slice(), addrs: contact.addrs.slice() }, now, now)
}

/** A replacement candidate: refillable in place when the table made its copies. */
function newReplacement (id: Uint8Array, contact: PeerContact, now: number, owned: boolean): Entry {
  const e = newEntry(id, contact, now, owned)
  e.private = !owned
  return e
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return a.byteLength === b.byteLength
}

const SCRATCH = new Float64Array(8192)

/**
 * Appends a bucket's entries to `out` in XOR order to `target`, up to `n` in total. Sorts
 * packed numbers (top 40 bits of the distance from the bucket's prefix arrays, then the index)
 * in a Float64Array instead of calling a comparator; entries whose top 40 bits tie are then
 * ordered exactly by the full distance.
 */
function sortedInto (b: Bucket, target: Uint8Array, out: RoutingEntry[], n: number): void {
  const group = b.entries
  const m = group.length
  if (m > 8192) { // beyond the index bits: plain comparator sort (never with sane k)
    const copy = group.slice().sort((x, y) => compareDistance(x.id, y.id, target))
    for (const e of copy) { if (out.length >= n) return; out.push(e) }
    return
  }
  const keys = SCRATCH // entries 0..m-1; no allocation per call (nothing here re-enters)
  const thi = idHi24(target)
  const tlo = idLo24(target)
  const { hi, lo } = b
  for (let k = 0; k < m; k++) keys[k] = ((hi[k] ^ thi) * 65536 + ((lo[k] ^ tlo) >>> 8)) * 8192 + k
  // Insertion sort: buckets hold at most k entries, and for so few a native sort costs more
  // in its call than in comparisons.
  for (let a = 1; a < m; a++) {
    const v = keys[a]
    let c = a - 1
    while (c >= 0 && keys[c] > v) { keys[c + 1] = keys[c]; c-- }
    keys[c + 1] = v
  }
  const start = out.length
  for (let k = 0; k < m; k++) {
    // Past n, keep going only while the 40-bit prefix ties (the exact order may differ there).
    if (out.length >= n && Math.floor(keys[k] / 8192) !== Math.floor(keys[k - 1] / 8192)) break
    out.push(group[keys[k] % 8192])
  }
  // Exact order among 40-bit ties (insertion sort over the rare equal runs).
  for (let a = start + 1; a < out.length; a++) {
    if (Math.floor(keys[a - start] / 8192) !== Math.floor(keys[a - start - 1] / 8192)) continue
    for (let c = a; c > start && Math.floor(keys[c - start] / 8192) === Math.floor(keys[c - start - 1] / 8192) && compareDistance(out[c].id, out[c - 1].id, target) < 0; c--) {
      const t = out[c]; out[c] = out[c - 1]; out[c - 1] = t
    }
  }
  if (out.length > n) out.length = n
}
