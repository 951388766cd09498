/**
 * The gateway as a whole with a fake nft (it records every ruleset) and a scripted tor: order of
 * start, what a launched and an attached tor get, per-VM status from tor's STREAM events and
 * nft's counters, fail-closed stops, and clear errors when nft or the capability is missing.
 * The resolver listens on a real loopback socket (the "inside address" is 127.0.0.1 here).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import { createGateway, type GatewayInit } from '../../src/oni/gateway/gateway.ts'
import { OniError, isOniError } from '../../src/oni/errors.ts'
import type { NftRunner } from '../../src/oni/gateway/nft.ts'
import { createMemoryMappingDirectory, signMapping } from '../../src/oni/mapping.ts'
import { virtualAddressFromPublicKey } from '../../src/oni/virtual-address.ts'
import { fakeTorControl } from '../helpers/fake-tor-control.ts'

const IFACE = 'br-test'
const interfaces = (): NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]> => ({
  [IFACE]: [
    { family: 'IPv4', address: '127.0.0.1', netmask: '255.0.0.0', mac: '00:00:00:00:00:00', internal: false, cidr: '127.0.0.1/8' },
    { family: 'IPv6', address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', mac: '00:00:00:00:00:00', internal: false, cidr: 'fe80::1/64', scopeid: 2 }
  ]
})

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

interface FakeNft { run: NftRunner, applied: string[], present: boolean, fail?: OniError }

function fakeNft (): FakeNft {
  const f: FakeNft = {
    applied: [],
    present: true,
    run: async (args, input) => {
      if (f.fail !== undefined) throw f.fail
      if (args[0] === '-f') { f.applied.push(input ?? ''); f.present = !(input ?? '').trimEnd().endsWith(`delete table inet ${'oht_gateway'}`); return '' }
      if (args[0] === '-j') {
        if (!f.present) throw new OniError('ONI_GATEWAY_RULES', 'nft -j list table inet oht_gateway failed: Error: No such file or directory')
        return JSON.stringify({ nftables: [
          { counter: { name: 'dropped_forward', packets: 5, bytes: 420 } },
          { set: { name: 'vm_drops4', elem: [{ elem: { val: '10.152.152.11', counter: { packets: 5, bytes: 420 } } }] } }
        ] })
      }
      throw new Error(`unexpected nft ${args.join(' ')}`)
    }
  }
  return f
}

async function gateway (over: Partial<GatewayInit> = {}, nft = fakeNft(), extra: { forwarding?: boolean, directory?: ReturnType<typeof createMemoryMappingDirectory> } = {}) {
  const clock = new FakeClock()
  const gw = createGateway({ interface: IFACE, torMode: 'launch', dnsPort: await freePort(), ...over }, {
    clock,
    rng: new SeededRng('gw'),
    nft: nft.run,
    networkInterfaces: interfaces,
    forwarding: async () => extra.forwarding ?? false,
    ...(extra.directory !== undefined ? { directory: extra.directory } : {})
  })
  return { gw, nft, clock }
}

function torReplies (line: string): string | undefined {
  if (line === 'GETINFO net/listeners/trans') return '250-net/listeners/trans="127.0.0.1:9040"\r\n250 OK\r\n'
  if (line === 'GETINFO net/listeners/dns') return '250-net/listeners/dns="127.0.0.1:45123"\r\n250 OK\r\n'
  if (line.startsWith('GETCONF')) return '250-TransPort=127.0.0.1:7777\r\n250-DNSPort\r\n250-AutomapHostsOnResolve=0\r\n250-AutomapHostsSuffixes=.onion,.exit\r\n250-VirtualAddrNetworkIPv4=127.192.0.0/10\r\n250 VirtualAddrNetworkIPv6=[FE80::]/10\r\n'
  return undefined
}

const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

describe('gateway: start, tor, status, stop', () => {
  it('applies the rules before anything else and builds the torrc of a launched tor', async () => {
    const { gw, nft } = await gateway()
    await gw.start()
    try {
      assert.equal(gw.state, 'active')
      assert.equal(nft.applied.length, 1)
      assert.match(nft.applied[0], /iifname "br-test" meta nfproto ipv4 meta l4proto tcp dnat ip to 127\.0\.0\.1:9040/)
      assert.deepEqual(gw.torrc(), {
        TransPort: ['127.0.0.1:9040 IsolateClientAddr'],
        DNSPort: '127.0.0.1:auto',
        AutomapHostsOnResolve: 1,
        AutomapHostsSuffixes: '.onion',
        VirtualAddrNetworkIPv4: '10.192.0.0/10'
      })
      const s = await gw.status()
      assert.equal(s.firewall.rules, 'active')
      assert.equal(s.tor.connected, false, 'no tor yet: DNS fails, TCP meets a closed port')
    } finally {
      await gw.stop()
    }
  })

  it('launch mode: finds the DNSPort, checks the TransPort, subscribes to STREAM events, sends no SETCONF', async () => {
    const { gw } = await gateway()
    await gw.start()
    const tor = fakeTorControl(torReplies)
    try {
      await gw.torConnected(tor.control)
      assert.deepEqual(tor.lines, ['GETINFO net/listeners/trans', 'GETINFO net/listeners/dns', 'SETEVENTS STREAM STREAM_BW'])
      const s = await gw.status()
      assert.equal(s.tor.connected, true)
      assert.equal(s.tor.dnsPort, 45123)
      assert.equal(s.tor.transListening, true)
    } finally {
      await gw.stop()
    }
  })

  it('attach mode: adds its options to tor\'s own by SETCONF and puts them back on stop', async () => {
    const { gw } = await gateway({ torMode: 'attach' })
    await gw.start()
    const tor = fakeTorControl(torReplies)
    await gw.torConnected(tor.control)
    assert.equal(tor.lines[0], 'GETCONF TransPort DNSPort AutomapHostsOnResolve AutomapHostsSuffixes VirtualAddrNetworkIPv4 VirtualAddrNetworkIPv6')
    assert.equal(tor.lines[1], 'SETCONF TransPort=127.0.0.1:7777 TransPort="127.0.0.1:9040 IsolateClientAddr" DNSPort=127.0.0.1:auto AutomapHostsOnResolve=1 AutomapHostsSuffixes=.onion VirtualAddrNetworkIPv4=10.192.0.0/10')
    await gw.stop()
    assert.equal(tor.lines.at(-1), 'SETCONF TransPort=127.0.0.1:7777 DNSPort AutomapHostsOnResolve=0 AutomapHostsSuffixes=.onion,.exit VirtualAddrNetworkIPv4=127.192.0.0/10 VirtualAddrNetworkIPv6=[FE80::]/10')
  })

  it('attach mode: a re-attach to the same tor restores what tor had before the first attach', async () => {
    const { gw } = await gateway({ torMode: 'attach' })
    await gw.start()
    await gw.torConnected(fakeTorControl(torReplies).control)
    // The control connection dropped; tor did not restart, so it still has our options.
    const again = fakeTorControl((line) => line.startsWith('GETCONF')
      ? '250-TransPort=127.0.0.1:7777\r\n250-TransPort="127.0.0.1:9040 IsolateClientAddr"\r\n250-DNSPort=127.0.0.1:auto\r\n250-AutomapHostsOnResolve=1\r\n250-AutomapHostsSuffixes=.onion\r\n250-VirtualAddrNetworkIPv4=10.192.0.0/10\r\n250 VirtualAddrNetworkIPv6=[FE80::]/10\r\n'
      : torReplies(line))
    gw.torLost()
    await gw.torConnected(again.control)
    assert.equal(again.lines[1], 'SETCONF TransPort=127.0.0.1:7777 TransPort="127.0.0.1:9040 IsolateClientAddr" DNSPort=127.0.0.1:auto AutomapHostsOnResolve=1 AutomapHostsSuffixes=.onion VirtualAddrNetworkIPv4=10.192.0.0/10', 'our TransPort line is not doubled')
    await gw.stop()
    assert.equal(again.lines.at(-1), 'SETCONF TransPort=127.0.0.1:7777 DNSPort AutomapHostsOnResolve=0 AutomapHostsSuffixes=.onion,.exit VirtualAddrNetworkIPv4=127.192.0.0/10 VirtualAddrNetworkIPv6=[FE80::]/10')
  })

  it('stays closed when tor has no TransPort on the inside address', async () => {
    const { gw } = await gateway({ transPort: 9041 })
    await gw.start()
    const tor = fakeTorControl(torReplies)
    try {
      await assert.rejects(gw.torConnected(tor.control), (e) => isOniError(e, 'ONI_GATEWAY_TOR'))
      const s = await gw.status()
      assert.equal(s.tor.connected, false)
      assert.match(s.tor.error ?? '', /no TransPort on 127\.0\.0\.1:9041/)
      assert.equal(s.firewall.rules, 'active')
    } finally {
      await gw.stop()
    }
  })

  it('reports per-VM connections, bytes, circuits and drops from tor\'s events and nft\'s counters', async () => {
    const { gw } = await gateway({ hosts: { 'work.vm': '10.152.152.11' } })
    await gw.start()
    const tor = fakeTorControl(torReplies)
    try {
      await gw.torConnected(tor.control)
      for (const e of [
        '650 STREAM 44 NEW 0 10.236.121.41:80 SOURCE_ADDR=10.152.152.11:41122 PURPOSE=USER CLIENT_PROTOCOL=TRANS',
        '650 STREAM 44 SENTCONNECT 11 abc.onion:80 CLIENT_PROTOCOL=TRANS',
        '650 STREAM 45 NEW 0 10.236.121.41:80 SOURCE_ADDR=10.152.152.12:41200 PURPOSE=USER CLIENT_PROTOCOL=TRANS',
        '650 STREAM 45 SENTCONNECT 14 abc.onion:80 CLIENT_PROTOCOL=TRANS',
        '650 STREAM 46 NEWRESOLVE 0 example.com:0 SOURCE_ADDR=127.83.0.1:5000 PURPOSE=DNS_REQUEST CLIENT_PROTOCOL=DNS',
        '650 STREAM 47 NEW 0 1.2.3.4:80 SOURCE_ADDR=127.0.0.1:6000 PURPOSE=USER CLIENT_PROTOCOL=SOCKS5',
        '650 STREAM_BW 44 100 2000 2026-12-02T17:20:01.12',
        '650 STREAM 44 CLOSED 11 abc.onion:80 REASON=DONE',
        '650 STREAM_BW 44 1 1 2026-12-02T17:20:01.50',
        '650 STREAM 45 FAILED 14 abc.onion:80 REASON=TIMEOUT',
        '650 STREAM 45 CLOSED 14 abc.onion:80 REASON=TIMEOUT'
      ]) tor.event(e)
      await tick()
      const s = await gw.status()
      const a = s.vms.find(v => v.address === '10.152.152.11')
      const b = s.vms.find(v => v.address === '10.152.152.12')
      assert.deepEqual(a?.connections, { open: 0, total: 1, failed: 0 })
      assert.equal(a?.name, 'work.vm')
      assert.equal(a?.bytesUp, 101)
      assert.equal(a?.bytesDown, 2001, 'a STREAM_BW after CLOSED still counts')
      assert.deepEqual(a?.circuits, ['11'])
      assert.deepEqual(a?.dropped, { packets: 5, bytes: 420 })
      assert.deepEqual(b?.connections, { open: 0, total: 1, failed: 1 })
      assert.deepEqual(b?.circuits, ['14'])
      assert.equal(s.vms.some(v => v.address.startsWith('127.')), false, 'loopback streams are not VMs')
      assert.deepEqual(s.connections, { open: 0, total: 2, failed: 1 })
      assert.deepEqual(s.firewall.dropped.forward, { packets: 5, bytes: 420 })
    } finally {
      await gw.stop()
    }
  })

  it('stop leaves the lockdown rules by default: nothing is forwarded afterwards', async () => {
    const { gw, nft } = await gateway()
    await gw.start()
    await gw.stop()
    assert.equal(nft.applied.length, 2)
    assert.match(nft.applied[1], /^# oht gateway \(lockdown\)/)
    assert.match(nft.applied[1], /iifname "br-test" counter name "dropped_forward" drop/)
    assert.equal((await gw.status()).firewall.rules, 'lockdown')
  })

  it('on_stop "remove" deletes the table only when the router does not forward for the interface', async () => {
    const off = await gateway({ onStop: 'remove' }, fakeNft(), { forwarding: false })
    await off.gw.start()
    await off.gw.stop()
    assert.equal(off.nft.applied[1], 'table inet oht_gateway {}\ndelete table inet oht_gateway\n')
    assert.equal((await off.gw.status()).firewall.rules, 'removed')
    const on = await gateway({ onStop: 'remove' }, fakeNft(), { forwarding: true })
    await on.gw.start()
    await on.gw.stop()
    assert.match(on.nft.applied[1], /lockdown/)
    const s = await on.gw.status()
    assert.equal(s.firewall.rules, 'lockdown')
    assert.match(s.firewall.error ?? '', /forwards packets from br-test/)
  })

  it('puts the rules back when they vanish from the kernel', async () => {
    const { gw, nft, clock } = await gateway({ checkIntervalMs: 1_000 })
    await gw.start()
    try {
      nft.present = false
      await clock.advance(1_000)
      await tick()
      assert.equal(nft.applied.length, 2)
      assert.match(nft.applied[1], /\(active\)/)
      assert.equal((await gw.status()).firewall.reapplied, 1)
    } finally {
      await gw.stop()
    }
  })

  it('without nft or CAP_NET_ADMIN: a clear, coded error, and status says why', async () => {
    for (const [code, msg] of [['ONI_GATEWAY_NFT_MISSING', 'install it'], ['ONI_GATEWAY_PERMISSION', 'CAP_NET_ADMIN']] as const) {
      const nft = fakeNft()
      nft.fail = new OniError(code, `... ${msg} ...`)
      const { gw } = await gateway({}, nft)
      await assert.rejects(gw.start(), (e) => isOniError(e, code))
      const s = await gw.status()
      assert.equal(s.state, 'unavailable')
      assert.equal(s.error?.code, code)
      assert.equal(s.firewall.rules, 'none')
      await gw.stop()
    }
  })

  it('refuses a missing interface, a foreign address and an inside address within the virtual network', async () => {
    for (const [over, code] of [
      [{ interface: 'nope0' }, 'ONI_GATEWAY_INTERFACE'],
      [{ address: '10.9.9.9' }, 'ONI_GATEWAY_INTERFACE'],
      [{ ipv6: true }, 'ONI_GATEWAY_INTERFACE'],
      [{ virtualNetwork: '127.0.0.0/8' }, 'ONI_GATEWAY_CONFIG'],
      [{ virtualNetwork: 'banana' }, 'ONI_GATEWAY_CONFIG']
    ] as const) {
      const { gw, nft } = await gateway(over)
      await assert.rejects(gw.start(), (e) => isOniError(e, code), JSON.stringify(over))
      assert.equal(nft.applied.length, 0)
    }
  })

  it('reloads the blocklist, keeping the old one when the new one is unreadable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-bl-'))
    const file = join(dir, 'block.hosts')
    await writeFile(file, '0.0.0.0 a.example\n0.0.0.0 b.example\n')
    const { gw } = await gateway({ blocklistFile: file })
    try {
      await gw.start()
      assert.equal((await gw.status()).blocklist.names, 2)
      await writeFile(file, '0.0.0.0 a.example\n0.0.0.0 b.example\nc.example\n')
      assert.deepEqual(await gw.reload(), { names: 3, skipped: 0 })
      await rm(file)
      const r = await gw.reload()
      assert.equal(r.names, 3)
      assert.match(r.error ?? '', /cannot read blocklist/)
      assert.match((await gw.status()).blocklist.error ?? '', /ENOENT/)
    } finally {
      await gw.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('resolves <onion>.onet and aliases to verified onet addresses only', async () => {
    const directory = createMemoryMappingDirectory()
    const peer = generateIdentity()
    const stranger = generateIdentity()
    await directory.publish(signMapping(peer, { linkPort: 4789, issuedAt: 1 }))
    const { gw } = await gateway({ onetNames: { peer: peer.onion } }, fakeNft(), { directory })
    await gw.start()
    try {
      const port = (await gw.status()).dns.listen[0].split(':')[1]
      const ask = async (name: string): Promise<Buffer> => {
        const s = createSocket('udp4')
        const labels = name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
        const q = Uint8Array.from([0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 28, 0, 1])
        const r = await new Promise<Buffer>((resolve) => { s.once('message', resolve); s.send(q, Number(port), '127.0.0.1') })
        s.close()
        return r
      }
      const byAlias = await ask('peer.onet')
      assert.deepEqual([...byAlias.subarray(byAlias.length - 16)], [...virtualAddressFromPublicKey(peer.publicKey)])
      const byOnion = await ask(`${peer.onion}.onet`)
      assert.deepEqual([...byOnion.subarray(byOnion.length - 16)], [...virtualAddressFromPublicKey(peer.publicKey)])
      const none = await ask(`${stranger.onion}.onet`)
      assert.equal(none[3] & 0x0f, 3, 'no mapping published: NXDOMAIN')
    } finally {
      await gw.stop()
      peer.destroy(); stranger.destroy()
    }
  })
})
