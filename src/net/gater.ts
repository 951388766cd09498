/**
 * Connection policy. Two rules:
 *  1. An /onion3 address is only ever accepted for the peer whose key it encodes: at dial time
 *     (the /p2p/ suffix), after the noise handshake (the key the peer proved) and when peers
 *     announce addresses (identify → peer store filter).
 *  2. In onion-only mode nothing but /onion3 is dialled, stored or resolved: no TCP, no DNS.
 */
import { bytesEqual } from '../core/index.ts'
import { ed25519FromPeerId } from './identity.ts'
import { isOnion3, parseOnion3Multiaddr } from './onion-addr.ts'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface GaterInit {
  /** @default false */
  onionOnly?: boolean
  /** Called whenever a peer is refused for an onion address that is not its own. */
  onMismatch?: (peerId: PeerId, addr: Multiaddr) => void
}

/** True if `addr` is an onion3 address owned by `peerId`'s key (false for non-onion addrs). */
export function onionMatchesPeer (peerId: PeerId, addr: Multiaddr): boolean {
  let parsed
  try { parsed = parseOnion3Multiaddr(addr) } catch { return false }
  const key = ed25519FromPeerId(peerId)
  return key !== undefined && bytesEqual(key, parsed.publicKey)
}

export function createGater (init: GaterInit = {}): ConnectionGater {
  const onionOnly = init.onionOnly ?? false
  const checkConn = (peerId: PeerId, maConn: MultiaddrConnection): boolean => {
    if (!isOnion3(maConn.remoteAddr)) return onionOnly && maConn.direction === 'outbound'
    if (onionMatchesPeer(peerId, maConn.remoteAddr)) return false
    init.onMismatch?.(peerId, maConn.remoteAddr)
    return true
  }
  return {
    denyDialMultiaddr (ma: Multiaddr): boolean {
      if (!isOnion3(ma)) return onionOnly
      try { parseOnion3Multiaddr(ma); return false } catch { return true }
    },
    denyOutboundEncryptedConnection: checkConn,
    denyOutboundUpgradedConnection: checkConn,
    filterMultiaddrForPeer (peerId: PeerId, ma: Multiaddr): boolean {
      if (isOnion3(ma)) {
        if (onionMatchesPeer(peerId, ma)) return true
        init.onMismatch?.(peerId, ma)
        return false
      }
      return !onionOnly
    }
  }
}
