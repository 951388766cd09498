/**
 * The daemon's node is the SDK's node (src/sdk OhtSdkNode): over tor, TCP, or `local` with no
 * network, with the same engine, record semantics and own-record journal in every case. A
 * factory builds it from the daemon's config; tests pass their own factory.
 */
import type { AbortOptions, Clock, Logger } from '../core/index.ts'
import type { Identity } from '../crypto/index.ts'
import type { OhtSdkNode } from '../sdk/index.ts'
import type { TorSession } from './tor-link.ts'
import type { DaemonConfig } from './config.ts'

/** A routing-table peer as the API shows it. */
export interface DaemonPeer {
  /** Hex Ed25519 public key. */
  publicKey: string
  /** v3 onion address (56 chars) derived from the key. */
  onion: string
  addrs: string[]
}

/** The node counters the API and /metrics show. */
export interface NodeCounters {
  peers: number
  recordsStored: number
  bytesStored: number
  /** Entries of the own-record journal (live records and kept seqs); 0 without a state dir. */
  ownRecords: number
  lookups: number
  lookupFailures: number
  requestsIn: number
  requestsOut: number
  timeouts: number
  republished: number
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

export type NodeFactory = (input: NodeFactoryInput) => Promise<OhtSdkNode>
