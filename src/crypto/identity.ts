/**
 * Ed25519 identities through node:crypto (10–20× faster here than pure JS). One identity is a
 * node's DHT identity, its libp2p PeerId and its onion v3 address.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import { concatBytes, toHex } from '../core/bytes.ts'
import { cryptoRng } from '../core/rng.ts'
import { CryptoError } from './errors.ts'
import { sha512 } from './hash.ts'
import { onionAddressFromPublicKey } from './onion.ts'

// ASN.1 DER prefix of a PKCS#8 Ed25519 private key holding a raw 32-byte seed (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])

export interface Identity {
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** 56-character v3 onion address, lower case, without ".onion". */
  readonly onion: string
  /** 32-byte secret seed. Never log it. */
  readonly seed: Uint8Array
  /** Signs `message` (64-byte Ed25519 signature). */
  sign(message: Uint8Array): Uint8Array
  /**
   * The 64-byte expanded secret key tor's `ADD_ONION ED25519-V3:` takes:
   * clamped SHA-512(seed)[0..32] (the scalar) || SHA-512(seed)[32..64] (the nonce prefix).
   * The caller should wipe it after use.
   */
  expandedSecretKey(): Uint8Array
  /** Zeroes the seed; the identity can no longer sign. */
  destroy(): void
}

class Ed25519Identity implements Identity {
  readonly publicKey: Uint8Array
  readonly onion: string
  readonly seed: Uint8Array
  private privateKey: KeyObject | undefined

  constructor (seed: Uint8Array) {
    this.seed = Uint8Array.from(seed)
    this.privateKey = createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, this.seed)), format: 'der', type: 'pkcs8' })
    const spki = createPublicKey(this.privateKey).export({ format: 'der', type: 'spki' })
    this.publicKey = new Uint8Array(spki.subarray(spki.length - 32))
    this.onion = onionAddressFromPublicKey(this.publicKey)
  }

  sign (message: Uint8Array): Uint8Array {
    if (this.privateKey === undefined) throw new CryptoError('CRYPTO_DESTROYED', 'this identity was destroyed and can no longer sign')
    return new Uint8Array(edSign(null, message, this.privateKey))
  }

  expandedSecretKey (): Uint8Array {
    if (this.privateKey === undefined) throw new CryptoError('CRYPTO_DESTROYED', 'this identity was destroyed')
    const h = sha512(this.seed)
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return h
  }

  destroy (): void {
    this.seed.fill(0)
    this.privateKey = undefined
  }

  toJSON (): { publicKey: string, onion: string } {
    return { publicKey: Buffer.from(this.publicKey).toString('hex'), onion: this.onion }
  }
}

/** An identity from a 32-byte seed (deterministic). The seed is copied. */
export function identityFromSeed (seed: Uint8Array): Identity {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== 32) {
    throw new CryptoError('CRYPTO_BAD_SEED', `an Ed25519 seed has 32 bytes, got ${seed?.byteLength ?? typeof seed}`)
  }
  return new Ed25519Identity(seed)
}

/** A fresh identity from node:crypto's CSPRNG. */
export function generateIdentity (): Identity {
  const seed = cryptoRng.bytes(32)
  try { return identityFromSeed(seed) } finally { seed.fill(0) }
}

/**
 * Verifies an Ed25519 signature. Returns false (never throws) for malformed keys or
 * signatures, so callers can treat every bad input the same way.
 */
export function verifySignature (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.byteLength !== 32 || signature.byteLength !== 64) return false
  try {
    return edVerify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    return false
  }
}

/**
 * Imported public keys, most recently imported last: the same writers' keys come back (a
 * record verified by each node that stores or fetches it), and the import cost as much as a
 * third of a verify. Holds public keys only; a key that fails to import is not kept.
 */
const keyObjects = new Map<string, KeyObject>()
const KEY_OBJECTS_MAX = 1024

function publicKeyObject (publicKey: Uint8Array): KeyObject {
  // Keyed by toHex, which never reads `.buffer` (that would move a small key out of V8's heap).
  const hex = toHex(publicKey)
  let key = keyObjects.get(hex)
  if (key === undefined) {
    // A JWK import costs about half of a DER (SPKI) import here.
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' })
    if (keyObjects.size >= KEY_OBJECTS_MAX) keyObjects.delete(keyObjects.keys().next().value as string)
    keyObjects.set(hex, key)
  }
  return key
}

/** `ED25519-V3:<base64 of the 64-byte expanded key>`, the key argument of ADD_ONION. */
export function torKeyBlob (identity: Identity): string {
  const expanded = identity.expandedSecretKey()
  try {
    return 'ED25519-V3:' + Buffer.from(expanded).toString('base64')
  } finally {
    expanded.fill(0)
  }
}
