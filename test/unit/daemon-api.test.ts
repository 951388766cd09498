import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeClock, toHex } from '../../src/core/index.ts'
import { generateIdentity, sha256, writeKeyFile } from '../../src/crypto/index.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'

interface Reply { status: number, body: string }

function call (socketPath: string, method: string, path: string, token: string | undefined, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    const req = request({ socketPath, method, path, headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

async function startLocalDaemon (stateDir: string, logs: string[]): Promise<Daemon> {
  const clock = new FakeClock()
  const config = validateConfig({ node: { transport: 'local' } }, 'test', stateDir)
  const daemon = createDaemon({ config, stateDir }, { clock, log: createJsonLog((l) => logs.push(l), clock, 'debug'), createNode: defaultNodeFactory })
  await daemon.start()
  return daemon
}

describe('daemon local API', () => {
  let dir: string
  let stateDir: string
  let daemon: Daemon
  let token: string
  let sock: string
  const logs: string[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-api-'))
    stateDir = join(dir, 'state')
    const id = generateIdentity()
    await writeKeyFile(join(stateDir, 'identity.key'), id)
    id.destroy()
    daemon = await startLocalDaemon(stateDir, logs)
    sock = daemon.socketPath
    token = (await readFile(join(stateDir, 'api.token'), 'utf8')).trim()
  })

  after(async () => {
    await daemon.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the socket 0600 in a 0700 dir and the token 0600', async () => {
    assert.equal((await stat(sock)).mode & 0o777, 0o600)
    assert.equal((await stat(join(stateDir, 'run'))).mode & 0o777, 0o700)
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(stateDir, 'api.token'))).mode & 0o777, 0o600)
    assert.match(token, /^[0-9a-f]{64}$/)
  })

  it('refuses requests without the right token with 401 on every route', async () => {
    for (const [method, path] of [['GET', '/v1/status'], ['GET', '/metrics'], ['POST', '/v1/records'], ['GET', '/v1/records/' + '0'.repeat(64)], ['GET', '/nope']]) {
      const none = await call(sock, method, path, undefined)
      assert.equal(none.status, 401, `${method} ${path} without token`)
      assert.equal(JSON.parse(none.body).error.code, 'DAEMON_UNAUTHORIZED')
      const wrong = await call(sock, method, path, 'f'.repeat(64))
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`)
    }
    assert.ok(logs.some(l => l.includes('api request refused')))
    assert.ok(!logs.some(l => l.includes(token)), 'the token never reaches the log')
  })

  it('stores and fetches an immutable record keyed by SHA-256(value)', async () => {
    const value = Buffer.from('hello onion')
    const put = await call(sock, 'POST', '/v1/records', token, { value: value.toString('base64') })
    assert.equal(put.status, 200)
    const p = JSON.parse(put.body)
    assert.equal(p.key, toHex(sha256(value)))
    assert.equal(p.stored, 1)
    const got = await call(sock, 'GET', `/v1/records/${p.key}`, token)
    assert.equal(got.status, 200)
    assert.equal(Buffer.from(JSON.parse(got.body).value, 'base64').toString(), 'hello onion')
  })

  it('raises seq on each mutable put under the same salt, keyed by SHA-256(publicKey || salt)', async () => {
    const id = JSON.parse((await call(sock, 'GET', '/v1/identity', token)).body)
    const salt = Buffer.from('profile')
    const a = JSON.parse((await call(sock, 'POST', '/v1/records', token, { value: Buffer.from('v1').toString('base64'), mutable: true, salt: salt.toString('base64') })).body)
    const b = JSON.parse((await call(sock, 'POST', '/v1/records', token, { value: Buffer.from('v2').toString('base64'), mutable: true, salt: salt.toString('base64') })).body)
    assert.equal(a.key, toHex(sha256(Buffer.from(id.publicKey, 'hex'), salt)))
    assert.equal(b.key, a.key)
    assert.equal(b.seq, a.seq + 1)
    const got = JSON.parse((await call(sock, 'GET', `/v1/records/${a.key}`, token)).body)
    assert.equal(Buffer.from(got.value, 'base64').toString(), 'v2')
    assert.equal(got.kind, 'mutable')
  })

  it('answers bad requests with typed errors and the right status', async () => {
    const big = Buffer.alloc(65_537).toString('base64')
    const tooBig = await call(sock, 'POST', '/v1/records', token, { value: big })
    assert.equal(tooBig.status, 413)
    assert.equal(JSON.parse(tooBig.body).error.code, 'DAEMON_VALUE_TOO_LARGE')
    assert.equal((await call(sock, 'POST', '/v1/records', token, '{not json')).status, 400)
    assert.equal((await call(sock, 'POST', '/v1/records', token, { value: '%%%' })).status, 400)
    assert.equal((await call(sock, 'POST', '/v1/records', token, { value: '', extra: 1 })).status, 400)
    assert.equal((await call(sock, 'POST', '/v1/records', token, { value: 'aGk=', salt: 'aGk=' })).status, 400)
    assert.equal((await call(sock, 'GET', '/v1/records/xyz', token)).status, 400)
    const missing = await call(sock, 'GET', '/v1/records/' + 'a'.repeat(64), token)
    assert.equal(missing.status, 404)
    assert.equal(JSON.parse(missing.body).error.code, 'DAEMON_NOT_FOUND')
    assert.equal((await call(sock, 'POST', '/v1/endpoints', token, { name: 'web', port: 80, target: '127.0.0.1:8080' })).status, 400, 'endpoints need the tor transport')
  })

  it('serves status and Prometheus metrics that reflect what happened', async () => {
    const status = JSON.parse((await call(sock, 'GET', '/v1/status', token)).body)
    assert.equal(status.phase, 'running')
    assert.equal(status.transport, 'local')
    assert.ok(status.node.recordsStored >= 2)
    const m = await call(sock, 'GET', '/metrics', token)
    assert.equal(m.status, 200)
    assert.match(m.body, /^# TYPE oht_records_stored gauge$/m)
    assert.match(m.body, /^oht_up 1$/m)
    const puts = Number(/^oht_api_puts_total (\d+)$/m.exec(m.body)?.[1])
    assert.ok(puts >= 3, `puts ${puts}`)
    assert.match(m.body, /^oht_put_duration_seconds_count \d+$/m)
    assert.match(m.body, /^oht_api_requests_total\{route="\/v1\/records",status="413"\} 1$/m)
  })

  it('refuses a second daemon on the same socket and leaves the first one serving', async () => {
    await assert.rejects(startLocalDaemon(stateDir, []), (err: unknown) => (err as { code?: string }).code === 'DAEMON_RUNNING')
    assert.equal((await call(sock, 'GET', '/v1/status', token)).status, 200)
  })

  it('removes its socket on stop', async () => {
    const other = join(dir, 'other')
    const id = generateIdentity()
    await writeKeyFile(join(other, 'identity.key'), id)
    id.destroy()
    const d = await startLocalDaemon(other, [])
    await stat(d.socketPath)
    await d.stop()
    await assert.rejects(stat(d.socketPath), { code: 'ENOENT' })
  })

  it('refuses to start without an identity, saying how to create one', async () => {
    await assert.rejects(startLocalDaemon(join(dir, 'empty'), []), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'DAEMON_IDENTITY')
      assert.match((err as Error).message, /oht init/)
      return true
    })
  })
})

describe('daemon local API: the node keeps what it wrote', () => {
  let dir: string
  let stateDir: string
  let daemon: Daemon | undefined
  let token: string
  const b64 = (s: string): string => Buffer.from(s).toString('base64')

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-api-own-'))
    stateDir = join(dir, 'state')
    const id = generateIdentity()
    await writeKeyFile(join(stateDir, 'identity.key'), id)
    id.destroy()
    daemon = await startLocalDaemon(stateDir, [])
    token = (await readFile(join(stateDir, 'api.token'), 'utf8')).trim()
  })

  after(async () => {
    await daemon?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('says a put reached only this node, instead of a bare count', async () => {
    const r = JSON.parse((await call(daemon!.socketPath, 'POST', '/v1/records', token, { value: b64('lonely') })).body)
    assert.equal(r.stored, 1)
    assert.equal(r.wanted, 20)
    assert.equal(r.storedHere, true)
    assert.equal(r.onlyHere, true)
    assert.equal(r.summary, 'stored 1 of 20: only this node holds it')
  })

  it('compare-and-swap: writes at the current seq, refuses any other with 409 and changes nothing', async () => {
    const sock = daemon!.socketPath
    const put = async (value: string, cas?: number): Promise<Reply> => await call(sock, 'POST', '/v1/records', token, { value: b64(value), mutable: true, salt: b64('cas'), ...(cas !== undefined ? { cas } : {}) })
    const first = JSON.parse((await put('one')).body)
    assert.equal(first.seq, 0, 'the engine\'s first seq')
    const ok = JSON.parse((await put('two', 0)).body)
    assert.equal(ok.seq, 1)
    const stale = await put('three', 0)
    assert.equal(stale.status, 409)
    assert.equal(JSON.parse(stale.body).error.code, 'DAEMON_CAS_MISMATCH')
    assert.match(JSON.parse(stale.body).error.message, /current seq is 1, expected 0/)
    const got = JSON.parse((await call(sock, 'GET', `/v1/records/${first.key as string}`, token)).body)
    assert.equal(Buffer.from(got.value, 'base64').toString(), 'two')
    assert.equal(got.seq, 1)
    assert.equal((await call(sock, 'POST', '/v1/records', token, { value: b64('x'), cas: 1 })).status, 400, 'cas is for mutable records')
    assert.equal((await call(sock, 'POST', '/v1/records', token, { value: b64('x'), mutable: true, cas: -1 })).status, 400)
  })

  it('after a restart with no peers: serves its own records, its seq continues above the last, the journal is 0600', async () => {
    const sock = daemon!.socketPath
    const imm = JSON.parse((await call(sock, 'POST', '/v1/records', token, { value: b64('survives') })).body)
    const mut = JSON.parse((await call(sock, 'POST', '/v1/records', token, { value: b64('latest'), mutable: true, salt: b64('motd') })).body)
    await daemon!.stop()
    daemon = await startLocalDaemon(stateDir, [])
    assert.equal((await stat(join(stateDir, 'own-records.json'))).mode & 0o777, 0o600)
    const sock2 = daemon.socketPath
    const a = JSON.parse((await call(sock2, 'GET', `/v1/records/${imm.key as string}`, token)).body)
    assert.equal(Buffer.from(a.value, 'base64').toString(), 'survives')
    const m = JSON.parse((await call(sock2, 'GET', `/v1/records/${mut.key as string}`, token)).body)
    assert.equal(Buffer.from(m.value, 'base64').toString(), 'latest')
    const next = JSON.parse((await call(sock2, 'POST', '/v1/records', token, { value: b64('newer'), mutable: true, salt: b64('motd') })).body)
    assert.equal(next.seq, mut.seq + 1)
    const status = JSON.parse((await call(sock2, 'GET', '/v1/status', token)).body)
    assert.ok(status.node.ownRecords >= 3, `own records: ${status.node.ownRecords}`)
    assert.match((await call(sock2, 'GET', '/metrics', token)).body, /^oht_own_records \d+$/m)
  })
})
