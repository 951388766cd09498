/**
 * /onion3 multiaddrs. @multiformats/multiaddr parses `/onion3/<56 chars>:<port>` but checks
 * neither the onion checksum nor the port range, so every onion3 address that enters the
 * node goes through here first.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { bytesEqual } from '../core/index.ts'
import { parseOnionAddress } from '../crypto/index.ts'
import { NetError } from './errors.ts'
import { ed25519FromPeerId } from './identity.ts'
import { peerIdFromString } from '@libp2p/peer-id'

export const ONION3_CODE = 445
const P2P_CODE = 421

export interface Onion3Addr {
  /** 56 characters, lower case, no ".onion". */
  address: string
  /** The Ed25519 public key the address encodes. */
  publicKey: Uint8Array
  port: number
  /** The /p2p/ peer id string, when present. */
  peerId?: string
}

/** True if the multiaddr starts with an /onion3 component (not yet validated). */
export function isOnion3 (ma: Multiaddr): boolean {
  const first = ma.getComponents()[0]
  return first?.code === ONION3_CODE
}

/**
 * Parses and validates `/onion3/<56 chars>:<port>[/p2p/<id>]`: onion checksum and version,
 * port 1–65535, nothing else but an optional /p2p/ suffix, and, when a /p2p/ id is present,
 * that it names the same Ed25519 key as the onion address.
 *
 * @example
 * const { address, port } = parseOnion3Multiaddr('/onion3/vww6…yd:4001/p2p/12D3Koo…')
 */
export function parseOnion3Multiaddr (input: Multiaddr | string): Onion3Addr {
  let ma: Multiaddr
  try {
    ma = typeof input === 'string' ? multiaddr(input) : input
  } catch (err) {
    throw new NetError('NET_BAD_MULTIADDR', `not a multiaddr: ${String(input).slice(0, 120)}`, { cause: err })
  }
  const parts = ma.getComponents()
  const first = parts[0]
  if (first?.code !== ONION3_CODE || first.value === undefined) {
    throw new NetError('NET_BAD_MULTIADDR', `not an /onion3 multiaddr: ${ma.toString().slice(0, 120)}`)
  }
  const m = /^([a-z2-7]{56}):(\d{1,5})$/i.exec(first.value)
  if (m === null) throw new NetError('NET_BAD_MULTIADDR', `an /onion3 component is <56 base32 chars>:<port>, got ${first.value.slice(0, 80)}`)
  const port = Number(m[2])
  if (port < 1 || port > 65535) throw new NetError('NET_BAD_MULTIADDR', `onion port must be 1–65535, got ${port}`)
  let parsed
  try {
    parsed = parseOnionAddress(m[1])
  } catch (err) {
    throw new NetError('NET_BAD_MULTIADDR', `invalid onion address in ${ma.toString().slice(0, 120)}: ${(err as Error).message}`, { cause: err })
  }
  const rest = parts.slice(1)
  let peerId: string | undefined
  if (rest.length > 0) {
    if (rest.length > 1 || rest[0].code !== P2P_CODE || rest[0].value === undefined) {
      throw new NetError('NET_BAD_MULTIADDR', `only /p2p/<id> may follow /onion3, got ${ma.toString().slice(0, 160)}`)
    }
    peerId = rest[0].value
    let key: Uint8Array | undefined
    try {
      key = ed25519FromPeerId(peerIdFromString(peerId))
    } catch (err) {
      throw new NetError('NET_BAD_MULTIADDR', `bad /p2p/ id in ${ma.toString().slice(0, 160)}`, { cause: err })
    }
    if (key === undefined || !bytesEqual(key, parsed.publicKey)) {
      throw new NetError('NET_ONION_MISMATCH', `the onion address ${parsed.address} does not belong to peer ${peerId}`)
    }
  }
  return { address: parsed.address, publicKey: parsed.publicKey, port, peerId }
}

/** Builds `/onion3/<address>:<port>`. */
export function onion3Multiaddr (address: string, port: number): Multiaddr {
  return multiaddr(`/onion3/${address}:${port}`)
}
