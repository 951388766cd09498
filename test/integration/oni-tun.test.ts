/**
 * onet (ONI TUN mode): two network namespaces, each with an ONI TUN device served by this
 * process, joined only through the private Tor network. Unmodified programs (ping, socat,
 * getent) run inside the namespaces; names resolve through the onet DNS responder.
 * The mapping directory is an in-process store that, like any untrusted store, verifies every
 * record on resolve (the OHT-backed directory is the same interface).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cryptoRng } from '../../src/core/index.ts'
import { deriveChildSeed, generateIdentity, identityFromSeed, type Identity } from '../../src/crypto/index.ts'
import { createOni, type Oni } from '../../src/oni/index.ts'
import type { Onet } from '../../src/oni/onet.ts'
import { createMemoryMappingDirectory, signMapping } from '../../src/oni/mapping.ts'
import { isOniError } from '../../src/oni/errors.ts'
import { openTun } from '../../src/oni/tun.ts'
import { ONET_DNS_ADDRESS } from '../../src/oni/virtual-address.ts'
import { canUseNetns, createNetns, type Netns } from '../helpers/netns.ts'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'

interface Side { ns: Netns, oni: Oni, onet: Onet, identity: Identity, stateDir: string }

describe('onet: IP between two namespaces over onion links', { timeout: 900_000 }, async () => {
  const privileged = await canUseNetns()
  let net: Testnet | undefined
  const sides: Side[] = []
  const directory = createMemoryMappingDirectory()

  before(async () => {
    if (!privileged) return
    net = await testnet({ clients: 2 })
    const masters = [randomBytes(32), randomBytes(32)]
    const identities = masters.map(m => identityFromSeed(deriveChildSeed(m, 'oni.onet')))
    for (let i = 0; i < 2; i++) {
      const ns = await createNetns(`tun${i}`, { resolvConf: `nameserver ${ONET_DNS_ADDRESS}\noptions timeout:30 attempts:1\n` })
      const stateDir = await mkdtemp(join(tmpdir(), 'oni-tun-'))
      const client = net.clients[i]
      const oni = createOni({
        stateDir,
        masterSeed: masters[i],
        torSocksPort: client.socksPort,
        probeSocksPort: net.clients[1 - i].socksPort,
        probeIntervalMs: 3_600_000,
        socks: false,
        onet: { ifname: 'onet%d', netns: ns.name, name: `node${i}`, names: { peer: identities[1 - i].onion } }
      }, { connectTor: async (o) => await client.control(o), directory })
      await oni.start()
      assert.ok(oni.onet, JSON.stringify(oni.status().onet))
      sides.push({ ns, oni, onet: oni.onet, identity: identities[i], stateDir })
    }
  })

  after(async () => {
    for (const s of sides) {
      await s.oni.stop().catch(() => {})
      await s.ns.delete().catch(() => {})
      await rm(s.stateDir, { recursive: true, force: true })
    }
    await net?.stop()
  })

  it('ping -6 answers both ways, by .onet name, through the private Tor network', async () => {
    if (!privileged) {
      await assert.rejects(openTun(), (e) => isOniError(e, 'ONI_TUN_UNAVAILABLE'))
      return
    }
    const [a, b] = sides
    assert.equal(a.oni.endpoints.get('onet')?.address, `${a.onet.onion}.onion`)
    assert.equal(a.onet.onion, a.identity.onion)
    const ab = await a.ns.exec('ping', ['-6', '-n', '-c', '3', '-i', '0.5', '-w', '90', `${b.onet.onion}.onet`], { timeoutMs: 120_000 })
    assert.equal(ab.code, 0, ab.stdout + ab.stderr)
    assert.match(ab.stdout, /3 received/)
    assert.match(ab.stdout, new RegExp(b.onet.addressText.replace(/:/g, ':')))
    const ba = await b.ns.exec('ping', ['-6', '-n', '-c', '3', '-i', '0.5', '-w', '90', 'peer.onet'], { timeoutMs: 120_000 })
    assert.equal(ba.code, 0, ba.stdout + ba.stderr)
    assert.match(ba.stdout, /3 received/)
    assert.ok(a.onet.stats.dnsQueries >= 1 && b.onet.stats.dnsQueries >= 1)
    assert.equal(a.onet.stats.spoofed + b.onet.stats.spoofed, 0)
    const status = a.oni.status()
    const onetStatus = status.onet !== null && 'peers' in status.onet ? status.onet : undefined
    assert.equal(onetStatus?.address, a.onet.addressText)
    assert.ok(onetStatus?.peers.some(p => p.onion === b.onet.onion && p.link === 'up' && p.packetsIn >= 3), JSON.stringify(onetStatus))
    assert.equal(status.endpoints.find(e => e.name === 'onet')?.state, 'ready')
  })

  it('echoes a UDP datagram between unmodified programs', async () => {
    if (!privileged) return
    const [a, b] = sides
    const server = b.ns.spawn('socat', [`UDP6-LISTEN:7777,bind=[${b.onet.addressText}],fork`, 'PIPE'])
    await new Promise((resolve) => setTimeout(resolve, 300))
    const payload = `udp-echo-${randomBytes(8).toString('hex')}\n`
    const r = await a.ns.exec('socat', ['-t', '20', '-', `UDP6:[${b.onet.addressText}]:7777`], { input: payload, timeoutMs: 60_000 })
    server.kill('SIGKILL')
    assert.equal(r.stdout, payload, r.stderr)
  })

  it('transfers 1 MiB over TCP with a matching SHA-256', async () => {
    if (!privileged) return
    const [a, b] = sides
    const data = randomBytes(1024 * 1024)
    const receiver = b.ns.spawn('socat', ['-u', `TCP6-LISTEN:8888,bind=[${b.onet.addressText}]`, 'STDOUT'])
    const chunks: Buffer[] = []
    receiver.stdout?.on('data', (d: Buffer) => chunks.push(d))
    const done = new Promise<void>((resolve) => receiver.once('exit', () => { resolve() }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    const t0 = performance.now()
    const send = await a.ns.exec('socat', ['-u', 'STDIN', `TCP6:[${b.onet.addressText}]:8888`], { input: data, timeoutMs: 240_000 })
    assert.equal(send.code, 0, send.stderr)
    await done
    const secs = (performance.now() - t0) / 1000
    const got = Buffer.concat(chunks)
    assert.equal(got.length, data.length)
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'))
    process.stderr.write(`onet TCP 1 MiB in ${secs.toFixed(2)} s (${(1 / secs).toFixed(2)} MiB/s)\n`)
  })

  it('rejects a forged mapping: a name signed by another key does not resolve', async () => {
    if (!privileged) return
    const [a] = sides
    const victim = generateIdentity()
    // Key A signs a mapping that claims the victim's key.
    const forged = signMapping({ publicKey: victim.publicKey, sign: (m) => a.identity.sign(m) }, { linkPort: 4789, issuedAt: Date.now() })
    await directory.publish(forged)
    await assert.rejects(directory.resolve(victim.publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
    const r = await a.ns.exec('getent', ['ahosts', `${victim.onion}.onet`], { timeoutMs: 60_000 })
    assert.notEqual(r.code, 0, r.stdout)
    assert.equal(a.onet.status().peers.some(p => p.onion === victim.onion), false)
    victim.destroy()
  })
})
