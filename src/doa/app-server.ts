/**
 * What a host serves for one app: the same content over two faces.
 *
 * - The HTTP face (`http()`), which the daemon puts behind the app's onion endpoint (and which
 *   PeerNet visitors reach through the `http` request of app-wire.ts):
 *
 *     GET  /  and  /<path>               the UI: files of the assets bundle (needs "ui")
 *     GET  /.well-known/doa/app          { app, name, version, release, description, capabilities, serves }
 *     GET  /.well-known/doa/manifest     the signed manifest (?release=N for an older one it keeps)
 *     GET  /.well-known/doa/chunk/<hex>  a chunk or index record of a bundle it serves (or of a snapshot)
 *     GET  /api/state                    { release, stateHash, heads, ops, state } (needs "api" and "state:read")
 *     POST /api/sync                     { vector } → { ops: [base64], more } (needs "api" and "state:read")
 *     POST /api/ops                      one signed op (bytes) → the replica's verdict (needs "api" and "state:write")
 *
 *   Every file carries `X-DOA-App`, `X-DOA-Release` and `X-DOA-SHA256` (the file's hash), a strict
 *   Content-Security-Policy (the page may load only from its own origin) and an ETag.
 *
 * - The PeerNet face (`handle()`): manifest, chunk, sync and http requests of app-wire.ts.
 *
 * Nothing here is trusted by a visitor: files come out of a bundle whose Merkle root is in the
 * signed manifest, so `visitApp` (visit.ts) checks every byte it is served.
 */
import type { AbortOptions } from '../core/abort.ts'
import type { Clock } from '../core/clock.ts'
import { fromHex, toHex } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { encodeAppResponse, type AppRequest, type AppResponse, type HttpResponse } from './app-wire.ts'
import { chunkBundle, unpackBundle, type BundleFile } from './bundle.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, parseJson, utf8, type Json } from './json.ts'
import type { Capability, SignedManifest } from './manifest.ts'
import type { AddResult, SnapshotHead } from './replica.ts'

/** One release a host keeps: the signed manifest and the packed bundles it names. */
export interface ServedRelease {
  signed: SignedManifest
  code: Uint8Array | null
  assets: Uint8Array | null
}

/** What the API routes need of the app's live state (an app session provides it). */
export interface AppStateApi {
  view(): { stateHash: string, heads: SnapshotHead[], ops: number, state: Json }
  /** Signed op bytes the asker lacks, at most `maxBytes` in all. */
  opsAfter(vector: Record<string, number>, maxBytes: number): { ops: Uint8Array[], more: boolean }
  /** Adds one signed op; the verdict is the replica's. */
  submit(bytes: Uint8Array, options: AbortOptions): Promise<AddResult>
}

export interface HttpRequest {
  method: string
  /** Path and query, e.g. "/index.html" or "/.well-known/doa/manifest?release=2". */
  path: string
  headers?: Record<string, string | undefined>
  body?: Uint8Array
}

export interface AppServerInit {
  /** Requests per second this app answers (both faces together); more get 429 / refused. @default 50 */
  requestsPerSecond?: number
  /** Burst above the rate. @default 100 */
  burst?: number
}

export interface AppServerComponents {
  clock: Clock
  /** The app's live state, when this host runs it (API routes answer 404 without). */
  state?: AppStateApi
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8', htm: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8', json: 'application/json', txt: 'text/plain; charset=utf-8', md: 'text/markdown; charset=utf-8',
  svg: 'image/svg+xml', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', ico: 'image/x-icon',
  wasm: 'application/wasm', woff: 'font/woff', woff2: 'font/woff2', map: 'application/json', xml: 'application/xml'
}

/** The page may load code, styles, images and data only from its own origin. */
export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

export function contentTypeOf (path: string): string {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase()
  return CONTENT_TYPES[ext] ?? 'application/octet-stream'
}

/** The largest API body (an op is at most ~17 KiB; a sync vector a few KiB). */
const MAX_API_BODY = 256 * 1024

interface Loaded {
  signed: SignedManifest
  files: Map<string, BundleFile & { sha: string }>
}

export interface AppServer {
  readonly appKey: Uint8Array
  /** The release served as current. */
  readonly release: number
  readonly manifest: SignedManifest
  /** Bytes of every bundle and blob kept (what counts against the host's quota). */
  readonly bytes: number
  /** Serves `release` (and keeps the previous ones for `?release=` and chunk requests). */
  addRelease(release: ServedRelease): void
  /** Keeps the chunks of an extra blob (a snapshot) so that visitors can fetch them. */
  addBlob(tag: string, blob: Uint8Array): void
  /** Drops the blob kept under `tag`. */
  dropBlob(tag: string): void
  /** Hex keys of every chunk and index kept (releases and blobs). */
  chunkKeys(): string[]
  /** A kept chunk or index by hex key. */
  chunk(keyHex: string): Uint8Array | undefined
  http(req: HttpRequest, options?: AbortOptions): Promise<HttpResponse>
  /** The PeerNet face: answers one decoded request of app-wire.ts. */
  handle(req: AppRequest, options?: AbortOptions): Promise<Uint8Array>
}

export function createAppServer (first: ServedRelease, init: AppServerInit, components: AppServerComponents): AppServer {
  return new AppServerImpl(first, init, components)
}

class AppServerImpl implements AppServer {
  readonly appKey: Uint8Array
  private readonly releases = new Map<number, Loaded>()
  private current: number
  private readonly chunks = new Map<string, Uint8Array>()
  private readonly refs = new Map<string, number>()
  private readonly blobs = new Map<string, string[]>()
  private readonly rate: number
  private readonly burst: number
  private tokens: number
  private last: number
  bytes = 0

  constructor (first: ServedRelease, init: AppServerInit, private readonly components: AppServerComponents) {
    this.appKey = fromHex(first.signed.manifest.author)
    this.rate = init.requestsPerSecond ?? 50
    this.burst = init.burst ?? 100
    this.tokens = this.burst
    this.last = components.clock.monotonic()
    this.current = first.signed.manifest.release
    this.addRelease(first)
  }

  get release (): number { return this.current }
  get manifest (): SignedManifest { return (this.releases.get(this.current) as Loaded).signed }

  /** Keeps the index and chunks of `bytes`, counting references (identical content shares keys). */
  private keep (bytes: Uint8Array, chunkBytes?: number): string[] {
    const c = chunkBundle(bytes, chunkBytes)
    const entries: Array<[string, Uint8Array]> = [[toHex(sha256(c.index)), c.index], ...c.keys.map((k, i): [string, Uint8Array] => [toHex(k), c.chunks[i]])]
    for (const [k, v] of entries) {
      const n = this.refs.get(k) ?? 0
      if (n === 0) { this.chunks.set(k, v); this.bytes += v.byteLength }
      this.refs.set(k, n + 1)
    }
    return entries.map(e => e[0])
  }

  private unkeep (keys: readonly string[]): void {
    for (const k of keys) {
      const n = (this.refs.get(k) ?? 1) - 1
      if (n > 0) { this.refs.set(k, n); continue }
      this.refs.delete(k)
      this.bytes -= this.chunks.get(k)?.byteLength ?? 0
      this.chunks.delete(k)
    }
  }

  addRelease (r: ServedRelease): void {
    const m = r.signed.manifest
    if (m.author !== toHex(this.appKey)) throw new DoaError('DOA_KEY_MISMATCH', 'a release of another app')
    const files = new Map<string, BundleFile & { sha: string }>()
    for (const [bytes, ref] of [[r.code, m.bundles.code], [r.assets, m.bundles.assets]] as const) {
      if ((bytes === null) !== (ref === null)) throw new DoaError('DOA_BAD_ARGUMENT', 'a served release needs exactly the bundles its manifest names')
      if (bytes === null || ref === null) continue
      const c = chunkBundle(bytes, ref.chunkBytes)
      if (c.ref.root !== ref.root || c.ref.index !== ref.index) throw new DoaError('DOA_CHUNK_MISMATCH', 'a served bundle does not match its manifest')
      if (!this.releases.has(m.release)) this.keep(bytes, ref.chunkBytes)
    }
    if (r.assets !== null) for (const f of unpackBundle(r.assets)) files.set(f.path, { ...f, sha: toHex(sha256(f.data)) })
    this.releases.set(m.release, { signed: r.signed, files })
    if (m.release >= this.current) this.current = m.release
  }

  addBlob (tag: string, blob: Uint8Array): void {
    this.dropBlob(tag)
    this.blobs.set(tag, this.keep(blob))
  }

  chunkKeys (): string[] { return [...this.chunks.keys()] }
  chunk (keyHex: string): Uint8Array | undefined { return this.chunks.get(keyHex) }

  dropBlob (tag: string): void {
    const keys = this.blobs.get(tag)
    if (keys === undefined) return
    this.blobs.delete(tag)
    this.unkeep(keys)
  }

  /** Token bucket on the injected clock: a host answers an app's visitors at a bounded rate. */
  private admit (): boolean {
    const now = this.components.clock.monotonic()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }

  private caps (): Set<Capability> { return new Set(this.manifest.manifest.capabilities) }

  async handle (req: AppRequest, options: AbortOptions = {}): Promise<Uint8Array> {
    const answer = (r: AppResponse): Uint8Array => encodeAppResponse(r)
    if (!this.admit()) return answer({ status: 'refused', message: 'too many requests for this app: try again shortly' })
    switch (req.type) {
      case 'manifest': {
        const l = this.releases.get(req.release ?? this.current)
        return l === undefined ? answer({ status: 'not-found', message: `release ${String(req.release)} is not kept here` }) : answer({ status: 'ok', type: 'manifest', bytes: l.signed.bytes })
      }
      case 'chunk': {
        const c = this.chunks.get(toHex(req.key))
        return c === undefined ? answer({ status: 'not-found', message: 'no such chunk here' }) : answer({ status: 'ok', type: 'chunk', bytes: c })
      }
      case 'sync': {
        const api = this.components.state
        if (api === undefined || !this.caps().has('state:read')) return answer({ status: 'refused', message: 'this host does not serve the app\'s state' })
        const r = api.opsAfter(req.vector, Math.max(0, req.maxBytes - 64))
        return answer({ status: 'ok', type: 'sync', ops: r.ops, more: r.more })
      }
      case 'http': {
        const response = await this.serve({ method: req.method, path: req.path, body: req.body }, options)
        if (response.body.byteLength > 1024 * 1024 - 4096) return answer({ status: 'ok', type: 'http', response: { status: 413, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: utf8('too large for one PeerNet message: fetch the bundle through its chunks') } })
        return answer({ status: 'ok', type: 'http', response })
      }
    }
  }

  async http (req: HttpRequest, options: AbortOptions = {}): Promise<HttpResponse> {
    if (!this.admit()) return text(429, 'too many requests for this app: try again shortly', { 'retry-after': '1' })
    return await this.serve(req, options)
  }

  private async serve (req: HttpRequest, options: AbortOptions): Promise<HttpResponse> {
    let url: URL
    try { url = new URL(req.path, 'http://app.invalid') } catch { return text(400, 'bad path') }
    const path = url.pathname
    const method = req.method.toUpperCase()
    const m = this.manifest.manifest
    const caps = this.caps()
    const base: Record<string, string> = { 'x-doa-app': `doa:${m.author}`, 'x-doa-release': String(m.release) }
    if (path === '/.well-known/doa/app' && method === 'GET') {
      const serves = ['chunks', ...(caps.has('ui') ? ['ui'] : []), ...(caps.has('api') && this.components.state !== undefined ? ['api'] : [])]
      return json(200, { app: `doa:${m.author}`, name: m.name, version: m.version, release: m.release, description: m.description ?? null, capabilities: m.capabilities, serves, releases: [...this.releases.keys()].sort((a, b) => a - b) }, base)
    }
    if (path === '/.well-known/doa/manifest' && method === 'GET') {
      const r = url.searchParams.get('release')
      const n = r === null ? this.current : Number(r)
      const l = Number.isSafeInteger(n) ? this.releases.get(n) : undefined
      if (l === undefined) return text(404, `release ${r ?? ''} is not kept here`, base)
      return { status: 200, headers: { ...base, 'content-type': 'application/octet-stream', 'cache-control': 'no-cache' }, body: l.signed.bytes }
    }
    const chunk = /^\/\.well-known\/doa\/chunk\/([0-9a-f]{64})$/.exec(path)
    if (chunk !== null && method === 'GET') {
      const c = this.chunks.get(chunk[1])
      if (c === undefined) return text(404, 'no such chunk here', base)
      return { status: 200, headers: { ...base, 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=31536000, immutable', etag: `"${chunk[1]}"` }, body: c }
    }
    if (path.startsWith('/api/')) return await this.api(path, method, req.body ?? new Uint8Array(0), base, caps, options)
    if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed', { ...base, allow: 'GET' })
    if (!caps.has('ui') || m.entry.ui === null) return text(404, 'this app has no UI', base)
    let rel: string
    try { rel = decodeURIComponent(path.slice(1)) } catch { return text(400, 'bad path', base) }
    if (rel === '' || rel.endsWith('/')) rel = rel === '' ? m.entry.ui : rel + 'index.html'
    const f = (this.releases.get(this.current) as Loaded).files.get(rel)
    if (f === undefined) return text(404, `${rel} is not a file of this app`, base)
    const etag = `"${f.sha}"`
    const headers = {
      ...base,
      'content-type': contentTypeOf(f.path),
      'x-doa-sha256': f.sha,
      etag,
      'cache-control': 'no-cache',
      'content-security-policy': UI_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer'
    }
    if (req.headers?.['if-none-match'] === etag) return { status: 304, headers, body: new Uint8Array(0) }
    return { status: 200, headers, body: method === 'HEAD' ? new Uint8Array(0) : f.data }
  }

  private async api (path: string, method: string, body: Uint8Array, base: Record<string, string>, caps: Set<Capability>, options: AbortOptions): Promise<HttpResponse> {
    const api = this.components.state
    if (!caps.has('api') || api === undefined) return text(404, 'this host does not serve an API for this app', base)
    if (body.byteLength > MAX_API_BODY) return text(413, 'request body too large', base)
    if (path === '/api/state' && method === 'GET') {
      if (!caps.has('state:read')) return text(403, 'the app does not ask for state:read', base)
      const v = api.view()
      return json(200, { release: this.current, stateHash: v.stateHash, heads: v.heads as unknown as Json, ops: v.ops, state: v.state }, base)
    }
    if (path === '/api/sync' && method === 'POST') {
      if (!caps.has('state:read')) return text(403, 'the app does not ask for state:read', base)
      let vector: Record<string, number>
      try {
        const doc = parseJson(new TextDecoder().decode(body), { maxLength: MAX_API_BODY }) as { vector?: unknown }
        vector = checkVector(doc?.vector)
      } catch (err) { return text(400, `body must be { "vector": { "<author hex>": seq } }: ${(err as Error).message}`, base) }
      const r = api.opsAfter(vector, 512 * 1024)
      return json(200, { ops: r.ops.map(o => Buffer.from(o).toString('base64')), more: r.more }, base)
    }
    if (path === '/api/ops' && method === 'POST') {
      if (!caps.has('state:write')) return text(403, 'the app does not ask for state:write', base)
      const r = await api.submit(body, options)
      const status = r.status === 'accepted' || r.status === 'duplicate' || r.status === 'pending' ? 200 : r.code === 'DOA_QUOTA' ? 429 : 422
      return json(status, r as unknown as Json, base)
    }
    return text(404, `no API route ${method} ${path}`, base)
  }
}

function checkVector (v: unknown): Record<string, number> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DoaError('DOA_BAD_ARGUMENT', 'vector is not an object')
  const out: Record<string, number> = {}
  const entries = Object.entries(v)
  if (entries.length > 65_535) throw new DoaError('DOA_TOO_LARGE', 'vector is too large')
  for (const [a, s] of entries) {
    if (!/^[0-9a-f]{64}$/.test(a) || !Number.isSafeInteger(s) || (s as number) < 0) throw new DoaError('DOA_BAD_ARGUMENT', 'vector entries are "<64 hex>": seq')
    out[a] = s as number
  }
  return out
}

function text (status: number, message: string, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: utf8(message + '\n') }
}

function json (status: number, value: Json, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { ...headers, 'content-type': 'application/json', 'cache-control': 'no-cache' }, body: utf8(canonicalJson(value) + '\n') }
}
