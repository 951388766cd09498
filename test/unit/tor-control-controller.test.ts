/**
 * Controller behaviour with a scripted in-memory tor: pipelining, per-command deadlines on a
 * fake clock, aborts that do not desynchronise the stream, closes mid-reply, protocol errors,
 * size limits, argument injection, cookie files.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { describe, it } from 'node:test'
import { FakeClock, isCodedError, SeededRng } from '../../src/core/index.ts'
import { connectTorControl, readCookieFile, TorControl } from '../../src/tor/control/index.ts'
import type { HsDescEvent, TorControlInit } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'

interface Scripted { control: TorControl, written: string[], push: (s: string) => void, hangUp: () => void, clock: FakeClock }

function scripted (init: TorControlInit = {}): Scripted {
  const written: string[] = []
  const transport = new Duplex({ read () {}, write (chunk: Buffer, _enc, cb) { written.push(chunk.toString('utf8')); cb() } })
  const clock = new FakeClock(0)
  const control = new TorControl(transport, { clock, commandTimeoutMs: 1_000, ...init })
  return { control, written, clock, push: (s) => { transport.push(Buffer.from(s, 'utf8')) }, hangUp: () => { transport.push(null) } }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

function code (c: string, status?: number) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TorError, `expected TorError ${c}, got ${String(err)}`)
    assert.equal(err.code, c)
    if (status !== undefined) assert.equal(err.status, status)
    return true
  }
}

describe('tor control: command queue', () => {
  it('pipelines commands and matches replies to them in order', async () => {
    const t = scripted()
    const a = t.control.getInfoOne('a')
    const b = t.control.getInfoOne('b')
    const c = t.control.getConf(['C'])
    await tick()
    assert.deepEqual(t.written, ['GETINFO a\r\n', 'GETINFO b\r\n', 'GETCONF C\r\n'], 'all three are on the wire before any reply')
    t.push('250-a=1\r\n250 OK\r\n250-b=2\r\n250 OK\r\n250 C=3\r\n')
    assert.equal(await a, '1')
    assert.equal(await b, '2')
    assert.deepEqual((await c).get('C'), ['3'])
    assert.equal(t.control.pendingCommands, 0)
  })

  it('a command past its deadline rejects TOR_CONTROL_TIMEOUT; its late reply is dropped, not given to the next', async () => {
    const t = scripted()
    const slow = t.control.getInfoOne('slow')
    const slowErr = assert.rejects(slow, code('TOR_CONTROL_TIMEOUT'))
    await t.clock.advance(999)
    assert.equal(t.control.pendingCommands, 1)
    await t.clock.advance(1)
    await slowErr
    const next = t.control.getInfoOne('next')
    t.push('250-slow=late\r\n250 OK\r\n')
    t.push('250-next=right\r\n250 OK\r\n')
    assert.equal(await next, 'right')
    assert.equal(t.control.pendingCommands, 0)
    assert.equal(t.clock.pending, 0, 'no timer is left behind')
  })

  it('an aborted command rejects CORE_ABORTED at once and its reply is still consumed', async () => {
    const t = scripted()
    const ac = new AbortController()
    const first = t.control.getInfoOne('first', { signal: ac.signal })
    const second = t.control.getInfoOne('second')
    ac.abort()
    await assert.rejects(first, (e: unknown) => isCodedError(e, 'CORE_ABORTED'))
    t.push('250-first=1\r\n250 OK\r\n250-second=2\r\n250 OK\r\n')
    assert.equal(await second, '2')
  })

  it('random aborts and timeouts among 400 pipelined commands never hand a reply to the wrong command', async () => {
    const seed = 'tor-control-fifo'
    const rng = new SeededRng(seed)
    const t = scripted({ commandTimeoutMs: 1_000 })
    const outcomes: Array<Promise<string>> = []
    const expected: string[] = []
    const sent: number[] = []
    for (let i = 0; i < 400; i++) {
      const ac = new AbortController()
      const fate = rng.int(4) // 0: abort, 1: short deadline, else answered
      const p = t.control.getInfoOne(`k${i}`, { signal: ac.signal, timeoutMs: fate === 1 ? 10 : 1_000 })
        .then((v) => v, (e: unknown) => isCodedError(e, 'CORE_ABORTED') ? 'aborted' : isCodedError(e, 'TOR_CONTROL_TIMEOUT') ? 'timeout' : `other ${String(e)}`)
      outcomes.push(p)
      expected.push(fate === 0 ? 'aborted' : fate === 1 ? 'timeout' : `v${i}`)
      if (fate === 0) ac.abort()
      sent.push(i)
    }
    await t.clock.advance(10) // the short deadlines pass before any reply
    // tor answers every command, in order, in random chunks
    let wire = ''
    for (const i of sent) wire += `250-k${i}=v${i}\r\n250 OK\r\n`
    for (let off = 0; off < wire.length;) {
      const n = 1 + rng.int(80)
      t.push(wire.slice(off, off + n))
      off += n
    }
    assert.deepEqual(await Promise.all(outcomes), expected, `seed ${seed}`)
    assert.equal(t.control.pendingCommands, 0)
  })

  it('a signal aborted before the call sends nothing', async () => {
    const t = scripted()
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(t.control.getInfoOne('x', { signal: ac.signal }), (e: unknown) => isCodedError(e, 'CORE_ABORTED'))
    await tick()
    assert.deepEqual(t.written, [])
  })

  it('per-call timeoutMs overrides the connection default', async () => {
    const t = scripted()
    const p = assert.rejects(t.control.getInfoOne('x', { timeoutMs: 50 }), code('TOR_CONTROL_TIMEOUT'))
    await t.clock.advance(50)
    await p
  })
})

describe('tor control: event subscriptions', () => {
  it('addEvents/removeEvents extend and shrink the subscription without interleaving', async () => {
    const t = scripted()
    const a = t.control.addEvents(['CIRC'])
    const b = t.control.addEvents(['HS_DESC', 'CIRC'])
    await tick()
    assert.deepEqual(t.written, ['SETEVENTS CIRC\r\n'], 'the second waits for the first to land')
    t.push('250 OK\r\n')
    await a
    await tick()
    assert.deepEqual(t.written.slice(1), ['SETEVENTS CIRC HS_DESC\r\n'])
    t.push('250 OK\r\n')
    await b
    assert.deepEqual(t.control.events, ['CIRC', 'HS_DESC'])
    await t.control.addEvents(['CIRC'])
    assert.equal(t.written.length, 2, 'nothing new to subscribe: nothing sent')
    const c = t.control.removeEvents(['CIRC'])
    await tick()
    t.push('552 Unrecognized event\r\n')
    await assert.rejects(c, code('TOR_COMMAND_FAILED', 552))
    assert.deepEqual(t.control.events, ['CIRC', 'HS_DESC'], 'a refused SETEVENTS leaves the subscription as it was')
    const d = t.control.removeEvents(['CIRC'])
    await tick()
    t.push('250 OK\r\n')
    await d
    assert.deepEqual(t.written.slice(2), ['SETEVENTS HS_DESC\r\n', 'SETEVENTS HS_DESC\r\n'])
    assert.deepEqual(t.control.events, ['HS_DESC'])
  })
})

describe('tor control: waiting for events', () => {
  it('waitForEvent resolves on the first match, times out on the clock, and rejects when the connection closes', async () => {
    const t = scripted()
    const up = t.control.waitForEvent((e): e is HsDescEvent => e.type === 'HS_DESC' && e.action === 'UPLOADED')
    t.push('650 HS_DESC UPLOAD abc UNKNOWN $AA~x\r\n650 HS_DESC UPLOADED abc UNKNOWN $BB~y\r\n')
    const ev = await up
    assert.equal(ev.hsDir, '$BB~y')

    const never = assert.rejects(t.control.waitForEvent(() => false, { timeoutMs: 500 }), code('TOR_CONTROL_TIMEOUT'))
    await t.clock.advance(500)
    await never

    const ac = new AbortController()
    const aborted = assert.rejects(t.control.waitForEvent(() => false, { signal: ac.signal }), (e: unknown) => isCodedError(e, 'CORE_ABORTED'))
    ac.abort()
    await aborted

    const closing = assert.rejects(t.control.waitForEvent(() => false), code('TOR_CONTROL_CLOSED'))
    t.hangUp()
    await closing
    assert.equal(t.clock.pending, 0, 'no timer is left behind')
  })
})

describe('tor control: closing and broken streams', () => {
  it('tor closing mid-reply rejects every pending command with TOR_CONTROL_CLOSED and fires onClose with the cause', async () => {
    const t = scripted()
    const closes: Array<Error | undefined> = []
    t.control.onClose((e) => closes.push(e))
    const a = t.control.getInfo(['version', 'config-text'])
    const b = t.control.getInfoOne('version')
    t.push('250-version=0.4.9.11\r\n250+config-text=\r\nSocksPort 0\r\n')
    t.hangUp()
    await assert.rejects(a, (e: unknown) => code('TOR_CONTROL_CLOSED')(e) && /middle of a reply/.test((e as Error).message))
    await assert.rejects(b, code('TOR_CONTROL_CLOSED'))
    assert.equal(closes.length, 1)
    assert.ok(closes[0] instanceof TorError && closes[0].code === 'TOR_CONTROL_CLOSED')
    assert.equal(t.control.closed, true)
    await assert.rejects(t.control.getInfoOne('version'), code('TOR_CONTROL_CLOSED'))
    assert.equal(t.clock.pending, 0)
  })

  it('close() rejects pending commands, fires onClose without an error, and is idempotent', async () => {
    const t = scripted()
    let closeArg: Error | undefined | 'not called' = 'not called'
    t.control.onClose((e) => { closeArg = e })
    const p = t.control.getInfoOne('version')
    await t.control.close()
    await t.control.close()
    await assert.rejects(p, code('TOR_CONTROL_CLOSED'))
    assert.equal(closeArg, undefined)
    let late: Error | undefined | 'not called' = 'not called'
    t.control.onClose((e) => { late = e })
    await tick()
    assert.equal(late, undefined, 'a listener added after close still hears about it')
  })

  it('a malformed reply fails the waiting command with TOR_CONTROL_PROTOCOL and drops the connection', async () => {
    const t = scripted()
    let closeErr: Error | undefined
    t.control.onClose((e) => { closeErr = e })
    const a = t.control.getInfoOne('a')
    const b = t.control.getInfoOne('b')
    t.push('25x OK\r\n')
    await assert.rejects(a, code('TOR_CONTROL_PROTOCOL'))
    await assert.rejects(b, code('TOR_CONTROL_CLOSED'))
    assert.ok(closeErr instanceof TorError && closeErr.code === 'TOR_CONTROL_CLOSED')
    assert.ok((closeErr.cause as TorError).code === 'TOR_CONTROL_PROTOCOL')
  })

  it('replies completed before a broken line in the same chunk still reach their commands', async () => {
    const t = scripted()
    const a = t.control.getInfoOne('a')
    const b = t.control.getInfoOne('b')
    t.push('250-a=1\r\n250 OK\r\nnot a reply line\r\n')
    assert.equal(await a, '1')
    await assert.rejects(b, code('TOR_CONTROL_PROTOCOL'))
    assert.equal(t.control.closed, true)
  })

  it('a reply nobody asked for is a protocol error', async () => {
    const t = scripted()
    const closed = new Promise<Error | undefined>((resolve) => { t.control.onClose(resolve) })
    t.push('250 OK\r\n')
    const err = await closed
    assert.ok(err instanceof TorError && (err.cause as TorError).code === 'TOR_CONTROL_PROTOCOL')
  })

  it('enforces the line and reply size limits', async () => {
    const t = scripted({ maxLineBytes: 100 })
    const a = t.control.getInfoOne('a')
    t.push('250-a=' + 'x'.repeat(200))
    await assert.rejects(a, code('TOR_CONTROL_PROTOCOL'))

    const u = scripted({ maxReplyBytes: 1_000 })
    const b = u.control.getInfoOne('config-text')
    u.push('250+config-text=\r\n')
    for (let i = 0; i < 100; i++) u.push('SocksPort 0\r\n')
    await assert.rejects(b, code('TOR_CONTROL_PROTOCOL'))
  })

  it('a truncated reply is never a hang: the command times out on the clock', async () => {
    const t = scripted()
    const a = assert.rejects(t.control.getInfoOne('a'), code('TOR_CONTROL_TIMEOUT'))
    t.push('250-a=1\r\n250 O')
    await t.clock.advance(1_000)
    await a
  })
})

describe('tor control: arguments', () => {
  it('rejects CR/LF/NUL injection in every argument with TOR_BAD_ARGUMENT and writes nothing', async () => {
    const t = scripted()
    const attempts: Array<() => Promise<unknown>> = [
      async () => await t.control.command('GETINFO version\r\nSIGNAL HALT'),
      async () => await t.control.getInfo(['version\nSIGNAL HALT']),
      async () => await t.control.getInfo(['a b']),
      async () => await t.control.getConf(['SocksPort\r\n']),
      async () => await t.control.setConf({ ContactInfo: 'x\r\nSIGNAL HALT' }),
      async () => await t.control.setConf({ 'Bad Key': 1 }),
      async () => await t.control.setEvents(['CIRC\r\nSIGNAL HALT']),
      async () => await t.control.delOnion('x\r\nSIGNAL HALT'),
      async () => await t.control.signal('HALT\r\n' as 'HALT'),
      async () => await t.control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80, target: '127.0.0.1:80\r\nSIGNAL HALT' }] }),
      async () => await t.control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80 }], clientAuthV3: ['a'.repeat(52) + '\n'] })
    ]
    for (const [i, attempt] of attempts.entries()) {
      await assert.rejects(attempt(), code('TOR_BAD_ARGUMENT'), `attempt ${i}`)
    }
    await tick()
    assert.deepEqual(t.written, [])
  })

  it('a password with CR/LF never reaches the wire', async () => {
    const t = scripted()
    const p = t.control.authenticate({ password: 'pw\r\nSIGNAL HALT' })
    await tick()
    t.push('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=HASHEDPASSWORD\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n')
    await assert.rejects(p, code('TOR_BAD_ARGUMENT'))
    assert.deepEqual(t.written, ['PROTOCOLINFO 1\r\n'])
  })

  it('a refused SAFECOOKIE challenge is TOR_AUTH_FAILED with tor\'s status; a second authenticate() after success sends nothing', async () => {
    const t = scripted()
    const p = t.control.authenticate({ cookie: new Uint8Array(32) })
    await tick()
    t.push('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=SAFECOOKIE\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n')
    for (let i = 0; i < 10 && t.written.length < 2; i++) await tick()
    assert.match(t.written[1], /^AUTHCHALLENGE SAFECOOKIE [0-9a-f]{64}\r\n$/)
    t.push('513 Invalid base16 client nonce\r\n')
    await assert.rejects(p, code('TOR_AUTH_FAILED', 513))

    const u = scripted()
    const q = u.control.authenticate({ allowNullAuth: true })
    await tick()
    u.push('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n')
    for (let i = 0; i < 10 && u.written.length < 2; i++) await tick()
    u.push('250 OK\r\n')
    await q
    await u.control.authenticate()
    assert.deepEqual(u.written, ['PROTOCOLINFO 1\r\n', 'AUTHENTICATE\r\n'])
  })

  it('refuses an auth method tor does not offer, and says which it offers', async () => {
    const t = scripted()
    const p = t.control.authenticate({ method: 'SAFECOOKIE' })
    await tick()
    t.push('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n')
    await assert.rejects(p, (e: unknown) => code('TOR_AUTH_FAILED')(e) && /offers NULL/.test((e as Error).message))
  })
})

describe('tor control: cookie files and connecting', () => {
  it('reads a 32-byte cookie and refuses other sizes or a missing file with TOR_AUTH_COOKIE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-cookie-'))
    try {
      const good = join(dir, 'good')
      await writeFile(good, new Uint8Array(32).fill(7), { mode: 0o600 })
      assert.deepEqual(await readCookieFile(good), new Uint8Array(32).fill(7))
      const short = join(dir, 'short')
      await writeFile(short, new Uint8Array(31), { mode: 0o600 })
      await assert.rejects(readCookieFile(short), code('TOR_AUTH_COOKIE'))
      const long = join(dir, 'long')
      await writeFile(long, new Uint8Array(4096), { mode: 0o600 })
      await assert.rejects(readCookieFile(long), code('TOR_AUTH_COOKIE'))
      await assert.rejects(readCookieFile(join(dir, 'missing')), code('TOR_AUTH_COOKIE'))
      await assert.rejects(readCookieFile(dir), code('TOR_AUTH_COOKIE'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('COOKIE uses the cookie file we configured (cookiePath), not the one PROTOCOLINFO names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-cookie-'))
    try {
      const path = join(dir, 'control_auth_cookie')
      await writeFile(path, new Uint8Array(32).fill(0xab), { mode: 0o600 })
      const named = join(dir, 'named_by_peer')
      await writeFile(named, new Uint8Array(32).fill(0xcd), { mode: 0o600 })
      const t = scripted()
      const p = t.control.authenticate({ cookiePath: path })
      await tick()
      t.push(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE COOKIEFILE="${named}"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`)
      for (let i = 0; i < 400 && t.written.length < 2; i++) await new Promise(resolve => setTimeout(resolve, 5))
      assert.equal(t.written[1], `AUTHENTICATE ${'ab'.repeat(32)}\r\n`)
      t.push('250 OK\r\n')
      await p
      assert.equal(t.control.authenticated, true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('connectTorControl: nothing listening is TOR_CONTROL_CONNECT; a listener gets a working connection', async () => {
    const server = createServer((s) => {
      s.on('data', (d) => { if (d.toString() === 'GETINFO version\r\n') s.write('250-version=9.9\r\n250 OK\r\n') })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const control = await connectTorControl({ port })
      assert.equal(await control.getInfoOne('version'), '9.9')
      await control.close()
    } finally {
      await new Promise(resolve => server.close(resolve))
    }
    await assert.rejects(connectTorControl({ port }), code('TOR_CONTROL_CONNECT'))
    await assert.rejects(connectTorControl({ port: 0 }), code('TOR_BAD_ARGUMENT'))
  })

  it('a TCP reset rejects pending commands with TOR_CONTROL_CLOSED carrying the socket error', async () => {
    const server = createServer((s) => { s.once('data', () => { s.resetAndDestroy() }) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const control = await connectTorControl({ port: (server.address() as { port: number }).port })
      const closed = new Promise<Error | undefined>((resolve) => { control.onClose(resolve) })
      await assert.rejects(control.getInfoOne('version'), (e: unknown) => code('TOR_CONTROL_CLOSED')(e) && (e as Error).cause instanceof Error)
      assert.ok((await closed) instanceof TorError)
    } finally {
      await new Promise(resolve => server.close(resolve))
    }
  })

  it('connectTorControl over a unix socket; the server hanging up rejects pending commands', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-ctl-'))
    const path = join(dir, 'control.sock')
    const server = createServer((s) => { s.once('data', () => { s.destroy() }) })
    await new Promise<void>(resolve => server.listen(path, resolve))
    try {
      const control = await connectTorControl({ path })
      const closed = new Promise<Error | undefined>((resolve) => { control.onClose(resolve) })
      await assert.rejects(control.getInfoOne('version'), code('TOR_CONTROL_CLOSED'))
      assert.ok((await closed) instanceof TorError)
    } finally {
      await new Promise(resolve => server.close(resolve))
      await rm(dir, { recursive: true, force: true })
    }
    await assert.rejects(connectTorControl({ path }), code('TOR_CONTROL_CONNECT'))
  })
})
