/**
 * Publishing a release: pack the app's files into its bundles, put every chunk and index as an
 * immutable record, then put the release record (the signed manifest under the app key, seq =
 * release number). The release record goes last, so nobody sees a release whose chunks are not
 * stored yet; an update is the same steps with the next release number, and re-publishing an
 * unchanged app writes nothing new (it only refreshes the records' lifetimes).
 */
import type { AbortOptions } from '../core/abort.ts'
import { isCodedError } from '../core/errors.ts'
import { toHex } from '../core/bytes.ts'
import { chunkBundle, packFiles, type BundleFile, type ChunkedBundle } from './bundle.ts'
import { DoaError } from './errors.ts'
import { canonicalJson } from './json.ts'
import {
  buildReleaseRecord, releaseRecordKey, signManifest, verifyReleaseRecord, type AppManifest, type SignedManifest, type Signer
} from './manifest.ts'
import type { MutableRecord } from '../oht/index.ts'
import type { AppSource } from './app-dir.ts'
import type { DoaDht } from './op-log.ts'

/** Lifetime asked for release records and chunks (the OHT grants at most 7 days; hosts renew). */
export const RELEASE_TTL_MS = 7 * 24 * 3_600_000

export interface PreparedRelease {
  signed: SignedManifest
  code: ChunkedBundle | null
  assets: ChunkedBundle | null
  /** The packed bundles (what an install writes to its cache). */
  bundles: { code?: Uint8Array, assets?: Uint8Array }
}

/** Packs and chunks an app's files and signs its manifest for `release`. */
export function prepareRelease (source: AppSource, author: Signer, release: number): PreparedRelease {
  const pack = (files: BundleFile[] | null): { bytes: Uint8Array, chunked: ChunkedBundle } | null => {
    if (files === null) return null
    const bytes = packFiles(files)
    return { bytes, chunked: chunkBundle(bytes) }
  }
  const code = pack(source.code)
  const assets = pack(source.assets)
  const manifest: AppManifest = {
    doa: 1,
    name: source.spec.name,
    version: source.spec.version,
    author: toHex(author.publicKey),
    release,
    entry: source.spec.entry,
    bundles: { code: code?.chunked.ref ?? null, assets: assets?.chunked.ref ?? null },
    capabilities: source.spec.capabilities
  }
  if (source.spec.description !== undefined) manifest.description = source.spec.description
  const signed = signManifest(manifest, author)
  return {
    signed,
    code: code?.chunked ?? null,
    assets: assets?.chunked ?? null,
    bundles: { ...(code !== null ? { code: code.bytes } : {}), ...(assets !== null ? { assets: assets.bytes } : {}) }
  }
}

/** The current release of `appKey` in the OHT, verified, with its record; undefined when there is none. */
export async function fetchCurrentRelease (dht: DoaDht, appKey: Uint8Array, options: AbortOptions = {}): Promise<{ signed: SignedManifest, record: MutableRecord } | undefined> {
  const got = await dht.get(releaseRecordKey(appKey), options)
  if (got === undefined) return undefined
  const signed = verifyReleaseRecord(appKey, got.record)
  return { signed, record: got.record as MutableRecord }
}

export interface PublishOptions extends AbortOptions {
  /** Release number; must be above the current one. @default one above the current (1 for a new app) */
  release?: number
  /** @default RELEASE_TTL_MS */
  ttlMs?: number
  /** Records put at once. @default 4 */
  concurrency?: number
  /** Progress: records stored so far of all. */
  onProgress?: (done: number, total: number) => void
}

export interface PublishResult {
  appKey: string
  release: number
  manifest: AppManifest
  signed: SignedManifest
  /** True when the app's content equals the current release: nothing new was published. */
  unchanged: boolean
  /** Chunk and index records put. */
  records: number
  /** The fewest holders any of them (and the release record) reached. */
  minStored: number
  bundles: PreparedRelease['bundles']
}

/** The manifest without its release number: what "unchanged" compares. */
function content (m: AppManifest): string {
  const { release: _r, ...rest } = m
  return canonicalJson(rest as never)
}

/**
 * Publishes `source` as the next release of the app whose key `author` holds. Throws
 * DOA_NETWORK when a record reached no holder, DOA_BAD_ARGUMENT for a release number that is
 * not above the current one, and whatever prepareRelease refuses (bad manifest, sizes).
 */
export async function publishRelease (dht: DoaDht, source: AppSource, author: Signer, options: PublishOptions = {}): Promise<PublishResult> {
  const appKey = author.publicKey
  let found: { signed: SignedManifest, record: MutableRecord } | undefined
  try {
    found = await fetchCurrentRelease(dht, appKey, options)
  } catch (err) {
    // A forged or broken record under our key must not stop the owner from publishing over it.
    if (!(err instanceof DoaError) || isCodedError(err, 'CORE_ABORTED')) throw err
    found = undefined
  }
  const current = found?.signed
  const next = options.release ?? (current === undefined ? 1 : current.manifest.release + 1)
  if (!Number.isSafeInteger(next) || next < 1) throw new DoaError('DOA_BAD_ARGUMENT', `release ${String(next)} must be a positive whole number`)
  if (current !== undefined && next <= current.manifest.release) {
    throw new DoaError('DOA_BAD_ARGUMENT', `release ${next} is not above the published release ${current.manifest.release}`)
  }
  let prepared = prepareRelease(source, author, next)
  let unchanged = false
  if (current !== undefined && options.release === undefined && content(current.manifest) === content(prepared.signed.manifest)) {
    // Same content: refresh the current release instead of numbering a new one.
    prepared = { ...prepareRelease(source, author, current.manifest.release), signed: current }
    unchanged = true
  }
  const ttlMs = options.ttlMs ?? RELEASE_TTL_MS
  const values: Uint8Array[] = []
  for (const b of [prepared.code, prepared.assets]) if (b !== null) values.push(b.index, ...b.chunks)
  let done = 0
  let minStored = Infinity
  let next_ = 0
  const total = values.length + 1
  const worker = async (): Promise<void> => {
    while (next_ < values.length) {
      const v = values[next_++]
      const r = await dht.put({ kind: 'immutable', value: v, ttlMs }, options)
      if (r.stored === 0) throw new DoaError('DOA_NETWORK', `no OHT node stored chunk ${toHex(r.key).slice(0, 16)}…: is this node connected (oht status)?`)
      minStored = Math.min(minStored, r.stored)
      options.onProgress?.(++done, total)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, values.length)) }, worker))
  // Unchanged: the very record found, so holders refresh it (a re-signed one with another TTL
  // would be a second write at the same seq, which they refuse).
  const record = unchanged && found !== undefined ? found.record : buildReleaseRecord(prepared.signed, author, ttlMs)
  const r = await dht.put(record, options)
  if (r.stored === 0) throw new DoaError('DOA_NETWORK', 'no OHT node stored the release record: is this node connected (oht status)?')
  minStored = Math.min(minStored, r.stored)
  options.onProgress?.(total, total)
  return {
    appKey: toHex(appKey),
    release: prepared.signed.manifest.release,
    manifest: prepared.signed.manifest,
    signed: prepared.signed,
    unchanged,
    records: values.length,
    minStored: Number.isFinite(minStored) ? minStored : 0,
    bundles: prepared.bundles
  }
}
