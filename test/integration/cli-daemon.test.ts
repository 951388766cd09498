/**
 * End to end over a private Tor network: real `oht daemon` processes attached to testnet
 * client tors, the real `oht` CLI as a child process against them.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { echoServer, readBytes, testnet, type EchoServer, type Testnet } from '../helpers/tor-testnet.ts'
import { socksConnect } from '../../src/tor/socks.ts'
import { attachTor } from '../../src/tor/attach.ts'
import { createEndpointManager } from '../../src/oni/index.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'oht.js')
const START_TIMEOUT_MS = 300_000
const CLI_TIMEOUT_MS = 120_000

interface CliRun { code: number | null, stdout: string, stderr: string }

interface DaemonProc {
  child: ChildProcess
  stateDir: string
  logs: string[]
  exited: Promise<number | null>
}

function envFor (base: string, stateDir: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_')) env[k] = v
  return { ...env, HOME: base, XDG_CONFIG_HOME: join(base, 'config'), XDG_DATA_HOME: join(base, 'data'), OHT_STATE_DIR: stateDir }
}

function cli (args: string[], env: Record<string, string>, stdin?: Uint8Array, as?: { uid: number, gid: number }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], ...(as ?? {}) })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`oht ${args.join(' ')} timed out`)) }, CLI_TIMEOUT_MS)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(stdin)
  })
}

async function startDaemon (base: string, stateDir: string, args: string[]): Promise<DaemonProc> {
  const child = spawn(process.execPath, [BIN, 'daemon', ...args], { env: envFor(base, stateDir), stdio: ['ignore', 'ignore', 'pipe'] })
  const logs: string[] = []
  const exited = new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code) }) })
  let buf = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`daemon not ready after ${START_TIMEOUT_MS} ms:\n${logs.join('\n')}`)) }, START_TIMEOUT_MS)
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        logs.push(line)
        if (line.includes('"msg":"ready"')) { clearTimeout(timer); resolve() }
      }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`daemon exited (${code}) before ready:\n${logs.join('\n')}`)) })
  })
  try {
    await ready
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return { child, stateDir, logs, exited }
}

async function stopDaemon (d: DaemonProc | undefined): Promise<number | null> {
  if (d === undefined || d.child.exitCode !== null) return d?.child.exitCode ?? null
  d.child.kill('SIGTERM')
  const timer = setTimeout(() => { d.child.kill('SIGKILL') }, 30_000)
  try { return await d.exited } finally { clearTimeout(timer) }
}

function alive (pid: number | undefined): boolean {
  if (pid === undefined) return false
  try { process.kill(pid, 0); return true } catch { return false }
}

function rawApi (socketPath: string, path: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
}

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

function oneLine (r: CliRun, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(lines.length, 1, `exactly one stderr line, got:\n${r.stderr}`)
  assert.match(lines[0], pattern)
}

describe('oht daemon + CLI over a private Tor network', () => {
  let net: Testnet
  let base: string
  let a: DaemonProc | undefined
  let b: DaemonProc | undefined
  let envA: Record<string, string>
  let envB: Record<string, string>
  let aAddress: string
  let aMultiaddr: string
  let firstKey: string
  let echo: EchoServer | undefined
  let endpointAddress: string
  let oniAddress: string

  /** Connects through B's tor client to `address`:80 and checks the echo. */
  const echoThroughTor = async (address: string, isolation: string): Promise<void> => {
    const socket = await socksConnect({ socksPort: net.clients[1].socksPort, host: address, port: 80, isolation, timeoutMs: 90_000, retries: 10 })
    try {
      socket.write('ping over onion')
      assert.equal((await readBytes(socket, 15)).toString(), 'ping over onion')
    } finally {
      socket.destroy()
    }
  }

  before(async () => {
    net = await testnet({ clients: 2 })
    base = await mkdtemp(join(tmpdir(), 'oht-cli-int-'))
    envA = envFor(base, join(base, 'a'))
    envB = envFor(base, join(base, 'b'))
    for (const env of [envA, envB]) {
      const r = await cli(['init'], env)
      assert.equal(r.code, 0, r.stderr)
    }
    a = await startDaemon(base, envA.OHT_STATE_DIR, ['--tor-control', `127.0.0.1:${net.clients[0].controlPort}`])
    const status = JSON.parse((await cli(['status', '--json'], envA)).stdout)
    aAddress = status.identity.address
    aMultiaddr = status.addrs.find((x: string) => x.startsWith('/onion3/'))
    assert.ok(aMultiaddr !== undefined, `A announces an onion address: ${JSON.stringify(status.addrs)}`)
    // B also runs ONI (no SOCKS listener) on its tor, for `oht oni ls`. An ONI endpoint made
    // beforehand in B's ONI state dir (left detached in tor) is what B's ONI restores and lists.
    const seed = createEndpointManager({ stateDir: join(envB.OHT_STATE_DIR, 'oni') }, {
      connectTor: async (o) => await attachTor({ host: '127.0.0.1', port: net.clients[1].controlPort }, o)
    })
    await seed.start()
    oniAddress = (await seed.create({ name: 'web', routes: [{ virtualPort: 80, target: '127.0.0.1:9' }] })).address
    await seed.stop()
    const configB = join(base, 'b-oht.toml')
    await writeFile(configB, '[oni]\nenabled = true\n')
    b = await startDaemon(base, envB.OHT_STATE_DIR, ['--config', configB, '--tor-control', `127.0.0.1:${net.clients[1].controlPort}`, '--bootstrap', aMultiaddr])
    // B joined through A (retrying in the background if A's onion service was slow to answer)
    await until('B has A as a peer', 120_000, async () => {
      const peers = JSON.parse((await cli(['peers', '--json'], envB)).stdout).peers as Array<{ onion: string }>
      return peers.some(p => `${p.onion}.onion` === aAddress) ? true : undefined
    }).catch((err: Error) => { throw new Error(`${err.message}\nB's log:\n${b?.logs.slice(-15).join('\n') ?? ''}`) })
  })

  after(async () => {
    await echo?.close()
    await stopDaemon(a)
    await stopDaemon(b)
    await net?.stop()
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })

  it('puts on one daemon and gets the value on another across onion services', async () => {
    const put = await cli(['put', 'hello across the onion network', '--json'], envA)
    assert.equal(put.code, 0, put.stderr)
    const p = JSON.parse(put.stdout)
    assert.match(p.key, /^[0-9a-f]{64}$/)
    assert.ok(p.stored >= 1, `stored on ${p.stored}`)
    firstKey = p.key
    const get = await cli(['get', p.key], envB)
    assert.equal(get.code, 0, get.stderr)
    assert.equal(get.stdout, 'hello across the onion network')
    const peers = JSON.parse((await cli(['peers', '--json'], envB)).stdout)
    assert.ok(peers.peers.some((x: { onion: string }) => `${x.onion}.onion` === aAddress), 'B has A in its routing table')
  })

  it('status reports tor connected and bootstrapped and the onion address oht id prints', async () => {
    const s = JSON.parse((await cli(['status', '--json'], envA)).stdout)
    assert.equal(s.phase, 'running')
    assert.equal(s.tor.connected, true)
    assert.equal(s.tor.bootstrapPercent, 100)
    assert.equal(s.tor.mode, 'attach')
    const id = await cli(['id'], envA)
    assert.equal(id.stdout.trim(), s.identity.address)
    const metrics = await cli(['metrics'], envA)
    assert.match(metrics.stdout, /^oht_tor_connected 1$/m)
    assert.match(metrics.stdout, /^oht_tor_bootstrap_percent 100$/m)
  })

  it('oht oni ls: ONI status from B (SOCKS egress enabled) and from A (ONI as the endpoint manager only)', async () => {
    const on = await cli(['oni', 'ls', '--json'], envB)
    assert.equal(on.code, 0, on.stderr)
    const st = JSON.parse(on.stdout)
    assert.equal(st.enabled, true)
    assert.equal(st.tor.connected, true)
    assert.equal(st.socks, null)
    assert.equal(st.endpoints.length, 1, on.stdout)
    const ep = st.endpoints[0]
    assert.equal(ep.name, 'web')
    assert.equal(ep.address, oniAddress)
    assert.deepEqual(ep.routes.map((r: { virtualPort: number, target: string, open: number }) => [r.virtualPort, r.target, r.open]), [[80, '127.0.0.1:9', 0]])
    const table = await cli(['oni', 'ls'], envB)
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, new RegExp(`^web\\s+${oniAddress.replace('.', '\\.')}\\s+80\\s+127\\.0\\.0\\.1:9\\s+${ep.state as string}\\s+0\\s+`, 'm'))
    const onA = await cli(['oni', 'ls', '--json'], envA)
    assert.equal(onA.code, 0, onA.stderr)
    const a = JSON.parse(onA.stdout)
    assert.equal(a.enabled, true)
    assert.deepEqual(a.endpoints, [])
    assert.equal(a.socks, null)
    assert.equal((await cli(['oni', 'ls'], envA)).stdout, '(no ONI endpoints)\n')
  })

  it('refuses unauthenticated API access with 401', async () => {
    const sock = join(envA.OHT_STATE_DIR, 'run', 'api.sock')
    assert.equal(await rawApi(sock, '/v1/status'), 401)
    assert.equal(await rawApi(sock, '/v1/records/' + 'a'.repeat(64), 'b'.repeat(64)), 401)
    assert.equal(await rawApi(sock, '/metrics', 'not a token'), 401)
    const token = (await readFile(join(envA.OHT_STATE_DIR, 'api.token'), 'utf8')).trim()
    assert.equal(await rawApi(sock, '/v1/status', token), 200)
  })

  it('bad input: one clear stderr line, the documented exit code, nothing changed', async () => {
    const before = JSON.parse((await cli(['status', '--json'], envA)).stdout).node.recordsStored
    const badToken = join(base, 'open.token')
    await copyFile(join(envA.OHT_STATE_DIR, 'api.token'), badToken)
    await chmod(badToken, 0o644)
    const notSocket = join(base, 'not-a-socket')
    await writeFile(notSocket, '')
    const cases: Array<[string[], Record<string, string>, number, RegExp, Uint8Array?]> = [
      [['put', 'x', '--colour'], envA, 2, /^oht put: unknown flag --colour \(see oht put --help\)$/],
      [['get', 'zz'.repeat(32)], envA, 2, /^oht get: malformed key "z{64}": a key is 64 hex characters/],
      [['put', '-'], envA, 2, /stdin holds more than 65536 bytes/, new Uint8Array(70_000)],
      [['status'], envFor(base, join(base, 'nobody')), 4, /^oht status: no daemon answers on .*: start one with "oht daemon"/],
      [['status', '--socket', notSocket], envA, 4, /is not a socket/],
      [['put', 'x'], { ...envA, OHT_TOKEN_FILE: badToken }, 5, /accessible to other users \(mode 644\): run chmod 600/],
      [['get', 'e'.repeat(64)], envA, 6, /no record under e{64}/]
    ]
    for (const [args, env, code, pattern, stdin] of cases) {
      const r = await cli(args, env, stdin)
      assert.equal(r.code, code, `oht ${args.join(' ')}: ${r.stderr}`)
      oneLine(r, pattern)
      assert.equal(r.stdout, '')
    }
    assert.equal(JSON.parse((await cli(['status', '--json'], envA)).stdout).node.recordsStored, before, 'nothing stored')
  })

  it('another user cannot reach the API socket: exit 5 and what to do', async (t) => {
    // Needs root to act as another user; as a normal user the test suite is that other user's view already.
    if (process.getuid?.() !== 0) { t.diagnostic('not root: the other-user case needs root to switch users'); return }
    const r = await cli(['status'], { ...envA, HOME: '/tmp' }, undefined, { uid: 65534, gid: 65534 })
    assert.equal(r.code, 5, r.stderr)
    oneLine(r, /^oht status: permission denied on .*\/run\/api\.sock: run as the daemon's user$/)
  })

  it('publishes an onion endpoint for a local service, reachable from another tor client', async () => {
    echo = await echoServer()
    const r = await cli(['endpoints', 'add', 'web', '80', echo.target, '--json'], envA)
    assert.equal(r.code, 0, r.stderr)
    const ep = JSON.parse(r.stdout)
    assert.match(ep.address, /^[a-z2-7]{56}\.onion$/)
    assert.notEqual(ep.address, aAddress, 'an address of its own, derived from the identity and the name')
    assert.equal(ep.state, 'ready')
    endpointAddress = ep.address
    await echoThroughTor(endpointAddress, 'first')
    const oni = JSON.parse((await cli(['oni', 'ls', '--json'], envA)).stdout)
    assert.deepEqual(oni.endpoints.map((e: { name: string, address: string }) => [e.name, e.address]), [['web', endpointAddress]], 'oht oni ls shows exactly what oht endpoints made')
    const bad = await cli(['endpoints', 'add', 'web2', '80', '10.0.0.1:80'], envA)
    assert.equal(bad.code, 2)
    oneLine(bad, /target "10\.0\.0\.1:80" must be a loopback/)
  })

  it('comes back after SIGTERM at the same onion address, with everything cleaned up in between', async () => {
    const pid = a?.child.pid
    const sock = join(envA.OHT_STATE_DIR, 'run', 'api.sock')
    assert.equal(await stopDaemon(a), 0, 'clean exit on SIGTERM')
    assert.equal(alive(pid), false, 'no process left')
    await assert.rejects(stat(sock), { code: 'ENOENT' }, 'socket removed')
    assert.ok(a?.logs.some(l => l.includes('"msg":"stopped"')))
    const down = await cli(['status'], envA)
    assert.equal(down.code, 4)

    a = await startDaemon(base, envA.OHT_STATE_DIR, ['--tor-control', `127.0.0.1:${net.clients[0].controlPort}`, '--bootstrap', JSON.parse((await cli(['status', '--json'], envB)).stdout).addrs.find((x: string) => x.startsWith('/onion3/'))])
    const s = JSON.parse((await cli(['status', '--json'], envA)).stdout)
    assert.equal(s.identity.address, aAddress, 'same onion address')
    assert.ok(s.addrs.includes(aMultiaddr), 'same onion multiaddr announced')
    // its store was wiped on stop: the value comes back from B over the onion network
    const get = await cli(['get', firstKey], envA)
    assert.equal(get.code, 0, get.stderr)
    assert.equal(get.stdout, 'hello across the onion network')
    // and B reaches the restarted A at the same address
    const put = await cli(['put', 'after the restart'], envA)
    assert.equal(put.code, 0, put.stderr)
    assert.equal((await cli(['get', put.stdout.trim()], envB)).stdout, 'after the restart')
    // the endpoint was restored from the state dir, at the same address, and answers again
    const eps = JSON.parse((await cli(['endpoints', '--json'], envA)).stdout).endpoints
    assert.equal(eps.length, 1)
    assert.equal(eps[0].address, endpointAddress)
    assert.equal(eps[0].state, 'ready')
    await echoThroughTor(endpointAddress, 'after-restart')
  })

  it('mutable records: B reads A\'s named record by A\'s onion address, newest seq wins', async () => {
    assert.equal((await cli(['put', 'motd', 'first'], envA)).code, 0)
    assert.equal((await cli(['put', 'motd', 'second'], envA)).code, 0)
    const r = await cli(['get', '--name', 'motd', '--author', aAddress, '--json'], envB)
    assert.equal(r.code, 0, r.stderr)
    const got = JSON.parse(r.stdout)
    assert.equal(Buffer.from(got.value, 'base64').toString(), 'second')
    assert.equal(got.kind, 'mutable')
  })
})
