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
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { attachTor, launchTor, socksConnect, type TorProcess } from '../../src/tor/index.ts'
import { deriveChildSeed, identityFromSeed, readKeyFile } from '../../src/crypto/index.ts'
import { base32Encode } from '../../src/core/index.ts'
import { TorError } from '../../src/tor/errors.ts'
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

  it('publishes an endpoint with a new key stored 0600, and one with PoW defences when tor has them', async () => {
    assert.ok(manager)
    const web = await manager.create({ name: 'web', routes: [{ virtualPort: 80, target: `127.0.0.1:${httpPort}` }] })
    const keyFile = join(stateDir, 'keys', 'web.key')
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
    assert.equal(web.address, `${(await readKeyFile(keyFile)).onion}.onion`)
    const pow = await manager.create({ name: 'pow', pow: true, routes: [{ virtualPort: 80, target: `127.0.0.1:${httpPort}` }] })
    assert.equal(pow.state, 'ready')
    assert.ok(pow.pow === 'on' || pow.pow === 'unsupported')
    process.stderr.write(`tor PoW defences: ${pow.pow}\n`)
    const s = await socksConnect({ socksPort: net.clients[1].socksPort, host: pow.address, port: 80, timeoutMs: 60_000 })
    s.destroy()
  })

  it('keeps a ClientAuthV3 endpoint closed to a client without the key (SOCKS 0xF4)', async () => {
    assert.ok(manager)
    const { publicKey } = generateKeyPairSync('x25519')
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url')
    const ep = await manager.create({ name: 'private', clientAuthV3: [base32Encode(raw)], routes: [{ virtualPort: 80, target: `127.0.0.1:${httpPort}` }] })
    assert.equal(ep.clientAuth, 1)
    await assert.rejects(socksConnect({ socksPort: net.clients[1].socksPort, host: ep.address, port: 80, timeoutMs: 60_000, retries: 6 }),
      (e) => e instanceof TorError && e.socksReply === 0xf4)
    await manager.delete('private')
    assert.equal(manager.get('private'), undefined)
  })

  it('fetches the endpoint over HTTP with curl through the ONI SOCKS5 server, and counts the bytes', async () => {
    socks = createSocksServer({ torSocksPort: net.clients[1].socksPort })
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

  it('survives a restart of the ONI: the detached services are adopted at the same addresses', async () => {
    const before = manager?.get('router')?.address
    const webBefore = manager?.get('web')?.address
    await manager?.stop()
    manager = newManager()
    const adopted: string[] = []
    manager.onEvent((e) => { if (e.type === 'endpoint-adopted') adopted.push(e.name) })
    await manager.start()
    assert.deepEqual(adopted.sort(), ['pow', 'router', 'web'])
    assert.equal(manager.get('router')?.address, before)
    assert.equal(manager.get('web')?.address, webBefore)
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
    const names = manager.list().map(e => e.name)
    const back = new Set<string>()
    const allBack = nextEvent(manager, (e) => {
      if (e.type === 'endpoint-republished' && e.reason === 'tor-restarted') back.add(e.name)
      return back.size === names.length
    }, 240_000)
    process.kill(host.pid, 'SIGKILL')
    await host.exited
    oldHosts.push(host)
    await disconnected
    assert.equal(manager.get('router')?.state, 'down')
    host = await launchTor({ torrc: net.clientTorrc() })
    await allBack
    for (const n of names) assert.equal(manager.get(n)?.state, 'ready', n)
    assert.equal(manager.get('router')?.address, address)
    // The descriptors are uploaded, but a tor that has just restarted can fail its first
    // rendezvous while the network's view of the new intro points settles (a user's client
    // would retry): the endpoint must answer within 90 s, by itself.
    const deadline = Date.now() + 90_000
    let r = await curl(['--max-time', '30', '--socks5-hostname', `127.0.0.1:${socks?.port ?? 0}`, `http://${address}/`])
    while (r.stdout !== BODY && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 3000))
      r = await curl(['--max-time', '30', '--socks5-hostname', `127.0.0.1:${socks?.port ?? 0}`, `http://${address}/`])
    }
    assert.equal(r.stdout, BODY, r.stderr)
  })
})
