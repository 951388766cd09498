/**
 * ONI endpoints, inbound routes and the SOCKS5 egress on a private Tor network: an extra tor
 * (ours to kill) hosts the services, testnet client 1 reaches them.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createServer, connect, type Server } from 'node:net'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { attachTor, launchTor, socksConnect, type TorProcess } from '../../src/tor/index.ts'
import { deriveChildSeed, identityFromSeed } from '../../src/crypto/index.ts'
import { createEndpointManager, type EndpointManager, type OniEndpointEvent } from '../../src/oni/endpoints.ts'
import { createSocksServer, type SocksServer } from '../../src/oni/socks-server.ts'
import { testnet, readBytes, type Testnet } from '../helpers/tor-testnet.ts'

const BODY = 'hello from an onion endpoint\n'

function curl (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '60', ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null), stdout, stderr })
    })
  })
}

/** Resolves with the first event matching `pred`, or rejects after `ms`. */
function nextEvent (m: EndpointManager, pred: (e: OniEndpointEvent) => boolean, ms: number): Promise<OniEndpointEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no matching ONI event within ${ms} ms`)) }, ms)
    const off = m.onEvent((e) => { if (pred(e)) { clearTimeout(timer); off(); resolve(e) } })
  })
}

describe('oni endpoints on a private Tor network', { timeout: 600_000 }, () => {
  let net: Testnet
  let host: TorProcess
  const oldHosts: TorProcess[] = []
  let http: HttpServer
  let httpPort: number
  let raw: Server
  let rawPort: number
  let stateDir: string
  let manager: EndpointManager | undefined
  let socks: SocksServer | undefined
  const master = randomBytes(32)
  const PATH = 'universe.router.multiverse'

  const connectTor = async (o: { signal?: AbortSignal }): Promise<Awaited<ReturnType<typeof attachTor>>> =>
    await attachTor({ port: host.controlPort }, { signal: o.signal })

  const newManager = (): EndpointManager => createEndpointManager({
    stateDir,
    masterSeed: master,
    probeSocksPort: net.clients[1].socksPort,
    probeIntervalMs: 3_600_000,
    reconnect: { initialMs: 250, maxMs: 1000 }
  }, { connectTor })

  before(async () => {
    net = await testnet({ clients: 2 })
    host = await launchTor({ torrc: net.clientTorrc() })
    http = createHttpServer((_req, res) => { res.end(BODY) })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    httpPort = (http.address() as { port: number }).port
    raw = createServer((s) => { s.on('error', () => {}); s.end('raw-route\n') })
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
    rawPort = (raw.address() as { port: number }).port
    stateDir = await mkdtemp(join(tmpdir(), 'oni-endpoints-'))
  })

  after(async () => {
    await socks?.close()
    await manager?.stop()
    for (const t of [host, ...oldHosts]) await t?.stop().catch(() => {})
    await new Promise<void>((resolve) => http?.close(() => { resolve() }))
    await new Promise<void>((resolve) => raw?.close(() => { resolve() }))
    await net?.stop()
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true })
  })

  it('publishes a key-tree endpoint at the derived address and routes its port to a local TCP server', async () => {
    manager = newManager()
    await manager.start()
    const ep = await manager.create({ name: 'router', key: { type: 'derived', path: PATH }, routes: [{ virtualPort: 80, target: `127.0.0.1:${httpPort}` }, { virtualPort: 7000, target: `127.0.0.1:${rawPort}`, mode: 'direct' }] })
    const expected = identityFromSeed(deriveChildSeed(master, PATH)).onion
    assert.equal(ep.address, `${expected}.onion`)
    assert.equal(ep.state, 'ready')
    const s = await socksConnect({ socksPort: net.clients[1].socksPort, host: ep.address, port: 7000, timeoutMs: 60_000 })
    assert.equal((await readBytes(s, 10)).toString(), 'raw-route\n')
    s.destroy()
    const st = await stat(join(stateDir, 'endpoints.json'))
    assert.equal(st.mode & 0o777, 0o600)
  })

  it('fetches the endpoint over HTTP with curl through the ONI SOCKS5 server, and counts the bytes', async () => {
    socks = createSocksServer({ torSocksPort: net.clients[1].socksPort }, { dial: socksConnect })
    await socks.listen()
    const ep = manager?.get('router')
    assert.ok(ep)
    const r = await curl(['--socks5-hostname', `127.0.0.1:${socks.port}`, `http://${ep.address}/`])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, BODY)
    const route = manager?.get('router')?.routes.find(x => x.virtualPort === 80)
    assert.ok(route !== undefined && route.total >= 1 && route.bytesOut >= BODY.length, JSON.stringify(route))
    assert.ok((socks.stats.bytesDown) >= BODY.length)
  })

  it('refuses a clearnet destination with SOCKS reply 0x02 and curl reports the failure', async () => {
    assert.ok(socks)
    const r = await curl(['--socks5-hostname', `127.0.0.1:${socks.port}`, 'http://example.com/'])
    assert.notEqual(r.code, 0)
    const s = connect(socks.port, '127.0.0.1')
    await new Promise<void>((resolve) => s.once('connect', resolve))
    const name = Buffer.from('example.com')
    s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([0, 80])]))
    const reply = await readBytes(s, 12)
    assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 5, 0x02])
    s.destroy()
  })

  it('survives a restart of the ONI: the detached service is adopted at the same address', async () => {
    const before = manager?.get('router')?.address
    await manager?.stop()
    manager = newManager()
    const adopted = nextEvent(manager, (e) => e.type === 'endpoint-adopted', 30_000)
    await manager.start()
    assert.equal((await adopted).type, 'endpoint-adopted')
    assert.equal(manager.get('router')?.address, before)
    assert.equal(manager.get('router')?.republished, 0)
    const r = await curl(['--socks5-hostname', `127.0.0.1:${socks?.port ?? 0}`, `http://${before ?? ''}/`])
    assert.equal(r.stdout, BODY, r.stderr)
  })

  it('re-publishes a service that disappeared from tor when the probe runs', async () => {
    assert.ok(manager)
    const other = await attachTor({ port: host.controlPort })
    const id = manager.get('router')?.address.replace('.onion', '') ?? ''
    await other.delOnion(id)
    await other.close()
    const ev = nextEvent(manager, (e) => e.type === 'endpoint-republished', 60_000)
    await manager.probeNow()
    const e = await ev
    assert.equal(e.type === 'endpoint-republished' ? e.reason : '', 'missing')
    assert.equal(manager.get('router')?.state, 'ready')
  })

  it('brings endpoints back by itself after tor is killed and restarted', async () => {
    assert.ok(manager)
    const address = manager.get('router')?.address ?? ''
    const disconnected = nextEvent(manager, (e) => e.type === 'tor-disconnected', 30_000)
    const republished = nextEvent(manager, (e) => e.type === 'endpoint-republished' && e.reason === 'tor-restarted', 180_000)
    process.kill(host.pid, 'SIGKILL')
    await host.exited
    oldHosts.push(host)
    await disconnected
    assert.equal(manager.get('router')?.state, 'down')
    host = await launchTor({ torrc: net.clientTorrc() })
    await republished
    assert.equal(manager.get('router')?.state, 'ready')
    assert.equal(manager.get('router')?.address, address)
    const r = await curl(['--socks5-hostname', `127.0.0.1:${socks?.port ?? 0}`, `http://${address}/`])
    assert.equal(r.stdout, BODY, r.stderr)
  })
})
