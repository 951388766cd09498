/**
 * Writers never lose their own records, and endpoints have one manager, end to end over a
 * private Tor network with real `oht daemon` processes and the real CLI:
 *  - a pre-ONI endpoints.json moves into ONI at the same address; `oht endpoints add` shows in
 *    `oht oni ls` and comes back after a restart at the same address;
 *  - a daemon restarted with no peers serves its own records, its mutable seq continues above
 *    the last one, a put says "stored 1 of 20: only this node holds it", and once a peer is
 *    back the daemon republishes its records to it (a peer nobody wrote to since its restart).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveChildSeed, identityFromSeed, readKeyFile } from '../../src/crypto/index.ts'
import { socksConnect } from '../../src/tor/socks.ts'
import { echoServer, readBytes, testnet, type EchoServer, type Testnet } from '../helpers/tor-testnet.ts'
import { oht, ohtEnv, startDaemon, type DaemonHandle } from '../../examples/lib/daemons.ts'

const START_MS = 300_000

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${String(last)})`)
}

interface EndpointView { name: string, address: string, state: string, routes: Array<{ virtualPort: number, target: string }> }

describe('oht daemon: own records and endpoints across restarts', () => {
  let net: Testnet
  let base: string
  let envA: Record<string, string>
  let envB: Record<string, string>
  let a: DaemonHandle | undefined
  let b: DaemonHandle | undefined
  let echo: EchoServer
  let aAddress: string
  let aMultiaddr: string
  let bMultiaddr: string
  let legacyAddress: string
  let webAddress: string
  let immKey: string
  let motdSeq: number
  const torA = (): string[] => ['--tor-control', `127.0.0.1:${net.clients[0].controlPort}`]
  const torB = (): string[] => ['--tor-control', `127.0.0.1:${net.clients[1].controlPort}`]
  const json = async (args: string[], env: Record<string, string>): Promise<any> => {
    const r = await oht([...args, '--json'], env)
    assert.equal(r.code, 0, `oht ${args.join(' ')}: ${r.stderr}`)
    return JSON.parse(r.stdout)
  }

  before(async () => {
    net = await testnet({ clients: 2 })
    base = await mkdtemp(join(tmpdir(), 'oht-own-records-'))
    envA = ohtEnv(base, join(base, 'a'))
    envB = ohtEnv(base, join(base, 'b'))
    for (const env of [envA, envB]) assert.equal((await oht(['init'], env)).code, 0)
    echo = await echoServer()
    // A pre-ONI daemon's endpoint list: the key of "legacy" derives from A's identity.
    const id = await readKeyFile(join(envA.OHT_STATE_DIR, 'identity.key'))
    const seed = deriveChildSeed(id.seed, 'endpoint.legacy')
    legacyAddress = `${identityFromSeed(seed).onion}.onion`
    seed.fill(0)
    id.destroy()
    await writeFile(join(envA.OHT_STATE_DIR, 'endpoints.json'), JSON.stringify({ endpoints: [{ name: 'legacy', port: 80, target: echo.target }] }), { mode: 0o600 })
    a = await startDaemon('a', envA, torA(), { timeoutMs: START_MS })
    const sa = await json(['status'], envA)
    aAddress = sa.identity.address
    aMultiaddr = sa.addrs.find((x: string) => x.startsWith('/onion3/'))
    b = await startDaemon('b', envB, [...torB(), '--bootstrap', aMultiaddr], { timeoutMs: START_MS })
    bMultiaddr = (await json(['status'], envB)).addrs.find((x: string) => x.startsWith('/onion3/'))
    await until('B has A as a peer', 120_000, async () => (await json(['peers'], envB)).peers.some((p: { onion: string }) => `${p.onion}.onion` === aAddress) ? true : undefined)
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    await echo?.close()
    await net?.stop()
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })

  it('moves the old endpoint list into ONI at the same address; oht endpoints add shows in oht oni ls and answers over tor', async () => {
    await stat(join(envA.OHT_STATE_DIR, 'endpoints.json.migrated'))
    const before = await json(['oni', 'ls'], envA)
    assert.equal(before.enabled, true, 'ONI runs without [oni] enabled: it is the endpoint manager')
    assert.deepEqual(before.endpoints.map((e: EndpointView) => [e.name, e.address]), [['legacy', legacyAddress]])

    const added = await json(['endpoints', 'add', 'web', '80', echo.target], envA)
    webAddress = added.address
    assert.match(webAddress, /^[a-z2-7]{56}\.onion$/)
    assert.equal(added.state, 'ready')
    const listed = (await json(['oni', 'ls'], envA)).endpoints as EndpointView[]
    assert.deepEqual(listed.map(e => [e.name, e.address, e.routes.map(r => [r.virtualPort, r.target])]), [
      ['legacy', legacyAddress, [[80, echo.target]]],
      ['web', webAddress, [[80, echo.target]]]
    ])
    const table = await oht(['oni', 'ls'], envA)
    assert.match(table.stdout, new RegExp(`^web\\s+${webAddress.replace('.', '\\.')}\\s+80\\s+${echo.target}\\s+ready\\s`, 'm'))
    assert.deepEqual((await json(['endpoints'], envA)).endpoints.map((e: EndpointView) => e.name), ['legacy', 'web'], 'oht endpoints lists the same')

    for (const address of [webAddress, legacyAddress]) {
      const socket = await socksConnect({ socksPort: net.clients[1].socksPort, host: address, port: 80, isolation: address, timeoutMs: 90_000, retries: 10 })
      try {
        socket.write('over the onion')
        assert.equal((await readBytes(socket, 14)).toString(), 'over the onion')
      } finally { socket.destroy() }
    }
    const after = (await json(['oni', 'ls'], envA)).endpoints.find((e: EndpointView) => e.name === 'web')
    assert.ok(after.routes[0].total >= 1, 'the route counted the connection')

    // the other two key kinds: a key-tree child of A's identity, and an existing key file
    const idA = await readKeyFile(join(envA.OHT_STATE_DIR, 'identity.key'))
    const siteSeed = deriveChildSeed(idA.seed, 'site.blog')
    const siteAddress = `${identityFromSeed(siteSeed).onion}.onion`
    siteSeed.fill(0)
    idA.destroy()
    const other = join(base, 'other')
    assert.equal((await oht(['init'], { ...envA, OHT_STATE_DIR: other })).code, 0)
    const otherId = await readKeyFile(join(other, 'identity.key'))
    const fileAddress = `${otherId.onion}.onion`
    otherId.destroy()
    const site = await json(['endpoints', 'add', 'site', '80', echo.target, '443', echo.target, '--key-path', 'site.blog'], envA)
    assert.equal(site.address, siteAddress, 'a key-tree key: the address derives from the identity and the path')
    assert.deepEqual(site.routes.map((r: { virtualPort: number }) => r.virtualPort), [80, 443])
    const imported = await json(['endpoints', 'add', 'imported', '80', echo.target, '--key-file', join(other, 'identity.key')], envA)
    assert.equal(imported.address, fileAddress, 'a key file: its own address')
    assert.equal(imported.key, 'imported')
    for (const name of ['site', 'imported']) assert.equal((await oht(['endpoints', 'rm', name], envA)).code, 0)
    assert.deepEqual((await json(['oni', 'ls'], envA)).endpoints.map((e: EndpointView) => e.name), ['legacy', 'web'], 'removed endpoints are gone from oht oni ls')
  })

  it('puts report their holders and seq; --cas refuses a stale seq with exit 8', async () => {
    const imm = await json(['put', 'kept by its writer'], envA)
    immKey = imm.key
    assert.equal(imm.wanted, 20)
    assert.equal(imm.stored, 2)
    assert.equal(imm.summary, 'stored 2 of 20: fewer holders than asked (1 peer and this node)')
    assert.equal((await json(['put', 'motd', 'first'], envA)).seq, 0)
    motdSeq = (await json(['put', 'motd', 'second', '--cas', '0'], envA)).seq
    assert.equal(motdSeq, 1)
    const stale = await oht(['put', 'motd', 'third', '--cas', '0'], envA)
    assert.equal(stale.code, 8, stale.stderr)
    assert.match(stale.stderr, /current seq is 1, expected 0 \(nothing was written\)/)
  })

  it('restarted with no peers: serves its records, continues its seq, keeps its endpoints; republishes once a peer is back', async () => {
    assert.equal(await a?.stop(), 0)
    assert.equal(await b?.stop(), 0)
    await rm(join(envB.OHT_STATE_DIR, 'routing-table.json'), { force: true })

    // A alone: its only peer is down
    a = await startDaemon('a', envA, [...torA(), '--bootstrap', bMultiaddr], { timeoutMs: START_MS })
    const s = await json(['status'], envA)
    assert.equal(s.node.peers, 0)
    assert.ok(s.node.ownRecords >= 2, `own records in the journal: ${s.node.ownRecords}`)
    const got = await oht(['get', immKey], envA)
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.stdout, 'kept by its writer')
    const next = await oht(['put', 'motd', 'after the restart', '--json'], envA)
    assert.equal(next.code, 0, next.stderr)
    const n = JSON.parse(next.stdout)
    assert.equal(n.seq, motdSeq + 1, 'the seq continues above the last one written')
    assert.equal(n.onlyHere, true)
    assert.equal(n.summary, 'stored 1 of 20: only this node holds it')
    const eps = (await json(['oni', 'ls'], envA)).endpoints as EndpointView[]
    assert.deepEqual(eps.map(e => [e.name, e.address, e.state]), [['legacy', legacyAddress, 'ready'], ['web', webAddress, 'ready']], 'same addresses after the restart')

    // B comes back empty (its store was wiped, it wrote nothing) and contacts A: A re-joins and republishes
    b = await startDaemon('b', envB, [...torB(), '--bootstrap', aMultiaddr], { timeoutMs: START_MS })
    const held = await until('A\'s records republished to B', 240_000, async () => {
      const st = await json(['status'], envB)
      return st.node.recordsStored >= 2 ? st.node.recordsStored as number : undefined
    })
    assert.ok(held >= 2)
    assert.ok(a?.logs.some(l => l.includes('"msg":"bootstrapped"') && l.includes('"retry":true')), 'A joined again once B was back')
    const onB = await oht(['get', '--name', 'motd', '--author', aAddress], envB)
    assert.equal(onB.stdout, 'after the restart')
  })
})
