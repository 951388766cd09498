/**
 * Where descriptors are published and found. Scramble routing sees its directory through
 * `RelayDirectory` only, so it runs on whatever carries records: the OHT engine (per-node
 * descriptor records plus a well-known multi-value key listing the relays), a shared map in
 * tests, or the simulator.
 *
 * The relay list lives under one well-known OHT key, SHA-256("oht/scramble/relays/v1"), as a
 * multi-value key: each relay adds its signed descriptor as one value with its own TTL. The
 * engine's multi-value keys are being built now; `RelayBoard` is the small interface this code
 * needs of them, so the directory plugs onto the engine once they land. Every descriptor read
 * from any store is verified here: a store is never trusted.
 */
import type { AbortOptions, Clock } from '../core/index.ts'
import { toHex } from '../core/index.ts'
import { sha256 } from '../crypto/index.ts'
import { createSignatureVerifier, mutableKey, type MutableRecord, type OhtRecord, type SignatureVerifier } from '../oht/index.ts'
import {
  decodeSignedDescriptor, encodeSignedDescriptor, isDescriptorValid, RELAY_SALT, verifyRelayDescriptor, type RelayDescriptor
} from './descriptor.ts'
import { ScrambleError } from './errors.ts'

/** The well-known OHT key of the relay list. */
export const RELAY_LIST_KEY = sha256(new TextEncoder().encode('oht/scramble/relays/v1'))

export interface RelayDirectory {
  /** Verified descriptors of the relays announced and valid now (relay flag set). */
  list(options?: AbortOptions): Promise<RelayDescriptor[]>
  /** The verified descriptor of any node (relay or endpoint) by identity, or undefined. */
  get(identity: Uint8Array, options?: AbortOptions): Promise<RelayDescriptor | undefined>
  /** Publishes a signed descriptor (and lists it, when it is a relay's). */
  publish(record: MutableRecord, options?: AbortOptions): Promise<void>
}

/** What the OHT directory needs of the engine's records (createOhtNode satisfies it). */
export interface RelayRecordStore {
  put(record: OhtRecord, options?: AbortOptions): Promise<{ stored: number }>
  get(key: Uint8Array, options?: AbortOptions): Promise<{ record: OhtRecord } | undefined>
}

/** What the directory needs of a multi-value key (the engine's, once it lands). */
export interface RelayBoard {
  /** Adds (or refreshes) one value under `key`; each writer's value has its own TTL. */
  add(key: Uint8Array, value: Uint8Array, options: { ttlMs: number } & AbortOptions): Promise<void>
  /** The values under `key` (bounded by the store; possibly from many writers). */
  values(key: Uint8Array, options?: AbortOptions): Promise<Uint8Array[]>
}

export interface DirectoryInit {
  /** How long a fetched relay list is reused. @default 60000 */
  listCacheMs?: number
}

export interface DirectoryComponents {
  clock: Clock
  verifier?: SignatureVerifier
}

/** Keeps the highest-seq verified descriptor per identity, relays valid now only. */
function freshest (records: Iterable<MutableRecord>, now: number, verifier: SignatureVerifier, counters: { rejected: number }): RelayDescriptor[] {
  const best = new Map<string, RelayDescriptor>()
  for (const r of records) {
    let d: RelayDescriptor
    try { d = verifyRelayDescriptor(r, { verifier }) } catch { counters.rejected++; continue }
    if (!d.relay || !isDescriptorValid(d, now)) continue
    const id = toHex(d.identity)
    const prev = best.get(id)
    if (prev === undefined || (prev.seq ?? 0) < (d.seq ?? 0)) best.set(id, d)
  }
  return [...best.values()]
}

/** The directory over the OHT engine: records via `store`, the relay list via `board`. */
export function createOhtRelayDirectory (store: RelayRecordStore, board: RelayBoard, init: DirectoryInit = {}, components: DirectoryComponents): RelayDirectory & { readonly rejected: number } {
  const verifier = components.verifier ?? createSignatureVerifier()
  const cacheMs = init.listCacheMs ?? 60_000
  const counters = { rejected: 0 }
  let cached: { at: number, list: RelayDescriptor[] } | undefined
  return {
    get rejected () { return counters.rejected },
    async publish (record, options = {}) {
      const d = verifyRelayDescriptor(record, { verifier })
      const put = await store.put(record, options)
      if (put.stored === 0) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'no OHT node stored the descriptor: is the node bootstrapped?')
      if (d.relay) await board.add(RELAY_LIST_KEY, encodeSignedDescriptor(record), { ttlMs: record.ttlMs, signal: options.signal })
      cached = undefined
    },
    async get (identity, options = {}) {
      const hit = await store.get(mutableKey(identity, RELAY_SALT), options)
      if (hit === undefined || hit.record.kind !== 'mutable') return undefined
      return verifyRelayDescriptor(hit.record, { identity, verifier })
    },
    async list (options = {}) {
      const now = components.clock.now()
      if (cached !== undefined && now - cached.at < cacheMs) return cached.list.filter(d => isDescriptorValid(d, now))
      const values = await board.values(RELAY_LIST_KEY, options)
      const records: MutableRecord[] = []
      for (const v of values) { try { records.push(decodeSignedDescriptor(v)) } catch { counters.rejected++ } }
      const list = freshest(records, now, verifier, counters)
      cached = { at: now, list }
      return list
    }
  }
}

/**
 * An in-process directory (tests, single-host setups): one map shared by every node that is
 * given it, holding the highest-seq record per identity. It verifies on publish and on read.
 */
export function createMemoryRelayDirectory (components: DirectoryComponents): RelayDirectory & { readonly size: number, remove(identity: Uint8Array): void, putRaw(record: MutableRecord): void, readonly rejected: number } {
  const verifier = components.verifier ?? createSignatureVerifier()
  const records = new Map<string, MutableRecord>()
  const counters = { rejected: 0 }
  return {
    get size () { return records.size },
    get rejected () { return counters.rejected },
    remove (identity) { records.delete(toHex(identity)) },
    putRaw (record) { records.set(toHex(record.publicKey), record) },
    async publish (record) {
      verifyRelayDescriptor(record, { verifier })
      const id = toHex(record.publicKey)
      const prev = records.get(id)
      if (prev !== undefined && prev.seq >= record.seq) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `descriptor seq ${record.seq} is not above the stored ${prev.seq}`)
      records.set(id, record)
    },
    async get (identity) {
      const r = records.get(toHex(identity))
      return r === undefined ? undefined : verifyRelayDescriptor(r, { identity, verifier })
    },
    async list () {
      return freshest(records.values(), components.clock.now(), verifier, counters)
    }
  }
}

/** An in-process RelayBoard (tests): values per key, per writer, with TTLs on `clock`. */
export function createMemoryRelayBoard (clock: Clock): RelayBoard {
  const keys = new Map<string, Map<string, { value: Uint8Array, until: number }>>()
  return {
    async add (key, value, options) {
      const k = toHex(key)
      let m = keys.get(k)
      if (m === undefined) { m = new Map(); keys.set(k, m) }
      // One value per writer: the signed descriptor names its writer right after the version.
      m.set(toHex(value.subarray(1, 33)), { value: value.slice(), until: clock.now() + options.ttlMs })
    },
    async values (key) {
      const m = keys.get(toHex(key))
      if (m === undefined) return []
      const now = clock.now()
      const out: Uint8Array[] = []
      for (const [w, e] of m) { if (e.until <= now) m.delete(w); else out.push(e.value.slice()) }
      return out
    }
  }
}
