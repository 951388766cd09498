/**
 * The part of an OHT node the daemon needs, as an interface: the SDK's node (over tor or TCP)
 * and the offline `local` node both fit it, and tests can drive the daemon through it.
 */
import type { AbortOptions, Clock, Logger } from '../core/index.ts'
import type { Identity } from '../crypto/index.ts'
import type { TorSession } from './tor-link.ts'
import type { DaemonConfig } from './config.ts'

export interface DaemonPeer {
  /** Hex Ed25519 public key. */
  publicKey: string
  /** v3 onion address (56 chars) derived from the key. */
  onion: string
  addrs: string[]
}

export interface DaemonPutResult {
  key: Uint8Array
  /** How many peers (or the local store) accepted the record. */
  stored: number
  attempted: number
  seq?: number
}

export interface DaemonGetResult {
  kind: 'immutable' | 'mutable'
  value: Uint8Array
  seq?: number
  /** Writer of a mutable record. */
  publicKey?: Uint8Array
  responses: number
}

export interface NodeCounters {
  peers: number
  recordsStored: number
  bytesStored: number
  lookups: number
  lookupFailures: number
  requestsIn: number
  requestsOut: number
  timeouts: number
}

export interface DaemonNode {
  /** Addresses peers can dial us at (multiaddrs). */
  readonly addrs: string[]
  putImmutable(value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<DaemonPutResult>
  putMutable(options: { salt: Uint8Array, value: Uint8Array, ttlMs?: number } & AbortOptions): Promise<DaemonPutResult>
  get(key: Uint8Array, options?: AbortOptions): Promise<DaemonGetResult | undefined>
  bootstrap(addrs: string[], options?: AbortOptions): Promise<{ peers: number }>
  peers(): DaemonPeer[]
  counters(): NodeCounters
  /** tor came back after a restart: re-publish the node's onion service on the new connection. */
  torReconnected?(tor: TorSession, options?: AbortOptions): Promise<void>
  /** Stops the node and wipes its store. */
  stop(): Promise<void>
}

/** What the daemon hands a node factory. */
export interface NodeFactoryInput extends AbortOptions {
  identity: Identity
  config: DaemonConfig
  stateDir: string
  clock: Clock
  log: Logger
  /** Set when node.transport is "tor": a usable tor. */
  tor?: TorSession
}

export type NodeFactory = (input: NodeFactoryInput) => Promise<DaemonNode>
