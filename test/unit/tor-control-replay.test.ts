/**
 * The controller against recorded tor transcripts (test/fixtures/tor/*.json): the replaying
 * tor checks that every byte we send matches what real tor received, and we assert what the
 * typed calls made of real tor's replies.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fromHex, SeededRng } from '../../src/core/index.ts'
import { identityFromSeed, onionAddressFromPublicKey, torKeyBlob } from '../../src/crypto/index.ts'
import { TorControl } from '../../src/tor/control/index.ts'
import type { TorControlInit, TorEvent } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'
import type { Fixture } from '../fixtures/tor/transcript.ts'
import { loadFixture, ReplayTor } from '../fixtures/tor/transcript.ts'

function replay (name: string, init: TorControlInit = {}, chunkRng?: SeededRng): { control: TorControl, tor: ReplayTor, fixture: Fixture } {
  const fixture = loadFixture(name)
  const tor = new ReplayTor(fixture, chunkRng !== undefined ? { rng: chunkRng, maxChunk: 5 } : {})
  const control = new TorControl(tor.transport, { rng: new SeededRng(fixture.rngSeed), commandTimeoutMs: 5_000, ...init })
  return { control, tor, fixture }
}

function cookieOf (fixture: Fixture): Uint8Array {
  assert.ok(fixture.cookieHex !== undefined)
  return fromHex(fixture.cookieHex)
}

function failsWith (code: string, status?: number) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TorError, `expected a TorError, got ${String(err)}`)
    assert.equal(err.code, code)
    if (status !== undefined) assert.equal(err.status, status)
    return true
  }
}

async function finish (control: TorControl, tor: ReplayTor): Promise<void> {
  await control.close()
  assert.deepEqual(tor.mismatches, [])
  assert.ok(tor.finished, 'the whole transcript was replayed')
}

describe('tor control against recorded transcripts', () => {
  it('SAFECOOKIE: sends the recorded HMAC proof, checks tor\'s server hash, reads GETINFO values', async () => {
    const { control, tor, fixture } = replay('auth-safecookie-getinfo')
    await control.authenticate({ cookie: cookieOf(fixture) })
    assert.equal(control.authenticated, true)
    const info = await control.protocolInfo()
    assert.deepEqual(info.authMethods, ['COOKIE', 'SAFECOOKIE'])
    assert.match(info.cookieFile ?? '', /control_auth_cookie$/)
    assert.equal(info.torVersion, '0.4.9.11')
    assert.equal(info.protocolVersion, 1)
    assert.equal((await control.getInfo(['version'])).get('version'), '0.4.9.11')
    const many = await control.getInfo(['version', 'config-text', 'net/listeners/control'])
    assert.equal(many.get('version'), '0.4.9.11')
    const configText = many.get('config-text') ?? ''
    assert.match(configText, /^ControlPort 127\.0\.0\.1:auto\n/)
    assert.match(configText, /\nDisableNetwork 1\n/)
    assert.ok(!configText.includes('\r'), 'data lines are joined with \\n')
    assert.match(many.get('net/listeners/control') ?? '', /^127\.0\.0\.1:\d+$/, 'quoted value is unquoted')
    assert.deepEqual(await control.listOnions('current'), [])
    const unknown = await control.command('GETINFO no-such-key')
    assert.equal(unknown.status, 552)
    await finish(control, tor)
  })

  it('replays the same transcript cut into random 1-5 byte chunks', async () => {
    for (const seed of [1, 2, 3]) {
      const { control, tor, fixture } = replay('auth-safecookie-getinfo', {}, new SeededRng(`chunks-${seed}`))
      await control.authenticate({ cookie: cookieOf(fixture) })
      assert.equal(await control.getInfoOne('version'), '0.4.9.11')
      const many = await control.getInfo(['version', 'config-text', 'net/listeners/control'])
      assert.match(many.get('config-text') ?? '', /SocksPort 0$/)
      await control.listOnions('current')
      await control.command('GETINFO no-such-key')
      await finish(control, tor)
    }
  })

  it('SAFECOOKIE with the wrong cookie: refuses tor\'s server hash and never sends AUTHENTICATE', async () => {
    const fixture = loadFixture('auth-safecookie-getinfo')
    const tor = new ReplayTor(fixture)
    const sent: string[] = []
    const wrong = new Uint8Array(32).fill(1)
    const c2 = new TorControl(tor.transport, { rng: new SeededRng(fixture.rngSeed), onWire: (d, b) => { if (d === 'send') sent.push(Buffer.from(b).toString()) } })
    await assert.rejects(c2.authenticate({ cookie: wrong }), failsWith('TOR_AUTH_FAILED'))
    assert.equal(sent.length, 2)
    assert.ok(sent.every(s => !s.startsWith('AUTHENTICATE')), 'no proof was sent to a tor that failed its own proof')
    assert.equal(c2.closed, true)
  })

  it('COOKIE (forced): sends the cookie in hex; TAKEOWNERSHIP/DROPOWNERSHIP; SIGNAL ok, unknown signal is 552', async () => {
    const { control, tor, fixture } = replay('auth-cookie')
    await control.authenticate({ method: 'COOKIE', cookie: cookieOf(fixture) })
    await control.takeOwnership()
    await control.dropOwnership()
    await control.signal('HEARTBEAT')
    await assert.rejects(control.signal('NOSUCHSIGNAL' as 'HEARTBEAT'), failsWith('TOR_COMMAND_FAILED', 552))
    await finish(control, tor)
  })

  it('a wrong cookie: 515 maps to TOR_AUTH_FAILED, then tor closes the connection', async () => {
    const { control, tor } = replay('auth-bad-cookie')
    const closed = new Promise<Error | undefined>((resolve) => { control.onClose(resolve) })
    await assert.rejects(control.authenticate({ method: 'COOKIE', cookie: new Uint8Array(32) }), failsWith('TOR_AUTH_FAILED', 515))
    const err = await closed
    assert.ok(err instanceof TorError && err.code === 'TOR_CONTROL_CLOSED')
    await assert.rejects(control.getInfo(['version']), failsWith('TOR_CONTROL_CLOSED'))
    assert.deepEqual(tor.mismatches, [])
  })

  it('HASHEDPASSWORD: quotes the password; a wrong one is 515', async () => {
    const ok = replay('auth-password')
    assert.equal(ok.fixture.password, 'correct horse')
    await ok.control.authenticate({ password: 'correct horse' })
    assert.deepEqual((await ok.control.protocolInfo()).authMethods, ['HASHEDPASSWORD'])
    assert.equal(await ok.control.getInfoOne('version'), '0.4.9.11')
    await finish(ok.control, ok.tor)

    const bad = replay('auth-password-wrong')
    await assert.rejects(bad.control.authenticate({ password: 'wrong "one"' }), failsWith('TOR_AUTH_FAILED', 515))
    assert.deepEqual(bad.tor.mismatches, [])
  })

  it('HASHEDPASSWORD without a password: a clear TOR_AUTH_FAILED before anything is sent', async () => {
    const { control } = replay('auth-password')
    await assert.rejects(control.authenticate(), (err: unknown) => err instanceof TorError && err.code === 'TOR_AUTH_FAILED' && /password/.test(err.message))
    await control.close()
  })

  it('NULL authentication (opted in) and TAKEOWNERSHIP', async () => {
    const { control, tor } = replay('auth-null')
    await control.authenticate({ allowNullAuth: true })
    assert.deepEqual((await control.protocolInfo()).authMethods, ['NULL'])
    assert.equal(await control.getInfoOne('version'), '0.4.9.11')
    await control.takeOwnership()
    await finish(control, tor)
  })

  it('a command before authenticating: 514, then the pending state ends with TOR_CONTROL_CLOSED', async () => {
    const { control, tor } = replay('preauth-command')
    const reply = await control.command('GETINFO version')
    assert.equal(reply.status, 514)
    await new Promise<void>((resolve) => { control.onClose(() => { resolve() }) })
    assert.equal(control.closed, true)
    assert.deepEqual(tor.mismatches, [])
  })

  it('GETCONF/SETCONF/RESETCONF: repeated and unset values, quoting round trip, 552 and 513 errors', async () => {
    const { control, tor, fixture } = replay('conf')
    await control.authenticate({ cookie: cookieOf(fixture) })
    const conf = await control.getConf(['SocksPort', 'ControlPort', 'ContactInfo', 'CookieAuthentication'])
    assert.deepEqual([...conf.entries()], [['SocksPort', ['0']], ['ControlPort', ['127.0.0.1:auto']], ['ContactInfo', []], ['CookieAuthentication', ['1']]])
    await control.setConf({ ContactInfo: 'oht "test" \\ node', ExitPolicy: ['accept 127.0.0.1:80', 'reject *:*'] })
    const after = await control.getConf(['ContactInfo', 'ExitPolicy'])
    assert.deepEqual(after.get('ContactInfo'), ['oht "test" \\ node'])
    assert.deepEqual(after.get('ExitPolicy'), ['accept 127.0.0.1:80', 'reject *:*'])
    await assert.rejects(control.setConf({ NoSuchOption: 1 }), failsWith('TOR_COMMAND_FAILED', 552))
    await assert.rejects(control.setConf({ CircuitBuildTimeout: 'soon' }), failsWith('TOR_COMMAND_FAILED', 513))
    await assert.rejects(control.getConf(['NoSuchOption']), failsWith('TOR_COMMAND_FAILED', 552))
    await control.resetConf(['ContactInfo', 'ExitPolicy'])
    await control.setConf({ ContactInfo: null })
    assert.deepEqual((await control.getConf(['ContactInfo'])).get('ContactInfo'), [])
    await finish(control, tor)
  })

  it('ADD_ONION with every option, onion lists, and tor\'s 550 / 551 / 512 / 552 errors', async () => {
    const { control, tor, fixture } = replay('onions')
    await control.authenticate({ cookie: cookieOf(fixture) })
    const identity = identityFromSeed(fromHex(fixture.seedHex ?? ''))

    const fresh = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }, { virtualPort: 81, target: 'unix:/tmp/oht-fixture.sock' }] })
    assert.match(fresh.serviceId, /^[a-z2-7]{56}$/)
    assert.match(fresh.privateKey ?? '', /^ED25519-V3:[A-Za-z0-9+/]{86}==$/)

    const own = await control.addOnion({ key: { type: 'ED25519-V3', blob: torKeyBlob(identity) }, ports: [{ virtualPort: 443 }], maxStreams: 5, maxStreamsCloseCircuit: true })
    assert.equal(own.serviceId, onionAddressFromPublicKey(identity.publicKey), 'tor derives the address we derive')
    assert.equal(own.privateKey, undefined, 'no key is returned for a supplied key')

    const detached = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80, target: '8080' }], discardPK: true, detach: true })
    assert.equal(detached.privateKey, undefined, 'DiscardPK')

    const authKey = fixture.wire.flatMap(e => 'c' in e ? [/ClientAuthV3=([a-z2-7]{52})/.exec(e.c)?.[1]] : []).find(k => k !== undefined)
    assert.ok(authKey !== undefined)
    const authed = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80 }], discardPK: true, clientAuthV3: [authKey] })
    assert.deepEqual(authed.clientAuthV3, [authKey])

    const pow = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80 }], discardPK: true, powDefenses: { enabled: true, queueRate: 50, queueBurst: 100 } })

    assert.deepEqual(await control.listOnions('current'), [fresh.serviceId, own.serviceId, authed.serviceId, pow.serviceId])
    assert.deepEqual(await control.listOnions('detached'), [detached.serviceId])

    await assert.rejects(control.addOnion({ key: { type: 'ED25519-V3', blob: torKeyBlob(identity) }, ports: [{ virtualPort: 443 }] }), failsWith('TOR_COMMAND_FAILED', 550))
    assert.equal((await control.command('ADD_ONION ED25519-V3:' + 'A'.repeat(86) + '== Port=80')).status, 551)
    assert.equal((await control.command('ADD_ONION ED25519-V3:bm90IGEga2V5 Port=80')).status, 512)
    await control.delOnion(own.serviceId)
    await assert.rejects(control.delOnion(own.serviceId), failsWith('TOR_COMMAND_FAILED', 552))
    assert.equal((await control.command('ADD_ONION NEW:ED25519-V3 Port=0')).status, 512)

    const clientKey = Buffer.alloc(32, 0x41).toString('base64')
    assert.equal(await control.onionClientAuthAdd(own.serviceId, clientKey, { nickname: 'alice' }), 250)
    assert.equal(await control.onionClientAuthAdd(own.serviceId, clientKey), 251, 'replaced')
    assert.equal(await control.onionClientAuthRemove(`${own.serviceId}.onion`), 250)
    assert.equal(await control.onionClientAuthRemove(own.serviceId), 251, 'nothing left to remove')
    assert.equal((await control.command(`ONION_CLIENT_AUTH_ADD ${own.serviceId} x25519:bm90IGEga2V5`)).status, 512)
    await finish(control, tor)
  })

  it('events: 552 for an unknown event, multi-line CONF_CHANGED and SIGNAL delivered between replies', async () => {
    const { control, tor, fixture } = replay('events-offline')
    await control.authenticate({ cookie: cookieOf(fixture) })
    const events: TorEvent[] = []
    control.onEvent((e) => events.push(e))
    await assert.rejects(control.setEvents(['NOSUCHEVENT']), failsWith('TOR_COMMAND_FAILED', 552))
    await control.setEvents(['CONF_CHANGED', 'SIGNAL'])
    await control.setConf({ ContactInfo: 'first', ExitPolicy: ['accept 127.0.0.1:22', 'reject *:*'] })
    await control.signal('NEWNYM')
    await control.signal('CLEARDNSCACHE')
    await control.setConf({ ContactInfo: null, ExitPolicy: null })
    await control.setEvents([])
    await finish(control, tor)
    assert.deepEqual(events.map(e => [e.type, e.name]), [['RAW', 'CONF_CHANGED'], ['RAW', 'SIGNAL'], ['RAW', 'CONF_CHANGED']])
    const first = events[0]
    assert.deepEqual(first.lines.map(l => l.text), ['CONF_CHANGED', 'ContactInfo=first', 'ExitPolicy=accept 127.0.0.1:22', 'ExitPolicy=reject *:*', 'OK'])
    assert.equal(events[1].type === 'RAW' && events[1].body, 'CLEARDNSCACHE')
  })
})
