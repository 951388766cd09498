/**
 * Onion services on a private Tor network: publishing with our own key, readiness, SOCKS
 * connects from another client, removal, and an extra tor launched into the network.
 * One network for the whole file (3 clients: client0 hosts, client1 connects, client2 stays
 * fresh: it never fetches a descriptor before the removal test).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { identityFromSeed, generateIdentity, onionAddressFromPublicKey, torKeyBlob } from '../../src/crypto/index.ts'
import { launchTor, pidAlive, publishOnion, socksConnect, TorError } from '../../src/tor/index.ts'
import type { HsDescEvent, TorControl } from '../../src/tor/index.ts'
import { echoServer, readBytes, testnet } from '../helpers/tor-testnet.ts'
import type { EchoServer, Testnet } from '../helpers/tor-testnet.ts'

const FIXED_SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1)

/** Processes whose command line mentions `needle` (our own temp paths only). */
async function processesMentioning (needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(needle)) pids.push(Number(entry))
  }
  return pids
}

describe('onion services on the private Tor network', () => {
  let net: Testnet
  let host: TorControl
  let echo: EchoServer

  before(async () => {
    net = await testnet({ clients: 3 })
    host = await net.clients[0].control()
    echo = await echoServer('hello from the service\n')
  })

  after(async () => {
    await host?.close().catch(() => {})
    await echo?.close()
    await net?.stop()
  })

  it('publishes a service under the address derived from its fixed key, after every descriptor upload is confirmed', async () => {
    const identity = identityFromSeed(FIXED_SEED)
    const seen: HsDescEvent[] = []
    const off = host.onEvent((e) => { if (e.type === 'HS_DESC') seen.push(e) })
    try {
      const ep = await publishOnion(host, {
        key: { type: 'ED25519-V3', blob: torKeyBlob(identity) },
        ports: [{ virtualPort: 80, target: echo.target }]
      })
      const expected = onionAddressFromPublicKey(identity.publicKey)
      assert.equal(ep.serviceId, expected)
      assert.equal(ep.address, `${expected}.onion`)
      const mine = seen.filter(e => e.address === expected)
      const uploadedTo = new Set(mine.filter(e => e.action === 'UPLOADED').map(e => e.hsDir))
      const descriptors = new Set(mine.filter(e => e.action === 'UPLOAD').map(e => e.descriptorId))
      assert.ok(uploadedTo.size >= 1, 'no UPLOADED event before publishOnion resolved')
      assert.equal(descriptors.size, 2, 'both descriptors (current and next time period) were uploaded')
      assert.ok(ep.timings.uploadedMs > 0)
      assert.deepEqual(await host.listOnions('current'), [expected])
    } finally {
      off()
    }
  })

  it('lets another client connect through SOCKS and exchange data both ways', async () => {
    const address = `${onionAddressFromPublicKey(identityFromSeed(FIXED_SEED).publicKey)}.onion`
    const socket = await socksConnect({ socksPort: net.clients[1].socksPort, host: address, port: 80, timeoutMs: 60_000 })
    try {
      const banner = 'hello from the service\n'
      assert.equal((await readBytes(socket, banner.length)).toString(), banner)
      const payload = randomBytes(4096)
      socket.write(payload)
      const back = await readBytes(socket, payload.length)
      assert.ok(back.equals(payload), 'echoed bytes differ from what was sent')
    } finally {
      socket.destroy()
    }
  })

  it('with a probe, resolves only once a separate client has connected, so the next connect succeeds at once', async () => {
    const ep = await publishOnion(host, {
      ports: [{ virtualPort: 7000, target: echo.target }],
      probe: { socksPort: net.clients[1].socksPort }
    })
    try {
      assert.ok(ep.timings.reachableMs !== undefined && ep.timings.reachableMs >= ep.timings.uploadedMs)
      assert.match(ep.privateKey ?? '', /^ED25519-V3:/)
      const before = echo.accepted
      const socket = await socksConnect({ socksPort: net.clients[1].socksPort, host: ep.address, port: 7000, retries: 0, isolation: 'fresh-circuit', timeoutMs: 30_000 })
      socket.destroy()
      assert.ok(echo.accepted > before, 'the service did not see the connection')
    } finally {
      await ep.remove()
    }
  })

  it('reports SOCKS reply 0xF0 (descriptor not found) for an onion that was never published', async () => {
    const stranger = generateIdentity()
    await assert.rejects(
      socksConnect({ socksPort: net.clients[1].socksPort, host: `${stranger.onion}.onion`, port: 80, retries: 1, timeoutMs: 30_000 }),
      (err: unknown) => {
        assert.ok(err instanceof TorError)
        assert.equal(err.code, 'TOR_SOCKS')
        assert.equal(err.socksReply, 0xf0)
        assert.match(err.message, /descriptor can not be found/)
        return true
      })
  })

  it('after remove() (DEL_ONION) a client that never cached the service cannot connect', async () => {
    const ep = await publishOnion(host, { key: { type: 'ED25519-V3', blob: torKeyBlob(generateIdentity()) }, ports: [{ virtualPort: 80, target: echo.target }] })
    await ep.remove()
    assert.ok(!(await host.listOnions('current')).includes(ep.serviceId))
    await ep.remove() // harmless when already gone
    const before = echo.accepted
    await assert.rejects(
      socksConnect({ socksPort: net.clients[2].socksPort, host: ep.address, port: 80, retries: 0, timeoutMs: 10_000 }),
      (err: unknown) => err instanceof TorError && (err.code === 'TOR_SOCKS' || err.code === 'TOR_SOCKS_TIMEOUT'))
    assert.equal(echo.accepted, before)
  })

  it('launchTor joins the network: progress up to 100 %, its SOCKS port reaches a service, stop() leaves nothing', async () => {
    const ep = await publishOnion(host, { ports: [{ virtualPort: 80, target: echo.target }], probe: { socksPort: net.clients[1].socksPort } })
    const progress: number[] = []
    const tor = await launchTor({ torrc: net.clientTorrc(), onProgress: p => progress.push(p.percent), bootstrapTimeoutMs: 90_000 })
    let stopped = false
    try {
      assert.equal(progress.at(-1), 100)
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress went backwards')
      assert.ok(tor.socksPort !== undefined)
      assert.equal((await stat(tor.torrcPath)).mode & 0o777, 0o600)
      const socket = await socksConnect({ socksPort: tor.socksPort, host: ep.address, port: 80, timeoutMs: 60_000 })
      assert.equal((await readBytes(socket, 5)).toString().slice(0, 5), 'hello')
      socket.destroy()
      await tor.stop()
      stopped = true
      assert.equal(pidAlive(tor.pid), false)
      await assert.rejects(stat(tor.dataDir), { code: 'ENOENT' })
    } finally {
      if (!stopped) await tor.stop()
      await ep.remove()
    }
  })

  it('aborting launchTor mid-bootstrap leaves no process and no temp dir', async () => {
    const root = await mkdtemp(join(tmpdir(), 'oht-launch-abort-'))
    const savedTmp = process.env.TMPDIR
    process.env.TMPDIR = root
    try {
      const ac = new AbortController()
      const seen: number[] = []
      await assert.rejects(
        launchTor({ torrc: net.clientTorrc(), signal: ac.signal, onProgress: (p) => { seen.push(p.percent); if (p.percent < 100) ac.abort() } }),
        (err: unknown) => (err as { code?: string }).code === 'CORE_ABORTED')
      assert.ok(seen.length > 0 && seen[0] < 100, 'aborted before any progress')
      assert.deepEqual(await processesMentioning(root), [])
      assert.deepEqual(await readdir(root), [])
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = savedTmp
      await rm(root, { recursive: true, force: true })
    }
  })
})
