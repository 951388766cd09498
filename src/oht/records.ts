/**
 * OHT records and their keys.
 *
 * - Immutable: key = SHA-256(value). Anyone may store it; the key proves the content.
 * - Mutable: key = SHA-256(publicKey || salt). The writer signs, with its Ed25519 key,
 *
 *     "oht/mutable/v1\0" || u8 saltLength || salt || u64 seq || u64 ttlMs || value
 *
 *   (u64 big-endian). `seq` only ever goes up; the domain tag keeps these signatures from being
 *   replayed as any other protocol's message; the salt length prefix keeps salt and seq apart.
 *
 * `ttlMs` is the lifetime the writer asks for; a storing node clamps it to its own policy.
 */
import { bytesEqual } from '../core/bytes.ts'
import { sha256, verifySignature } from '../crypto/index.ts'
import { OhtError } from './errors.ts'

export const MAX_SALT_BYTES = 64
export const SIGNATURE_BYTES = 64
export const PUBLIC_KEY_BYTES = 32
export const KEY_BYTES = 32
/** Largest seq/ttl the wire carries (fits a JS number exactly). */
export const MAX_U53 = Number.MAX_SAFE_INTEGER

const MUTABLE_TAG = new TextEncoder().encode('oht/mutable/v1\0')
const EMPTY = new Uint8Array(0)

export interface ImmutableRecord {
  readonly kind: 'immutable'
  readonly value: Uint8Array
  readonly ttlMs: number
}

export interface MutableRecord {
  readonly kind: 'mutable'
  readonly publicKey: Uint8Array
  readonly salt: Uint8Array
  readonly seq: number
  readonly ttlMs: number
  readonly value: Uint8Array
  readonly signature: Uint8Array
}

export type OhtRecord = ImmutableRecord | MutableRecord

/** key = SHA-256(value). */
export function immutableKey (value: Uint8Array): Uint8Array {
  return sha256(value)
}

/** key = SHA-256(publicKey || salt). */
export function mutableKey (publicKey: Uint8Array, salt: Uint8Array = EMPTY): Uint8Array {
  return sha256(publicKey, salt)
}

export function recordKey (record: OhtRecord): Uint8Array {
  return record.kind === 'immutable' ? immutableKey(record.value) : mutableKey(record.publicKey, record.salt)
}

function writeU64 (out: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / 2 ** 32)
  const lo = v >>> 0
  out[off] = hi >>> 24; out[off + 1] = (hi >>> 16) & 0xff; out[off + 2] = (hi >>> 8) & 0xff; out[off + 3] = hi & 0xff
  out[off + 4] = lo >>> 24; out[off + 5] = (lo >>> 16) & 0xff; out[off + 6] = (lo >>> 8) & 0xff; out[off + 7] = lo & 0xff
}

/** The exact bytes a mutable record's signature covers (see the module comment). */
export function mutableSignable (salt: Uint8Array, seq: number, ttlMs: number, value: Uint8Array): Uint8Array {
  checkMutableFields(salt, seq, ttlMs)
  const out = new Uint8Array(MUTABLE_TAG.byteLength + 1 + salt.byteLength + 16 + value.byteLength)
  let off = 0
  out.set(MUTABLE_TAG, off); off += MUTABLE_TAG.byteLength
  out[off++] = salt.byteLength
  out.set(salt, off); off += salt.byteLength
  writeU64(out, off, seq); off += 8
  writeU64(out, off, ttlMs); off += 8
  out.set(value, off)
  return out
}

function checkMutableFields (salt: Uint8Array, seq: number, ttlMs: number): void {
  if (salt.byteLength > MAX_SALT_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `salt is ${salt.byteLength} bytes; at most ${MAX_SALT_BYTES} are allowed`)
  if (!Number.isSafeInteger(seq) || seq < 0) throw new OhtError('OHT_BAD_ARGUMENT', `seq must be a non-negative safe integer, got ${seq}`)
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new OhtError('OHT_BAD_ARGUMENT', `ttlMs must be a non-negative safe integer, got ${ttlMs}`)
}

/** Signs a mutable record with `signer` (the identity whose public key it carries). */
export function signMutable (signer: { publicKey: Uint8Array, sign(msg: Uint8Array): Uint8Array }, fields: { salt?: Uint8Array, seq: number, ttlMs: number, value: Uint8Array }): MutableRecord {
  const salt = fields.salt ?? EMPTY
  const signature = signer.sign(mutableSignable(salt, fields.seq, fields.ttlMs, fields.value))
  return { kind: 'mutable', publicKey: signer.publicKey, salt, seq: fields.seq, ttlMs: fields.ttlMs, value: fields.value, signature }
}

/** Verifies signatures, remembering (per instance) which signed messages already checked out. */
export interface SignatureVerifier {
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
}

/**
 * A verifier with a bounded cache of positive results keyed by SHA-256 of (publicKey ||
 * signature || message): a record seen from 20 peers costs one Ed25519 verification and 19
 * hashes. Negative results are not cached (a forger gains nothing by repeating).
 */
export function createSignatureVerifier (options: { cacheSize?: number } = {}): SignatureVerifier {
  const cacheSize = options.cacheSize ?? 256
  const cache = new Set<string>()
  return {
    verify (publicKey, message, signature) {
      if (cacheSize <= 0) return verifySignature(publicKey, message, signature)
      const id = Buffer.from(sha256(publicKey, signature, message)).toString('latin1')
      if (cache.has(id)) return true
      const ok = verifySignature(publicKey, message, signature)
      if (ok) {
        cache.add(id)
        if (cache.size > cacheSize) cache.delete(cache.values().next().value as string)
      }
      return ok
    }
  }
}

/**
 * Checks that `record` belongs under `key`, fits `maxValueBytes` and (mutable) carries a valid
 * signature. Throws OhtError OHT_VALUE_TOO_LARGE / OHT_KEY_MISMATCH / OHT_BAD_SIGNATURE.
 */
export function validateRecord (key: Uint8Array, record: OhtRecord, maxValueBytes: number, verifier: SignatureVerifier): void {
  if (record.value.byteLength > maxValueBytes) {
    throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${record.value.byteLength} bytes; this node accepts at most ${maxValueBytes}`)
  }
  if (!bytesEqual(recordKey(record), key)) {
    throw new OhtError('OHT_KEY_MISMATCH', 'record does not hash to the key it was sent under')
  }
  if (record.kind === 'mutable') {
    if (record.publicKey.byteLength !== PUBLIC_KEY_BYTES || record.signature.byteLength !== SIGNATURE_BYTES) {
      throw new OhtError('OHT_BAD_SIGNATURE', 'mutable record has a malformed public key or signature')
    }
    const msg = mutableSignable(record.salt, record.seq, record.ttlMs, record.value)
    if (!verifier.verify(record.publicKey, msg, record.signature)) {
      throw new OhtError('OHT_BAD_SIGNATURE', 'mutable record signature does not verify against its public key')
    }
  }
}

/** A record in memory of its own (decoded records are views into their frame). */
export function copyRecord (r: OhtRecord): OhtRecord {
  return r.kind === 'immutable'
    ? { kind: 'immutable', ttlMs: r.ttlMs, value: r.value.slice() }
    : { kind: 'mutable', publicKey: r.publicKey.slice(), salt: r.salt.slice(), seq: r.seq, ttlMs: r.ttlMs, value: r.value.slice(), signature: r.signature.slice() }
}

/** True if two mutable records are the same signed write (a refresh, not an update). */
export function sameWrite (a: OhtRecord, b: OhtRecord): boolean {
  if (a.kind !== b.kind) return false
  if (a.kind === 'immutable') return true // same key means same value
  const m = b as MutableRecord
  return a.seq === m.seq && bytesEqual(a.signature, m.signature)
}
