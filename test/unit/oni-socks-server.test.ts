import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { FakeClock } from '../../src/core/index.ts'
import { createSocksServer, type SocksServer, type TorDialer } from '../../src/oni/socks-server.ts'
import { parseGreeting, parseRequest, parseUserPass } from '../../src/oni/socks-protocol.ts'
import { isOniError } from '../../src/oni/errors.ts'
import { TorError } from '../../src/tor/errors.ts'

const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion'

/** A socket that collects everything received, for byte-exact assertions. */
async function open (port: number): Promise<{ s: Socket, got: () => Buffer, waitFor: (n: number) => Promise<Buffer>, closed: Promise<void> }> {
  const s = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  let buf = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); for (const w of waiters.splice(0)) w() })
  s.on('error', () => {})
  const closed = new Promise<void>((resolve) => { s.once('close', () => { resolve(); for (const w of waiters.splice(0)) w() }) })
  const waitFor = async (n: number): Promise<Buffer> => {
    while (buf.length < n && !s.destroyed) await new Promise<void>((resolve) => waiters.push(resolve))
    return buf.subarray(0, n)
  }
  return { s, got: () => buf, waitFor, closed }
}

function connectRequest (host: string, port: number): Buffer {
  const name = Buffer.from(host)
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])])
}

describe('oni SOCKS5 server', () => {
  let echo: Server
  let echoPort: number
  let server: SocksServer | undefined
  let dialed: Array<{ host: string, port: number, isolation?: string }>

  beforeEach(async () => {
    dialed = []
    echo = createServer((s) => { s.on('error', () => {}); s.pipe(s) })
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
    echoPort = (echo.address() as { port: number }).port
  })
  afterEach(async () => {
    await server?.close()
    server = undefined
    await new Promise<void>((resolve) => echo.close(() => { resolve() }))
  })

  /** A dialer that stands in for tor: it records the request and connects to the echo server. */
  const echoDialer: TorDialer = async (opts) => {
    dialed.push({ host: opts.host, port: opts.port, isolation: opts.isolation })
    const s = connect(echoPort, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    return s
  }

  async function start (init: Partial<Parameters<typeof createSocksServer>[0]> = {}, dial: TorDialer = echoDialer, clock?: FakeClock): Promise<number> {
    server = createSocksServer({ torSocksPort: 9, ...init }, { dial, clock })
    await server.listen()
    return server.port
  }

  it('relays an onion CONNECT through the tor dialer, including data sent before the reply', async () => {
    const port = await start()
    const c = await open(port)
    c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest(ONION, 80), Buffer.from('early')]))
    const head = await c.waitFor(2 + 10 + 5)
    assert.deepEqual([...head.subarray(0, 2)], [5, 0])
    assert.deepEqual([...head.subarray(2, 4)], [5, 0])
    assert.equal(head.subarray(12).toString(), 'early')
    c.s.write('ping')
    assert.equal((await c.waitFor(21)).subarray(17).toString(), 'ping')
    assert.deepEqual(dialed, [{ host: ONION, port: 80, isolation: undefined }])
    assert.equal(server?.stats.open, 1)
    c.s.destroy()
  })

  it('turns RFC 1929 credentials into distinct tor isolation usernames', async () => {
    const port = await start()
    for (const user of ['browser', 'mail']) {
      const c = await open(port)
      const u = Buffer.from(user)
      c.s.write(Buffer.from([5, 1, 2]))
      assert.deepEqual([...await c.waitFor(2)], [5, 2])
      c.s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([2]), Buffer.from('pw')]))
      assert.deepEqual([...(await c.waitFor(4)).subarray(2)], [1, 0])
      c.s.write(connectRequest(ONION, 443))
      assert.equal((await c.waitFor(14))[5], 0)
      c.s.destroy()
    }
    assert.deepEqual(dialed.map(d => d.isolation), ['oni:browser:pw', 'oni:mail:pw'])
  })

  it('refuses a clearnet name with reply 0x02 and never dials or resolves it', async () => {
    const port = await start()
    const c = await open(port)
    c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest('example.com', 80)]))
    const r = await c.waitFor(12)
    assert.equal(r[3], 0x02)
    await c.closed
    assert.equal(dialed.length, 0)
    assert.equal(server?.stats.refused, 1)
  })

  it('passes clearnet names to tor as names when the policy says tor', async () => {
    const port = await start({ clearnet: (d) => d.port === 80 ? 'tor' : 'refuse' })
    const c = await open(port)
    c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest('Example.COM.', 80)]))
    assert.equal((await c.waitFor(12))[3], 0)
    assert.deepEqual(dialed, [{ host: 'example.com', port: 80, isolation: undefined }])
    const d = await open(port)
    d.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest('example.com', 25)]))
    assert.equal((await d.waitFor(12))[3], 0x02)
    c.s.destroy()
  })

  it("forwards tor's extended error code and maps other failures to 0x01 / timeouts to 0x04", async () => {
    const codes: Array<unknown> = [
      new TorError('TOR_SOCKS', 'descriptor not found', { socksReply: 0xf0 }),
      new TorError('TOR_SOCKS', 'tor not running'),
      new TorError('TOR_SOCKS_TIMEOUT', 'too slow')
    ]
    let i = 0
    const port = await start({}, async () => { throw codes[i++] })
    for (const expected of [0xf0, 0x01, 0x04]) {
      const c = await open(port)
      c.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest(ONION, 80)]))
      assert.equal((await c.waitFor(12))[3], expected)
      await c.closed
    }
    assert.equal(server?.stats.failed, 3)
  })

  it('answers BIND with 0x07 and an unknown address type with 0x08', async () => {
    const port = await start()
    const a = await open(port)
    a.s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80])]))
    assert.equal((await a.waitFor(12))[3], 0x07)
    const b = await open(port)
    b.s.write(Buffer.from([5, 1, 0, 5, 1, 0, 9, 1, 2, 3]))
    assert.equal((await b.waitFor(12))[3], 0x08)
    assert.equal(dialed.length, 0)
  })

  it('closes a client that does not finish the handshake before the deadline', async () => {
    const clock = new FakeClock()
    const port = await start({ handshakeTimeoutMs: 5000 }, echoDialer, clock)
    const c = await open(port)
    c.s.write(Buffer.from([5, 1]))
    await new Promise((resolve) => setImmediate(resolve))
    await clock.advance(5000)
    await c.closed
    assert.ok(c.s.destroyed)
  })

  it('closes a client that sends more than any handshake message can hold', async () => {
    const port = await start()
    const c = await open(port)
    c.s.write(Buffer.concat([Buffer.from([5, 1, 2, 1, 255]), Buffer.alloc(600, 0x61)]))
    await c.closed
    assert.equal(dialed.length, 0)
  })

  it('refuses no-auth when credentials are required', async () => {
    const port = await start({ requireCredentials: true })
    const c = await open(port)
    c.s.write(Buffer.from([5, 1, 0]))
    assert.deepEqual([...await c.waitFor(2)], [5, 0xff])
    await c.closed
  })

  it('closes clients beyond maxConnections at once, counting clients not upstream sockets', async () => {
    const port = await start({ maxConnections: 1 })
    const first = await open(port)
    first.s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectRequest(ONION, 80)]))
    assert.equal((await first.waitFor(12))[3], 0)
    const second = await open(port)
    await second.closed
    assert.equal(second.got().length, 0)
    assert.equal(server?.stats.refused, 1)
    first.s.destroy()
    await first.closed
    // The server sees the close a moment later; then the slot is free again.
    for (let i = 0; i < 100 && server?.stats.open !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    const third = await open(port)
    third.s.write(Buffer.from([5, 1, 0]))
    assert.deepEqual([...await third.waitFor(2)], [5, 0])
    third.s.destroy()
  })

  it('binds loopback only', () => {
    assert.throws(() => createSocksServer({ torSocksPort: 9, host: '0.0.0.0' }, { dial: echoDialer }), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'))
  })
})

describe('oni SOCKS5 parsers', () => {
  it('wait for more bytes, then parse', () => {
    assert.equal(parseGreeting(Uint8Array.of(5)), undefined)
    assert.equal(parseGreeting(Uint8Array.of(5, 2, 0)), undefined)
    assert.deepEqual(parseGreeting(Uint8Array.of(5, 2, 0, 2)), { value: [0, 2], used: 4 })
    assert.equal(parseUserPass(Uint8Array.of(1, 3, 97, 98)), undefined)
    assert.deepEqual(parseUserPass(Uint8Array.of(1, 1, 97, 0)), { value: { username: 'a', password: '' }, used: 4 })
    const ipv6 = parseRequest(Uint8Array.of(5, 1, 0, 4, 0xfd, 0x6f, ...new Array(13).fill(0), 1, 0, 80))
    assert.deepEqual(ipv6?.value, { command: 1, kind: 'ipv6', host: 'fd6f::1', port: 80 })
    assert.equal(parseRequest(Uint8Array.of(5, 1, 0, 1, 127, 0)), undefined)
  })

  it('reject malformed messages with typed errors', () => {
    for (const bad of [Uint8Array.of(4, 1, 0), Uint8Array.of(5, 0)]) assert.throws(() => parseGreeting(bad), (e) => isOniError(e, 'ONI_SOCKS_PROTOCOL'))
    assert.throws(() => parseUserPass(Uint8Array.of(2, 1, 97, 0)), (e) => isOniError(e, 'ONI_SOCKS_PROTOCOL'))
    assert.throws(() => parseRequest(Uint8Array.of(5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80)), (e) => isOniError(e, 'ONI_SOCKS_PROTOCOL'))
    assert.throws(() => parseRequest(Uint8Array.of(5, 1, 0, 1, 1, 2, 3, 4, 0, 0)), (e) => isOniError(e, 'ONI_SOCKS_PROTOCOL'))
  })
})
