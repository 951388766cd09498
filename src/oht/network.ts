/**
 * The seam between the OHT engine and whatever carries its messages. The engine sees the
 * network only through this interface: the libp2p adapter (src/net) implements it over
 * `/oht/kad/1.0.0` streams on real onion services, the simulator (src/netsim) over a virtual
 * network with a virtual clock. Neither is imported here.
 */
import type { AbortOptions } from '../core/abort.ts'

/** How to reach a peer. `publicKey` is its Ed25519 identity; its node id is H(publicKey). */
export interface PeerContact {
  /** 32-byte Ed25519 public key: the peer's identity, PeerId and onion address. */
  publicKey: Uint8Array
  /** Transport addresses (multiaddr strings over libp2p, opaque ids in the simulator). */
  addrs: string[]
}

export interface DhtRequestOptions extends AbortOptions {
  /**
   * Give up after this many ms: the transport rejects with a TimeoutError (code CORE_TIMEOUT)
   * and releases what the request holds. The engine's adaptive per-peer timeout arrives here,
   * so a transport can enforce it the cheapest way it has (one timer, no extra signal).
   */
  timeoutMs?: number
}

/** Handler for inbound requests; `from` was authenticated by the transport. */
export type DhtRequestHandler = (from: PeerContact, frame: Uint8Array, options: AbortOptions) => Promise<Uint8Array>

export interface DhtNet {
  /**
   * Sends one request frame and resolves with the peer's response frame. Rejects when the peer
   * cannot be reached, the signal aborts, `timeoutMs` passes (TimeoutError) or the transport
   * fails; it must settle in each of these cases. Implementations never retry by themselves.
   */
  request(to: PeerContact, frame: Uint8Array, options?: DhtRequestOptions): Promise<Uint8Array>
  /** Installs the single handler for inbound request frames. */
  handle(handler: DhtRequestHandler): void
}
