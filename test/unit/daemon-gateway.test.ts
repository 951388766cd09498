/**
 * The daemon's gateway wiring with a fake nft and a scripted tor: the rules go into the kernel
 * before tor is launched, the launched tor gets the gateway's torrc, a tor restart reaches the
 * gateway, a failed gateway leaves the daemon running, and a stop leaves the lockdown rules.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { generateIdentity, writeKeyFile } from '../../src/crypto/index.ts'
import { createDaemon, createJsonLog, validateConfig } from '../../src/daemon/index.ts'
import { createNode } from '../../src/sdk/index.ts'
import type { LaunchedTor } from '../../src/daemon/tor-link.ts'
import { OniError } from '../../src/oni/errors.ts'
import type { NftRunner } from '../../src/oni/gateway/nft.ts'
import { fakeTorControl } from '../helpers/fake-tor-control.ts'

async function freePort (): Promise<number> {
  for (;;) {
    const srv = createServer()
    const port = await new Promise<number>((resolve) => { srv.listen(0, '127.0.0.1', () => { resolve((srv.address() as { port: number }).port) }) })
    await new Promise<void>((resolve) => { srv.close(() => { resolve() }) })
    const u = createSocket('udp4')
    const ok = await new Promise<boolean>((resolve) => { u.once('error', () => { resolve(false) }); u.bind(port, '127.0.0.1', () => { resolve(true) }) })
    u.close()
    if (ok) return port
  }
}

const interfaces = (): NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]> => ({
  'br-test': [{ family: 'IPv4', address: '127.0.0.1', netmask: '255.0.0.0', mac: '00:00:00:00:00:00', internal: false, cidr: '127.0.0.1/8' }]
})

function scriptedTor (events: string[]): { launched: () => LaunchedTor, torrcs: Array<Record<string, unknown>> } {
  const torrcs: Array<Record<string, unknown>> = []
  return {
    torrcs,
    launched: () => {
      const tor = fakeTorControl((line) => {
        events.push(`tor: ${line}`)
        if (line === 'GETINFO status/bootstrap-phase') return '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n250 OK\r\n'
        if (line === 'GETINFO net/listeners/trans') return '250-net/listeners/trans="127.0.0.1:9040"\r\n250 OK\r\n'
        if (line === 'GETINFO net/listeners/dns') return '250-net/listeners/dns="127.0.0.1:45123"\r\n250 OK\r\n'
        return undefined
      })
      let exit: (v: unknown) => void = () => {}
      return { pid: 4242, control: tor.control, controlPort: 9051, cookiePath: '/nonexistent', socksPort: 9050, exited: new Promise((resolve) => { exit = resolve }), stop: async () => { exit(0); tor.hangUp() } }
    }
  }
}

async function setup (over: Record<string, unknown> = {}, nftFail?: OniError) {
  const dir = await mkdtemp(join(tmpdir(), 'oht-daemon-gw-'))
  const identity = generateIdentity()
  await writeKeyFile(join(dir, 'identity.key'), identity)
  const events: string[] = []
  const applied: string[] = []
  const nft: NftRunner = async (args, input) => {
    if (nftFail !== undefined) throw nftFail
    if (args[0] === '-f') { applied.push(input ?? ''); events.push(`nft: ${(input ?? '').split('\n')[0]}`) }
    return '{"nftables":[{"table":{"name":"oht_gateway"}}]}'
  }
  const config = validateConfig({ tor: { mode: 'launch' }, gateway: { enabled: true, interface: 'br-test', dns_port: await freePort(), ...over } }, 'test', dir)
  const tor = scriptedTor(events)
  const logs: string[] = []
  const daemon = createDaemon({ config, stateDir: dir }, {
    clock: systemClock,
    log: createJsonLog((l) => { logs.push(l) }, systemClock, 'debug'),
    createNode: async (input) => await createNode({ transport: 'local', seed: input.identity.seed, clock: input.clock }),
    launchTor: async (init) => { events.push('launch tor'); tor.torrcs.push(init.torrc); return tor.launched() },
    // ONI's endpoint manager attaches to the same (scripted) tor.
    attachTor: async () => fakeTorControl((line) => line.startsWith('GETINFO onions/detached') ? '250-onions/detached=\r\n250 OK\r\n' : undefined).control,
    gateway: { nft, networkInterfaces: interfaces, forwarding: async () => false }
  })
  return { dir, daemon, events, applied, logs, tor, cleanup: async () => { await daemon.stop(); identity.destroy(); await rm(dir, { recursive: true, force: true }) } }
}

describe('daemon with [gateway]', () => {
  it('puts the rules in before it launches tor, and gives that tor the gateway\'s options', async () => {
    const t = await setup()
    try {
      await t.daemon.start()
      const launchAt = t.events.indexOf('launch tor')
      const rulesAt = t.events.findIndex(e => e.startsWith('nft: # oht gateway (active)'))
      assert.ok(rulesAt !== -1 && rulesAt < launchAt, t.events.join('\n'))
      assert.deepEqual(t.tor.torrcs[0].TransPort, ['127.0.0.1:9040 IsolateClientAddr'])
      assert.equal(t.tor.torrcs[0].AutomapHostsOnResolve, 1)
      assert.ok(t.events.includes('tor: SETEVENTS STATUS_CLIENT CIRC STREAM STREAM_BW'), t.events.join('\n'))
      const s = await t.daemon.gateway({}) as { enabled: boolean, state: string, tor: { connected: boolean, dnsPort: number } }
      assert.equal(s.enabled, true)
      assert.equal(s.state, 'active')
      assert.equal(s.tor.connected, true)
      assert.equal(s.tor.dnsPort, 45123)
      assert.match(t.daemon.metrics(), /^oht_gateway_up 1$/m)
    } finally {
      await t.cleanup()
    }
    assert.match(t.applied.at(-1) ?? '', /^# oht gateway \(lockdown\)/, 'a stop leaves the lockdown rules')
  })

  it('without CAP_NET_ADMIN the gateway is unavailable and the daemon runs on without touching tor\'s options', async () => {
    const t = await setup({}, new OniError('ONI_GATEWAY_PERMISSION', 'applying firewall rules needs CAP_NET_ADMIN'))
    try {
      await t.daemon.start()
      assert.equal(t.daemon.phase, 'running')
      assert.equal(t.tor.torrcs[0].TransPort, undefined, 'no TransPort without the firewall in front of it')
      const s = await t.daemon.gateway({}) as { state: string, error: { code: string } }
      assert.equal(s.state, 'unavailable')
      assert.equal(s.error.code, 'ONI_GATEWAY_PERMISSION')
      assert.ok(t.logs.some(l => l.includes('gateway unavailable') && l.includes('ONI_GATEWAY_PERMISSION')))
      assert.match(t.daemon.metrics(), /^oht_gateway_up 0$/m)
      const put = await t.daemon.put({ value: new TextEncoder().encode('still works'), mutable: false }, {}) as { stored: number }
      assert.equal(put.stored, 1)
    } finally {
      await t.cleanup()
    }
  })

  it('answers { enabled: false } when the config does not enable it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-daemon-nogw-'))
    const identity = generateIdentity()
    await writeKeyFile(join(dir, 'identity.key'), identity)
    const daemon = createDaemon({ config: validateConfig({ node: { transport: 'local' } }, 'test', dir), stateDir: dir }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: async (input) => await createNode({ transport: 'local', seed: input.identity.seed, clock: input.clock }) })
    try {
      await daemon.start()
      const s = await daemon.gateway({}) as { enabled: boolean, message: string }
      assert.equal(s.enabled, false)
      assert.match(s.message, /\[gateway\]/)
      assert.doesNotMatch(daemon.metrics(), /oht_gateway_/)
    } finally {
      await daemon.stop()
      identity.destroy()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
