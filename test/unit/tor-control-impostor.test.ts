/**
 * Something other than our tor listens on the control port (another local user's process, a
 * leftover from a test): whatever it claims in PROTOCOLINFO, it must learn nothing from us.
 * The impostor is a real TCP listener on 127.0.0.1 and we connect with attachTor, as the
 * daemon and the SDK do.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { toHex } from '../../src/core/index.ts'
import { attachTor } from '../../src/tor/attach.ts'
import { safeCookieServerHash } from '../../src/tor/control/auth.ts'
import { TorError } from '../../src/tor/errors.ts'

interface Impostor { port: number, received: () => string, close: () => Promise<void> }

/**
 * A fake tor: answers PROTOCOLINFO with `methods` and `cookieFile`, AUTHCHALLENGE with a
 * server hash made from `knownCookie` (random when it does not know the cookie) and every
 * AUTHENTICATE with 250 OK, as an impostor eager to be trusted would.
 */
async function impostor (methods: string, cookieFile?: string, knownCookie?: Uint8Array): Promise<Impostor> {
  let received = ''
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    let buf = ''
    s.on('data', (d: Buffer) => {
      received += d.toString('latin1')
      buf += d.toString('latin1')
      for (let i = buf.indexOf('\r\n'); i !== -1; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 2)
        if (line.startsWith('PROTOCOLINFO')) {
          const cookie = cookieFile !== undefined ? ` COOKIEFILE="${cookieFile}"` : ''
          s.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${methods}${cookie}\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`)
        } else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
          const clientNonce = Buffer.from(line.slice('AUTHCHALLENGE SAFECOOKIE '.length), 'hex')
          const serverNonce = new Uint8Array(32).fill(9)
          const hash = knownCookie !== undefined ? safeCookieServerHash(knownCookie, clientNonce, serverNonce) : new Uint8Array(32).fill(1)
          s.write(`250 AUTHCHALLENGE SERVERHASH=${toHex(hash)} SERVERNONCE=${toHex(serverNonce)}\r\n`)
        } else {
          s.write('250 OK\r\n')
        }
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

function authFailed (pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TorError, `expected a TorError, got ${String(err)}`)
    assert.equal(err.code, 'TOR_AUTH_FAILED')
    assert.match(err.message, pattern)
    return true
  }
}

describe('tor control: an impostor on the control port', () => {
  let dir: string
  let secretPath: string
  let secretHex: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-impostor-'))
    // Any 32-byte file this user can read: a key, a token, another program's cookie.
    secretPath = join(dir, 'secret.bin')
    const secret = new Uint8Array(32).map((_, i) => 0xa0 + i)
    await writeFile(secretPath, secret, { mode: 0o600 })
    secretHex = toHex(secret)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('COOKIE with a cookie file named only by the peer: refused, and the file\'s bytes are never sent', async () => {
    const imp = await impostor('COOKIE', secretPath)
    try {
      await assert.rejects(attachTor({ port: imp.port }), authFailed(/cookie/i))
      assert.ok(!imp.received().toLowerCase().includes(secretHex), 'the impostor received the file\'s bytes')
      assert.ok(!imp.received().includes('AUTHENTICATE'), 'nothing was sent as a proof')
    } finally {
      await imp.close()
    }
  })

  it('SAFECOOKIE with the peer\'s cookie path: an impostor that cannot prove it knows the cookie gets no proof', async () => {
    const imp = await impostor('COOKIE,SAFECOOKIE', secretPath)
    try {
      await assert.rejects(attachTor({ port: imp.port }), (err: unknown) => err instanceof TorError && err.code === 'TOR_AUTH_FAILED')
      assert.ok(!imp.received().toLowerCase().includes(secretHex))
      assert.ok(!/^AUTHENTICATE/m.test(imp.received()), 'no AUTHENTICATE after a bad SERVERHASH')
    } finally {
      await imp.close()
    }
  })

  it('NULL is refused unless asked for, with a message that says how to opt in; allowNullAuth accepts it', async () => {
    const imp = await impostor('NULL')
    try {
      await assert.rejects(attachTor({ port: imp.port }), authFailed(/allowNullAuth/))
      assert.ok(!imp.received().includes('AUTHENTICATE'), 'no AUTHENTICATE was sent')
      const control = await attachTor({ port: imp.port }, { allowNullAuth: true })
      assert.equal(control.authenticated, true)
      await control.close()
    } finally {
      await imp.close()
    }
  })

  it('COOKIE with a cookie file we configured is used (we chose to trust that tor)', async () => {
    const cookiePath = join(dir, 'configured_cookie')
    await writeFile(cookiePath, new Uint8Array(32).fill(0x5c), { mode: 0o600 })
    const imp = await impostor('COOKIE', secretPath)
    try {
      const control = await attachTor({ port: imp.port }, { cookiePath })
      assert.ok(imp.received().includes(`AUTHENTICATE ${'5c'.repeat(32)}\r\n`), 'the configured cookie, not the peer-named file')
      assert.ok(!imp.received().toLowerCase().includes(secretHex))
      await control.close()
    } finally {
      await imp.close()
    }
  })

  it('a FIFO named as the cookie file does not block authentication', { timeout: 10_000 }, async () => {
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    const imp = await impostor('COOKIE,SAFECOOKIE', fifo)
    try {
      await assert.rejects(attachTor({ port: imp.port }), (err: unknown) => err instanceof TorError && err.code === 'TOR_AUTH_FAILED')
    } finally {
      await imp.close()
    }
  })

  it('SAFECOOKIE with a tor that does know the cookie still works with the path it names', async () => {
    const cookie = new Uint8Array(32).fill(0x42)
    const cookiePath = join(dir, 'real_cookie')
    await writeFile(cookiePath, cookie, { mode: 0o600 })
    const tor = await impostor('COOKIE,SAFECOOKIE', cookiePath, cookie)
    try {
      const control = await attachTor({ port: tor.port })
      assert.equal(control.authenticated, true)
      assert.match(tor.received(), /^AUTHENTICATE [0-9a-f]{64}\r\n/m)
      assert.ok(!tor.received().includes(toHex(cookie)), 'the cookie itself never travels with SAFECOOKIE')
      await control.close()
    } finally {
      await tor.close()
    }
  })
})
