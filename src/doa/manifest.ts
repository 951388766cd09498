/**
 * App manifests and release records.
 *
 * A manifest is canonical JSON (see json.ts: the same manifest always gives the same bytes)
 * signed by the author's Ed25519 key. Its signed encoding, big-endian:
 *
 *   0       4  magic "DOAM"
 *   4       1  version = 1
 *   5       2  u16 length L of the manifest JSON (at most 16,384)
 *   7       L  canonical JSON of the manifest
 *   7+L    64  Ed25519 signature over "doa/manifest/v1\0" || bytes 0 .. 7+L
 *
 * The manifest signs itself, not only the OHT record that carries it, so a cached copy or one
 * served by any host verifies on its own against the app key.
 *
 * Releases are versions of ONE mutable OHT record: public key = the app key (the author's
 * key for this app; one app per key, an author derives per-app keys from the key tree), salt
 * "doa/app/v1", seq = the release number, value = the signed manifest. An update is one put;
 * an install can be pinned to a release number. The record key is SHA-256(app key || salt).
 */
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import { verifySignature } from '../crypto/index.ts'
import { mutableKey, signMutable, validateRecord, createSignatureVerifier, type MutableRecord, type OhtRecord } from '../oht/index.ts'
import { checkBundlePath, checkBundleRef, type BundleRef } from './bundle.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, fromUtf8, parseJson, utf8 } from './json.ts'

export const MANIFEST_MAGIC = utf8('DOAM')
export const MANIFEST_FORMAT = 1
export const MAX_MANIFEST_JSON = 16 * 1024
export const APP_SALT = utf8('doa/app/v1')
const SIGN_TAG = utf8('doa/manifest/v1\0')

/**
 * What an app may ask for. Nothing outside this list can be requested, and a user grants a
 * subset; only granted capabilities reach the app.
 * - `state:read`: its UI and API may read the app's replicated state.
 * - `state:write`: it may submit operations signed with the user's key for this app.
 * - `ui`: hosts serve its assets bundle as a web UI (entry.ui is the start page).
 * - `api`: hosts serve its API routes at their onion endpoint.
 * - `net:peer`: it may talk to the app's other hosts over the direct-protocol seam under the
 *   app's own protocol id (never to arbitrary addresses).
 * - `names:resolve`: its UI may resolve DOA names.
 * - `sandbox:log`: its reducer and validator may write bounded log lines (`host.log`).
 * - `sandbox:sha256`: its reducer and validator may call `host.sha256(text)`.
 * - `sandbox:ed25519`: its reducer and validator may call `host.verifyEd25519(pub, msg, sig)`.
 */
export const CAPABILITIES = ['state:read', 'state:write', 'ui', 'api', 'net:peer', 'names:resolve', 'sandbox:log', 'sandbox:sha256', 'sandbox:ed25519'] as const
export type Capability = typeof CAPABILITIES[number]

export interface AppManifest {
  /** Format version of the manifest fields. Always 1 here. */
  doa: 1
  /** Lower-case letters, digits and inner hyphens, 1..64 characters. */
  name: string
  /** Semantic version (semver.org 2.0.0), at most 64 characters. */
  version: string
  /** Hex Ed25519 public key of the author: the app key. */
  author: string
  /** The release number: the seq of the release record. */
  release: number
  /** Short description, at most 280 characters. */
  description?: string
  entry: {
    /** Start page of the UI, a path in the assets bundle (needs `ui`). */
    ui: string | null
    /** Reducer module, a path in the code bundle. */
    reducer: string | null
    /** Validator module, a path in the code bundle. */
    validator: string | null
  }
  bundles: { code: BundleRef | null, assets: BundleRef | null }
  /** Requested capabilities, sorted, no duplicates. */
  capabilities: Capability[]
}

export interface SignedManifest {
  manifest: AppManifest
  /** The signed encoding (what the release record carries and the cache stores). */
  bytes: Uint8Array
}

function badManifest (message: string): never { throw new DoaError('DOA_BAD_MANIFEST', message) }

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/
// semver.org's recommended expression.
const SEMVER_RE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/
const HEX32 = /^[0-9a-f]{64}$/

function checkKeys (o: object, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) badManifest(`${where} has an unknown field ${JSON.stringify(k)}`)
}

function checkRef (ref: unknown, where: string): BundleRef | null {
  if (ref === null) return null
  if (ref === undefined || typeof ref !== 'object' || Array.isArray(ref)) badManifest(`${where} is not a bundle reference`)
  checkKeys(ref, ['root', 'index', 'size', 'chunks', 'chunkBytes'], where)
  try { checkBundleRef(ref as BundleRef) } catch (err) { throw new DoaError('DOA_BAD_MANIFEST', `${where}: ${(err as Error).message}`, { cause: err }) }
  return ref as BundleRef
}

function checkPath (p: unknown, where: string): string | null {
  if (p === null) return null
  if (typeof p !== 'string') badManifest(`${where} is not a path`)
  try { checkBundlePath(p) } catch (err) { throw new DoaError('DOA_BAD_MANIFEST', `${where}: ${(err as Error).message}`, { cause: err }) }
  return p
}

/**
 * Checks every field rule and returns the manifest in its normal form (capabilities sorted).
 * Throws DOA_BAD_MANIFEST naming the field at fault.
 */
export function checkManifest (input: unknown): AppManifest {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) badManifest('a manifest is a JSON object')
  const m = input as Record<string, unknown>
  checkKeys(m, ['doa', 'name', 'version', 'author', 'release', 'description', 'entry', 'bundles', 'capabilities'], 'manifest')
  if (m.doa !== MANIFEST_FORMAT) badManifest(`manifest format ${String(m.doa)} is not supported (this build reads ${MANIFEST_FORMAT})`)
  if (typeof m.name !== 'string' || !NAME_RE.test(m.name)) badManifest(`app name ${JSON.stringify(m.name)} must be 1..64 lower-case letters, digits and inner hyphens`)
  if (typeof m.version !== 'string' || m.version.length > 64 || !SEMVER_RE.test(m.version)) badManifest(`version ${JSON.stringify(m.version)} is not a semantic version such as 1.2.3`)
  if (typeof m.author !== 'string' || !HEX32.test(m.author)) badManifest('author must be the 64-hex-digit Ed25519 app key')
  if (!Number.isSafeInteger(m.release) || (m.release as number) < 0) badManifest(`release ${String(m.release)} must be a non-negative integer`)
  if (m.description !== undefined && (typeof m.description !== 'string' || m.description.length > 280)) badManifest('description must be a string of at most 280 characters')
  const entry = m.entry as Record<string, unknown> | undefined
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) badManifest('entry must be an object { ui, reducer, validator }')
  checkKeys(entry, ['ui', 'reducer', 'validator'], 'entry')
  const bundles = m.bundles as Record<string, unknown> | undefined
  if (bundles === null || typeof bundles !== 'object' || Array.isArray(bundles)) badManifest('bundles must be an object { code, assets }')
  checkKeys(bundles, ['code', 'assets'], 'bundles')
  const code = checkRef(bundles.code, 'bundles.code')
  const assets = checkRef(bundles.assets, 'bundles.assets')
  const ui = checkPath(entry.ui, 'entry.ui')
  const reducer = checkPath(entry.reducer, 'entry.reducer')
  const validator = checkPath(entry.validator, 'entry.validator')
  if (!Array.isArray(m.capabilities)) badManifest('capabilities must be a list')
  const caps = new Set<Capability>()
  for (const c of m.capabilities) {
    if (!(CAPABILITIES as readonly unknown[]).includes(c)) badManifest(`unknown capability ${JSON.stringify(c)}; known: ${CAPABILITIES.join(', ')}`)
    if (caps.has(c as Capability)) badManifest(`capability ${String(c)} is listed twice`)
    caps.add(c as Capability)
  }
  if (ui !== null && (assets === null || !caps.has('ui'))) badManifest('entry.ui needs an assets bundle and the "ui" capability')
  if ((reducer !== null || validator !== null) && code === null) badManifest('a reducer or validator needs a code bundle')
  if (validator !== null && reducer === null) badManifest('a validator without a reducer has no state to check')
  const out: AppManifest = {
    doa: 1,
    name: m.name,
    version: m.version,
    author: m.author,
    release: m.release as number,
    entry: { ui, reducer, validator },
    bundles: { code, assets },
    capabilities: [...caps].sort()
  }
  if (m.description !== undefined) out.description = m.description as string
  return out
}

export interface Signer { publicKey: Uint8Array, sign(message: Uint8Array): Uint8Array }

/** Signs a manifest with the author key (which must be the manifest's `author`). */
export function signManifest (manifest: AppManifest, author: Signer): SignedManifest {
  const m = checkManifest(manifest)
  if (m.author !== toHex(author.publicKey)) throw new DoaError('DOA_KEY_MISMATCH', 'the manifest names another author key than the one signing it')
  const json = utf8(canonicalJson(m))
  if (json.byteLength > MAX_MANIFEST_JSON) throw new DoaError('DOA_TOO_LARGE', `manifest is ${json.byteLength} bytes; at most ${MAX_MANIFEST_JSON} are allowed`)
  const body = new Uint8Array(7 + json.byteLength)
  body.set(MANIFEST_MAGIC, 0)
  body[4] = MANIFEST_FORMAT
  new DataView(body.buffer).setUint16(5, json.byteLength)
  body.set(json, 7)
  const sig = author.sign(concat(SIGN_TAG, body))
  const bytes = new Uint8Array(body.byteLength + 64)
  bytes.set(body, 0)
  bytes.set(sig, body.byteLength)
  return { manifest: m, bytes }
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.byteLength + b.byteLength)
  o.set(a, 0); o.set(b, a.byteLength)
  return o
}

/**
 * Decodes and verifies a signed manifest. With `appKey`, the manifest must be that app's.
 * Throws DOA_BAD_MANIFEST (malformed), DOA_BAD_SIGNATURE (forged or altered) or
 * DOA_KEY_MISMATCH (another app's manifest).
 */
export function openManifest (bytes: Uint8Array, appKey?: Uint8Array): SignedManifest {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 7 + 64) badManifest('signed manifest is truncated')
  if (!bytesEqual(bytes.subarray(0, 4), MANIFEST_MAGIC)) badManifest('not a DOA manifest (bad magic)')
  if (bytes[4] !== MANIFEST_FORMAT) badManifest(`manifest encoding version ${bytes[4]} is not supported`)
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(5)
  if (len > MAX_MANIFEST_JSON || bytes.byteLength !== 7 + len + 64) badManifest('signed manifest length does not match its header')
  const body = bytes.subarray(0, 7 + len)
  const sig = bytes.subarray(7 + len)
  const text = fromUtf8(bytes.subarray(7, 7 + len))
  let manifest: AppManifest
  try { manifest = checkManifest(parseJson(text, { maxLength: MAX_MANIFEST_JSON })) } catch (err) {
    // A flipped byte inside the JSON mostly breaks the JSON itself; say so plainly.
    throw new DoaError('DOA_BAD_MANIFEST', `manifest does not decode: ${(err as Error).message}`, { cause: err })
  }
  if (canonicalJson(manifest) !== text) badManifest('manifest JSON is not in canonical form')
  const author = fromHex(manifest.author)
  if (appKey !== undefined && !bytesEqual(author, appKey)) {
    throw new DoaError('DOA_KEY_MISMATCH', `this manifest is signed for app ${manifest.author.slice(0, 16)}…, not ${toHex(appKey).slice(0, 16)}…: refusing it`)
  }
  if (!verifySignature(author, concat(SIGN_TAG, body), sig)) {
    throw new DoaError('DOA_BAD_SIGNATURE', `the manifest of ${manifest.name} ${manifest.version} does not carry a valid signature of its author key: it was altered or forged`)
  }
  return { manifest, bytes: bytes.slice() }
}

/** The OHT key of an app's release record: SHA-256(app key || "doa/app/v1"). */
export function releaseRecordKey (appKey: Uint8Array): Uint8Array {
  return mutableKey(appKey, APP_SALT)
}

/** Builds the release record (mutable, seq = release number) for a signed manifest. */
export function buildReleaseRecord (signed: SignedManifest, author: Signer, ttlMs: number): MutableRecord {
  if (!bytesEqual(author.publicKey, fromHex(signed.manifest.author))) throw new DoaError('DOA_KEY_MISMATCH', 'only the app key may sign its release record')
  return signMutable(author, { salt: APP_SALT, seq: signed.manifest.release, ttlMs, value: signed.bytes })
}

const verifier = createSignatureVerifier({ cacheSize: 0 })

/**
 * Verifies a fetched release record into a manifest: it must be a mutable record of `appKey`
 * under the app salt, validly signed, carrying a manifest signed by the same key whose release
 * number equals the record's seq. Every failure is a DoaError with a message fit for the user.
 */
export function verifyReleaseRecord (appKey: Uint8Array, record: OhtRecord): SignedManifest {
  if (record.kind !== 'mutable') throw new DoaError('DOA_BAD_RECORD', 'an app release record must be a mutable record')
  if (!bytesEqual(record.salt, APP_SALT)) throw new DoaError('DOA_BAD_RECORD', 'this record is not an app release record (wrong salt)')
  if (!bytesEqual(record.publicKey, appKey)) throw new DoaError('DOA_KEY_MISMATCH', `the release record is signed by ${toHex(record.publicKey).slice(0, 16)}…, not by the app key ${toHex(appKey).slice(0, 16)}…`)
  try {
    validateRecord(releaseRecordKey(appKey), record, 64 * 1024, verifier)
  } catch (err) {
    throw new DoaError('DOA_BAD_SIGNATURE', `the release record does not verify: ${(err as Error).message}`, { cause: err })
  }
  const signed = openManifest(record.value, appKey)
  if (signed.manifest.release !== record.seq) {
    throw new DoaError('DOA_BAD_MANIFEST', `the record is release ${record.seq} but carries the manifest of release ${signed.manifest.release}`)
  }
  return signed
}

/** Parses an app key as people write it: 64 hex digits, optionally prefixed "doa:". */
export function parseAppKey (text: string): Uint8Array {
  const t = text.trim().toLowerCase().replace(/^doa:/, '')
  if (!HEX32.test(t)) throw new DoaError('DOA_BAD_ARGUMENT', `${JSON.stringify(text)} is not an app key (64 hex digits, optionally prefixed "doa:")`)
  return fromHex(t)
}

export function formatAppKey (key: Uint8Array): string { return 'doa:' + toHex(key) }
