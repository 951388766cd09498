/**
 * The SOCKS server under clients that misbehave on purpose: half-open sockets that never send
 * their FIN after a refusal, idle tunnels, one source opening many connections, and the
 * largest legal handshake (which must not be taken for an oversized one).
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { FakeClock } from '../../src/core/index.ts'
import { createSocksServer, type SocksServer, type SocksServerInit, type TorDialer } from '../../src/oni/socks-server.ts'

const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion'

interface Client { s: Socket, got: () => Buffer, waitFor: (n: number) => Promise<Buffer>, ended: Promise<void>, closed: Promise<void> }

/**
 * A client socket that records what it receives. `halfOpen`: when the server ends its side,
 * this client keeps its own side open (never sends FIN), as a hostile or buggy client would.
 */
async function open (port: number, opts: { halfOpen?: boolean, localAddress?: string } = {}): Promise<Client> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: opts.halfOpen === true, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) })
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  let buf = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const w of waiters.splice(0)) w() }
  s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); wake() })
  s.on('error', () => {})
  const ended = new Promise<void>((resolve) => { s.once('end', () => { resolve(); wake() }) })
  const closed = new Promise<void>((resolve) => { s.once('close', () => { resolve(); wake() }) })
  let isEnded = false
  void ended.then(() => { isEnded = true })
  const waitFor = async (n: number): Promise<Buffer> => {
    while (buf.length < n && !s.destroyed && !isEnded) await new Promise<void>((resolve) => waiters.push(resolve))
    return buf.subarray(0, n)
  }
  return { s, got: () => buf, waitFor, ended, closed }
}

function connectRequest (host: string, port: number): Buffer {
  const name = Buffer.from(host)
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])])
}

/** Lets socket events that are already on their way arrive. */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('oni SOCKS5 server against misbehaving clients', () => {
  let echo: Server
  let echoPort: number
  let server: SocksServer | undefined
  const clients: Client[] = []

  beforeEach(async () => {
    echo = createServer((s) => { s.on('error', () => {}); s.pipe(s) })
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
    echoPort = (echo.address() as { port: number }).port
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) c.s.destroy()
    await server?.close()
    server = undefined
    await new Promise<void>((resolve) => echo.close(() => { resolve() }))
  })

  const echoDialer: TorDialer = async () => {
    const s = connect(echoPort, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    return s
  }

  async function start (init: Partial<SocksServerInit>, clock?: FakeClock): Promise<number> {
    server = createSocksServer({ torSocksPort: 9, ...init }, { dial: echoDialer, clock })
    await server.listen()
    return server.port
  }

  async function client (port: number, opts: { halfOpen?: boolean, localAddress?: string } = {}): Promise<Client> {
    const c = await open(port, opts)
    clients.push(c)
    return c
  }

  it('frees the slots of refused clients that never send their FIN, after the linger', { timeout: 10_000 }, async () => {
    const clock = new FakeClock()
    const port = await start({ maxConnections: 4, lingerMs: 2000 }, clock)
    const refused: Client[] = []
    for (let i = 0; i < 4; i++) {
      const c = await client(port, { halfOpen: true })
      // a clearnet name: refused by the default policy with 0x02
      c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest('example.com', 80)]))
      assert.equal((await c.waitFor(12))[3], 0x02)
      await c.ended
      refused.push(c)
    }
    await settle()
    assert.ok(refused.every(c => !c.s.destroyed), 'the refused clients hold their sockets open')
    const blocked = await client(port)
    await blocked.closed
    assert.equal(blocked.got().length, 0, 'while the four linger, a fifth client finds no slot')
    // The server destroys its side; these clients never close theirs, so only the freed slots show it.
    await clock.advance(2000)
    await settle()
    const fresh = await client(port)
    fresh.s.write(Buffer.from([5, 1, 0]))
    assert.deepEqual([...await fresh.waitFor(2)], [5, 0], 'a valid client is served once the lingering refusals are gone')
  })

  it('also frees a client refused at method negotiation that keeps its side open', { timeout: 10_000 }, async () => {
    const clock = new FakeClock()
    const port = await start({ maxConnections: 1, lingerMs: 500, requireCredentials: true }, clock)
    const c = await client(port, { halfOpen: true })
    c.s.write(Buffer.from([5, 1, 0]))
    assert.deepEqual([...await c.waitFor(2)], [5, 0xff])
    await c.ended
    await clock.advance(500)
    await settle()
    const next = await client(port)
    next.s.write(Buffer.from([5, 1, 2]))
    assert.deepEqual([...await next.waitFor(2)], [5, 2])
  })

  it('accepts a greeting plus maximum-length credentials (516 bytes) and a maximal request in one write', { timeout: 10_000 }, async () => {
    const port = await start({})
    const c = await client(port)
    const auth = Buffer.concat([Buffer.from([1, 255]), Buffer.alloc(255, 0x75), Buffer.from([255]), Buffer.alloc(255, 0x70)])
    const greeting = Buffer.from([5, 1, 2])
    assert.equal(greeting.length + auth.length, 516)
    // the longest name DNS allows (253 characters), ending in .onion so the policy lets it through
    const host = [...Array(4)].map(() => 'a'.repeat(63)).join('.').slice(0, 247) + '.onion'
    assert.equal(host.length, 253)
    c.s.write(Buffer.concat([greeting, auth, connectRequest(host, 80)]))
    const head = await c.waitFor(2 + 2 + 10)
    assert.deepEqual([...head.subarray(0, 4)], [5, 2, 1, 0])
    assert.equal(head[5], 0x00, 'the CONNECT succeeded')
  })

  it('closes an established tunnel after idleTimeoutMs without traffic, and not while traffic flows', { timeout: 10_000 }, async () => {
    const clock = new FakeClock()
    const port = await start({ idleTimeoutMs: 10_000 }, clock)
    const c = await client(port)
    c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest(ONION, 80)]))
    assert.equal((await c.waitFor(12))[3], 0)
    await clock.advance(6000)
    c.s.write('ping')
    assert.equal((await c.waitFor(16)).subarray(12).toString(), 'ping')
    await clock.advance(6000)
    await settle()
    assert.ok(!c.s.destroyed && server?.stats.open === 1, 'traffic 6 s ago keeps the tunnel open at 12 s')
    await clock.advance(4000)
    await c.closed
    await settle()
    assert.equal(server?.stats.open, 0)
    assert.equal(server?.stats.idleClosed, 1)
  })

  it('caps connections per source address so one source cannot take every slot', { timeout: 10_000 }, async () => {
    const port = await start({ maxConnections: 8, maxConnectionsPerSource: 2 })
    const a1 = await client(port, { localAddress: '127.0.0.2' })
    const a2 = await client(port, { localAddress: '127.0.0.2' })
    const a3 = await client(port, { localAddress: '127.0.0.2' })
    await a3.closed
    assert.equal(a3.got().length, 0, 'the third connection from 127.0.0.2 is closed unanswered')
    for (const c of [a1, a2]) {
      c.s.write(Buffer.from([5, 1, 0]))
      assert.deepEqual([...await c.waitFor(2)], [5, 0])
    }
    const b = await client(port, { localAddress: '127.0.0.3' })
    b.s.write(Buffer.from([5, 1, 0]))
    assert.deepEqual([...await b.waitFor(2)], [5, 0], 'another source still gets in')
    assert.equal(server?.stats.refused, 1)
  })
})
