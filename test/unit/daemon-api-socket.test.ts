/**
 * Where the API socket goes and what the API makes of malformed request targets: the parent
 * directory of a configured socket is not ours to chmod (a /tmp or /run parent must survive),
 * a parent anyone may write to without the sticky bit is refused, and a request target that
 * cannot be decoded is the client's mistake (400), not the daemon's (500).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeClock, isCodedError } from '../../src/core/index.ts'
import { socketParentProblem, startApiServer, type ApiBackend } from '../../src/daemon/api-server.ts'
import { createJsonLog } from '../../src/daemon/json-log.ts'
import { connectApi } from '../../src/cli/api-client.ts'

const TOKEN = 'ab'.repeat(32)

const backend: ApiBackend = {
  status: () => ({ ok: true }),
  identityInfo: () => ({}),
  peers: () => [],
  put: async () => ({}),
  get: async () => undefined,
  listEndpoints: () => [],
  oni: () => ({ enabled: false }),
  addEndpoint: async () => ({}),
  removeEndpoint: async () => {},
  metrics: () => ''
}

function call (socketPath: string, method: string, path: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
    })
    req.on('error', reject)
    req.end()
  })
}

async function start (socketPath: string, logs: string[] = []): Promise<Awaited<ReturnType<typeof startApiServer>>> {
  const clock = new FakeClock()
  return await startApiServer({ socketPath, token: TOKEN, clock, log: createJsonLog((l) => logs.push(l), clock, 'debug') }, backend)
}

describe('daemon API socket placement', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-api-sock-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('leaves a shared parent alone: a sticky world-writable dir keeps 1777, a 0755 dir keeps 0755', async () => {
    for (const mode of [0o1777, 0o755]) {
      const parent = join(dir, `shared-${mode.toString(8)}`)
      await mkdir(parent)
      await chmod(parent, mode)
      const sock = join(parent, 'api.sock')
      const api = await start(sock)
      try {
        assert.equal((await stat(parent)).mode & 0o7777, mode, 'the parent directory was not changed')
        assert.equal((await stat(sock)).mode & 0o777, 0o600)
        assert.equal((await call(sock, 'GET', '/v1/status')).status, 200)
        assert.deepEqual(await readdir(parent), ['api.sock'], 'no private setup directory is left behind')
      } finally {
        await api.close()
      }
    }
  })

  it('refuses a parent that anyone may write to without the sticky bit', async () => {
    const parent = join(dir, 'open')
    await mkdir(parent)
    await chmod(parent, 0o777)
    await assert.rejects(start(join(parent, 'api.sock')), (err: unknown) => isCodedError(err, 'DAEMON_STATE') && /world-writable/.test((err as Error).message))
    assert.equal((await stat(parent)).mode & 0o7777, 0o777)
    assert.deepEqual(await readdir(parent), [])
  })

  it('creates a missing parent 0700', async () => {
    const sock = join(dir, 'new', 'run', 'api.sock')
    const api = await start(sock)
    try {
      assert.equal((await stat(join(dir, 'new', 'run'))).mode & 0o777, 0o700)
      assert.equal((await stat(sock)).mode & 0o777, 0o600)
    } finally {
      await api.close()
    }
  })

  it('judges a parent by owner and mode: another user\'s dir, or group/world-writable without sticky, is refused', () => {
    const me = 1000
    const dirStat = (uid: number, mode: number): { uid: number, mode: number, isDirectory: () => boolean } => ({ uid, mode: 0o040000 | mode, isDirectory: () => true })
    assert.equal(socketParentProblem(dirStat(me, 0o700), me), undefined)
    assert.equal(socketParentProblem(dirStat(0, 0o755), me), undefined, 'root-owned /run')
    assert.equal(socketParentProblem(dirStat(0, 0o1777), me), undefined, '/tmp')
    assert.match(socketParentProblem(dirStat(1001, 0o755), me) ?? '', /owned by uid 1001/)
    assert.match(socketParentProblem(dirStat(0, 0o777), me) ?? '', /world-writable/)
    assert.match(socketParentProblem(dirStat(0, 0o775), me) ?? '', /group-writable/)
    assert.equal(socketParentProblem(dirStat(me, 0o775), me), undefined, 'our own group-writable dir: only we and our group')
    assert.match(socketParentProblem({ uid: me, mode: 0o100600, isDirectory: () => false }, me) ?? '', /not a directory/)
  })
})

describe('daemon API request targets', () => {
  let dir: string
  let sock: string
  let api: Awaited<ReturnType<typeof startApiServer>>
  const logs: string[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-api-url-'))
    sock = join(dir, 'run', 'api.sock')
    api = await start(sock, logs)
  })
  after(async () => {
    await api.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('bad percent-encoding in a path segment is 400 DAEMON_BAD_REQUEST, not logged as a failure', async () => {
    const r = await call(sock, 'DELETE', '/v1/endpoints/%E0%A4%A')
    assert.equal(r.status, 400)
    const e = JSON.parse(r.body).error
    assert.equal(e.code, 'DAEMON_BAD_REQUEST')
    assert.match(e.message, /percent-encoding/)
    assert.ok(!logs.some(l => l.includes('api request failed')), 'a client mistake is not logged as a daemon error')
  })

  it('a request target that is not a URL path is 400', async () => {
    const r = await call(sock, 'GET', '//[')
    assert.equal(r.status, 400)
    assert.equal(JSON.parse(r.body).error.code, 'DAEMON_BAD_REQUEST')
    assert.ok(!logs.some(l => l.includes('api request failed')))
  })
})

describe('the CLI side of the socket', () => {
  it('does not send the API token to a socket owned by another user than the token file', async () => {
    assert.equal(process.getuid?.(), 0, 'this test chowns files: run it as root, as CI does')
    const dir = await mkdtemp(join(tmpdir(), 'oht-api-owner-'))
    try {
      const sock = join(dir, 'run', 'api.sock')
      const tokenPath = join(dir, 'api.token')
      await writeFile(tokenPath, TOKEN + '\n', { mode: 0o600 })
      const api = await start(sock)
      try {
        // Same owner (root here): the client connects. A socket of uid 65534 with root's token: refused.
        assert.equal((await connectApi({ socketPath: sock, tokenPath })).socketPath, sock)
        await chown(sock, 65534, 65534)
        await assert.rejects(connectApi({ socketPath: sock, tokenPath }), (err: unknown) => isCodedError(err, 'CLI_PERMISSION') && /another user/.test((err as Error).message))
        await chown(tokenPath, 65534, 65534)
        assert.equal((await connectApi({ socketPath: sock, tokenPath })).socketPath, sock, 'socket and token of the same user')
      } finally {
        await api.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
