import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { main } from '../../src/cli/main.ts'
import { readAll, type CliIo } from '../../src/cli/io.ts'
import { EXIT } from '../../src/cli/errors.ts'
import { formatOniTable } from '../../src/cli/commands/oni.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'
import { startApiServer, type ApiBackend, type ApiServer } from '../../src/daemon/api-server.ts'
import type { OniStatus } from '../../src/oni/index.ts'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], env: Record<string, string | undefined>): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = {
    stdout: { write: (c: string | Uint8Array) => { out.push(Buffer.from(c).toString()); return true } },
    stderr: { write: (c: string | Uint8Array) => { err.push(Buffer.from(c).toString()); return true } },
    readStdin: async (max) => await readAll(Readable.from([]), max),
    env,
    clock: systemClock,
    signal: new AbortController().signal
  }
  const code = await main(argv, io)
  return { code, stdout: out.join(''), stderr: err.join('') }
}

const A = 'a'.repeat(56)
const B = 'b'.repeat(56)

function sampleStatus (): OniStatus {
  const route = (virtualPort: number, target: string, open: number, bytesIn: number, bytesOut: number): OniStatus['endpoints'][number]['routes'][number] =>
    ({ virtualPort, target, mode: 'forward', open, total: open + 3, failed: 1, bytesIn, bytesOut })
  return {
    tor: { connected: true },
    endpoints: [
      { name: 'web', address: A, key: 'new', state: 'ready', pow: 'off', clientAuth: 0, republished: 0, routes: [route(80, '127.0.0.1:8080', 2, 1234, 56789), route(443, '127.0.0.1:8443', 0, 0, 0)] },
      { name: 'idle', address: B, key: 'new', state: 'publishing', pow: 'off', clientAuth: 0, republished: 0, routes: [] }
    ],
    socks: { host: '127.0.0.1', port: 9150, stats: { accepted: 4, open: 1, refused: 0, failed: 0, idleClosed: 0, bytesUp: 10, bytesDown: 20, replies: { 0: 4 } } },
    onet: null
  }
}

describe('oht oni ls: table', () => {
  it('prints one aligned line per endpoint route with address, port, target, state, connections and bytes', () => {
    const lines = formatOniTable({ enabled: true, ...sampleStatus() }).split('\n')
    assert.equal(lines.length, 5, lines.join('\n'))
    assert.match(lines[0], /^NAME\s+ADDRESS\s+PORT\s+TARGET\s+STATE\s+OPEN\s+TOTAL\s+FAILED\s+BYTES_IN\s+BYTES_OUT$/)
    assert.deepEqual(lines[1].split(/\s+/), ['web', `${A}.onion`, '80', '127.0.0.1:8080', 'ready', '2', '5', '1', '1234', '56789'])
    assert.deepEqual(lines[2].split(/\s+/), ['web', `${A}.onion`, '443', '127.0.0.1:8443', 'ready', '0', '3', '1', '0', '0'])
    assert.deepEqual(lines[3].split(/\s+/), ['idle', `${B}.onion`, '-', '-', 'publishing', '0', '0', '0', '0', '0'])
    // columns line up: every field starts at the header's column
    const col = lines[0].indexOf('STATE')
    assert.equal(lines[1].indexOf('ready'), col)
    assert.equal(lines[3].indexOf('publishing'), col)
    assert.equal(lines[4], 'socks 127.0.0.1:9150  open 1  total 4  bytes in 20  out 10')
  })

  it('prints an address ONI gives with ".onion" once', () => {
    const st = sampleStatus()
    st.endpoints = [{ ...st.endpoints[0], address: `${A}.onion` }]
    assert.deepEqual(formatOniTable({ enabled: true, ...st }).split('\n')[1].split(/\s+/).slice(0, 2), ['web', `${A}.onion`])
  })

  it('says so when there are no endpoints and when tor is down', () => {
    assert.equal(formatOniTable({ enabled: true, tor: { connected: false }, endpoints: [], socks: null }), '(no ONI endpoints)\ntor: not connected')
  })
})

describe('oht oni ls against the daemon API (in process)', () => {
  let dir: string
  let env: Record<string, string>
  let daemon: Daemon

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-oni-'))
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    assert.equal((await run(['init'], env)).code, 0)
    const config = validateConfig({ node: { transport: 'local' } }, 'test', env.OHT_STATE_DIR)
    daemon = createDaemon({ config, stateDir: env.OHT_STATE_DIR }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await daemon.start()
  })

  after(async () => {
    await daemon.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('--help documents the command and exits 0', async () => {
    const r = await run(['oni', 'ls', '--help'], env)
    assert.equal(r.code, EXIT.OK)
    assert.match(r.stdout, /oht oni ls \[--json\]/)
    assert.match(r.stdout, /\[oni\]\s+enabled = true/)
    const top = await run(['--help'], env)
    assert.match(top.stdout, /\n {2}oni\s+/)
  })

  it('no tor (local transport): one line saying ONI needs tor, non-zero exit, also with --json', async () => {
    for (const argv of [['oni', 'ls'], ['oni', 'ls', '--json']]) {
      const r = await run(argv, env)
      assert.equal(r.code, EXIT.FAILURE)
      assert.equal(r.stdout, '')
      const lines = r.stderr.split('\n').filter(l => l !== '')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0], /^oht oni ls: ONI needs node\.transport = "tor" \(this daemon's is "local"\)/)
    }
  })

  it('GET /v1/oni answers { enabled: false } with the token and 401 without it', async () => {
    const token = (await readFile(join(env.OHT_STATE_DIR, 'api.token'), 'utf8')).trim()
    const get = async (auth: string | undefined): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
      const req = request({ socketPath: daemon.socketPath, path: '/v1/oni', headers: auth === undefined ? {} : { authorization: `Bearer ${auth}` } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
      })
      req.on('error', reject)
      req.end()
    })
    const ok = await get(token)
    assert.equal(ok.status, 200)
    const body = JSON.parse(ok.body) as { enabled: boolean, message: string }
    assert.equal(body.enabled, false)
    assert.match(body.message, /node\.transport = "tor"/)
    assert.equal((await get(undefined)).status, 401)
  })

  it('no daemon: the usual exit 4 message', async () => {
    const r = await run(['oni', 'ls'], { ...env, OHT_SOCKET: join(dir, 'nobody.sock') })
    assert.equal(r.code, EXIT.UNAVAILABLE)
    assert.match(r.stderr, /no daemon answers on .*nobody\.sock: start one with "oht daemon"/)
  })
})

describe('oht oni ls with ONI enabled (API server in process)', () => {
  let dir: string
  let env: Record<string, string>
  let api: ApiServer

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-oni-on-'))
    const socketPath = join(dir, 'run', 'api.sock')
    const tokenFile = join(dir, 'api.token')
    const token = 'c'.repeat(64)
    await writeFile(tokenFile, token + '\n', { mode: 0o600 })
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state'), OHT_SOCKET: socketPath, OHT_TOKEN_FILE: tokenFile }
    const unused = (): never => { throw new Error('not used by this test') }
    const backend: ApiBackend = {
      status: unused, identityInfo: unused, peers: unused, put: unused, get: unused, listEndpoints: unused, addEndpoint: unused, removeEndpoint: unused, metrics: unused,
      oni: () => ({ enabled: true, ...sampleStatus() })
    }
    api = await startApiServer({ socketPath, token, clock: systemClock, log: createJsonLog(() => {}, systemClock) }, backend)
  })

  after(async () => {
    await api.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('prints the table from GET /v1/oni', async () => {
    const r = await run(['oni', 'ls'], env)
    assert.equal(r.code, EXIT.OK, r.stderr)
    assert.equal(r.stdout, formatOniTable({ enabled: true, ...sampleStatus() }) + '\n')
  })

  it('--json prints the status as the daemon sent it', async () => {
    const r = await run(['oni', 'ls', '--json'], env)
    assert.equal(r.code, EXIT.OK, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(JSON.stringify({ enabled: true, ...sampleStatus() })))
  })
})
