/**
 * Kademlia k-bucket routing table, indexed by the common prefix length of a contact's id with
 * our own id (bucket 0 = the farther half of the id space). It prefers long-lived contacts: a
 * full bucket keeps the contacts it has and parks a newcomer in that bucket's replacement cache;
 * a contact leaves only after `maxFailures` consecutive unanswered requests, and the freshest
 * replacement then takes its place.
 */
import { toHex } from '../core/bytes.ts'
import { commonPrefixLength, compareDistance, ID_BITS } from './distance.ts'
import type { PeerContact } from './network.ts'

export interface RoutingEntry {
  readonly id: Uint8Array
  /** Hex of `id`, the map key. */
  readonly key: string
  contact: PeerContact
  readonly addedAt: number
  lastSeen: number
  failures: number
}

export interface RoutingTableInit {
  /** Contacts per bucket. @default 20 */
  k?: number
  /** Replacement candidates kept per bucket. @default k */
  replacementCacheSize?: number
  /** Consecutive failures after which a contact is evicted. @default 3 */
  maxFailures?: number
}

export type AddOutcome = 'added' | 'updated' | 'replacement' | 'self' | 'ignored'

interface Bucket {
  entries: RoutingEntry[] // insertion order; oldest() scans lastSeen (k is small, updates are hot)
  replacements: RoutingEntry[] // most recently seen last
  lastRefreshed: number
}

export interface RoutingTable {
  readonly size: number
  readonly k: number
  readonly selfId: Uint8Array
  /** Adds or refreshes a contact seen alive at `now`. */
  add(id: Uint8Array, contact: PeerContact, now: number): AddOutcome
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
  private readonly buckets: Array<Bucket | undefined> = new Array(ID_BITS)
  private readonly byKey = new Map<string, RoutingEntry>()
  private readonly keys = new WeakMap<Uint8Array, string>()
  private readonly createdAt: number

  constructor (readonly selfId: Uint8Array, init: RoutingTableInit, now: number) {
    this.k = init.k ?? 20
    this.replacementCacheSize = init.replacementCacheSize ?? this.k
    this.maxFailures = init.maxFailures ?? 3
    this.createdAt = now
  }

  get size (): number { return this.byKey.size }

  get deepestBucket (): number {
    for (let i = ID_BITS - 1; i >= 0; i--) if ((this.buckets[i]?.entries.length ?? 0) > 0) return i
    return -1
  }

  bucketIndex (id: Uint8Array): number { return commonPrefixLength(this.selfId, id) }

  private bucket (index: number): Bucket {
    let b = this.buckets[index]
    if (b === undefined) {
      b = { entries: [], replacements: [], lastRefreshed: this.createdAt }
      this.buckets[index] = b
    }
    return b
  }

  add (id: Uint8Array, contact: PeerContact, now: number): AddOutcome {
    const index = commonPrefixLength(this.selfId, id)
    if (index === ID_BITS) return 'self'
    if (contact.addrs.length === 0) return 'ignored' // cannot be dialled back: not routable
    const key = this.keyOf(id)
    const existing = this.byKey.get(key)
    const b = this.bucket(index)
    if (existing !== undefined) {
      if (!sameAddrs(existing.contact.addrs, contact.addrs)) existing.contact = contact
      existing.lastSeen = now
      existing.failures = 0
      return 'updated'
    }
    if (b.entries.length < this.k) {
      const entry: RoutingEntry = { id, key, contact, addedAt: now, lastSeen: now, failures: 0 }
      b.entries.push(entry)
      this.byKey.set(key, entry)
      return 'added'
    }
    // Full: keep the long-lived contacts, remember the newcomer as a candidate.
    const r = b.replacements.findIndex(e => e.key === key)
    if (r >= 0) b.replacements.splice(r, 1)
    b.replacements.push({ id, key, contact, addedAt: now, lastSeen: now, failures: 0 })
    if (b.replacements.length > this.replacementCacheSize) b.replacements.shift()
    return 'replacement'
  }

  remove (id: Uint8Array): boolean {
    const key = this.keyOf(id)
    const entry = this.byKey.get(key)
    const b = this.buckets[commonPrefixLength(this.selfId, id)]
    if (entry === undefined || b === undefined) {
      if (b !== undefined) {
        const r = b.replacements.findIndex(e => e.key === key)
        if (r >= 0) b.replacements.splice(r, 1)
      }
      return false
    }
    const at = b.entries.indexOf(entry)
    if (at >= 0) b.entries.splice(at, 1)
    this.byKey.delete(key)
    const promoted = b.replacements.pop()
    if (promoted !== undefined) {
      b.entries.push(promoted)
      this.byKey.set(promoted.key, promoted)
    }
    return true
  }

  markFailed (id: Uint8Array): boolean {
    const key = this.keyOf(id)
    const entry = this.byKey.get(key)
    if (entry === undefined) {
      // A failing candidate is dropped from the replacement cache.
      const b = this.buckets[commonPrefixLength(this.selfId, id)]
      const r = b?.replacements.findIndex(e => e.key === key) ?? -1
      if (r >= 0) b?.replacements.splice(r, 1)
      return false
    }
    entry.failures++
    if (entry.failures < this.maxFailures) return false
    return this.remove(id)
  }

  get (id: Uint8Array): RoutingEntry | undefined { return this.byKey.get(this.keyOf(id)) }
  has (id: Uint8Array): boolean { return this.byKey.has(this.keyOf(id)) }

  /** Hex of an id, cached per id object (the node hands us the same id objects again and again). */
  private keyOf (id: Uint8Array): string {
    let k = this.keys.get(id)
    if (k === undefined) { k = toHex(id); this.keys.set(id, k) }
    return k
  }

  closest (target: Uint8Array, n = this.k): RoutingEntry[] {
    const out: RoutingEntry[] = []
    if (n <= 0) return out
    const sortInto = (group: RoutingEntry[]): void => {
      group.sort((a, b) => compareDistance(a.id, b.id, target))
      for (const e of group) { if (out.length >= n) return; out.push(e) }
    }
    const i = commonPrefixLength(this.selfId, target)
    // Bucket i holds the contacts sharing more than i bits with the target; buckets above it
    // all sit at distance with top bit i; buckets below i get farther one bit at a time.
    if (i < ID_BITS) {
      const same = this.buckets[i]
      if (same !== undefined) sortInto(same.entries.slice())
    }
    if (out.length < n) {
      const deeper: RoutingEntry[] = []
      for (let j = i + 1; j < ID_BITS; j++) { const b = this.buckets[j]; if (b !== undefined) deeper.push(...b.entries) }
      sortInto(deeper)
    }
    for (let j = Math.min(i, ID_BITS) - 1; j >= 0 && out.length < n; j--) {
      const b = this.buckets[j]
      if (b !== undefined && b.entries.length > 0) sortInto(b.entries.slice())
    }
    return out
  }

  contacts (): RoutingEntry[] { return [...this.byKey.values()] }
  bucketSize (index: number): number { return this.buckets[index]?.entries.length ?? 0 }
  replacementCount (index: number): number { return this.buckets[index]?.replacements.length ?? 0 }
  oldest (index: number): RoutingEntry | undefined {
    let best: RoutingEntry | undefined
    for (const e of this.buckets[index]?.entries ?? []) if (best === undefined || e.lastSeen < best.lastSeen) best = e
    return best
  }
  lastRefreshed (index: number): number { return this.buckets[index]?.lastRefreshed ?? this.createdAt }
  markRefreshed (index: number, now: number): void { this.bucket(index).lastRefreshed = now }

  clear (): void {
    this.buckets.fill(undefined)
    this.byKey.clear()
  }
}

function sameAddrs (a: string[], b: string[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
