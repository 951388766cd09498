/**
 * OHT get and put latency on the private Tor network, onion-only nodes, cold vs warm:
 *  - warm: the node already holds connections to the peers it asks (yamux streams on open
 *    circuits: the case connection reuse is for);
 *  - cold: every connection of the asking node was closed and its SOCKS isolation changed
 *    before the operation, so each peer costs a new circuit and rendezvous, a noise
 *    handshake and identify (descriptors stay cached in tor: first contact minus the HSDir
 *    fetch).
 * Gets are made by two client-mode readers (no onion service, so they hold no replicas).
 * Same nodes, same records, one run. Figures p50/p95 in ms; JSON to bench/results/overlay-tor.json.
 *
 * Usage: node --import tsx bench/overlay-tor.ts [--nodes 8] [--clients 4] [--ops 8]
 */
import { writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { createOverlayNode, torConnector, torPublisher, type OverlayNode } from '../src/net/index.ts'
import { startTestnet, type TorControl } from '../src/tor/index.ts'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '8' },
    clients: { type: 'string', default: '4' },
    ops: { type: 'string', default: '8' }
  }
})
const N = Number(args.nodes)
const CLIENTS = Number(args.clients)
const OPS = Number(args.ops)

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const r0 = (x: number): number => Math.round(x)

const t0 = performance.now()
const tn = await startTestnet({ clients: CLIENTS })
const netMs = performance.now() - t0
const controls: TorControl[] = []
const nodes: OverlayNode[] = []
const epochs: number[] = []
try {
  // Readers (listen = false) run in client mode: no onion service, so they never store
  // others' records and every get they make crosses the network.
  const make = async (i: number, bootstrap: string[], listen = true): Promise<OverlayNode> => {
    const client = tn.clients[i % CLIENTS]
    const seed = new Uint8Array(randomBytes(32))
    epochs[i] = 0
    let publish
    if (listen) {
      const control = await client.control()
      controls.push(control)
      publish = torPublisher({ control, seed })
    }
    return await createOverlayNode({
      seed,
      onionOnly: true,
      onion: {
        connect: torConnector({ socksPort: client.socksPort }),
        publish,
        // per peer and per epoch: bumping the epoch forces new circuits
        isolation: (t) => `${t.address}/${epochs[i]}`
      },
      bootstrap,
      oht: { requestTimeout: { initialMs: 20_000, minMs: 2_000, maxMs: 45_000 } }
    })
  }
  const tUp = performance.now()
  nodes.push(await make(0, []))
  const settled = await Promise.allSettled(Array.from({ length: N - 1 }, async (_, j) => await make(j + 1, nodes[0].multiaddrs)))
  for (const r of settled) if (r.status === 'fulfilled') nodes.push(r.value)
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  const readers = await Promise.all([N, N + 1].map(async i => await make(i, nodes[0].multiaddrs, false)))
  nodes.push(...readers)
  const upMs = performance.now() - tUp

  const coldAll = async (i: number): Promise<void> => {
    epochs[i]++
    const node = nodes[i].libp2p
    await Promise.all(node.getConnections().map(async c => { await c.close().catch(() => {}) }))
  }

  const put = { cold: [] as number[], warm: [] as number[] }
  const get = { cold: [] as number[], warm: [] as number[] }
  let failures = 0
  const keys: Uint8Array[] = []
  for (let op = 0; op < OPS; op++) {
    const writer = op % N
    for (const mode of ['cold', 'warm'] as const) {
      if (mode === 'cold') await coldAll(writer)
      const t = performance.now()
      const res = await nodes[writer].oht.putImmutable(new Uint8Array(randomBytes(512)))
      put[mode].push(performance.now() - t)
      if (res.stored === 0) failures++
      keys.push(res.key)
    }
  }
  for (let op = 0; op < OPS; op++) {
    const reader = N + (op % 2)
    for (const mode of ['cold', 'warm'] as const) {
      // a record this reader has not fetched yet: a cached hit would not cross the network
      const key = keys[(op * 2 + (mode === 'cold' ? 0 : 1)) % keys.length]
      if (mode === 'cold') await coldAll(reader)
      const t = performance.now()
      const got = await nodes[reader].oht.get(key)
      get[mode].push(performance.now() - t)
      if (got === undefined) failures++
    }
  }
  const rows = [
    { op: 'put', mode: 'cold', p50Ms: r0(pct(put.cold, 50)), p95Ms: r0(pct(put.cold, 95)), n: put.cold.length },
    { op: 'put', mode: 'warm', p50Ms: r0(pct(put.warm, 50)), p95Ms: r0(pct(put.warm, 95)), n: put.warm.length },
    { op: 'get', mode: 'cold', p50Ms: r0(pct(get.cold, 50)), p95Ms: r0(pct(get.cold, 95)), n: get.cold.length },
    { op: 'get', mode: 'warm', p50Ms: r0(pct(get.warm, 50)), p95Ms: r0(pct(get.warm, 95)), n: get.warm.length }
  ]
  const ratio = {
    putColdOverWarmP50: Math.round((rows[0].p50Ms / rows[1].p50Ms) * 100) / 100,
    getColdOverWarmP50: Math.round((rows[2].p50Ms / rows[3].p50Ms) * 100) / 100
  }
  console.log(`overlay-tor: ${N} onion-only OHT nodes + 2 client-mode readers on ${CLIENTS} tor clients (private network up in ${r0(netMs / 1000)} s, nodes joined in ${r0(upMs / 1000)} s), ${OPS} ops per row, failures ${failures}`)
  console.table(rows)
  console.log('cold / warm:', ratio)
  writeFileSync(new URL('./results/overlay-tor.json', import.meta.url), JSON.stringify({
    bench: 'overlay-tor', nodes: N, clients: CLIENTS, ops: OPS, testnetMs: r0(netMs), joinMs: r0(upMs), failures, rows, ratio
  }, null, 2))
} finally {
  await Promise.allSettled(nodes.map(async n => { await n.stop() }))
  await Promise.allSettled(controls.map(async c => { await c.close() }))
  await tn.stop()
}
