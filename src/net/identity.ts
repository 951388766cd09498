/**
 * One Ed25519 key is a node's OHT identity, its libp2p PeerId and its onion address. These
 * helpers move between the three views of that key.
 */
import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { concatBytes, wipe } from '../core/index.ts'
import { identityFromSeed, onionAddressFromPublicKey } from '../crypto/index.ts'
import { NetError } from './errors.ts'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'

/**
 * The libp2p private key for an identity seed: the same Ed25519 key, so the node's PeerId
 * and its onion address name the same public key.
 */
export function libp2pKeyFromSeed (seed: Uint8Array): Ed25519PrivateKey {
  const identity = identityFromSeed(seed)
  // libp2p's raw Ed25519 private key is seed || public key (64 bytes)
  const raw = concatBytes(identity.seed, identity.publicKey)
  try {
    const key = privateKeyFromRaw(raw)
    if (key.type !== 'Ed25519') throw new NetError('NET_BAD_CONFIG', 'expected an Ed25519 key')
    return key
  } finally {
    wipe(raw)
    identity.destroy()
  }
}

/** The PeerId of a 32-byte Ed25519 public key. */
export function peerIdFromEd25519 (publicKey: Uint8Array): PeerId {
  if (publicKey.byteLength !== 32) {
    throw new NetError('NET_BAD_MULTIADDR', `an Ed25519 public key has 32 bytes, got ${publicKey.byteLength}`)
  }
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey))
}

/** The raw 32-byte Ed25519 public key of a PeerId, or undefined for other key types. */
export function ed25519FromPeerId (peerId: PeerId): Uint8Array | undefined {
  if (peerId.type !== 'Ed25519' || peerId.publicKey == null) return undefined
  return peerId.publicKey.raw
}

/** The 56-character onion address (no ".onion") a PeerId's key owns, if it is Ed25519. */
export function onionOfPeerId (peerId: PeerId): string | undefined {
  const raw = ed25519FromPeerId(peerId)
  return raw === undefined ? undefined : onionAddressFromPublicKey(raw)
}
