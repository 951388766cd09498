/**
 * The libp2p node factory: noise, yamux, identify and ping over TCP (LAN/dev), @libp2p/memory
 * (tests, benchmarks) and our onion3 transport. The node's PeerId is the identity seed's
 * Ed25519 key, so its PeerId and its onion address name the same key.
 */
import './polyfill.ts'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { memory } from '@libp2p/memory'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { onionAddressFromPublicKey } from '../crypto/index.ts'
import { NetError } from './errors.ts'
import { createGater, onionMatchesPeer } from './gater.ts'
import { libp2pKeyFromSeed } from './identity.ts'
import { isOnion3 } from './onion-addr.ts'
import { onion3, type OnionTransportInit } from './onion-transport.ts'

export type NetServices = { identify: Identify, ping: Ping }
export type NetLibp2p = Libp2p<NetServices>

export interface NetNodeInit {
  /** 32-byte identity seed: the node's Ed25519 key (PeerId, onion address, OHT identity). */
  seed: Uint8Array
  /**
   * TCP transport; `false` turns it off.
   * @default { listen: ['/ip4/127.0.0.1/tcp/0'] } (off when `onionOnly`)
   */
  tcp?: { listen?: string[] } | false
  /** In-process @libp2p/memory transport (tests, benchmarks). @default off */
  memory?: { listen?: string[] } | false
  /** The onion3 transport. With a publisher the node listens on its own onion address. */
  onion?: OnionTransportInit & {
    /** The onion service port peers dial. @default 4001 */
    virtualPort?: number
  }
  /**
   * Only /onion3 is dialled, listened on, stored or announced: no TCP, no DNS. Requires `onion`.
   * @default false
   */
  onionOnly?: boolean
  /** Addresses announced instead of the listen addresses (e.g. behind port forwarding). */
  announce?: string[]
  /** libp2p connection limit; the least valuable connections are pruned above it. @default 300 */
  maxConnections?: number
  /**
   * New inbound connections accepted per second from one IP address. Every inbound onion
   * connection comes from tor on 127.0.0.1, and peers on one host or behind one NAT share an
   * address, so libp2p's default (5/s) refuses a network joining at once.
   * @default 10_000 with onion, else 200
   */
  inboundConnectionThreshold?: number
  /** Called when a peer presents an onion address that is not its own key's. */
  onOnionMismatch?: (peerId: PeerId, addr: Multiaddr) => void
}

/**
 * @example
 * const node = await createNetNode({ seed, tcp: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * await node.services.ping.ping(other.getMultiaddrs()[0])
 */
export async function createNetNode (init: NetNodeInit): Promise<NetLibp2p> {
  const onionOnly = init.onionOnly ?? false
  if (onionOnly && init.onion === undefined) {
    throw new NetError('NET_BAD_CONFIG', 'onionOnly needs the onion transport: pass `onion: { connect, publish }` (a tor SOCKS port and control connection)')
  }
  const privateKey = libp2pKeyFromSeed(init.seed)
  const ownOnion = onionAddressFromPublicKey(privateKey.publicKey.raw)
  const transports: NonNullable<Libp2pOptions['transports']> = []
  const listen: string[] = []
  if (init.tcp !== false && !onionOnly) {
    transports.push(tcp())
    listen.push(...(init.tcp?.listen ?? ['/ip4/127.0.0.1/tcp/0']))
  }
  if (init.memory !== undefined && init.memory !== false && !onionOnly) {
    transports.push(memory())
    listen.push(...(init.memory.listen ?? []))
  }
  if (init.onion !== undefined) {
    transports.push(onion3(init.onion))
    if (init.onion.publish !== undefined) listen.push(`/onion3/${ownOnion}:${init.onion.virtualPort ?? 4001}`)
  }
  if (transports.length === 0) throw new NetError('NET_BAD_CONFIG', 'no transport enabled: enable tcp, memory or onion')

  const node = await createLibp2p({
    privateKey,
    addresses: {
      listen,
      announce: init.announce,
      // never announce what we cannot be reached at, and in onion mode nothing but onions
      announceFilter: (addrs: Multiaddr[]) => onionOnly ? addrs.filter(isOnion3) : addrs
    },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: createGater({ onionOnly, onMismatch: init.onOnionMismatch }),
    connectionManager: {
      maxConnections: init.maxConnections ?? 300,
      // onion round trips are seconds, and a rendezvous several
      dialTimeout: onionOnly ? 60_000 : 10_000,
      // no /dnsaddr resolution: in onion mode DNS would leak outside tor, elsewhere unused
      resolvers: {},
      // a per-IP rate limit would throttle peers sharing an address (tor's 127.0.0.1 for every
      // onion connection, one host, one NAT) to a handful per second: see the option's doc
      inboundConnectionThreshold: init.inboundConnectionThreshold ?? (init.onion !== undefined ? 10_000 : 200),
      maxIncomingPendingConnections: init.onion !== undefined ? 256 : 64
    },
    services: {
      identify: identify({ timeout: onionOnly ? 30_000 : 5_000 }),
      ping: ping()
    }
  })
  // A peer that announces an onion address of another key is lying: drop it.
  node.addEventListener('peer:identify', (evt) => {
    const { peerId, listenAddrs } = evt.detail
    const bad = listenAddrs.find(a => isOnion3(a) && !onionMatchesPeer(peerId, a))
    if (bad !== undefined) {
      init.onOnionMismatch?.(peerId, bad)
      void node.hangUp(peerId).catch(() => {})
    }
  })
  return node
}

/** Names of the transports a node can dial and listen with (e.g. ['@oht/onion3']), for audits. */
export function listTransports (node: NetLibp2p): string[] {
  const components = (node as unknown as { components?: { transportManager?: { getTransports(): Array<{ [Symbol.toStringTag]: string }> } } }).components
  const transports = components?.transportManager?.getTransports()
  if (transports === undefined) throw new NetError('NET_BAD_CONFIG', 'this libp2p build does not expose its transport manager')
  return transports.map(t => t[Symbol.toStringTag])
}
