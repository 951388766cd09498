/**
 * The app protocol between a visitor (or another host) and a host, over PeerNet under
 * `/doa/app/1`: one request, one response. Everything a host answers is checked by the asker
 * against the app's manifest (signed manifests, chunks by hash, ops by their signatures), so a
 * host can be wrong or lie but never make a visitor accept a forged byte.
 *
 * Request (big-endian):
 *
 *   0   1  version = 1
 *   1   1  type: 1 manifest | 2 chunk | 3 sync | 4 http
 *   2  32  app key
 *  34   …  payload
 *            manifest  u64 release (2^53-1: the host's current one)
 *            chunk     32-byte chunk (or index) key
 *            sync      u32 max bytes wanted | u16 n | n × (author[32] | u64 seq): the asker's version vector
 *            http      u8 method (1 GET, 2 POST) | u16 path length | path (UTF-8, ≤ 1024) | u32 body length | body
 *
 * Response:
 *
 *   0   1  version = 1
 *   1   1  status: 0 ok | 1 not found | 2 not hosted | 3 refused (quota, capability) | 4 bad request
 *   2   …  ok payload, or a UTF-8 message (≤ 512 bytes) for any other status
 *            manifest  the signed manifest
 *            chunk     the chunk
 *            sync      u8 more | u16 n | n × (u32 length | op bytes)
 *            http      u16 status | u8 header count | header count × (u8 name length | name | u16 value length | value) | u32 body length | body
 *
 * Messages are at most APP_MESSAGE_MAX bytes (1 MiB): a chunk is 60 KiB, sync answers are cut to
 * fit (`more` = 1 asks for another round), and HTTP bodies above the limit are refused (a large
 * asset is fetched through the chunks).
 */
import { fromHex, toHex } from '../core/bytes.ts'
import { DoaError } from './errors.ts'
import { fromUtf8, utf8 } from './json.ts'

export const APP_PROTOCOL = '/doa/app/1'
export const APP_WIRE_VERSION = 1
export const APP_MESSAGE_MAX = 1024 * 1024
const MAX_PATH = 1024
const MAX_ERROR = 512
const MAX_HEADERS = 32
const CURRENT = Number.MAX_SAFE_INTEGER

export type AppRequest =
  | { type: 'manifest', app: Uint8Array, release?: number }
  | { type: 'chunk', app: Uint8Array, key: Uint8Array }
  | { type: 'sync', app: Uint8Array, vector: Record<string, number>, maxBytes: number }
  | { type: 'http', app: Uint8Array, method: 'GET' | 'POST', path: string, body: Uint8Array }

export type AppStatus = 'ok' | 'not-found' | 'not-hosted' | 'refused' | 'bad-request'
const STATUS: AppStatus[] = ['ok', 'not-found', 'not-hosted', 'refused', 'bad-request']

export interface HttpResponse {
  status: number
  headers: Record<string, string>
  body: Uint8Array
}

export type AppResponse =
  | { status: Exclude<AppStatus, 'ok'>, message: string }
  | { status: 'ok', type: 'manifest' | 'chunk', bytes: Uint8Array }
  | { status: 'ok', type: 'sync', ops: Uint8Array[], more: boolean }
  | { status: 'ok', type: 'http', response: HttpResponse }

function bad (message: string): never { throw new DoaError('DOA_BAD_MESSAGE', message) }

class Writer {
  private parts: Uint8Array[] = []
  private size = 0
  u8 (v: number): this { return this.raw(Uint8Array.of(v)) }
  u16 (v: number): this { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v); return this.raw(b) }
  u32 (v: number): this { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v); return this.raw(b) }
  u64 (v: number): this { const b = new Uint8Array(8); const d = new DataView(b.buffer); d.setUint32(0, Math.floor(v / 2 ** 32)); d.setUint32(4, v >>> 0); return this.raw(b) }
  raw (b: Uint8Array): this {
    this.size += b.byteLength
    if (this.size > APP_MESSAGE_MAX) throw new DoaError('DOA_TOO_LARGE', `a DOA app message would be over ${APP_MESSAGE_MAX} bytes`)
    this.parts.push(b); return this
  }

  get length (): number { return this.size }
  bytes (): Uint8Array {
    const out = new Uint8Array(this.size)
    let off = 0
    for (const p of this.parts) { out.set(p, off); off += p.byteLength }
    return out
  }
}

class Reader {
  private off = 0
  private readonly dv: DataView
  constructor (private readonly b: Uint8Array) { this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength) }
  need (n: number): void { if (this.off + n > this.b.byteLength) bad('message is truncated') }
  u8 (): number { this.need(1); return this.b[this.off++] }
  u16 (): number { this.need(2); const v = this.dv.getUint16(this.off); this.off += 2; return v }
  u32 (): number { this.need(4); const v = this.dv.getUint32(this.off); this.off += 4; return v }
  u64 (): number {
    this.need(8)
    const hi = this.dv.getUint32(this.off)
    if (hi >= 2 ** 21) bad('a 64-bit field is above 2^53')
    const v = hi * 2 ** 32 + this.dv.getUint32(this.off + 4)
    this.off += 8
    return v
  }

  raw (n: number): Uint8Array { this.need(n); const v = this.b.slice(this.off, this.off + n); this.off += n; return v }
  rest (): Uint8Array { return this.raw(this.b.byteLength - this.off) }
  end (): void { if (this.off !== this.b.byteLength) bad('message has trailing bytes') }
}

const TYPES = { manifest: 1, chunk: 2, sync: 3, http: 4 } as const

export function encodeAppRequest (req: AppRequest): Uint8Array {
  if (req.app?.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'an app key has 32 bytes')
  const w = new Writer().u8(APP_WIRE_VERSION).u8(TYPES[req.type]).raw(req.app)
  switch (req.type) {
    case 'manifest': w.u64(req.release ?? CURRENT); break
    case 'chunk':
      if (req.key.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'a chunk key has 32 bytes')
      w.raw(req.key); break
    case 'sync': {
      const entries = Object.entries(req.vector)
      if (entries.length > 0xffff) throw new DoaError('DOA_TOO_LARGE', 'a version vector names at most 65,535 authors')
      w.u32(Math.min(req.maxBytes, APP_MESSAGE_MAX)).u16(entries.length)
      for (const [a, seq] of entries) w.raw(fromHex(a)).u64(seq)
      break
    }
    case 'http': {
      const path = utf8(req.path)
      if (path.byteLength === 0 || path.byteLength > MAX_PATH) throw new DoaError('DOA_BAD_ARGUMENT', `an HTTP path is 1..${MAX_PATH} bytes`)
      w.u8(req.method === 'POST' ? 2 : 1).u16(path.byteLength).raw(path).u32(req.body.byteLength).raw(req.body)
      break
    }
  }
  return w.bytes()
}

/** Runs a decoder so that every failure is DOA_BAD_MESSAGE (bad UTF-8 included). */
function decoding<T> (fn: () => T): T {
  try { return fn() } catch (err) {
    if (err instanceof DoaError && err.code === 'DOA_BAD_MESSAGE') throw err
    throw new DoaError('DOA_BAD_MESSAGE', `malformed DOA app message: ${(err as Error).message}`, { cause: err })
  }
}

/** Decodes a request; throws DOA_BAD_MESSAGE for anything malformed. */
export function decodeAppRequest (bytes: Uint8Array): AppRequest { return decoding(() => decodeRequest(bytes)) }

function decodeRequest (bytes: Uint8Array): AppRequest {
  if (bytes.byteLength > APP_MESSAGE_MAX) bad('message is over the size limit')
  const r = new Reader(bytes)
  if (r.u8() !== APP_WIRE_VERSION) bad('unsupported DOA app protocol version')
  const type = r.u8()
  const app = r.raw(32)
  let req: AppRequest
  if (type === TYPES.manifest) {
    const release = r.u64()
    req = release === CURRENT ? { type: 'manifest', app } : { type: 'manifest', app, release }
  } else if (type === TYPES.chunk) {
    req = { type: 'chunk', app, key: r.raw(32) }
  } else if (type === TYPES.sync) {
    const maxBytes = r.u32()
    const n = r.u16()
    const vector: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const a = toHex(r.raw(32))
      const seq = r.u64()
      if (a in vector) bad('a version vector names an author twice')
      vector[a] = seq
    }
    req = { type: 'sync', app, vector, maxBytes: Math.min(maxBytes, APP_MESSAGE_MAX) }
  } else if (type === TYPES.http) {
    const m = r.u8()
    if (m !== 1 && m !== 2) bad('unknown HTTP method')
    const len = r.u16()
    if (len === 0 || len > MAX_PATH) bad('HTTP path length out of range')
    const path = fromUtf8(r.raw(len))
    const body = r.raw(r.u32())
    req = { type: 'http', app, method: m === 2 ? 'POST' : 'GET', path, body }
  } else {
    bad(`unknown request type ${type}`)
  }
  r.end()
  return req
}

export function encodeAppResponse (res: AppResponse): Uint8Array {
  const w = new Writer().u8(APP_WIRE_VERSION).u8(STATUS.indexOf(res.status))
  if (res.status !== 'ok') {
    let m = utf8(res.message)
    if (m.byteLength > MAX_ERROR) m = utf8(res.message.slice(0, MAX_ERROR / 4))
    return w.raw(m).bytes()
  }
  switch (res.type) {
    case 'manifest':
    case 'chunk':
      return w.raw(res.bytes).bytes()
    case 'sync':
      w.u8(res.more ? 1 : 0).u16(res.ops.length)
      for (const op of res.ops) w.u32(op.byteLength).raw(op)
      return w.bytes()
    case 'http': {
      const h = Object.entries(res.response.headers)
      if (h.length > MAX_HEADERS) throw new DoaError('DOA_BAD_ARGUMENT', `at most ${MAX_HEADERS} headers`)
      w.u16(res.response.status).u8(h.length)
      for (const [k, v] of h) {
        const kb = utf8(k); const vb = utf8(v)
        if (kb.byteLength > 255 || vb.byteLength > 0xffff) throw new DoaError('DOA_BAD_ARGUMENT', 'an HTTP header is too long')
        w.u8(kb.byteLength).raw(kb).u16(vb.byteLength).raw(vb)
      }
      return w.u32(res.response.body.byteLength).raw(res.response.body).bytes()
    }
  }
}

/** Decodes the response to a request of `type`; throws DOA_BAD_MESSAGE for anything malformed. */
export function decodeAppResponse (type: AppRequest['type'], bytes: Uint8Array): AppResponse { return decoding(() => decodeResponse(type, bytes)) }

function decodeResponse (type: AppRequest['type'], bytes: Uint8Array): AppResponse {
  if (bytes.byteLength > APP_MESSAGE_MAX) bad('message is over the size limit')
  const r = new Reader(bytes)
  if (r.u8() !== APP_WIRE_VERSION) bad('unsupported DOA app protocol version')
  const s = r.u8()
  const status = STATUS[s]
  if (status === undefined) bad(`unknown status ${s}`)
  if (status !== 'ok') {
    const m = r.rest()
    if (m.byteLength > MAX_ERROR) bad('error message too long')
    return { status, message: new TextDecoder().decode(m) }
  }
  if (type === 'manifest' || type === 'chunk') return { status, type, bytes: r.rest() }
  if (type === 'sync') {
    const more = r.u8()
    if (more > 1) bad('bad "more" flag')
    const n = r.u16()
    const ops: Uint8Array[] = []
    for (let i = 0; i < n; i++) ops.push(r.raw(r.u32()))
    r.end()
    return { status, type, ops, more: more === 1 }
  }
  const code = r.u16()
  if (code < 100 || code > 599) bad('HTTP status out of range')
  const nh = r.u8()
  if (nh > MAX_HEADERS) bad('too many headers')
  const headers: Record<string, string> = {}
  for (let i = 0; i < nh; i++) {
    const k = fromUtf8(r.raw(r.u8())).toLowerCase()
    headers[k] = fromUtf8(r.raw(r.u16()))
  }
  const body = r.raw(r.u32())
  r.end()
  return { status, type: 'http', response: { status: code, headers, body } }
}
