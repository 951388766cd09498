/**
 * The SOCKS5 client against a scripted SOCKS server on 127.0.0.1 (what tor's SocksPort
 * answers, byte for byte).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { connectRequest, socksConnect, TorError } from '../../src/tor/index.ts'

type Script = (conn: Conn) => Promise<void>

/** Server side of one connection: exact reads over a buffered socket. */
class Conn {
  private buf = Buffer.alloc(0)
  private waiter?: () => void
  readonly socket: Socket
  constructor (socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.waiter?.() })
    socket.on('error', () => {})
  }

  async read (n: number): Promise<Buffer> {
    while (this.buf.length < n) await new Promise<void>((resolve) => { this.waiter = resolve })
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return out
  }

  /** Reads a greeting, answers with the method offered, handles user/pass; returns the username. */
  async handshake (): Promise<string | undefined> {
    const [ver, n] = await this.read(2)
    assert.equal(ver, 5)
    const methods = await this.read(n)
    this.socket.write(Uint8Array.of(5, methods[0]))
    if (methods[0] !== 2) return undefined
    const [, ulen] = await this.read(2)
    const user = (await this.read(ulen)).toString()
    const [plen] = await this.read(1)
    await this.read(plen)
    this.socket.write(Uint8Array.of(1, 0))
    return user
  }

  /** Reads a CONNECT request; returns [host, port]. */
  async request (): Promise<[string, number]> {
    const [, cmd, , atyp] = await this.read(4)
    assert.equal(cmd, 1)
    let host: string
    if (atyp === 3) host = (await this.read((await this.read(1))[0])).toString()
    else if (atyp === 1) host = [...await this.read(4)].join('.')
    else host = (await this.read(16)).toString('hex')
    const p = await this.read(2)
    return [host, p.readUInt16BE(0)]
  }

  reply (code: number, extra?: Uint8Array): void {
    const r = Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0])
    this.socket.write(extra === undefined ? r : Buffer.concat([r, extra]))
  }
}

describe('socksConnect', () => {
  let server: Server
  let port: number
  let script: Script = async () => {}
  let connections = 0

  before(async () => {
    server = createServer((s) => { connections++; void script(new Conn(s)).catch(() => { s.destroy() }) })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    port = (server.address() as { port: number }).port
  })
  after(async () => { await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })

  const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion'

  it('sends a hostname CONNECT and leaves bytes that follow the reply in the socket', async () => {
    let seen: [string, number] | undefined
    script = async (c) => {
      assert.equal(await c.handshake(), undefined)
      seen = await c.request()
      c.reply(0, Buffer.from('HELLO'))
    }
    const socket = await socksConnect({ socksPort: port, host: ONION, port: 80 })
    try {
      assert.deepEqual(seen, [ONION, 80])
      const first = await new Promise<Buffer>((resolve) => { socket.once('data', resolve) })
      assert.equal(first.toString(), 'HELLO')
    } finally {
      socket.destroy()
    }
  })

  it('sends the isolation string as the SOCKS username', async () => {
    let user: string | undefined
    script = async (c) => { user = await c.handshake(); await c.request(); c.reply(0) }
    const socket = await socksConnect({ socksPort: port, host: ONION, port: 80, isolation: 'peer-42' })
    socket.destroy()
    assert.equal(user, 'peer-42')
  })

  it('retries 0xF0 (descriptor not found) and succeeds when the descriptor appears', async () => {
    connections = 0
    let calls = 0
    script = async (c) => { await c.handshake(); await c.request(); c.reply(calls++ === 0 ? 0xf0 : 0) }
    const socket = await socksConnect({ socksPort: port, host: ONION, port: 80, retries: 2 })
    socket.destroy()
    assert.equal(connections, 2)
  })

  it('does not retry other tor errors and names them: 0xF2 introduction failed', async () => {
    connections = 0
    script = async (c) => { await c.handshake(); await c.request(); c.reply(0xf2) }
    await assert.rejects(socksConnect({ socksPort: port, host: ONION, port: 80, retries: 3 }), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.code, 'TOR_SOCKS')
      assert.equal(err.socksReply, 0xf2)
      assert.match(err.message, /introduction failed/)
      return true
    })
    assert.equal(connections, 1)
  })

  it('gives up on 0xF0 after the retries with the last reply kept', async () => {
    connections = 0
    script = async (c) => { await c.handshake(); await c.request(); c.reply(0xf0) }
    await assert.rejects(socksConnect({ socksPort: port, host: ONION, port: 80, retries: 1 }), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.socksReply, 0xf0)
      return true
    })
    assert.equal(connections, 2)
  })

  it('times out with TOR_SOCKS_TIMEOUT when tor never answers', async () => {
    script = async (c) => { await c.handshake(); await c.request() }
    await assert.rejects(socksConnect({ socksPort: port, host: ONION, port: 80, timeoutMs: 150 }), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.code, 'TOR_SOCKS_TIMEOUT')
      return true
    })
  })

  it('rejects with CORE_ABORTED when the caller aborts', async () => {
    script = async (c) => { await c.handshake() }
    const ac = new AbortController()
    const p = socksConnect({ socksPort: port, host: ONION, port: 80, signal: ac.signal })
    setImmediate(() => { ac.abort() })
    await assert.rejects(p, { code: 'CORE_ABORTED' })
  })

  it('reports a reply cut short as TOR_SOCKS, not a hang', async () => {
    script = async (c) => { await c.handshake(); await c.request(); c.socket.end(Uint8Array.of(5, 0, 0)) }
    await assert.rejects(socksConnect({ socksPort: port, host: ONION, port: 80, timeoutMs: 2_000 }), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.code, 'TOR_SOCKS')
      assert.match(err.message, /closed/)
      return true
    })
  })

  it('says tor is not reachable when nothing listens on the SOCKS port', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => { closed.listen(0, '127.0.0.1', resolve) })
    const deadPort = (closed.address() as { port: number }).port
    await new Promise<void>((resolve) => { closed.close(() => { resolve() }) })
    await assert.rejects(socksConnect({ socksPort: deadPort, host: ONION, port: 80 }), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.code, 'TOR_SOCKS')
      assert.match(err.message, /could not reach tor's SOCKS port/)
      return true
    })
  })

  it('refuses bad ports and oversized hosts before connecting', async () => {
    await assert.rejects(socksConnect({ socksPort: port, host: ONION, port: 0 }), { code: 'TOR_SOCKS' })
    await assert.rejects(socksConnect({ socksPort: 70000, host: ONION, port: 80 }), { code: 'TOR_SOCKS' })
    await assert.rejects(socksConnect({ socksPort: port, host: 'a'.repeat(256), port: 80 }), { code: 'TOR_SOCKS' })
  })
})

describe('connectRequest', () => {
  it('encodes IPv4, IPv6 and hostnames with the port in network order', () => {
    assert.deepEqual([...connectRequest('127.0.0.1', 0x1f90)], [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90])
    assert.deepEqual([...connectRequest('::1', 80)], [5, 1, 0, 4, ...new Array<number>(15).fill(0), 1, 0, 80])
    assert.deepEqual([...connectRequest('[2001:db8::2]', 80)].slice(4, 20), [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 2])
    assert.deepEqual([...connectRequest('ab.onion', 443)], [5, 1, 0, 3, 8, ...Buffer.from('ab.onion'), 1, 0xbb])
  })
})
