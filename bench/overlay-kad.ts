/**
 * OHT vs @libp2p/kad-dht, side by side in one run, on the same 100 libp2p nodes over
 * @libp2p/memory (each node runs both DHTs: OHT on /oht/kad/1.0.0 through our DhtNet adapter,
 * kad-dht on /ipfs/kad/1.0.0), same parameters (k = 20, α = 3, one lookup path), same
 * workload: lookups of random targets and puts of random values from random nodes.
 *
 * Figures: lookup latency p50/p95, messages per lookup, lookup accuracy (share of the true 20
 * closest found), put write reach (how many of the true 20 closest, by each DHT's own metric,
 * hold the record) and put/get success.
 *
 * Usage: node --import tsx bench/overlay-kad.ts [--nodes 100] [--lookups 40] [--puts 20] [--latency 0] [--join-batch 5]
 */
import '../src/net/polyfill.ts'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createLibp2p, type Libp2p } from 'libp2p'
import { memory } from '@libp2p/memory'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, EventTypes, type KadDHT } from '@libp2p/kad-dht'
import { SeededRng, systemClock, toHex } from '../src/core/index.ts'
import { identityFromSeed, sha256 } from '../src/crypto/index.ts'
import { createGater, createLibp2pDhtNet, libp2pKeyFromSeed, type Libp2pDhtNet, type NetLibp2p } from '../src/net/index.ts'
import { createOhtNode, nodeIdFromPublicKey, xorDistance, type OhtNode } from '../src/oht/index.ts'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    lookups: { type: 'string', default: '40' },
    puts: { type: 'string', default: '20' },
    latency: { type: 'string', default: '0' },
    seed: { type: 'string', default: 'overlay-kad' },
    'join-batch': { type: 'string', default: '5' }
  }
})
const N = Number(args.nodes)
const LOOKUPS = Number(args.lookups)
const PUTS = Number(args.puts)
const LATENCY = Number(args.latency)
const JOIN_BATCH = Number(args['join-batch'])
const K = 20
const rng = new SeededRng(args.seed)

type Node = Libp2p<{ identify: Identify, ping: Ping, dht: KadDHT }>
interface Peer { libp2p: Node, oht: OhtNode, net: Libp2pDhtNet, ohtId: Uint8Array, kadId: Uint8Array }

function cmp (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}
function trueClosest (ids: Uint8Array[], target: Uint8Array, n: number): Set<number> {
  return new Set(ids.map((id, i) => ({ i, d: xorDistance(id, target) })).sort((x, y) => cmp(x.d, y.d)).slice(0, n).map(x => x.i))
}
function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

async function main (): Promise<void> {
  const t0 = performance.now()
  const peers: Peer[] = []
  const runId = `${process.pid}-${Math.floor(rng.next() * 1e9)}`
  for (let i = 0; i < N; i++) {
    const seed = rng.bytes(32)
    const libp2p = await createLibp2p({
      privateKey: libp2pKeyFromSeed(seed),
      addresses: { listen: [`/memory/bench-${runId}-${i}`] },
      transports: [memory({ latency: LATENCY })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: createGater(),
      connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 10_000, maxIncomingPendingConnections: 1000 },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({
          clientMode: false,
          kBucketSize: K,
          alpha: 3,
          disjointPaths: 1,
          peerInfoMapper: passthroughMapper,
          allowQueryWithZeroPeers: true,
          validators: { bench: async () => {} },
          selectors: { bench: () => 0 },
          querySelfInterval: 3_600_000,
          initialQuerySelfInterval: 3_600_000
        })
      }
    })
    const net = createLibp2pDhtNet({}, { libp2p: libp2p as unknown as NetLibp2p, clock: systemClock })
    await net.start()
    const identity = identityFromSeed(seed)
    const oht = createOhtNode({ addrs: net.ownContact().addrs, k: K, alpha: 3, maintenanceIntervalMs: 3_600_000 }, { identity, net, clock: systemClock, rng: rng.fork(`n${i}`) })
    await oht.start()
    const kadId = sha256(libp2p.peerId.toMultihash().bytes)
    peers.push({ libp2p, oht, net, ohtId: nodeIdFromPublicKey(identity.publicKey), kadId })
  }
  const createdMs = performance.now() - t0

  // Join: OHT bootstraps from node 0; kad-dht nodes dial node 0 and look themselves up.
  // Both join in batches of JOIN_BATCH nodes at a time (the first 10 one by one).
  const progress = (msg: string): void => { process.stderr.write(`[${Math.round((performance.now() - t0) / 1000)} s] ${msg}\n`) }
  progress(`${N} nodes up`)
  const inBatches = async (fn: (p: Peer) => Promise<void>): Promise<void> => {
    const rest = peers.slice(1)
    for (let i = 0; i < rest.length;) {
      const size = i < 10 ? 1 : JOIN_BATCH
      await Promise.all(rest.slice(i, i + size).map(fn))
      i += size
      if (i % 20 === 0) progress(`joined ${i}`)
    }
  }
  const tJoin = performance.now()
  await inBatches(async (p) => { await p.oht.bootstrap([peers[0].net.ownContact()]) })
  const ohtJoinMs = performance.now() - tJoin
  progress('OHT joined')
  const tKadJoin = performance.now()
  const addr0 = peers[0].libp2p.getMultiaddrs()[0]
  await inBatches(async (p) => {
    await p.libp2p.dial(addr0)
    // identify tells kad-dht the peer speaks its protocol; give it a moment to land
    await new Promise(resolve => setTimeout(resolve, 20))
    for await (const _ of p.libp2p.services.dht.getClosestPeers(p.libp2p.peerId.toMultihash().bytes)) { /* drain */ }
  })
  const kadJoinMs = performance.now() - tKadJoin
  progress('kad-dht joined')
  const ohtIds = peers.map(p => p.ohtId)
  const kadIds = peers.map(p => p.kadId)

  // Lookups
  const oht = { lat: [] as number[], msgs: [] as number[], acc: [] as number[] }
  const kad = { lat: [] as number[], msgs: [] as number[], acc: [] as number[] }
  for (let l = 0; l < LOOKUPS; l++) {
    const target = rng.bytes(32)
    const from = peers[rng.int(N)]
    const before = peers.reduce((s, p) => s + p.net.stats.requestsOut, 0)
    let t = performance.now()
    const found = await from.oht.findClosest(target)
    oht.lat.push(performance.now() - t)
    oht.msgs.push(peers.reduce((s, p) => s + p.net.stats.requestsOut, 0) - before)
    const truth = trueClosest(ohtIds, target, K)
    truth.delete(peers.indexOf(from))
    const foundIdx = new Set(found.map(c => ohtIds.findIndex(id => cmp(id, nodeIdFromPublicKey(c.publicKey)) === 0)))
    oht.acc.push([...truth].filter(i => foundIdx.has(i)).length / truth.size)

    const kadTarget = sha256(target)
    t = performance.now()
    let sent = 0
    const finals = new Set<string>()
    for await (const e of from.libp2p.services.dht.getClosestPeers(target)) {
      if (e.type === EventTypes.SEND_QUERY) sent++
      if (e.type === EventTypes.FINAL_PEER) finals.add(e.peer.id.toString())
    }
    kad.lat.push(performance.now() - t)
    kad.msgs.push(sent)
    const kTruth = trueClosest(kadIds, kadTarget, K)
    kTruth.delete(peers.indexOf(from))
    kad.acc.push([...kTruth].filter(i => finals.has(peers[i].libp2p.peerId.toString())).length / kTruth.size)
  }

  progress('lookups done')
  // Puts and gets
  const ohtPut = { reach: [] as number[], ok: 0, lat: [] as number[] }
  const kadPut = { reach: [] as number[], ok: 0, lat: [] as number[] }
  for (let q = 0; q < PUTS; q++) {
    const value = rng.bytes(256)
    const writer = rng.int(N)
    const reader = (writer + 1 + rng.int(N - 1)) % N
    let t = performance.now()
    const res = await peers[writer].oht.putImmutable(value)
    ohtPut.lat.push(performance.now() - t)
    const truth = trueClosest(ohtIds, res.key, K)
    ohtPut.reach.push([...truth].filter(i => peers[i].oht.store.get(res.key) !== undefined).length)
    const got = await peers[reader].oht.get(res.key)
    if (got !== undefined && toHex(got.value) === toHex(value)) ohtPut.ok++

    const key = new TextEncoder().encode(`/bench/${toHex(rng.bytes(16))}`)
    t = performance.now()
    const stored = new Set<string>([peers[writer].libp2p.peerId.toString()])
    try {
      for await (const e of peers[writer].libp2p.services.dht.put(key, value)) {
        if (e.type === EventTypes.PEER_RESPONSE && e.messageName === 'PUT_VALUE') stored.add(e.from.toString())
      }
    } catch {}
    kadPut.lat.push(performance.now() - t)
    const kTruth = trueClosest(kadIds, sha256(key), K)
    kadPut.reach.push([...kTruth].filter(i => stored.has(peers[i].libp2p.peerId.toString())).length)
    try {
      for await (const e of peers[reader].libp2p.services.dht.get(key)) {
        if (e.type === EventTypes.VALUE && toHex(e.value) === toHex(value)) { kadPut.ok++; break }
      }
    } catch {}
  }

  const summary = (name: string, s: typeof oht, p: typeof ohtPut, joinMs: number): Record<string, number | string> => ({
    dht: name,
    joinMs: round(joinMs, 0),
    lookupP50Ms: round(pct(s.lat, 50)),
    lookupP95Ms: round(pct(s.lat, 95)),
    messagesPerLookup: round(mean(s.msgs)),
    lookupAccuracy: round(mean(s.acc), 3),
    putP50Ms: round(pct(p.lat, 50)),
    putP95Ms: round(pct(p.lat, 95)),
    putReachMeanOf20: round(mean(p.reach), 2),
    putReachMinOf20: Math.min(...p.reach),
    getSuccess: `${p.ok}/${PUTS}`
  })
  const rows = [summary('OHT', oht, ohtPut, ohtJoinMs), summary('@libp2p/kad-dht', kad, kadPut, kadJoinMs)]
  console.log(`overlay-kad: ${N} nodes on @libp2p/memory (latency ${LATENCY} ms), k=${K}, alpha=3, 1 path, ${LOOKUPS} lookups, ${PUTS} puts, seed ${args.seed}; nodes up in ${round(createdMs / 1000)} s`)
  console.table(rows)
  const ratio = {
    lookupP50: round(rows[0].lookupP50Ms as number / (rows[1].lookupP50Ms as number), 2),
    messagesPerLookup: round(rows[0].messagesPerLookup as number / (rows[1].messagesPerLookup as number), 2)
  }
  console.log('OHT / kad-dht ratios:', ratio)
  writeFileSync(new URL('./results/overlay-kad.json', import.meta.url), JSON.stringify({
    bench: 'overlay-kad', nodes: N, lookups: LOOKUPS, puts: PUTS, latencyMs: LATENCY, seed: args.seed, k: K, alpha: 3, disjointPaths: 1, rows, ratio
  }, null, 2))

  for (const p of peers) { await p.oht.stop(); await p.net.stop() }
  await Promise.all(peers.map(async p => { await p.libp2p.stop() }))
}

await main()
