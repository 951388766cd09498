/**
 * Name records, GNS-style. A record maps one label of a zone to a target (an app key, an
 * onion address, or a delegation to another zone) and is stored in the OHT as a mutable
 * record under the label-derived key zk' (zone-keys.ts), with salt "doa/name/v1": its OHT key
 * is SHA-256(zk' || salt). Holders see zk' and ciphertext; they can link it to neither the
 * zone nor the label, and cannot read it. Whoever knows zone and label derives the key, fetches
 * the record, checks its Ed25519 signature under zk' and decrypts it.
 *
 * Record value layout:
 *
 *   0       1  version = 1
 *   1      24  XChaCha20-Poly1305 nonce (random, from the injected Rng)
 *   25      …  ciphertext of the canonical JSON payload, with its 16-byte tag
 *
 * Key: HKDF-SHA-256(IKM zk, salt "doa/name/v1/key", info label, 32 bytes); associated data:
 * "doa/name/v1\0" || zk' || u64 seq, so a holder cannot move a ciphertext to another record or
 * replay an old one under a new seq.
 *
 * Payload: { v: 1, target, expires, revoked, rotatedTo? }. Revocation and rotation are final
 * by construction: a revocation is written at seq 2^53-1 and a rotation at 2^53-2, and the OHT
 * only ever accepts a higher seq, so no later write (not even with a stolen key) replaces a
 * revocation, and a rotation yields only to a revocation. Rotation is a record of the zone
 * apex "@" signed by the old zone key that names the new zone key.
 */
import { hkdfSync } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import type { AbortOptions } from '../core/abort.ts'
import { bytesEqual, concatBytes, fromHex, toHex } from '../core/bytes.ts'
import type { Rng } from '../core/rng.ts'
import { isValidOnionAddress, type Identity } from '../crypto/index.ts'
import { mutableKey, signMutable, validateRecord, createSignatureVerifier, type MutableRecord, type OhtRecord } from '../oht/index.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, fromUtf8, parseJson, utf8 } from './json.ts'
import { APEX_LABEL, deriveLabelPublicKey, deriveLabelSigner, normalizeLabel } from './zone-keys.ts'

export const NAME_SALT = utf8('doa/name/v1')
const KEY_SALT = utf8('doa/name/v1/key')
const AAD_TAG = utf8('doa/name/v1\0')
export const REVOKE_SEQ = Number.MAX_SAFE_INTEGER
export const ROTATE_SEQ = Number.MAX_SAFE_INTEGER - 1
/** Highest seq an ordinary update may use (below rotation and revocation). */
export const MAX_UPDATE_SEQ = Number.MAX_SAFE_INTEGER - 2
const MAX_PAYLOAD = 4096

export type NameTarget =
  | { type: 'app', key: string }
  | { type: 'onion', address: string }
  | { type: 'zone', key: string }

export interface NameData {
  target: NameTarget | null
  /** ms since the epoch after which resolvers refuse the record. */
  expires: number
  revoked: boolean
  /** Hex new zone key (apex record of a rotated zone). */
  rotatedTo?: string
}

function badName (message: string): never { throw new DoaError('DOA_BAD_NAME', message) }

function checkTarget (t: unknown): NameTarget | null {
  if (t === null) return null
  const x = t as Record<string, unknown>
  if (x === undefined || typeof x !== 'object') badName('a name target is an object')
  if ((x.type === 'app' || x.type === 'zone') && typeof x.key === 'string' && /^[0-9a-f]{64}$/.test(x.key) && Object.keys(x).length === 2) return { type: x.type, key: x.key }
  if (x.type === 'onion' && typeof x.address === 'string' && isValidOnionAddress(x.address.replace(/\.onion$/, '')) && Object.keys(x).length === 2) return { type: 'onion', address: x.address.replace(/\.onion$/, '') }
  badName('a name target is { type: "app" | "zone", key: 64 hex } or { type: "onion", address: a v3 onion address }')
}

function recordKeyMaterial (zonePublicKey: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', zonePublicKey, KEY_SALT, utf8(label), 32))
}

function aad (derived: Uint8Array, seq: number): Uint8Array {
  const s = new Uint8Array(8)
  const dv = new DataView(s.buffer)
  dv.setUint32(0, Math.floor(seq / 2 ** 32)); dv.setUint32(4, seq >>> 0)
  return concatBytes(AAD_TAG, derived, s)
}

/** The OHT key under which `label` of zone `zonePublicKey` is stored. */
export function nameRecordKey (zonePublicKey: Uint8Array, label: string): Uint8Array {
  return mutableKey(deriveLabelPublicKey(zonePublicKey, normalizeLabel(label)), NAME_SALT)
}

export interface NameRecordFields {
  label: string
  data: NameData
  /** Record version; ordinary updates stay at or below MAX_UPDATE_SEQ. */
  seq: number
  ttlMs: number
}

/** Builds the signed, encrypted OHT record for one label of `zone`. */
export function createNameRecord (zone: Identity, fields: NameRecordFields, rng: Rng): MutableRecord {
  const label = normalizeLabel(fields.label)
  const data = fields.data
  const payload: Record<string, unknown> = { v: 1, target: checkTarget(data.target), expires: data.expires, revoked: data.revoked === true }
  if (!Number.isSafeInteger(data.expires) || data.expires < 0) badName('expires must be a time in ms since the epoch')
  if (data.rotatedTo !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(data.rotatedTo)) badName('rotatedTo must be a 64-hex-digit zone key')
    payload.rotatedTo = data.rotatedTo
  }
  const plain = utf8(canonicalJson(payload))
  if (plain.byteLength > MAX_PAYLOAD) throw new DoaError('DOA_TOO_LARGE', 'name record payload is too large')
  const signer = deriveLabelSigner(zone, label)
  const key = recordKeyMaterial(zone.publicKey, label)
  try {
    const nonce = rng.bytes(24)
    const sealed = xchacha20poly1305(key, nonce, aad(signer.publicKey, fields.seq)).encrypt(plain)
    const value = concatBytes(Uint8Array.of(1), nonce, sealed)
    return signMutable(signer, { salt: NAME_SALT, seq: fields.seq, ttlMs: fields.ttlMs, value })
  } finally {
    signer.destroy()
    key.fill(0)
    plain.fill(0)
  }
}

/** A revocation of `label` (or of the whole zone with the apex label "@"): final. */
export function createRevocation (zone: Identity, label: string, ttlMs: number, rng: Rng): MutableRecord {
  return createNameRecord(zone, { label, seq: REVOKE_SEQ, ttlMs, data: { target: null, expires: Number.MAX_SAFE_INTEGER, revoked: true } }, rng)
}

/** The apex record moving `oldZone` to `newZonePublicKey`, signed by the old key. */
export function createRotation (oldZone: Identity, newZonePublicKey: Uint8Array, ttlMs: number, rng: Rng): MutableRecord {
  const key = toHex(newZonePublicKey)
  return createNameRecord(oldZone, { label: APEX_LABEL, seq: ROTATE_SEQ, ttlMs, data: { target: { type: 'zone', key }, expires: Number.MAX_SAFE_INTEGER, revoked: false, rotatedTo: key } }, rng)
}

const verifier = createSignatureVerifier({ cacheSize: 0 })

/**
 * Verifies and decrypts a fetched name record of `label` in zone `zonePublicKey`. Throws
 * DOA_BAD_RECORD, DOA_KEY_MISMATCH (a record of another label or zone), DOA_BAD_SIGNATURE
 * or DOA_BAD_NAME. Expiry and revocation are the caller's to act on (see `resolveName`).
 */
export function openNameRecord (record: OhtRecord, zonePublicKey: Uint8Array, label: string): NameData & { seq: number } {
  const l = normalizeLabel(label)
  if (record.kind !== 'mutable') throw new DoaError('DOA_BAD_RECORD', 'a name record is a mutable record')
  if (!bytesEqual(record.salt, NAME_SALT)) throw new DoaError('DOA_BAD_RECORD', 'this record is not a name record (wrong salt)')
  const derived = deriveLabelPublicKey(zonePublicKey, l)
  if (!bytesEqual(record.publicKey, derived)) throw new DoaError('DOA_KEY_MISMATCH', `the record is not the one of ${JSON.stringify(l)} in zone ${toHex(zonePublicKey).slice(0, 16)}…`)
  try { validateRecord(mutableKey(derived, NAME_SALT), record, 64 * 1024, verifier) } catch (err) {
    throw new DoaError('DOA_BAD_SIGNATURE', `the name record does not verify: ${(err as Error).message}`, { cause: err })
  }
  const v = record.value
  if (v.byteLength < 1 + 24 + 16 || v[0] !== 1) throw new DoaError('DOA_BAD_RECORD', 'name record value is not version 1 or is truncated')
  const key = recordKeyMaterial(zonePublicKey, l)
  let plain: Uint8Array
  try {
    plain = xchacha20poly1305(key, v.subarray(1, 25), aad(derived, record.seq)).decrypt(v.subarray(25))
  } catch (err) {
    throw new DoaError('DOA_BAD_RECORD', 'the name record does not decrypt: it was altered or sealed for another label', { cause: err })
  } finally { key.fill(0) }
  if (plain.byteLength > MAX_PAYLOAD) throw new DoaError('DOA_TOO_LARGE', 'name record payload is too large')
  const p = parseJson(fromUtf8(plain), { maxLength: MAX_PAYLOAD }) as Record<string, unknown>
  if (p === null || typeof p !== 'object' || p.v !== 1 || typeof p.revoked !== 'boolean' || !Number.isSafeInteger(p.expires)) badName('name record payload is malformed')
  const out: NameData & { seq: number } = { target: checkTarget(p.target), expires: p.expires as number, revoked: p.revoked, seq: record.seq }
  if (p.rotatedTo !== undefined) {
    if (typeof p.rotatedTo !== 'string' || !/^[0-9a-f]{64}$/.test(p.rotatedTo)) badName('rotatedTo is malformed')
    out.rotatedTo = p.rotatedTo
  }
  if (out.revoked && record.seq !== REVOKE_SEQ) badName('a revocation must be written at the revocation seq')
  if (out.rotatedTo !== undefined && (l !== APEX_LABEL || record.seq !== ROTATE_SEQ)) badName('a rotation must be an apex record at the rotation seq')
  return out
}

/** Where name records come from: the networked half passes the OHT engine. */
export interface NameRecordSource {
  get(key: Uint8Array, options?: AbortOptions): Promise<OhtRecord | undefined>
}

export interface ResolveOptions extends AbortOptions {
  /** Resolves the last part of a name (a petname or 64 hex digits) to a zone key. */
  zoneOf: (petname: string) => Uint8Array | undefined
  source: NameRecordSource
  /** ms since the epoch, from the caller's Clock. */
  now: number
  /** Delegations and rotations followed at most. @default 8 */
  maxHops?: number
}

export interface Resolution {
  target: NameTarget
  /** Zone that holds the final record. */
  zone: string
  /** Rotations met on the way: the user's petname for `from` should now point to `to`. */
  rotations: Array<{ from: string, to: string }>
}

/**
 * Resolves `label.….petname` (or `label.<zone key hex>`) right to left: each inner label must
 * delegate to a zone, the first label gives the target. Each zone's apex is checked first for
 * revocation (DOA_NAME_REVOKED) and rotation (followed, and reported). Missing records are
 * DOA_NOT_FOUND, expired ones DOA_NAME_EXPIRED.
 */
export async function resolveName (name: string, options: ResolveOptions): Promise<Resolution> {
  const parts = name.trim().replace(/\.$/, '').split('.')
  if (parts.length < 2) badName(`${JSON.stringify(name)} is not label.zone: give at least one label and a petname`)
  const last = parts.pop() as string
  const labels = parts.map(normalizeLabel).reverse()
  let zone = /^[0-9a-f]{64}$/.test(last) ? fromHex(last) : options.zoneOf(last.normalize('NFC').toLowerCase())
  if (zone === undefined) throw new DoaError('DOA_NOT_FOUND', `no petname ${JSON.stringify(last)}: add it with a zone key first`)
  const rotations: Resolution['rotations'] = []
  let hops = 0
  const maxHops = options.maxHops ?? 8
  const fetch = async (z: Uint8Array, label: string): Promise<(NameData & { seq: number }) | undefined> => {
    const rec = await options.source.get(nameRecordKey(z, label), options)
    return rec === undefined ? undefined : openNameRecord(rec, z, label)
  }
  // The zone's apex (revocation, rotation) and the label are fetched at once: over onion
  // services each lookup is seconds, and the label's answer is only used once the apex allows it.
  const settleZone = async (z: Uint8Array, label: string): Promise<{ zone: Uint8Array, data: Awaited<ReturnType<typeof fetch>> }> => {
    for (;;) {
      const labelFetch = fetch(z, label)
      labelFetch.catch(() => {})
      const apex = await fetch(z, APEX_LABEL)
      if (apex !== undefined) {
        if (apex.revoked) throw new DoaError('DOA_NAME_REVOKED', `zone ${toHex(z).slice(0, 16)}… was revoked by its owner`)
        if (apex.rotatedTo !== undefined) {
          if (++hops > maxHops) throw new DoaError('DOA_NAME_LOOP', `more than ${maxHops} delegations or rotations`)
          rotations.push({ from: toHex(z), to: apex.rotatedTo })
          z = fromHex(apex.rotatedTo)
          continue
        }
      }
      return { zone: z, data: await labelFetch }
    }
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]
    const settled = await settleZone(zone, label)
    zone = settled.zone
    const data = settled.data
    if (data === undefined) throw new DoaError('DOA_NOT_FOUND', `${JSON.stringify(label)} is not registered in zone ${toHex(zone).slice(0, 16)}…`)
    if (data.revoked) throw new DoaError('DOA_NAME_REVOKED', `${JSON.stringify(label)} was revoked by its zone`)
    if (data.expires <= options.now) throw new DoaError('DOA_NAME_EXPIRED', `the record of ${JSON.stringify(label)} expired`)
    if (data.target === null) throw new DoaError('DOA_NOT_FOUND', `${JSON.stringify(label)} points nowhere`)
    if (i === labels.length - 1) return { target: data.target, zone: toHex(zone), rotations }
    if (data.target.type !== 'zone') badName(`${JSON.stringify(label)} is not a delegation to a zone, so it has no sub-names`)
    if (++hops > maxHops) throw new DoaError('DOA_NAME_LOOP', `more than ${maxHops} delegations or rotations`)
    zone = fromHex(data.target.key)
  }
  throw new DoaError('DOA_BAD_NAME', 'empty name')
}
