/**
 * The app protocol's codec, the host-set values, the op store on disk, and the HTTP face a
 * host serves (routes, headers, quotas) with a visitor checking every byte of it.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, appendFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { FakeClock, isCodedError, SeededRng, toHex } from '../../src/core/index.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import {
  chunkBundle, createAppServer, createOpStore, decodeAppRequest, decodeAppResponse, encodeAppRequest, encodeAppResponse,
  encodeHostAnnouncement, openHostValue, packFiles, signManifest, signOp, utf8, visitApp, UI_CSP, type AppRequest, type HostAnnouncement, type HttpResponse
} from '../../src/doa/index.ts'
import { signValue } from '../../src/oht/index.ts'

const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

const app = new Uint8Array(32).fill(1)

describe('doa app protocol codec', () => {
  const requests: AppRequest[] = [
    { type: 'manifest', app },
    { type: 'manifest', app, release: 7 },
    { type: 'chunk', app, key: new Uint8Array(32).fill(2) },
    { type: 'sync', app, vector: { ['ab'.repeat(32)]: 3, ['cd'.repeat(32)]: 900 }, maxBytes: 65_536 },
    { type: 'http', app, method: 'POST', path: '/api/ops', body: utf8('x') },
    { type: 'http', app, method: 'GET', path: '/', body: new Uint8Array(0) }
  ]
  it('round-trips every request type', () => {
    for (const r of requests) assert.deepEqual(decodeAppRequest(encodeAppRequest(r)), r)
  })

  it('round-trips responses', () => {
    const cases = [
      { type: 'chunk' as const, res: { status: 'ok' as const, type: 'chunk' as const, bytes: new Uint8Array([1, 2, 3]) } },
      { type: 'sync' as const, res: { status: 'ok' as const, type: 'sync' as const, ops: [utf8('a'), utf8('bc')], more: true } },
      { type: 'http' as const, res: { status: 'ok' as const, type: 'http' as const, response: { status: 404, headers: { 'content-type': 'text/plain' }, body: utf8('no') } } },
      { type: 'manifest' as const, res: { status: 'not-hosted' as const, message: 'not here' } }
    ]
    for (const c of cases) assert.deepEqual(decodeAppResponse(c.type, encodeAppResponse(c.res)), c.res)
  })

  it('refuses every truncation and 20,000 random mutations with DOA_BAD_MESSAGE or a valid decode, never a crash', () => {
    const rng = new SeededRng('doa-wire')
    for (const r of requests) {
      const b = encodeAppRequest(r)
      for (let n = 0; n < b.byteLength; n++) {
        assert.throws(() => decodeAppRequest(b.subarray(0, n)), (e: unknown) => isCodedError(e, 'DOA_BAD_MESSAGE'))
      }
    }
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      const b = encodeAppRequest(requests[i % requests.length]).slice()
      const flips = 1 + rng.int(4)
      for (let f = 0; f < flips; f++) b[rng.int(b.byteLength)] = rng.int(256)
      try { decodeAppRequest(b) } catch (e) {
        assert.ok(isCodedError(e, 'DOA_BAD_MESSAGE'), String(e))
        refused++
      }
      try { decodeAppResponse((['manifest', 'chunk', 'sync', 'http'] as const)[i % 4], b) } catch (e) {
        assert.ok(isCodedError(e, 'DOA_BAD_MESSAGE'), String(e))
      }
    }
    assert.ok(refused > 1000)
  })
})

describe('doa host-set values', () => {
  const host = generateIdentity()
  const a: HostAnnouncement = { v: 1, app: toHex(app), release: 2, addrs: ['/ip4/127.0.0.1/tcp/1'], onion: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd', port: 80, serves: ['chunks', 'ui'], quota: { bytes: 1, ops: 2 }, snapshot: null, since: 5 }
  const record = (value: Uint8Array, writer = host): ReturnType<typeof signValue> => signValue(writer, { namespace: 'set', kindCode: 2, key: new Uint8Array(32), id: utf8('host'), seq: 1, ttlMs: 60_000, value })

  it('opens a valid announcement with its writer as the host', () => {
    const e = openHostValue(app, record(encodeHostAnnouncement(a)))
    assert.equal(e?.host, toHex(host.publicKey))
    assert.equal(e?.release, 2)
  })

  it('skips values that are not announcements of this app (one bad entry never hides the others)', () => {
    assert.equal(openHostValue(new Uint8Array(32).fill(9), record(encodeHostAnnouncement(a))), undefined)
    assert.equal(openHostValue(app, record(utf8('{"v":1}'))), undefined)
    assert.equal(openHostValue(app, record(utf8('not json'))), undefined)
    assert.equal(openHostValue(app, record(utf8(JSON.stringify({ ...a, onion: 'example.com' })))), undefined)
    assert.equal(openHostValue(app, record(utf8(JSON.stringify({ ...a, extra: 1 })))), undefined)
    assert.throws(() => encodeHostAnnouncement({ ...a, serves: ['ui', 'ui'] }), (e: unknown) => isCodedError(e, 'DOA_BAD_RECORD'))
  })
})

describe('doa op store', () => {
  it('keeps ops across reopening and cuts a torn last record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-opstore-'))
    dirs.push(dir)
    const author = generateIdentity()
    const ops = [1, 2, 3].map(seq => signOp(author, { appKey: app, seq, lamport: seq, time: 0, body: { n: seq } }).bytes)
    const s = createOpStore({ dir })
    await s.append(ops.slice(0, 2))
    await s.append(ops.slice(2))
    assert.deepEqual((await createOpStore({ dir }).load()).map(o => toHex(o)), ops.map(o => toHex(o)))
    await appendFile(join(dir, 'ops.log'), new Uint8Array([0, 0, 1, 0, 7, 7]))
    assert.equal((await createOpStore({ dir }).load()).length, 3)
    assert.equal((await readFile(join(dir, 'ops.log'))).byteLength, 5 + ops.reduce((n, o) => n + 4 + o.byteLength, 0))
  })
})

describe('doa app server (what a host serves)', () => {
  const author = generateIdentity()
  const clock = new FakeClock()
  const assets = packFiles([
    { path: 'index.html', data: utf8('<!doctype html><p>hi</p>') },
    { path: 'app.js', data: utf8('console.log(1)') },
    { path: 'docs/index.html', data: utf8('<p>docs</p>') }
  ])
  const chunked = chunkBundle(assets)
  const signed = signManifest({
    doa: 1, name: 'site', version: '1.0.0', author: toHex(author.publicKey), release: 1,
    entry: { ui: 'index.html', reducer: null, validator: null }, bundles: { code: null, assets: chunked.ref }, capabilities: ['ui']
  }, author)
  const server = createAppServer({ signed, code: null, assets }, { requestsPerSecond: 1000, burst: 1000 }, { clock })

  it('serves the start page with its hash, a strict CSP and an ETag, and 304 on a match', async () => {
    const r = await server.http({ method: 'GET', path: '/' })
    assert.equal(r.status, 200)
    assert.equal(new TextDecoder().decode(r.body), '<!doctype html><p>hi</p>')
    assert.equal(r.headers['content-security-policy'], UI_CSP)
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8')
    assert.equal(r.headers['x-doa-app'], `doa:${toHex(author.publicKey)}`)
    assert.match(r.headers['x-doa-sha256'], /^[0-9a-f]{64}$/)
    const again = await server.http({ method: 'GET', path: '/', headers: { 'if-none-match': r.headers.etag } })
    assert.equal(again.status, 304)
    assert.equal((await server.http({ method: 'GET', path: '/docs/' })).status, 200)
    assert.equal((await server.http({ method: 'GET', path: '/../etc/passwd' })).status, 404)
    assert.equal((await server.http({ method: 'POST', path: '/' })).status, 405)
    assert.equal((await server.http({ method: 'GET', path: '/api/state' })).status, 404, 'no api capability, no API')
  })

  it('serves the signed manifest and its chunks; a visitor verifies every file against them', async () => {
    const site = await visitApp(author.publicKey, async (path) => await server.http({ method: 'GET', path }))
    assert.equal(site.manifest.manifest.name, 'site')
    assert.deepEqual([...site.files.keys()].sort(), ['app.js', 'docs/index.html', 'index.html'])
    assert.equal(new TextDecoder().decode((await site.get('/app.js')).body), 'console.log(1)')
    assert.throws(() => site.check('/app.js', utf8('console.log(2)')), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    // A host that alters a file is caught on the first fetch.
    const liar = async (path: string): Promise<HttpResponse> => {
      const r = await server.http({ method: 'GET', path })
      if (path === '/app.js') return { ...r, body: utf8('steal()') }
      return r
    }
    const visited = await visitApp(author.publicKey, liar)
    await assert.rejects(visited.get('/app.js'), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    // And one serving another app's manifest is refused outright.
    await assert.rejects(visitApp(generateIdentity().publicKey, async (path) => await server.http({ method: 'GET', path })), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
  })

  it('answers at its request rate and refuses beyond it (429 / refused) until time passes', async () => {
    const c = new FakeClock()
    const slow = createAppServer({ signed, code: null, assets }, { requestsPerSecond: 2, burst: 3 }, { clock: c })
    const codes: number[] = []
    for (let i = 0; i < 5; i++) codes.push((await slow.http({ method: 'GET', path: '/' })).status)
    assert.deepEqual(codes, [200, 200, 200, 429, 429])
    const refused = decodeAppResponse('chunk', await slow.handle({ type: 'chunk', app: author.publicKey, key: chunked.keys[0] }))
    assert.equal(refused.status, 'refused')
    await c.advance(1_000)
    assert.equal((await slow.http({ method: 'GET', path: '/' })).status, 200)
  })
})
