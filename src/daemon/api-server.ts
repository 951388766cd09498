/**
 * The local control API: HTTP/1.1 + JSON on a unix socket, never on a network address.
 * The socket is 0600 from the moment it appears (bound inside a private directory of our own,
 * then renamed into place), its parent is created 0700 when missing and never chmodded when
 * it exists (a /tmp or /run parent belongs to others), and a parent that someone else could
 * swap the socket in (another user's, or group/world-writable without the sticky bit) is
 * refused. Every request must carry `Authorization: Bearer <token>` from the 0600 token file
 * (401 otherwise), so only the daemon's user (and root) can drive it.
 *
 *   GET    /v1/status               daemon, tor and node state
 *   GET    /v1/identity             { onion, publicKey, nodeId }
 *   GET    /v1/peers                routing-table peers
 *   POST   /v1/records              { value: base64, mutable?: bool, salt?: base64, ttlMs?: n, cas?: n }
 *                                    → { key, kind, stored, wanted, storedHere, onlyHere, attempted, summary, seq? }
 *                                    (409 DAEMON_CAS_MISMATCH when cas is not the current seq)
 *   GET    /v1/records/<64 hex>     → { key, kind, value: base64, seq? } | 404
 *   GET    /v1/endpoints            { endpoints: [ONI endpoint status: name, address, key, state, routes with counters] }
 *   POST   /v1/endpoints            { name, port, target } or { name, routes: [{ virtualPort, target }], key? }
 *                                    (src/daemon/endpoint-request.ts) → the endpoint's status, once published
 *   DELETE /v1/endpoints/<name>
 *   GET    /v1/oni                  ONI status: { enabled: true, tor, endpoints[routes, bytes], socks, onet }
 *                                    or { enabled: false, message } when the node does not run over tor
 *   GET    /v1/gateway              gateway status: { enabled: true, state, firewall, tor, dns, blocklist, vms[...] }
 *                                    or { enabled: false, message } when [gateway] is not enabled
 *   POST   /v1/gateway/reload       re-read the gateway blocklist → { names, skipped, error? }
 *   …      /v1/apps…, /v1/names…, /v1/petnames, /v1/hosting   DOA: apps and names (src/daemon/doa-service.ts lists them)
 *   GET    /metrics                 Prometheus text
 *
 * Errors are `{ "error": { "code", "message" } }` with a fitting HTTP status.
 */
import { createConnection } from 'node:net'
import { chmod, lstat, mkdir, mkdtemp, rename, rm, rmdir, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import type { AbortOptions, Clock } from '../core/index.ts'
import { isCodedError, scopedSignal } from '../core/index.ts'
import { parseEndpointRequest, type EndpointRequest } from './endpoint-request.ts'
import { DaemonError } from './errors.ts'
import type { JsonLog } from './json-log.ts'
import { LabelledCounter } from './metrics.ts'
import { tokenMatches } from './token.ts'
import { DOA_HTTP_STATUS } from './doa-service.ts'

export const MAX_BODY_BYTES = 256 * 1024
export const REQUEST_TIMEOUT_MS = 120_000

export interface PutRequest { value: Uint8Array, mutable: boolean, salt?: Uint8Array, ttlMs?: number, /** Compare-and-swap: write only if the current seq is this. */ cas?: number }
export type { EndpointRequest } from './endpoint-request.ts'

/** What the API serves; the daemon implements it. */
export interface ApiBackend {
  status(): unknown
  identityInfo(): unknown
  peers(): unknown
  put(req: PutRequest, options: AbortOptions): Promise<unknown>
  get(key: Uint8Array, options: AbortOptions): Promise<unknown | undefined>
  listEndpoints(): unknown
  /** ONI status, or `{ enabled: false, message }`. */
  oni(): unknown
  addEndpoint(req: EndpointRequest, options: AbortOptions): Promise<unknown>
  removeEndpoint(name: string, options: AbortOptions): Promise<void>
  metrics(): string
  /** Gateway status, or `{ enabled: false, message }` (optional: backends without a gateway answer 404). */
  gateway?(options: AbortOptions): Promise<unknown>
  /** DOA routes (/v1/apps…, /v1/names…, /v1/petnames…, /v1/hosting): undefined when none matches. */
  doa?(req: { method: string, path: string, query: URLSearchParams, body: unknown }, options: AbortOptions): Promise<{ status: number, body: unknown } | undefined>
  reloadGateway?(options: AbortOptions): Promise<unknown>
}

export interface ApiServerInit {
  socketPath: string
  token: string
  clock: Clock
  log: JsonLog
  /** Largest record value accepted. @default 65_536 */
  maxValueBytes?: number
}

export interface ApiServer {
  readonly socketPath: string
  /** Requests by route and status, for /metrics. */
  readonly requests: LabelledCounter
  close(): Promise<void>
}

class HttpError extends DaemonError {
  constructor (readonly status: number, code: string, message: string) { super(code, message) }
}

const STATUS_FOR: Record<string, number> = {
  DAEMON_BAD_REQUEST: 400,
  DAEMON_VALUE_TOO_LARGE: 413,
  DAEMON_NOT_FOUND: 404,
  DAEMON_CONFLICT: 409,
  DAEMON_CAS_MISMATCH: 409,
  DAEMON_NOT_READY: 503,
  DAEMON_STOPPED: 503
}

const DOA_ROUTE = /^\/v1\/(apps|names|petnames|hosting)(\/|$)/
for (const [code, status] of Object.entries(DOA_HTTP_STATUS)) STATUS_FOR[code] = status

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function decodeB64 (v: unknown, field: string, max: number): Uint8Array {
  if (typeof v !== 'string' || !B64.test(v)) throw new HttpError(400, 'DAEMON_BAD_REQUEST', `${field} must be a base64 string`)
  const bytes = new Uint8Array(Buffer.from(v, 'base64'))
  if (bytes.byteLength > max) throw new HttpError(413, 'DAEMON_VALUE_TOO_LARGE', `${field} is ${bytes.byteLength} bytes; the limit is ${max}`)
  return bytes
}

async function readBody (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength
    if (total > MAX_BODY_BYTES) throw new HttpError(413, 'DAEMON_VALUE_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  if (total === 0) return {}
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'request body is not valid JSON')
  }
}

function obj (v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'request body must be a JSON object')
  return v as Record<string, unknown>
}

function decodeSegment (segment: string, what: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new HttpError(400, 'DAEMON_BAD_REQUEST', `${what} has bad percent-encoding: ${JSON.stringify(segment.slice(0, 80))}`)
  }
}

/** Longest unix socket path Linux takes (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107

/**
 * Why `dir` is no place for our socket, or undefined when it is fine. Whoever may write to
 * the directory can replace the socket with one of their own and collect the API token from
 * the next CLI call: so it must be ours or root's, and not group- or world-writable without
 * the sticky bit (a group we do not own could hold anyone).
 */
export function socketParentProblem (st: { uid: number, mode: number, isDirectory: () => boolean }, uid: number): string | undefined {
  if (!st.isDirectory()) return 'is not a directory'
  if (st.uid !== uid && st.uid !== 0) return `is owned by uid ${st.uid}, not by this user (${uid}) or root: its owner could replace the socket`
  if ((st.mode & 0o1000) !== 0) return undefined
  if ((st.mode & 0o002) !== 0) return 'is world-writable without the sticky bit: anyone could replace the socket'
  if ((st.mode & 0o020) !== 0 && st.uid !== uid) return 'is group-writable without the sticky bit: any member of its group could replace the socket'
  return undefined
}

/** Checks (or creates, 0700) the socket's directory and clears a stale socket; refuses a live one. */
async function prepareSocket (path: string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const problem = socketParentProblem(await stat(dir), process.getuid?.() ?? -1)
  if (problem !== undefined) throw new DaemonError('DAEMON_STATE', `cannot put the API socket in ${dir}: it ${problem}; set api.socket to a path in a directory of your own`)
  let existing
  try { existing = await lstat(path) } catch { return }
  if (!existing.isSocket()) throw new DaemonError('DAEMON_STATE', `${path} exists and is not a socket: move it away or set api.socket`)
  const live = await new Promise<boolean>((resolve) => {
    const s = createConnection(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
  if (live) throw new DaemonError('DAEMON_RUNNING', `another daemon already listens on ${path}: stop it first (or use another --state-dir)`)
  await rm(path, { force: true })
}

export async function startApiServer (init: ApiServerInit, backend: ApiBackend): Promise<ApiServer> {
  const maxValue = init.maxValueBytes ?? 65_536
  const requests = new LabelledCounter()
  await prepareSocket(init.socketPath)

  const route = async (req: IncomingMessage, signal: AbortSignal): Promise<{ status: number, body: unknown, text?: string }> => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://oht.local')
    } catch {
      throw new HttpError(400, 'DAEMON_BAD_REQUEST', `the request target ${JSON.stringify((req.url ?? '').slice(0, 80))} is not a URL path`)
    }
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (path === '/metrics' && method === 'GET') return { status: 200, body: undefined, text: backend.metrics() }
    if (path === '/v1/status' && method === 'GET') return { status: 200, body: backend.status() }
    if (path === '/v1/identity' && method === 'GET') return { status: 200, body: backend.identityInfo() }
    if (path === '/v1/peers' && method === 'GET') return { status: 200, body: backend.peers() }
    if (path === '/v1/oni' && method === 'GET') return { status: 200, body: backend.oni() }
    if (path === '/v1/gateway' && method === 'GET' && backend.gateway !== undefined) return { status: 200, body: await backend.gateway({ signal }) }
    if (path === '/v1/gateway/reload' && method === 'POST' && backend.reloadGateway !== undefined) return { status: 200, body: await backend.reloadGateway({ signal }) }
    if (path === '/v1/records' && method === 'POST') {
      const b = obj(await readBody(req))
      for (const k of Object.keys(b)) if (!['value', 'mutable', 'salt', 'ttlMs', 'cas'].includes(k)) throw new HttpError(400, 'DAEMON_BAD_REQUEST', `unknown field ${k}`)
      const value = decodeB64(b.value, 'value', maxValue)
      if (b.mutable !== undefined && typeof b.mutable !== 'boolean') throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'mutable must be true or false')
      const mutable = b.mutable === true
      const salt = b.salt === undefined ? undefined : decodeB64(b.salt, 'salt', 64)
      if (salt !== undefined && !mutable) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'salt only applies to mutable records')
      if (b.ttlMs !== undefined && (typeof b.ttlMs !== 'number' || !Number.isSafeInteger(b.ttlMs) || b.ttlMs <= 0)) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'ttlMs must be a positive whole number')
      if (b.cas !== undefined && (typeof b.cas !== 'number' || !Number.isSafeInteger(b.cas) || b.cas < 0)) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'cas must be a whole number >= 0 (the seq the record must have now)')
      if (b.cas !== undefined && !mutable) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'cas only applies to mutable records')
      return { status: 200, body: await backend.put({ value, mutable, ...(salt !== undefined ? { salt } : {}), ...(b.ttlMs !== undefined ? { ttlMs: b.ttlMs as number } : {}), ...(b.cas !== undefined ? { cas: b.cas as number } : {}) }, { signal }) }
    }
    const rec = /^\/v1\/records\/([^/]*)$/.exec(path)
    if (rec !== null && method === 'GET') {
      if (!/^[0-9a-f]{64}$/.test(rec[1])) throw new HttpError(400, 'DAEMON_BAD_REQUEST', 'a record key is 64 lower-case hex characters')
      const r = await backend.get(new Uint8Array(Buffer.from(rec[1], 'hex')), { signal })
      if (r === undefined) throw new HttpError(404, 'DAEMON_NOT_FOUND', `no record under ${rec[1]}`)
      return { status: 200, body: r }
    }
    if (path === '/v1/endpoints' && method === 'GET') return { status: 200, body: backend.listEndpoints() }
    if (path === '/v1/endpoints' && method === 'POST') {
      return { status: 200, body: await backend.addEndpoint(parseEndpointRequest(obj(await readBody(req))), { signal }) }
    }
    const ep = /^\/v1\/endpoints\/([^/]+)$/.exec(path)
    if (ep !== null && method === 'DELETE') {
      const name = decodeSegment(ep[1], 'the endpoint name')
      await backend.removeEndpoint(name, { signal })
      return { status: 200, body: { removed: name } }
    }
    if (backend.doa !== undefined && DOA_ROUTE.test(path)) {
      const body = method === 'POST' ? await readBody(req) : undefined
      const r = await backend.doa({ method, path, query: url.searchParams, body }, { signal })
      if (r !== undefined) return r
    }
    throw new HttpError(404, 'DAEMON_NOT_FOUND', `no API route ${method} ${path}`)
  }

  const routeLabel = (url: string | undefined): string => {
    const p = (url ?? '/').split('?')[0]
    if (p.startsWith('/v1/records/')) return '/v1/records/:key'
    if (p.startsWith('/v1/endpoints/')) return '/v1/endpoints/:name'
    const doa = /^\/v1\/(apps|names|petnames)\/([^/]+)(\/[a-z]+)?$/.exec(p)
    if (doa !== null) return ['publish', 'install', 'resolve', 'rotate'].includes(doa[2]) ? p : `/v1/${doa[1]}/:${doa[1] === 'apps' ? 'app' : 'name'}${doa[3] ?? ''}`
    return ['/metrics', '/v1/status', '/v1/identity', '/v1/peers', '/v1/records', '/v1/endpoints', '/v1/oni', '/v1/gateway', '/v1/gateway/reload', '/v1/apps', '/v1/names', '/v1/petnames', '/v1/hosting'].includes(p) ? p : 'other'
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: unknown, text?: string): void => {
      requests.inc({ route: routeLabel(req.url), status: String(status) })
      if (res.headersSent || res.destroyed) return
      if (text !== undefined) {
        res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        res.end(text)
      } else {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
    }
    if (!tokenMatches(req.headers.authorization, init.token)) {
      req.resume()
      init.log.warn('api request refused: missing or wrong token', { method: req.method, route: routeLabel(req.url) })
      send(401, { error: { code: 'DAEMON_UNAUTHORIZED', message: 'missing or wrong API token: send Authorization: Bearer <contents of the token file>' } })
      return
    }
    const aborter = new AbortController()
    res.once('close', () => { if (!res.writableFinished) aborter.abort() })
    const scoped = scopedSignal(init.clock, REQUEST_TIMEOUT_MS, aborter.signal)
    try {
      const out = await route(req, scoped.signal)
      send(out.status, out.body, out.text)
    } catch (err) {
      const status = err instanceof HttpError ? err.status : isCodedError(err) ? (STATUS_FOR[err.code] ?? 500) : 500
      const code = isCodedError(err) ? err.code : 'DAEMON_INTERNAL'
      const message = err instanceof Error ? err.message : String(err)
      if (status >= 500) init.log.error('api request failed', { method: req.method, route: routeLabel(req.url), err })
      send(status, { error: { code, message } })
    } finally {
      scoped.clear()
    }
  }

  const server: Server = createServer((req, res) => { void handle(req, res) })
  server.keepAliveTimeout = 5_000
  // Bound where only we can reach it, made 0600, then moved into place: the socket is never
  // reachable at its real path with the umask's looser mode.
  const setup = await mkdtemp(join(dirname(init.socketPath), '.s'))
  const bound = join(setup, 's')
  try {
    if (Buffer.byteLength(bound) > MAX_SOCKET_PATH_BYTES) throw new DaemonError('DAEMON_STATE', `the API socket path ${init.socketPath} is too long for a unix socket: choose a shorter api.socket`)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(bound, () => { server.off('error', reject); resolve() })
    })
    await chmod(bound, 0o600)
    await rename(bound, init.socketPath)
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    await rm(bound, { force: true })
    throw err
  } finally {
    await rmdir(setup).catch(() => {})
  }
  let closed = false
  return {
    socketPath: init.socketPath,
    requests,
    async close () {
      if (closed) return
      closed = true
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      await rm(init.socketPath, { force: true })
    }
  }
}
