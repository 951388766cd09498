/**
 * Loopback HTTP servers for DOA: a hosted app's HTTP face (behind its ONI endpoint) and the
 * local UI of `oht app run`. Both listen on 127.0.0.1 only, on a port the OS picks; nothing
 * else reaches them but tor (the endpoint's route) and this machine's own users.
 *
 * The run server adds what only the user's own daemon may do: sign and submit ops with the
 * user's key (`POST /api/submit { body }`), behind a per-session token: the URL it gives out
 * carries `?token=…`, which the server turns into an HttpOnly, SameSite=Strict cookie named after
 * its port; any request without the cookie (or the token) is 403, so another local user cannot
 * drive the app. Browsers send a host's cookies to every port of it and count every port of
 * 127.0.0.1 as the same site, so a page of another app (another run server's port) could make
 * the browser send this cookie: a request whose Origin is not this server's own, or whose Host
 * is not 127.0.0.1:<port> (DNS rebinding), is 403 too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AbortOptions, Clock, Rng } from '../core/index.ts'
import { errorMessage, isCodedError, secretEqual, toHex } from '../core/index.ts'
import type { AppSession, HttpRequest, HttpResponse, Json } from '../doa/index.ts'
import { canonicalJson, utf8 } from '../doa/index.ts'

const MAX_BODY = 256 * 1024

export interface LoopbackServer {
  readonly port: number
  close(): Promise<void>
}

async function body (req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.byteLength
    if (n > MAX_BODY) throw Object.assign(new Error('request body too large'), { status: 413 })
    chunks.push(c)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function send (res: ServerResponse, r: HttpResponse): void {
  if (res.headersSent) return
  res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.byteLength) })
  res.end(r.body)
}

/** Serves `handler` on 127.0.0.1:<random port>. */
export async function startLoopbackServer (handler: (req: HttpRequest, options: AbortOptions) => Promise<HttpResponse>): Promise<LoopbackServer> {
  const server: Server = createServer((req, res) => {
    const aborter = new AbortController()
    res.once('close', () => { if (!res.writableFinished) aborter.abort() })
    void (async () => {
      try {
        const b = req.method === 'GET' || req.method === 'HEAD' ? new Uint8Array(0) : await body(req)
        const headers: Record<string, string | undefined> = {}
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v
        send(res, await handler({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body: b }, { signal: aborter.signal }))
      } catch (err) {
        const status = (err as { status?: number }).status ?? 500
        send(res, { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: utf8(`${status === 500 ? 'internal error' : errorMessage(err)}\n`) })
      }
    })()
  })
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 30_000
  server.requestTimeout = 120_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => { server.off('error', reject); resolve() })
  })
  const a = server.address()
  const port = typeof a === 'object' && a !== null ? a.port : 0
  return {
    port,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

export interface RunServer extends LoopbackServer {
  /** The URL to open: it carries the session token once, then a cookie does. */
  readonly url: string
}


/**
 * The local UI of an installed app: its files, `GET /api/state` from the user's own session,
 * `POST /api/submit { body }` signed with the user's key.
 */
export async function startRunServer (serve: (req: HttpRequest, options: AbortOptions) => Promise<HttpResponse>, session: AppSession, components: { rng: Rng, clock: Clock }): Promise<RunServer> {
  const token = toHex(components.rng.bytes(16))
  let port = 0
  const cookieName = (): string => `doa_session_${port}`
  const json = (status: number, value: unknown): HttpResponse => ({ status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: utf8(JSON.stringify(value) + '\n') })
  const forbidden = (why: string): HttpResponse => ({ status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: utf8(why + '\n') })
  const authorized = (req: HttpRequest, url: URL): boolean => {
    const q = url.searchParams.get('token')
    if (q !== null && secretEqual(utf8(q), utf8(token))) return true
    const c = cookieName()
    const cookie = (req.headers?.cookie ?? '').split(';').map(s => s.trim()).find(s => s.startsWith(`${c}=`))
    return cookie !== undefined && secretEqual(utf8(cookie.slice(c.length + 1)), utf8(token))
  }
  const server = await startLoopbackServer(async (req, options) => {
    const url = new URL(req.path, 'http://127.0.0.1')
    const origin = `http://127.0.0.1:${port}`
    const host = req.headers?.host
    if (host !== undefined && host !== `127.0.0.1:${port}`) return forbidden('this UI answers only at 127.0.0.1')
    const from = req.headers?.origin
    if (from !== undefined && from !== origin) return forbidden('a request from another origin (another app\'s page?) is refused')
    if (!authorized(req, url)) return forbidden('open the URL "oht app run" printed (it carries this session\'s token)')
    if (url.searchParams.has('token')) {
      // Trade the token in the URL for a cookie, and drop it from the address bar.
      return { status: 303, headers: { location: url.pathname, 'set-cookie': `${cookieName()}=${token}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store' }, body: new Uint8Array(0) }
    }
    if (url.pathname === '/api/submit') {
      if (req.method === 'OPTIONS') return { status: 204, headers: { allow: 'POST' }, body: new Uint8Array(0) }
      if (req.method !== 'POST') return json(405, { error: { code: 'DOA_BAD_ARGUMENT', message: 'POST { "body": … }' } })
      let doc: { body?: Json }
      try { doc = JSON.parse(new TextDecoder().decode(req.body)) as { body?: Json } } catch { return json(400, { error: { code: 'DOA_BAD_JSON', message: 'the request is not JSON' } }) }
      if (doc === null || typeof doc !== 'object' || doc.body === undefined) return json(400, { error: { code: 'DOA_BAD_ARGUMENT', message: 'send { "body": <the op> }' } })
      try {
        const r = await session.submit(doc.body, options)
        return json(200, { id: toHex(r.op.id), seq: r.op.seq, status: r.status, stored: r.stored, ...(r.error !== undefined ? { error: r.error } : {}) })
      } catch (err) {
        const code = isCodedError(err) ? err.code : 'DOA_SANDBOX_THREW'
        return json(code === 'DOA_OP_REJECTED' ? 422 : code === 'DOA_CAPABILITY' ? 403 : 400, { error: { code, message: errorMessage(err) } })
      }
    }
    if (url.pathname === '/api/state' && req.method === 'GET') {
      try {
        return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: utf8(canonicalJson({ release: session.manifest.manifest.release, stateHash: session.stateHash, heads: session.heads() as unknown as Json, ops: session.covered, state: session.state }) + '\n') }
      } catch (err) {
        return json(isCodedError(err, 'DOA_CAPABILITY') ? 403 : 500, { error: { code: isCodedError(err) ? err.code : 'DOA_CLOSED', message: errorMessage(err) } })
      }
    }
    return await serve(req, options)
  })
  port = server.port
  return { ...server, url: `http://127.0.0.1:${server.port}/?token=${token}` }
}
