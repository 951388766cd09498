/**
 * The primitives the wormhole protocols are built on, all from node:crypto (audited OpenSSL):
 *
 * - X25519 (RFC 7748) for every Diffie-Hellman: identity, prekeys, ratchet, envelopes.
 * - HKDF-SHA256 (RFC 5869) for every key derivation, each with its own info label.
 * - HMAC-SHA256 (RFC 2104) for the chain-key steps of the ratchet and of sender keys.
 * - ChaCha20-Poly1305 (RFC 8439) as the AEAD: constant time in software (no reliance on AES-NI),
 *   ~650 MB/s here through OpenSSL. Every AEAD key in this layer is used for one message only and
 *   its nonce comes from the same HKDF output, so a nonce can never repeat under a key.
 * - Ed25519 (RFC 8032) signatures come from src/crypto (Identity, verifySignature).
 *
 * Private keys live in Uint8Arrays that their owners wipe when dropped. OpenSSL's own copies
 * (inside KeyObjects) are freed by the garbage collector; node:crypto offers no way to zero them.
 */
import { createCipheriv, createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto'
import type { Rng } from '../core/rng.ts'
import { wormholeError } from './errors.ts'

export const X25519_BYTES = 32
export const AEAD_KEY_BYTES = 32
export const AEAD_NONCE_BYTES = 12
export const AEAD_TAG_BYTES = 16

// Private keys enter OpenSSL as PKCS#8 DER from a Buffer we wipe (a JWK would leave the key in
// a JavaScript string, which cannot be wiped); OpenSSL clears its copy when the key is freed.
// Public keys go both ways as JWK: a tenth of the cost of SPKI DER here.
const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20])

function privateKeyObject (priv: Uint8Array): KeyObject {
  const der = Buffer.alloc(PKCS8_X25519.byteLength + 32)
  der.set(PKCS8_X25519, 0)
  der.set(priv, PKCS8_X25519.byteLength)
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

function publicKeyObject (pub: Uint8Array): KeyObject {
  if (!(pub instanceof Uint8Array) || pub.byteLength !== X25519_BYTES) throw wormholeError('WORMHOLE_BAD_KEY', `an X25519 public key has 32 bytes, got ${pub instanceof Uint8Array ? pub.byteLength : typeof pub}`)
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(pub.buffer, pub.byteOffset, pub.byteLength).toString('base64url') }, format: 'jwk' })
  } catch (err) {
    throw wormholeError('WORMHOLE_BAD_KEY', 'malformed X25519 public key', err)
  }
}

function derive (priv: KeyObject, pub: Uint8Array): Uint8Array {
  let out: Buffer
  try {
    out = diffieHellman({ privateKey: priv, publicKey: publicKeyObject(pub) })
  } catch (err) {
    // OpenSSL refuses an all-zero shared secret (a low-order point): RFC 7748 §6.1's check.
    throw wormholeError('WORMHOLE_BAD_KEY', 'X25519 with this public key gives no shared secret (low-order point)', err)
  }
  const copy = new Uint8Array(out)
  out.fill(0)
  return copy
}

/**
 * An X25519 key pair; `destroy()` wipes the private bytes. The OpenSSL key object and the public
 * key are made on first use: restoring stored state with many prekeys costs no curve operation.
 */
export class X25519KeyPair {
  private readonly priv: Uint8Array
  private key: KeyObject | undefined
  private pub: Uint8Array | undefined
  private destroyed = false

  private constructor (priv: Uint8Array) {
    if (!(priv instanceof Uint8Array) || priv.byteLength !== X25519_BYTES) throw wormholeError('WORMHOLE_BAD_KEY', 'an X25519 private key has 32 bytes')
    this.priv = Uint8Array.from(priv)
  }

  /** From 32 private bytes (copied; clamping is X25519's, RFC 7748 §5). */
  static fromPrivate (priv: Uint8Array): X25519KeyPair { return new X25519KeyPair(priv) }

  /** A fresh key pair from `rng`. */
  static generate (rng: Rng): X25519KeyPair {
    const priv = rng.bytes(X25519_BYTES)
    try { return new X25519KeyPair(priv) } finally { priv.fill(0) }
  }

  private keyObject (): KeyObject {
    if (this.destroyed) throw wormholeError('WORMHOLE_CLOSED', 'this key pair was destroyed')
    this.key ??= privateKeyObject(this.priv)
    return this.key
  }

  get publicKey (): Uint8Array {
    if (this.pub === undefined) {
      const x = createPublicKey(this.keyObject()).export({ format: 'jwk' }).x
      if (typeof x !== 'string') throw wormholeError('WORMHOLE_BAD_KEY', 'no public key for this private key')
      this.pub = new Uint8Array(Buffer.from(x, 'base64url'))
    }
    return this.pub
  }

  /** The private bytes, for serialisation: the caller wipes what it does with them. */
  get privateKey (): Uint8Array {
    if (this.destroyed) throw wormholeError('WORMHOLE_CLOSED', 'this key pair was destroyed')
    return this.priv
  }

  /** X25519(our private key, `theirPublic`); WORMHOLE_BAD_KEY on a low-order point. */
  dh (theirPublic: Uint8Array): Uint8Array {
    return derive(this.keyObject(), theirPublic)
  }

  destroy (): void {
    this.priv.fill(0)
    this.key = undefined
    this.destroyed = true
  }
}

/** Raw X25519 of a scalar and a u-coordinate (RFC 7748 §5); the caller wipes the result. */
export function x25519 (scalar: Uint8Array, u: Uint8Array): Uint8Array {
  const pair = X25519KeyPair.fromPrivate(scalar)
  try { return pair.dh(u) } finally { pair.destroy() }
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdf (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length))
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256 (key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = createHmac('sha256', key).update(data).digest()
  const copy = new Uint8Array(out)
  out.fill(0)
  return copy
}

/** ChaCha20-Poly1305 (RFC 8439): ciphertext || 16-byte tag. */
export function aeadSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES })
  c.setAAD(aad, { plaintextLength: plaintext.byteLength })
  const body = c.update(plaintext)
  c.final()
  const tag = c.getAuthTag()
  const out = new Uint8Array(body.byteLength + AEAD_TAG_BYTES)
  out.set(body, 0)
  out.set(tag, body.byteLength)
  return out
}

/** Opens what aeadSeal produced; WORMHOLE_DECRYPT_FAILED when the tag does not verify. */
export function aeadOpen (key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (sealed.byteLength < AEAD_TAG_BYTES) throw wormholeError('WORMHOLE_DECRYPT_FAILED', 'ciphertext shorter than its tag')
  const body = sealed.subarray(0, sealed.byteLength - AEAD_TAG_BYTES)
  const tag = sealed.subarray(sealed.byteLength - AEAD_TAG_BYTES)
  try {
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES })
    d.setAAD(aad, { plaintextLength: body.byteLength })
    d.setAuthTag(tag)
    const out = d.update(body)
    d.final()
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  } catch (err) {
    throw wormholeError('WORMHOLE_DECRYPT_FAILED', 'authentication failed: the message was modified or is not for this key', err)
  }
}

/**
 * Key and nonce for one AEAD message from a one-time secret:
 * HKDF-SHA256(ikm = secret, salt = `salt`, info) → key[32] || nonce[12].
 */
export function aeadKeyFrom (secret: Uint8Array, salt: Uint8Array, info: Uint8Array): { key: Uint8Array, nonce: Uint8Array } {
  const okm = hkdf(secret, salt, info, AEAD_KEY_BYTES + AEAD_NONCE_BYTES)
  const key = okm.slice(0, AEAD_KEY_BYTES)
  const nonce = okm.slice(AEAD_KEY_BYTES)
  okm.fill(0)
  return { key, nonce }
}
