/**
 * Zone keys and label-derived keys, following RFC 9498 (GNS) §5.1.2, the "EDKEY" zone type:
 * a zone key is an Ed25519 key pair (seed d; scalar a = clamped SHA-512(d)[0..31]; public
 * key zk = a·G), and each label blinds it:
 *
 *   PRK_h := HKDF-Extract(salt "key-derivation", IKM zk)          (HMAC-SHA-512)
 *   h     := HKDF-Expand(PRK_h, info label || "gns", 64 bytes)     (HMAC-SHA-256)
 *   h'    := h, read as a big-endian integer, mod L
 *   zk'   := h'·zk                                                  (derived public key)
 *   d'    := 8·(h'·(a >> 3) mod L)                                  (derived private scalar)
 *
 * and signing with the derived scalar, which has no seed, is the RFC's EdDSA variant:
 *
 *   nonce := SHA-256(SHA-512(d)[32..63] || h)
 *   r     := SHA-512(nonce || M) mod L;  R := r·G
 *   S     := (r + SHA-512(R || zk' || M)·d') mod L;   signature = R || S
 *
 * The result is a plain Ed25519 signature under zk', so any Ed25519 verifier (an OHT holder
 * checking a mutable record) accepts it, while zk' reveals neither the zone nor the label
 * without knowing both. Point and scalar arithmetic come from @noble/curves; hashing and HKDF
 * from node:crypto. test/unit/doa-edkey-vectors.test.ts checks both EDKEY vectors of RFC 9498
 * Appendix A.1: zone key, zk', q = SHA-512(zk') and the RRBLOCK signatures, byte for byte.
 */
import { createHmac } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { concatBytes, wipe } from '../core/bytes.ts'
import { sha256, sha512, type Identity } from '../crypto/index.ts'
import { DoaError } from './errors.ts'
import { utf8 } from './json.ts'
import type { Signer } from './manifest.ts'

const Point = ed25519.Point
const L = Point.Fn.ORDER
const KDF_SALT = utf8('key-derivation')
const GNS_CONTEXT = utf8('gns')

/** The apex label: records about the zone itself (rotation, revocation). */
export const APEX_LABEL = '@'

/**
 * Normalises a label: Unicode NFC, lower case, 1..63 UTF-8 bytes, no dot, no white space or
 * control characters; "@" only as the apex label. Throws DOA_BAD_NAME.
 */
export function normalizeLabel (label: string): string {
  if (typeof label !== 'string') throw new DoaError('DOA_BAD_NAME', 'a label is a string')
  const l = label.normalize('NFC').toLowerCase()
  if (l === APEX_LABEL) return l
  const n = utf8(l).byteLength
  if (n === 0 || n > 63) throw new DoaError('DOA_BAD_NAME', `label ${JSON.stringify(label)} must be 1..63 bytes long`)
  if (/[.@\s\p{Cc}\p{Cf}]/u.test(l)) throw new DoaError('DOA_BAD_NAME', `label ${JSON.stringify(label)} may not contain dots, "@", white space or control characters`)
  return l
}

function hkdfExpandSha256 (prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let t = new Uint8Array(0)
  for (let i = 1, off = 0; off < length; i++) {
    t = new Uint8Array(createHmac('sha256', prk).update(t).update(info).update(Uint8Array.of(i)).digest())
    out.set(t.subarray(0, Math.min(t.byteLength, length - off)), off)
    off += t.byteLength
  }
  return out
}

/** h = HKDF(zk, label || "gns"), 64 bytes (RFC 9498 §5.1.2). */
export function blindingHash (zonePublicKey: Uint8Array, label: string): Uint8Array {
  if (zonePublicKey?.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'a zone public key has 32 bytes')
  const prk = new Uint8Array(createHmac('sha512', KDF_SALT).update(zonePublicKey).digest())
  return hkdfExpandSha256(prk, concatBytes(utf8(normalizeLabel(label)), GNS_CONTEXT), 64)
}

function bigFromBE (b: Uint8Array): bigint {
  let x = 0n
  for (const v of b) x = (x << 8n) | BigInt(v)
  return x
}
function bigFromLE (b: Uint8Array): bigint {
  let x = 0n
  for (let i = b.byteLength - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i])
  return x
}
function leBytes32 (x: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) { out[i] = Number(x & 0xffn); x >>= 8n }
  return out
}
const mod = (x: bigint): bigint => ((x % L) + L) % L

/** zk' = (h mod L)·zk: the key a label's record is stored and verified under. */
export function deriveLabelPublicKey (zonePublicKey: Uint8Array, label: string): Uint8Array {
  const h = mod(bigFromBE(blindingHash(zonePublicKey, label)))
  let zk: InstanceType<typeof Point>
  try { zk = Point.fromBytes(zonePublicKey) } catch (err) { throw new DoaError('DOA_BAD_ARGUMENT', 'the zone public key is not a valid Ed25519 point', { cause: err }) }
  if (h === 0n) throw new DoaError('DOA_BAD_ARGUMENT', 'degenerate blinding factor')
  return zk.multiply(h).toBytes()
}

export interface LabelSigner extends Signer {
  /** Zeroes the derived secret; the signer can no longer sign. */
  destroy(): void
}

/**
 * The derived key pair of `label` in `zone`, able to sign as zk' (RFC 9498 EDKEY signing).
 * Call destroy() when done: it holds secret material.
 */
export function deriveLabelSigner (zone: Identity, label: string): LabelSigner {
  const hBytes = blindingHash(zone.publicKey, label)
  const h = mod(bigFromBE(hBytes))
  const expanded = sha512(zone.seed)
  const aBytes = expanded.slice(0, 32)
  aBytes[0] &= 248; aBytes[31] &= 127; aBytes[31] |= 64
  const a = bigFromLE(aBytes)
  let d: bigint | undefined = mod(mod(h * (a >> 3n)) << 3n)
  const nonceKey = sha256(expanded.subarray(32, 64), hBytes)
  wipe(expanded, aBytes)
  const publicKey = Point.BASE.multiply(d).toBytes()
  return {
    publicKey,
    sign (message: Uint8Array): Uint8Array {
      if (d === undefined) throw new DoaError('DOA_BAD_ARGUMENT', 'this label signer was destroyed')
      // r = 0 has probability 2^-252; noble refuses a zero scalar, so it is taken as 1 then.
      const r = mod(bigFromLE(sha512(nonceKey, message)))
      const R = Point.BASE.multiply(r === 0n ? 1n : r).toBytes()
      const k = mod(bigFromLE(sha512(R, publicKey, message)))
      const S = mod((r === 0n ? 1n : r) + k * d)
      return concatBytes(R, leBytes32(S))
    },
    destroy () { d = undefined; wipe(nonceKey) }
  }
}
