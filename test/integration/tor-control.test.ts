/**
 * The control client against a real tor (DisableNetwork 1: it never touches any network; the
 * control port listens on 127.0.0.1 only). One tor for the file, killed by PID afterwards.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { systemClock } from '../../src/core/index.ts'
import { deriveChildSeed, identityFromSeed, onionAddressFromPublicKey, torKeyBlob } from '../../src/crypto/index.ts'
import { connectTorControl } from '../../src/tor/control/index.ts'
import type { TorControl, TorEvent } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'

let dir = ''
let tor: ChildProcess | undefined
let controlPort = 0
const opened: TorControl[] = []

async function open (): Promise<TorControl> {
  const c = await connectTorControl({ port: controlPort }, { commandTimeoutMs: 10_000 })
  opened.push(c)
  return c
}

function failsWith (code: string, status?: number) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TorError, `expected TorError ${code}, got ${String(err)}`)
    assert.equal(err.code, code)
    if (status !== undefined) assert.equal(err.status, status)
    return true
  }
}

describe('tor control with a real tor', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-tor-control-'))
    await writeFile(join(dir, 'torrc'), '', { mode: 0o600 })
    tor = spawn('tor', ['-f', join(dir, 'torrc'), '--DataDirectory', join(dir, 'data'), '--SocksPort', '0',
      '--ControlPort', '127.0.0.1:auto', '--ControlPortWriteToFile', join(dir, 'control-port'),
      '--CookieAuthentication', '1', '--DisableNetwork', '1', '--GeoIPFile', '', '--GeoIPv6File', '',
      '--__OwningControllerProcess', String(process.pid), '--Log', `notice file ${join(dir, 'notice.log')}`], { stdio: 'ignore' })
    for (let i = 0; ; i++) {
      const m = /PORT=127\.0\.0\.1:(\d+)/.exec(await readFile(join(dir, 'control-port'), 'utf8').catch(() => ''))
      if (m != null) { controlPort = Number(m[1]); break }
      if (tor.exitCode !== null || i > 300) throw new Error(`tor did not open its control port: ${await readFile(join(dir, 'notice.log'), 'utf8').catch(() => '')}`)
      await systemClock.sleep(50)
    }
  })

  after(async () => {
    for (const c of opened) await c.close()
    if (tor?.pid !== undefined && tor.exitCode === null && tor.signalCode === null) {
      const exited = new Promise(resolve => tor?.once('exit', resolve))
      process.kill(tor.pid, 'SIGKILL')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('SAFECOOKIE, GETINFO version, ADD_ONION with our own key gives our address, DEL_ONION twice → 552', async () => {
    const control = await open()
    const info = await control.protocolInfo()
    assert.ok(info.authMethods.includes('SAFECOOKIE'))
    assert.equal((await stat(info.cookieFile ?? '')).mode & 0o077, 0, 'tor keeps its cookie private')
    await control.authenticate({ method: 'SAFECOOKIE' })
    assert.match(await control.getInfoOne('version'), /^0\.4\.\d+\.\d+/)

    const identity = identityFromSeed(deriveChildSeed(new Uint8Array(32).fill(42), 'oht.test.tor-control'))
    const { serviceId, privateKey } = await control.addOnion({ key: { type: 'ED25519-V3', blob: torKeyBlob(identity) }, ports: [{ virtualPort: 80, target: '127.0.0.1:9' }] })
    assert.equal(serviceId, onionAddressFromPublicKey(identity.publicKey))
    assert.equal(privateKey, undefined)
    assert.deepEqual(await control.listOnions('current'), [serviceId])

    await control.delOnion(serviceId)
    await assert.rejects(control.delOnion(serviceId), failsWith('TOR_COMMAND_FAILED', 552))
    assert.deepEqual(await control.listOnions('current'), [])
  })

  it('a generated key can be re-added for the same address; a second add collides (550)', async () => {
    const control = await open()
    await control.authenticate()
    const first = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80, target: '127.0.0.1:9' }] })
    assert.match(first.privateKey ?? '', /^ED25519-V3:/)
    await assert.rejects(control.addOnion({ key: { type: 'ED25519-V3', blob: first.privateKey ?? '' }, ports: [{ virtualPort: 80 }] }), failsWith('TOR_COMMAND_FAILED', 550))
    await control.delOnion(first.serviceId)
    const again = await control.addOnion({ key: { type: 'ED25519-V3', blob: first.privateKey ?? '' }, ports: [{ virtualPort: 80 }] })
    assert.equal(again.serviceId, first.serviceId)
    await control.delOnion(again.serviceId)
  })

  it('a detached service outlives its connection and is deleted from another one', async () => {
    const a = await open()
    await a.authenticate()
    const { serviceId } = await a.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80 }], detach: true, discardPK: true })
    await a.close()
    const b = await open()
    await b.authenticate()
    assert.ok((await b.listOnions('detached')).includes(serviceId))
    await b.delOnion(serviceId)
    assert.ok(!(await b.listOnions('detached')).includes(serviceId))
  })

  it('events arrive between replies: SETCONF raises a multi-line CONF_CHANGED', async () => {
    const control = await open()
    await control.authenticate()
    const events: TorEvent[] = []
    control.onEvent((e) => events.push(e))
    await control.setEvents(['CONF_CHANGED'])
    await control.setConf({ ContactInfo: 'oht integration "test"' })
    assert.deepEqual((await control.getConf(['ContactInfo'])).get('ContactInfo'), ['oht integration "test"'])
    await control.resetConf(['ContactInfo'])
    await control.setEvents([])
    const changed = events.filter(e => e.name === 'CONF_CHANGED')
    assert.equal(changed.length, 2)
    assert.equal(changed[0].lines[1].text, 'ContactInfo=oht integration "test"')
  })

  it('killing tor mid-session rejects the pending command with TOR_CONTROL_CLOSED', async () => {
    const control = await open()
    await control.authenticate()
    const closed = new Promise<Error | undefined>((resolve) => { control.onClose(resolve) })
    const pid = tor?.pid
    assert.ok(pid !== undefined)
    process.kill(pid, 'SIGSTOP') // frozen: the next command cannot be answered
    const pending = assert.rejects(control.getInfoOne('version'), failsWith('TOR_CONTROL_CLOSED'))
    await systemClock.sleep(50)
    assert.equal(control.pendingCommands, 1)
    const exited = new Promise(resolve => tor?.once('exit', resolve))
    process.kill(pid, 'SIGKILL')
    await exited
    await pending
    const err = await closed
    assert.ok(err instanceof TorError && err.code === 'TOR_CONTROL_CLOSED')
    assert.equal(control.closed, true)
  })
})
