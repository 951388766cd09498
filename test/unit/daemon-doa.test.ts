/**
 * The daemon's DOA service on a local node (no network): its API routes with their checks and
 * error codes through the real API server and the CLI's client, and the local UI server of
 * `oht app run`: token, cookie, same-origin and Host checks, signing through the user's key.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cryptoRng, isCodedError, systemClock } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { connectApi, type ApiClient } from '../../src/cli/api-client.ts'
import { startApiServer, type ApiBackend, type ApiServer } from '../../src/daemon/api-server.ts'
import { DoaService } from '../../src/daemon/doa-service.ts'
import { createJsonLog } from '../../src/daemon/json-log.ts'
import { ensureToken } from '../../src/daemon/token.ts'
import { createNode, type OhtSdkNode } from '../../src/sdk/index.ts'

const TEMPLATE = new URL('../../examples/template-app/', import.meta.url).pathname

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }
function http (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }) })
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

describe('daemon DOA service and its API', () => {
  let dir: string
  let node: OhtSdkNode
  let svc: DoaService
  let api: ApiServer
  let client: ApiClient
  const log = createJsonLog(() => {}, systemClock, 'error')

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-daemon-doa-'))
    const seed = cryptoRng.bytes(32)
    node = await createNode({ transport: 'local', seed: seed.slice() })
    svc = new DoaService({ stateDir: dir }, { node, identity: identityFromSeed(seed), clock: systemClock, rng: cryptoRng, log })
    await svc.start()
    const backend = { doa: async (req: Parameters<NonNullable<ApiBackend['doa']>>[0], o: { signal?: AbortSignal }) => await svc.handle(req, o) } as unknown as ApiBackend
    const socketPath = join(dir, 'run', 'api.sock')
    const tokenFile = join(dir, 'api.token')
    api = await startApiServer({ socketPath, token: await ensureToken(tokenFile), clock: systemClock, log }, backend)
    client = await connectApi({ socketPath, tokenPath: tokenFile })
  })
  after(async () => {
    await api.close()
    await svc.stop()
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('publishes, names and installs through the API routes', async () => {
    const pub = await client.call<{ appKey: string, release: number, name: string }>('POST', '/v1/apps/publish', { dir: TEMPLATE })
    assert.equal(pub.release, 1)
    assert.equal(pub.name, 'guestbook')
    const reg = await client.call<{ label: string }>('POST', '/v1/names', { label: 'guestbook', target: 'guestbook' })
    assert.equal(reg.label, 'guestbook')
    const res = await client.call<{ target: { type: string, key: string } }>('GET', `/v1/names/resolve?name=${encodeURIComponent('guestbook.me')}`)
    assert.equal(`doa:${res.target.key}`, pub.appKey)
    const inst = await client.call<{ cached: boolean, appKey: string }>('POST', '/v1/apps/install', { app: 'guestbook.me' })
    assert.equal(inst.cached, true)
    assert.equal(inst.appKey, pub.appKey)
    const apps = await client.call<{ apps: Array<{ name: string }> }>('GET', '/v1/apps')
    assert.deepEqual(apps.apps.map(a => a.name), ['guestbook'])
    const op = await client.call<{ seq: number, status: string }>('POST', `/v1/apps/${encodeURIComponent('guestbook')}/ops`, { body: { type: 'sign', name: 'ada', message: 'hi' } })
    assert.deepEqual([op.seq, op.status], [1, 'accepted'])
    const st = await client.call<{ state: { signatures: number } }>('GET', '/v1/apps/guestbook/state')
    assert.equal(st.state.signatures, 1)
    const host = await client.call<{ onion?: string, release: number }>('POST', '/v1/apps/guestbook/host', {})
    assert.equal(host.onion, undefined, 'no onion endpoint without tor')
    const hosts = await client.call<{ hosts: Array<Record<string, unknown>> }>('GET', '/v1/apps/guestbook/hosts')
    assert.equal(hosts.hosts.length, 1)
    assert.equal('publicKey' in hosts.hosts[0], false, 'plain JSON, no byte arrays')
  })

  it('bad input is 400 (exit 2 in the CLI), what is missing 404 (exit 6), refusals keep their DOA code', async () => {
    const expect = async (method: string, path: string, body: unknown, code: string): Promise<void> => {
      await assert.rejects(client.call(method, path, body), (e: unknown) => isCodedError(e, code), `${method} ${path}`)
    }
    await expect('POST', '/v1/apps/publish', { dir: 'relative/path' }, 'CLI_BAD_ARGUMENT')
    await expect('POST', '/v1/apps/publish', { dir: TEMPLATE, extra: 1 }, 'CLI_BAD_ARGUMENT')
    await expect('POST', '/v1/apps/install', { app: 'guestbook.me', deny: ['teleport'] }, 'CLI_BAD_ARGUMENT')
    await expect('POST', '/v1/apps/install', { app: 'doa:123' }, 'CLI_BAD_ARGUMENT')
    await expect('POST', '/v1/names', { label: 'x' }, 'CLI_BAD_ARGUMENT')
    await expect('POST', '/v1/petnames', { petname: 'bob', zone: 'nope' }, 'CLI_BAD_ARGUMENT')
    await expect('GET', '/v1/apps/nothere', undefined, 'CLI_NOT_FOUND')
    await expect('GET', `/v1/names/resolve?name=${encodeURIComponent('nothing.me')}`, undefined, 'CLI_NOT_FOUND')
    await expect('DELETE', '/v1/petnames/nobody', undefined, 'CLI_NOT_FOUND')
    await expect('POST', '/v1/apps/guestbook/ops', { body: { type: 'sign', name: '', message: 'x' } }, 'CLI_API')
    await assert.rejects(client.call('POST', '/v1/apps/guestbook/ops', { body: { type: 'sign', name: '', message: 'x' } }), /a name is 1\.\.40 characters \(DOA_OP_REJECTED\)/)
  })

  it('the local UI: token, then a per-port cookie; other origins, other Hosts and no token are refused; submit signs with the user\'s key', async () => {
    const run = await client.call<{ url: string }>('POST', '/v1/apps/guestbook/run', {})
    const url = new URL(run.url)
    const base = `${url.origin}/`
    assert.equal(url.hostname, '127.0.0.1')
    assert.equal((await http(base)).status, 403)
    assert.equal((await http(`${base}?token=${'0'.repeat(32)}`)).status, 403)
    const first = await http(run.url)
    assert.equal(first.status, 303)
    const cookie = String(first.headers['set-cookie']).split(';')[0]
    assert.match(cookie, new RegExp(`^doa_session_${url.port}=[0-9a-f]{32}$`))
    assert.match(String(first.headers['set-cookie']), /HttpOnly; SameSite=Strict/)
    const page = await http(base, { headers: { cookie } })
    assert.equal(page.status, 200)
    assert.match(page.body, /<title>Guest book<\/title>/)
    assert.equal((await http(`${base}api/submit`, { method: 'OPTIONS', headers: { cookie } })).status, 204)
    const submit = { type: 'sign', name: 'bob', message: 'from the page' }
    const other = await http(`${base}api/submit`, { method: 'POST', headers: { cookie, origin: 'http://127.0.0.1:1', 'content-type': 'application/json' }, body: JSON.stringify({ body: submit }) })
    assert.equal(other.status, 403, 'another app\'s page (another port) cannot submit')
    assert.equal((await http(base, { headers: { cookie, host: 'evil.example:80' } })).status, 403, 'DNS rebinding')
    const ok = await http(`${base}api/submit`, { method: 'POST', headers: { cookie, origin: url.origin, 'content-type': 'application/json' }, body: JSON.stringify({ body: submit }) })
    assert.equal(ok.status, 200, ok.body)
    assert.equal(JSON.parse(ok.body).status, 'accepted')
    const refused = await http(`${base}api/submit`, { method: 'POST', headers: { cookie }, body: JSON.stringify({ body: { type: 'sign', name: '', message: 'x' } }) })
    assert.equal(refused.status, 422)
    const state = JSON.parse((await http(`${base}api/state`, { headers: { cookie } })).body) as { state: { signatures: number } }
    assert.equal(state.state.signatures, 2)
    await client.call('DELETE', '/v1/apps/guestbook/run')
    await assert.rejects(http(base, { headers: { cookie } }))
  })
})
