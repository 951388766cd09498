/**
 * DOA over onion services on the private Tor network: installing a 1 MiB app cold, from 1 host
 * vs 3 hosts (and the default: 3 hosts and the OHT together), and name resolution latency.
 *
 * The author publishes the template app with 1 MiB of extra assets (19 chunks of 60 KiB in
 * all) and registers its name; three hosts install it and host it (over PeerNet, on their
 * onion services). Each install is made by a fresh client-mode node (no onion service, so it
 * holds no replicas) with new SOCKS isolation: every host and OHT node it asks costs a new
 * circuit and rendezvous, as for a user who never met them. An install = the release record
 * and the host set (in parallel), then both bundles, every chunk verified.
 * Figures p50/p95 (ms), the 1-host/3-host ratio, and resolution p50/p95; JSON to
 * bench/results/doa-install.json.
 *
 * Usage: node --import tsx bench/doa-install.ts [--trials 5] [--resolves 20]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SeededRng, systemClock, toHex } from '../src/core/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import {
  createDoa, createHostClient, fetchBundleFrom, fetchCurrentRelease, hostChunkProvider, hostSetKey, ohtChunkProvider, openHostValue,
  type ChunkProvider, type Doa, type HostEntry
} from '../src/doa/index.ts'
import { createOverlayNode, torConnector, torPublisher, type OverlayNode } from '../src/net/index.ts'
import { startTestnet, type TorControl } from '../src/tor/index.ts'

const { values: args } = parseArgs({ options: { trials: { type: 'string', default: '5' }, resolves: { type: 'string', default: '20' } } })
const TRIALS = Number(args.trials)
const RESOLVES = Number(args.resolves)
const TEMPLATE = new URL('../examples/template-app/', import.meta.url).pathname

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const r0 = (x: number): number => Math.round(x)
const stats = (xs: number[]): { n: number, p50: number, p95: number, mean: number } => ({ n: xs.length, p50: r0(pct(xs, 50)), p95: r0(pct(xs, 95)), mean: r0(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)) })

const t0 = performance.now()
const tn = await startTestnet({ clients: 5 })
console.log(`private Tor network up in ${r0(performance.now() - t0)} ms`)
const controls: TorControl[] = []
const nodes: OverlayNode[] = []
const doas: Doa[] = []
const dirs: string[] = []
let epoch = 0
const results: Record<string, unknown> = { node: process.version, trials: TRIALS }
try {
  const make = async (i: number, bootstrap: string[], listen: boolean): Promise<{ node: OverlayNode, seed: Uint8Array }> => {
    const client = tn.clients[i]
    const seed = new Uint8Array(randomBytes(32))
    let publish
    if (listen) {
      const control = await client.control()
      controls.push(control)
      publish = torPublisher({ control, seed })
    }
    const e = ++epoch
    const node = await createOverlayNode({
      seed, onionOnly: true, bootstrap,
      onion: { connect: torConnector({ socksPort: client.socksPort }), publish, isolation: (t) => `${t.address}/${e}` },
      oht: { requestTimeout: { initialMs: 20_000, minMs: 2_000, maxMs: 45_000 } }
    })
    nodes.push(node)
    return { node, seed }
  }
  const service = async (node: OverlayNode, seed: Uint8Array): Promise<Doa> => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-doa-bench-'))
    dirs.push(dir)
    const d = createDoa({ dir, session: { watch: false, syncIntervalMs: 0 } }, { dht: node.oht, peers: node.peers, identity: identityFromSeed(seed), clock: systemClock, rng: new SeededRng(toHex(seed)) })
    await d.start()
    doas.push(d)
    return d
  }

  // The author and three hosts, on four client tors.
  const author = await make(0, [], true)
  const hostNodes = await Promise.all([1, 2, 3].map(async i => await make(i, author.node.multiaddrs, true)))
  const authorDoa = await service(author.node, author.seed)
  const appDir = join(dirs[0], 'app')
  await cp(TEMPLATE, appDir, { recursive: true })
  const big = new Uint8Array(1024 * 1024)
  const rng = new SeededRng('doa-bench-asset')
  for (let i = 0; i < big.length; i += 4096) big.set(rng.bytes(4096), i)
  await writeFile(join(appDir, 'ui', 'media.bin'), big)
  let t = performance.now()
  const pub = await authorDoa.publish(appDir)
  const publishMs = performance.now() - t
  await authorDoa.names.register('guestbook', `doa:${pub.appKey}`)
  const appKey = Buffer.from(pub.appKey, 'hex')
  const m = pub.manifest
  const chunks = (m.bundles.code?.chunks ?? 0) + (m.bundles.assets?.chunks ?? 0)
  console.log(`published ${m.name}: ${(m.bundles.assets?.size ?? 0) + (m.bundles.code?.size ?? 0)} bytes in ${chunks} chunks, in ${r0(publishMs)} ms`)
  for (const h of hostNodes) {
    const d = await service(h.node, h.seed)
    d.petnames.set('author', authorDoa.zoneKey())
    await d.install('guestbook.author')
    await d.host(appKey)
  }
  console.log('3 hosts installed it by name and host it')

  // One install by a fresh client-mode node: release + host set, then the bundles from `pick`.
  const installOnce = async (pick: (hosts: HostEntry[], node: OverlayNode) => ChunkProvider[], i: number): Promise<number> => {
    const { node } = await make(4, hostNodes.map(h => h.node.multiaddrs[0]), false)
    try {
      const start = performance.now()
      const [current, values] = await Promise.all([fetchCurrentRelease(node.oht, appKey), node.oht.getValues(hostSetKey(appKey))])
      if (current === undefined) throw new Error('no release found')
      const hosts = values.values.map(v => openHostValue(appKey, v)).filter((e): e is HostEntry => e !== undefined).sort((a, b) => a.host < b.host ? -1 : 1)
      const providers = pick(hosts, node)
      for (const ref of [current.signed.manifest.bundles.code, current.signed.manifest.bundles.assets]) if (ref !== null) await fetchBundleFrom(ref, providers)
      const ms = performance.now() - start
      console.log(`  install ${i}: ${r0(ms)} ms (${providers.map(p => p.name).join(' + ')})`)
      return ms
    } finally {
      await node.stop()
      nodes.splice(nodes.indexOf(node), 1)
    }
  }
  const fromHosts = (n: number, withOht: boolean) => (hosts: HostEntry[], node: OverlayNode): ChunkProvider[] => [
    ...hosts.slice(0, n).map(h => hostChunkProvider(createHostClient(node.peers, { publicKey: h.publicKey, addrs: h.addrs }, { timeoutMs: 60_000 }), appKey, 4)),
    ...(withOht ? [ohtChunkProvider(node.oht, 4)] : [])
  ]
  const configs: Array<[string, (hosts: HostEntry[], node: OverlayNode) => ChunkProvider[]]> = [
    ['1 host', fromHosts(1, false)],
    ['3 hosts', fromHosts(3, false)],
    ['3 hosts + OHT (the default)', fromHosts(3, true)]
  ]
  const installs: Record<string, ReturnType<typeof stats>> = {}
  for (const [name, pick] of configs) {
    console.log(`cold installs, ${name}:`)
    const ms: number[] = []
    for (let i = 0; i < TRIALS; i++) ms.push(await installOnce(pick, i))
    installs[name] = stats(ms)
  }
  results.app = { bytes: (m.bundles.assets?.size ?? 0) + (m.bundles.code?.size ?? 0), chunks }
  results.publishMs = r0(publishMs)
  results.installs = installs
  const ratio = installs['1 host'].p50 / installs['3 hosts'].p50
  results.ratio1hostTo3hosts = Math.round(ratio * 100) / 100

  // Name resolution from a fresh node: the first (cold circuits) and then warm ones.
  const { node: resolver, seed: rseed } = await make(4, hostNodes.map(h => h.node.multiaddrs[0]), false)
  const rd = await service(resolver, rseed)
  rd.petnames.set('author', authorDoa.zoneKey())
  const res: number[] = []
  for (let i = 0; i < RESOLVES; i++) {
    t = performance.now()
    const r = await rd.names.resolve('guestbook.author')
    res.push(performance.now() - t)
    if (r.target.type !== 'app' || r.target.key !== pub.appKey) throw new Error('resolved the wrong target')
  }
  results.resolve = { first: r0(res[0]), warm: stats(res.slice(1)) }

  console.log('')
  for (const [name, s] of Object.entries(installs)) console.log(`install 1 MiB cold, ${name.padEnd(28)} p50 ${s.p50} ms, p95 ${s.p95} ms (n ${s.n})`)
  console.log(`1 host / 3 hosts (p50):                     ${results.ratio1hostTo3hosts}x`)
  console.log(`name resolution guestbook.author:           first ${r0(res[0])} ms; then p50 ${(results.resolve as { warm: { p50: number } }).warm.p50} ms, p95 ${(results.resolve as { warm: { p95: number } }).warm.p95} ms (n ${res.length - 1})`)
} finally {
  for (const d of doas) await d.stop().catch(() => {})
  for (const n of nodes) await n.stop().catch(() => {})
  for (const c of controls) await c.close().catch(() => {})
  await tn.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/doa-install.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
