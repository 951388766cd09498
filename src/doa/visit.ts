/**
 * Visiting an app at a host and trusting nothing it says: the visitor fetches the signed
 * manifest (checked against the app key it asked for), then the assets bundle through the
 * host's chunk route (each chunk checked against the index, the index against the manifest's
 * Merkle root), and from then on checks every file the host serves against that bundle. The
 * transport is the caller's: PeerNet (`HostClient.http`) or HTTP through tor's SOCKS port to the
 * host's onion address (the daemon and the tests).
 *
 * @example
 * const site = await visitApp(appKey, async (path) => await client.http(appKey, 'GET', path))
 * const page = await site.get('/')          // bytes of the start page, verified, or it throws
 */
import type { AbortOptions } from '../core/abort.ts'
import { toHex } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { contentTypeOf } from './app-server.ts'
import type { HttpResponse } from './app-wire.ts'
import { unpackBundle, type BundleFile } from './bundle.ts'
import { fetchBundleFrom, type ProviderReport } from './chunk-fetch.ts'
import { DoaError } from './errors.ts'
import { openManifest, type SignedManifest } from './manifest.ts'

/** GET `path` at the host (path and query); the caller's transport. */
export type HostFetch = (path: string, options: AbortOptions) => Promise<HttpResponse>

export interface VisitedApp {
  manifest: SignedManifest
  /** The verified assets bundle's files by path. */
  files: Map<string, BundleFile>
  sources: ProviderReport[]
  /** GETs `path` at the host and returns its body only if it is byte for byte the bundle's file. */
  get(path: string, options?: AbortOptions): Promise<{ path: string, body: Uint8Array, contentType: string }>
  /** Checks a body the caller fetched another way (e.g. curl) against the bundle. */
  check(path: string, body: Uint8Array): void
}

function filePath (manifest: SignedManifest, urlPath: string): string {
  const p = new URL(urlPath, 'http://app.invalid').pathname
  let rel: string
  try { rel = decodeURIComponent(p.slice(1)) } catch { throw new DoaError('DOA_BAD_ARGUMENT', `bad path ${urlPath}`) }
  if (rel === '' ) rel = manifest.manifest.entry.ui ?? ''
  else if (rel.endsWith('/')) rel += 'index.html'
  return rel
}

export async function visitApp (appKey: Uint8Array, fetch: HostFetch, options: AbortOptions = {}): Promise<VisitedApp> {
  const m = await fetch('/.well-known/doa/manifest', options)
  if (m.status !== 200) throw new DoaError('DOA_NOT_FOUND', `the host has no manifest for this app (HTTP ${m.status})`)
  const manifest = openManifest(m.body, appKey)
  const ref = manifest.manifest.bundles.assets
  if (ref === null) throw new DoaError('DOA_NOT_FOUND', `${manifest.manifest.name} has no UI`)
  const bundle = await fetchBundleFrom(ref, [{
    name: 'host',
    concurrency: 4,
    async get (key, o) {
      const r = await fetch(`/.well-known/doa/chunk/${toHex(key)}`, o)
      return r.status === 200 ? r.body : undefined
    }
  }], options)
  const files = new Map(unpackBundle(bundle.bytes).map(f => [f.path, f]))
  const check = (path: string, body: Uint8Array): void => {
    const rel = filePath(manifest, path)
    const f = files.get(rel)
    if (f === undefined) throw new DoaError('DOA_NOT_FOUND', `${rel} is not a file of ${manifest.manifest.name} release ${manifest.manifest.release}`)
    if (toHex(sha256(body)) !== toHex(sha256(f.data))) {
      throw new DoaError('DOA_CHUNK_MISMATCH', `the host served ${rel} with other bytes than release ${manifest.manifest.release} of ${manifest.manifest.name}: refusing it`)
    }
  }
  return {
    manifest,
    files,
    sources: bundle.sources,
    check,
    async get (path, o = {}) {
      const r = await fetch(path, o)
      if (r.status !== 200) throw new DoaError('DOA_NOT_FOUND', `the host answered ${r.status} for ${path}`)
      check(path, r.body)
      const rel = filePath(manifest, path)
      return { path: rel, body: r.body, contentType: contentTypeOf(rel) }
    }
  }
}
