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
 * - Value (one of many under a multi-value key, in a namespace such as `set` or `mailbox`):
 *   any 32-byte key; each value is signed by its writer's Ed25519 key over
 *
 *     "oht/value/v1\0" || u8 kindCode || key[32] || u8 idLength || id || u64 seq || u64 ttlMs ||
 *     u8 flags (bit0 = deleted) || value
 *
 *   so it cannot be moved to another key or namespace. (writer, id) names the value within its
 *   key; a higher seq replaces it; a signed tombstone (deleted, empty value) removes it and is
 *   kept until its own lifetime ends, so an outdated replica cannot bring the value back.
 *
 * `ttlMs` is the lifetime the writer asks for; a storing node clamps it to its kind's policy.
 */
import { bytesEqual, toHex } from '../core/bytes.ts'
import { sha256, verifySignature } from '../crypto/index.ts'
import { OhtError } from './errors.ts'

export const MAX_SALT_BYTES = 64
/** Largest value id within a multi-value key. */
export const MAX_VALUE_ID_BYTES = 32
export const SIGNATURE_BYTES = 64
export const PUBLIC_KEY_BYTES = 32
export const KEY_BYTES = 32
/** Largest seq/ttl the wire carries (fits a JS number exactly). */
export const MAX_U53 = Number.MAX_SAFE_INTEGER

const MUTABLE_TAG = new TextEncoder().encode('oht/mutable/v1\0')
const VALUE_TAG = new TextEncoder().encode('oht/value/v1\0')
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

/** One value of a multi-value key (see the module comment). */
export interface ValueRecord {
  readonly kind: 'value'
  /** The multi-value kind (namespace) it belongs to, e.g. 'set' or 'mailbox'. */
  readonly namespace: string
  /** The key it is stored under (covered by the signature). */
  readonly key: Uint8Array
  /** Ed25519 public key of the writer. */
  readonly writer: Uint8Array
  /** The writer's name for this value within the key (1..32 bytes). */
  readonly id: Uint8Array
  readonly seq: number
  readonly ttlMs: number
  /** A signed delete: the value is gone (value is empty). */
  readonly deleted: boolean
  readonly value: Uint8Array
  readonly signature: Uint8Array
}

export type OhtRecord = ImmutableRecord | MutableRecord | ValueRecord

/** key = SHA-256(value). */
export function immutableKey (value: Uint8Array): Uint8Array {
  return sha256(value)
}

/** key = SHA-256(publicKey || salt). */
export function mutableKey (publicKey: Uint8Array, salt: Uint8Array = EMPTY): Uint8Array {
  return sha256(publicKey, salt)
}

export function recordKey (record: OhtRecord): Uint8Array {
  if (record.kind === 'immutable') return immutableKey(record.value)
  if (record.kind === 'mutable') return mutableKey(record.publicKey, record.salt)
  return record.key
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

/** The exact bytes a value record's signature covers (see the module comment). */
export function valueSignable (kindCode: number, key: Uint8Array, id: Uint8Array, seq: number, ttlMs: number, deleted: boolean, value: Uint8Array): Uint8Array {
  if (key.byteLength !== KEY_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `key must be ${KEY_BYTES} bytes, got ${key.byteLength}`)
  if (id.byteLength < 1 || id.byteLength > MAX_VALUE_ID_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `value id must be 1 to ${MAX_VALUE_ID_BYTES} bytes, got ${id.byteLength}`)
  if (deleted && value.byteLength !== 0) throw new OhtError('OHT_BAD_ARGUMENT', 'a deleted value carries no bytes')
  checkMutableFields(EMPTY, seq, ttlMs)
  const out = new Uint8Array(VALUE_TAG.byteLength + 1 + KEY_BYTES + 1 + id.byteLength + 17 + value.byteLength)
  let off = 0
  out.set(VALUE_TAG, off); off += VALUE_TAG.byteLength
  out[off++] = kindCode
  out.set(key, off); off += KEY_BYTES
  out[off++] = id.byteLength
  out.set(id, off); off += id.byteLength
  writeU64(out, off, seq); off += 8
  writeU64(out, off, ttlMs); off += 8
  out[off++] = deleted ? 1 : 0
  out.set(value, off)
  return out
}

/**
 * Signs one value of a multi-value key. `kindCode` is the namespace's wire code (the registry
 * maps names to codes: `set` = 2, `mailbox` = 3).
 */
export function signValue (signer: { publicKey: Uint8Array, sign(msg: Uint8Array): Uint8Array }, fields: {
  namespace: string, kindCode: number, key: Uint8Array, id: Uint8Array, seq: number, ttlMs: number, value?: Uint8Array, deleted?: boolean
}): ValueRecord {
  const deleted = fields.deleted === true
  const value = deleted ? EMPTY : (fields.value ?? EMPTY)
  const signature = signer.sign(valueSignable(fields.kindCode, fields.key, fields.id, fields.seq, fields.ttlMs, deleted, value))
  return { kind: 'value', namespace: fields.namespace, key: fields.key, writer: signer.publicKey, id: fields.id, seq: fields.seq, ttlMs: fields.ttlMs, deleted, value, signature }
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
 * Checks that `record` belongs under `key`, fits `maxValueBytes` and (mutable, value) carries
 * a valid signature. `kindCode` is needed for value records (their signature covers it).
 * Throws OhtError OHT_VALUE_TOO_LARGE / OHT_KEY_MISMATCH / OHT_BAD_SIGNATURE.
 */
export function validateRecord (key: Uint8Array, record: OhtRecord, maxValueBytes: number, verifier: SignatureVerifier, kindCode = -1): void {
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
  } else if (record.kind === 'value') {
    if (record.writer.byteLength !== PUBLIC_KEY_BYTES || record.signature.byteLength !== SIGNATURE_BYTES) {
      throw new OhtError('OHT_BAD_SIGNATURE', 'value record has a malformed writer key or signature')
    }
    if (kindCode < 0) throw new OhtError('OHT_UNKNOWN_KIND', `record namespace ${JSON.stringify(record.namespace)} is not known here`)
    if (record.deleted && record.value.byteLength !== 0) throw new OhtError('OHT_BAD_SIGNATURE', 'a deleted value carries bytes')
    const msg = valueSignable(kindCode, key, record.id, record.seq, record.ttlMs, record.deleted, record.value)
    if (!verifier.verify(record.writer, msg, record.signature)) {
      throw new OhtError('OHT_BAD_SIGNATURE', 'value signature does not verify against its writer key')
    }
  }
}

/** A record in memory of its own (decoded records are views into their frame). */
export function copyRecord<R extends OhtRecord> (r: R): R
export function copyRecord (r: OhtRecord): OhtRecord {
  if (r.kind === 'immutable') return { kind: 'immutable', ttlMs: r.ttlMs, value: r.value.slice() }
  if (r.kind === 'mutable') return { kind: 'mutable', publicKey: r.publicKey.slice(), salt: r.salt.slice(), seq: r.seq, ttlMs: r.ttlMs, value: r.value.slice(), signature: r.signature.slice() }
  return { kind: 'value', namespace: r.namespace, key: r.key.slice(), writer: r.writer.slice(), id: r.id.slice(), seq: r.seq, ttlMs: r.ttlMs, deleted: r.deleted, value: r.value.slice(), signature: r.signature.slice() }
}

/** The name of a value within its key: writer key and value id, as one string. */
export function valueSlot (r: ValueRecord): string {
  return toHex(r.writer) + toHex(r.id)
}

/** True if two mutable records are the same signed write (a refresh, not an update). */
export function sameWrite (a: OhtRecord, b: OhtRecord): boolean {
  if (a.kind !== b.kind) return false
  if (a.kind === 'immutable') return true // same key means same value
  const m = b as MutableRecord | ValueRecord
  return a.seq === m.seq && bytesEqual(a.signature, m.signature)
}
