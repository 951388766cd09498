/**
 * Event parsing, over the events a real tor sent on a private loopback network
 * (test/fixtures/tor/events-network.json: bootstrap, circuits, an onion upload, a stream to
 * that onion) and over hand-written lines for the edge cases.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fromHex, SeededRng } from '../../src/core/index.ts'
import { identityFromSeed, onionAddressFromPublicKey } from '../../src/crypto/index.ts'
import { parseEvent, parseReplies, TorControl } from '../../src/tor/control/index.ts'
import type { CircEvent, HsDescEvent, StatusEvent, StreamEvent, TorEvent } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'
import { loadFixture, ReplayTor, serverBytes } from '../fixtures/tor/transcript.ts'

const enc = (s: string): Uint8Array => Buffer.from(s, 'utf8')
const one = (line: string): TorEvent => parseEvent(parseReplies(enc(line))[0])

describe('tor control events', () => {
  it('parses every event of a real bootstrap + onion upload + stream run', () => {
    const fixture = loadFixture('events-network')
    const events = parseReplies(serverBytes(fixture)).filter(r => r.status === 650).map(parseEvent)
    assert.ok(events.length > 100, `${events.length} events`)
    const byType = (t: string): TorEvent[] => events.filter(e => e.type === t)

    const boot = byType('STATUS_CLIENT') as StatusEvent[]
    const progress = boot.flatMap(e => e.bootstrap !== undefined ? [e.bootstrap.progress] : [])
    assert.equal(progress[progress.length - 1], 100)
    assert.deepEqual([...progress].sort((a, b) => a - b), progress, 'bootstrap progress only grows')
    const done = boot.find(e => e.bootstrap?.progress === 100)
    assert.deepEqual(done?.bootstrap, { progress: 100, tag: 'done', summary: 'Done' })
    assert.equal(done?.severity, 'NOTICE')
    assert.ok(boot.some(e => e.action === 'CIRCUIT_ESTABLISHED' && e.bootstrap === undefined))
    assert.equal(boot.find(e => e.bootstrap?.progress === 5)?.bootstrap?.summary, 'Connecting to a relay', 'quoted SUMMARY is unquoted')

    const own = onionAddressFromPublicKey(identityFromSeed(new Uint8Array(32).map((_, i) => i + 1)).publicKey)
    const hs = byType('HS_DESC') as HsDescEvent[]
    const uploaded = hs.filter(e => e.action === 'UPLOADED')
    assert.ok(uploaded.length >= 2)
    for (const e of uploaded) {
      assert.equal(e.address, own)
      assert.match(e.hsDir, /^\$[0-9A-F]{40}~tn[a-z]+[0-9]$/)
      assert.equal(e.authType, 'UNKNOWN')
    }
    const upload = hs.find(e => e.action === 'UPLOAD')
    assert.match(upload?.descriptorId ?? '', /^[A-Za-z0-9+/]{43}$/)
    assert.match(upload?.hsDirIndex ?? '', /^[0-9A-F]{64}$/)
    assert.equal(hs.filter(e => e.action === 'CREATED').length, 2, 'one descriptor per time period')

    const circs = byType('CIRC') as CircEvent[]
    const built = circs.filter(e => e.status === 'BUILT')
    assert.ok(built.length > 0)
    assert.ok(built.every(e => e.path.length >= 1 && e.path.every(p => /^\$[0-9A-F]{40}(~\w+)?$/.test(p))))
    assert.ok(circs.some(e => e.purpose === 'HS_SERVICE_HSDIR' || e.purpose === 'HS_SERVICE_INTRO'))
    assert.ok(circs.some(e => e.buildFlags.includes('IS_INTERNAL')))
    const launched = circs.find(e => e.status === 'LAUNCHED')
    assert.deepEqual(launched?.path, [], 'LAUNCHED carries no path')

    const streams = byType('STREAM') as StreamEvent[]
    const toOnion = streams.filter(e => e.target === `${own}.onion:80`)
    assert.deepEqual(toOnion.map(e => e.status).filter(s => s === 'NEW' || s === 'SUCCEEDED'), ['NEW', 'SUCCEEDED'])
    assert.match(toOnion[0].sourceAddr ?? '', /^127\.0\.0\.1:\d+$/)
    assert.equal(toOnion[0].purpose, 'USER')
    assert.ok(streams.some(e => e.purpose === 'DIR_FETCH'))
  })

  it('delivers the same events through a replayed connection in wire order', async () => {
    const fixture = loadFixture('events-network')
    const tor = new ReplayTor(fixture, { rng: new SeededRng('events-chunks'), maxChunk: 400 })
    const control = new TorControl(tor.transport, { rng: new SeededRng(fixture.rngSeed) })
    const seen: TorEvent[] = []
    control.onEvent((e) => seen.push(e))
    await control.authenticate({ cookie: fromHex(fixture.cookieHex ?? '') })
    await control.setEvents(['STATUS_CLIENT', 'CIRC', 'HS_DESC', 'STREAM'])
    await control.setConf({ DisableNetwork: false })
    const addCmd = fixture.wire.flatMap(e => 'c' in e && e.c.startsWith('ADD_ONION') ? [e.c.trim()] : [])[0]
    const reply = await control.command(addCmd)
    assert.equal(reply.status, 250)
    await control.getInfoOne('net/listeners/socks')
    await control.setEvents([])
    await control.close()
    assert.deepEqual(tor.mismatches, [])
    const expected = parseReplies(serverBytes(fixture)).filter(r => r.status === 650).map(parseEvent)
    assert.deepEqual(seen, expected)
  })

  it('a real data event (650+NEWCONSENSUS) and a real data reply (ns/all) come through intact', async () => {
    const fixture = loadFixture('events-data')
    const tor = new ReplayTor(fixture, { rng: new SeededRng('data-chunks'), maxChunk: 9 })
    const control = new TorControl(tor.transport, { rng: new SeededRng(fixture.rngSeed) })
    await control.authenticate({ cookie: fromHex(fixture.cookieHex ?? '') })
    const info = await control.getInfo(['status/bootstrap-phase', 'status/circuit-established', 'ns/all'])
    assert.equal(info.get('status/bootstrap-phase'), 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"')
    assert.equal(info.get('status/circuit-established'), '1')
    const ns = info.get('ns/all') ?? ''
    assert.equal(ns.split('\n').filter(l => l.startsWith('r ')).length, 5, 'three authorities and two relays')
    // wait first: the event may arrive in the same chunk as the SETEVENTS reply
    const next = control.waitForEvent((e) => e.name === 'NEWCONSENSUS', { timeoutMs: 5_000 })
    await control.setEvents(['NEWCONSENSUS'])
    const consensus = await next
    assert.equal(consensus.type, 'RAW')
    assert.equal(consensus.lines[0].divider, '+')
    assert.equal(consensus.lines[0].data, ns, 'the event carries the same consensus as GETINFO ns/all')
    assert.equal(consensus.lines[1].text, 'OK')
    await control.setEvents([])
    await control.close()
    assert.deepEqual(tor.mismatches, [])
    assert.ok(tor.finished)
  })

  it('parses keyword arguments with escapes and positional paths in old $fp=nick form', () => {
    const ev = one('650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="say \\"hi\\"\\n" WARNING="no route" REASON=NOROUTE\r\n') as StatusEvent
    assert.deepEqual(ev.bootstrap, { progress: 10, tag: 'conn_done', summary: 'say "hi"\n', warning: 'no route', reason: 'NOROUTE' })
    const circ = one('650 CIRC 7 EXTENDED $AAAA=one,$BBBB~two PURPOSE=GENERAL\r\n') as CircEvent
    assert.deepEqual(circ.path, ['$AAAA=one', '$BBBB~two'])
    assert.equal(circ.purpose, 'GENERAL')
  })

  it('keeps unknown events raw, with multi-line and data lines intact', () => {
    const raw = one('650+NS\r\nr nick AAAA\r\n..s Running\r\n.\r\n650 OK\r\n')
    assert.equal(raw.type, 'RAW')
    assert.equal(raw.name, 'NS')
    assert.equal(raw.lines[0].data, 'r nick AAAA\n.s Running')
  })

  it('a typed event missing its fields is a TOR_CONTROL_PROTOCOL error, not a crash', () => {
    for (const bad of ['650 HS_DESC UPLOADED\r\n', '650 CIRC\r\n', '650 STREAM 1 NEW\r\n', '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=x\r\n', '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=101\r\n', '650 CIRC 1 BUILT PURPOSE="open\r\n', '650 lower case\r\n']) {
      assert.throws(() => one(bad), (e: unknown) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL', bad)
    }
  })

  it('a malformed event reaches listeners raw and the connection keeps answering', async () => {
    const wire = [
      { c: 'GETINFO version\r\n' },
      { s: '650 CIRC\r\n650 HS_DESC UPLOADED x\r\n250-version=0.4.9.11\r\n250 OK\r\n' }
    ]
    const tor = new ReplayTor({ description: '', recorded: 'synthetic', rngSeed: 'x', wire })
    const control = new TorControl(tor.transport)
    const seen: TorEvent[] = []
    control.onEvent((e) => seen.push(e))
    control.onEvent(() => { throw new Error('a broken listener') })
    assert.equal(await control.getInfoOne('version'), '0.4.9.11')
    assert.deepEqual(seen.map(e => [e.type, e.name]), [['RAW', 'CIRC'], ['RAW', 'HS_DESC']])
    await control.close()
  })
})
