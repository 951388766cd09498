/**
 * OHT: the onion hash table engine. A Kademlia DHT (k-buckets preferring long-lived contacts,
 * iterative α-parallel lookups with optional S/Kademlia disjoint paths, adaptive per-peer
 * timeouts) storing immutable (key = SHA-256(value)) and signed mutable
 * (key = SHA-256(publicKey || salt), strictly increasing seq, optional compare-and-swap)
 * records with writer-chosen, node-clamped TTLs. It sees the network only through `DhtNet`,
 * time only through a `Clock` and chance only through an `Rng`, so the same code runs over
 * onion services and, unchanged, in the simulator.
 *
 * @example
 * import { createOhtNode } from './oht/index.ts'
 * import { systemClock, cryptoRng } from './core/index.ts'
 * const node = createOhtNode({ addrs: [myMultiaddr] }, { identity, net, clock: systemClock, rng: cryptoRng })
 * await node.start()
 * await node.bootstrap(seedContacts, { signal })
 * const { key, stored } = await node.putImmutable(new TextEncoder().encode('hello'))
 * const hit = await node.get(key)                    // hit?.value
 * await node.putMutable({ salt, value })             // seq = next above the highest seen
 * for await (const e of node.lookup(target)) if (e.type === 'final-peers') console.log(e.peers)
 * await node.stop()                                  // wipes the store, cancels every timer
 */
import type { AbortOptions } from '../core/abort.ts'
import { sha256 } from '../crypto/index.ts'
import type { LookupEvent } from './lookup.ts'
import type { PeerContact } from './network.ts'
import { OhtNodeImpl, type GetResult, type LookupOptions, type OhtNodeComponents, type OhtNodeInit, type PutMutableOptions, type PutResult } from './node.ts'
import type { OhtRecord } from './records.ts'
import type { RoutingTable } from './routing-table.ts'
import type { OhtStats } from './stats.ts'
import type { RecordStore } from './store.ts'

export type { DhtNet, DhtRequestHandler, PeerContact } from './network.ts'
export type { OhtNodeInit, OhtNodeComponents, PutResult, PutError, GetResult, PutMutableOptions, LookupOptions } from './node.ts'
export type { LookupEvent } from './lookup.ts'
export type { OhtStats } from './stats.ts'
export type { RoutingTable, RoutingEntry, RoutingTableInit, AddOutcome } from './routing-table.ts'
export type { RecordStore, StoredRecord, StoreUsage, MemoryStoreInit } from './store.ts'
export type { OhtRecord, ImmutableRecord, MutableRecord, SignatureVerifier } from './records.ts'
export type { OhtRequest, OhtResponse, CodecLimits, WireContact } from './codec.ts'
export { OhtError, OhtRemoteError, type OhtErrorCode } from './errors.ts'
export { createMemoryStore } from './store.ts'
export { createRoutingTable } from './routing-table.ts'
export { immutableKey, mutableKey, recordKey, mutableSignable, signMutable, validateRecord, createSignatureVerifier } from './records.ts'
export { encodeRequest, decodeRequest, encodeResponse, decodeResponse, WIRE_VERSION, MSG } from './codec.ts'
export { xorDistance, compareDistance, commonPrefixLength } from './distance.ts'
export { IdMap, idPrefix } from './id-map.ts'
export { createWriteTokens, type WriteTokens } from './tokens.ts'
export { createRateLimiter, type RateLimiter, type RateLimiterInit } from './rate-limit.ts'
export { createRttEstimator, type RttEstimator, type RttInit } from './rtt.ts'

/** A node of the onion hash table. */
export interface OhtNode {
  /** 32-byte node id = SHA-256(identity public key). */
  readonly id: Uint8Array
  /** How others reach us (our public key and `init.addrs`). */
  readonly contact: PeerContact
  /** Installs the request handler and the single maintenance timer. */
  start(): Promise<void>
  /** Cancels every timer and request, wipes (zeroes) the store and forgets all peers. */
  stop(): Promise<void>
  /** Pings `contacts`, then looks up our own id and refreshes the farther buckets. Throws OHT_NO_PEERS if none answered. */
  bootstrap(contacts: PeerContact[], options?: AbortOptions): Promise<{ peers: number }>
  putImmutable(value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<PutResult>
  putMutable(options: PutMutableOptions): Promise<PutResult>
  /** Stores a ready-made (e.g. already signed) record at the k closest nodes. */
  put(record: OhtRecord, options?: AbortOptions): Promise<PutResult>
  /** Finds a record; signatures verified, the highest valid seq wins. */
  get(key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined>
  /** An iterative FIND_NODE lookup as a stream of typed events, ending with `final-peers`. */
  lookup(target: Uint8Array, options?: LookupOptions): AsyncIterable<LookupEvent>
  /** The k closest live peers to `target`, closest first. */
  findClosest(target: Uint8Array, options?: AbortOptions): Promise<PeerContact[]>
  readonly routingTable: RoutingTable
  readonly store: RecordStore
  readonly stats: OhtStats
  /** Runs the maintenance tick now (refresh, republish, replicate, expiry: whatever is due). */
  runMaintenance(): void
  /** Background operations (refreshes, republishes, replications) still running. */
  readonly pendingWork: number
}

/** Node id of a peer: SHA-256 of its Ed25519 public key. */
export function nodeIdFromPublicKey (publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey)
}

export function createOhtNode (init: OhtNodeInit, components: OhtNodeComponents): OhtNode {
  return new OhtNodeImpl(init, components)
}
