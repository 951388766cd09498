/**
 * OHT vs @libp2p/kad-dht, side by side in one run, on the same N libp2p nodes over
 * @libp2p/memory (each node runs both DHTs: OHT on /oht/kad/1.0.0 through our DhtNet adapter,
 * kad-dht on /ipfs/kad/1.0.0), same parameters (k = 20, α = 3, one lookup path), same
 * workload from the same nodes: lookups of random targets, puts of random values and gets of
 * them from another node.
 *
 * Two phases:
 *  - steady: every node up. On a perfect network both DHTs should hit the ceilings (accuracy 1,
 *    reach 20/20), so this phase mostly compares latency and messages.
 *  - churn: a fraction (--crash, default 0.2) of the nodes, never node 0, crash abruptly (their
 *    connections are aborted and their libp2p node stopped; no goodbye at the DHT level), and
 *    with no repair time the same workload runs again from surviving nodes. Routing tables on
 *    both sides still list the dead nodes, which is the condition write reach is about.
 *
 * Figures per phase and DHT: lookup latency p50/p95, messages per lookup (requests attempted,
 * answered or not, by all nodes during the lookup) and how many of them failed, lookup accuracy
 * (share of the true 20 closest live nodes, the origin excluded, that the lookup returned),
 * put latency, write reach (how many of the true 20 closest live nodes, by each DHT's own
 * metric, hold the record in their local store afterwards; the writer counts when it is one
 * of them, for both DHTs, since both store locally when they are among the closest) and get
 * success. Both DHTs' background maintenance is off for the whole run (see `createPeer`), so
 * the churn phase measures what each protocol's put/get/lookup does with stale tables.
 *
 * Join is not like for like: OHT joins first and opens most connections, from which kad-dht's
 * routing tables also fill (its topology listener adds every connected peer that speaks its
 * protocol); kad-dht's join then mostly reuses them. Join times are reported, not compared.
 *
 * Writes bench/results/overlay-kad.json (phases.steady, phases.churn).
 *
 * Usage: node --import tsx bench/overlay-kad.ts [--nodes 100] [--lookups 40] [--puts 20] [--latency 0] [--join-batch 5] [--crash 0.2] [--seed overlay-kad]
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
    'join-batch': { type: 'string', default: '5' },
    crash: { type: 'string', default: '0.2' }
  }
})
const N = Number(args.nodes)
const LOOKUPS = Number(args.lookups)
const PUTS = Number(args.puts)
const LATENCY = Number(args.latency)
const JOIN_BATCH = Number(args['join-batch'])
const CRASH = Number(args.crash)
const K = 20
const ALPHA = 3
/** Longer than any run: periodic maintenance never fires (OHT's and kad-dht's alike). */
const NEVER_MS = 3_600_000
const rng = new SeededRng(args.seed)
if (!(N >= 2) || !(CRASH >= 0 && CRASH < 1) || Math.round(CRASH * N) > N - 3) {
  throw new Error('--nodes must be at least 2 and --crash in [0, 1), leaving node 0 and at least two other nodes up')
}

type Node = Libp2p<{ identify: Identify, ping: Ping, dht: KadDHT }>
interface Peer { libp2p: Node, oht: OhtNode, net: Libp2pDhtNet, ohtId: Uint8Array, kadId: Uint8Array }

/**
 * The parts of the installed kad-dht (16.x) class this bench reaches past the public types
 * for: the routing-table refresh timer (no init option sets its interval) and the local record
 * lookup (to check what a node really stores, not what its PUT_VALUE answer said).
 */
interface KadInternals {
  routingTableRefresh?: { refreshInterval: number }
  contentFetching?: { getLocal: (key: Uint8Array) => Promise<{ value: Uint8Array }> }
}
function internals (p: Peer): Required<KadInternals> {
  const dht = p.libp2p.services.dht as unknown as KadInternals
  if (dht.routingTableRefresh === undefined || typeof dht.contentFetching?.getLocal !== 'function') {
    throw new Error('the installed @libp2p/kad-dht no longer has routingTableRefresh / contentFetching.getLocal: update bench/overlay-kad.ts')
  }
  return dht as Required<KadInternals>
}

function cmp (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}
/** Indices of the n nodes among `among` whose ids are closest to target, closest first. */
function trueClosest (ids: Uint8Array[], among: number[], target: Uint8Array, n: number): number[] {
  return among.map(i => ({ i, d: xorDistance(ids[i], target) })).sort((x, y) => cmp(x.d, y.d)).slice(0, n).map(x => x.i)
}
function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

async function createPeer (i: number, seed: Uint8Array, runId: string): Promise<Peer> {
  const libp2p = await createLibp2p({
    privateKey: libp2pKeyFromSeed(seed),
    addresses: { listen: [`/memory/bench-${runId}-${i}`] },
    transports: [memory({ latency: LATENCY })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: createGater(),
    connectionManager: {
      // every node may end up connected to every other: no pruning, no inbound throttling
      maxConnections: 1000,
      inboundConnectionThreshold: 10_000,
      maxIncomingPendingConnections: 1000,
      // The reconnect queue redials KEEP_ALIVE-tagged peers (kad-dht tags its closest ones)
      // when they disconnect: after the crash it would keep redialling dead nodes in the
      // background. Neither DHT's operations depend on it.
      reconnectRetries: 0
    },
    // The connection monitor pings every open connection every 10 s over a new stream and
    // aborts connections whose ping is late. With ~N²/2 connections in one CPU-starved process
    // that is hundreds of streams a second (the main CPU sink of the earlier runs: joins took
    // ~8 min, lookups ~2 s on a zero-latency transport), and late pings abort connections that
    // then have to be re-handshaked. It serves neither DHT's measured operations and both share
    // the connections, so turning it off is neutral.
    connectionMonitor: { enabled: false },
    // started below, after the kad-dht refresh interval is set
    start: false,
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        clientMode: false,
        kBucketSize: K,
        alpha: ALPHA,
        disjointPaths: 1,
        peerInfoMapper: passthroughMapper,
        // do not hold queries back until a first self-query has run (there is none, below)
        allowQueryWithZeroPeers: true,
        validators: { bench: async () => {} },
        selectors: { bench: () => 0 },
        // Self-queries are kad-dht's periodic maintenance (default every 5 min, first after
        // 1 s); OHT's maintenance is likewise off (maintenanceIntervalMs). The join below runs
        // one self-lookup per node explicitly, as OHT's bootstrap does.
        querySelfInterval: NEVER_MS,
        initialQuerySelfInterval: NEVER_MS
      })
    }
  })
  const node = libp2p as unknown as Node
  const net = createLibp2pDhtNet({}, { libp2p: libp2p as unknown as NetLibp2p, clock: systemClock })
  const identity = identityFromSeed(seed)
  const peer: Peer = { libp2p: node, oht: undefined as unknown as OhtNode, net, ohtId: nodeIdFromPublicKey(identity.publicKey), kadId: sha256(node.peerId.toMultihash().bytes) }
  // kad-dht's routing-table refresh runs random-walk lookups for every bucket depth at start
  // and then every 5 min (not settable through KadDHTInit): in a run longer than that, every
  // node launches up to 16 lookups at once, in the middle of the measurements. The run at start
  // stays (the table is empty then: it ends at once); the periodic one is pushed past the run,
  // like OHT's bucket refresh.
  internals(peer).routingTableRefresh.refreshInterval = NEVER_MS
  await libp2p.start()
  await net.start()
  peer.oht = createOhtNode({ addrs: net.ownContact().addrs, k: K, alpha: ALPHA, maintenanceIntervalMs: NEVER_MS }, { identity, net, clock: systemClock, rng: rng.fork(`n${i}`) })
  await peer.oht.start()
  return peer
}

interface LookupMiss { lookup: number, rank: number, node: number, knownBy?: number }
interface LookupStats { lat: number[], msgs: number[], failed: number[], acc: number[], misses: LookupMiss[] }
interface Miss { put: number, rank: number, node: number, inLookup: boolean, putAnswered?: boolean, putError?: string }
interface PutStats { lat: number[], reach: number[], sentTo: number[], getLat: number[], ok: number, n: number, misses: Miss[] }
const newLookupStats = (): LookupStats => ({ lat: [], msgs: [], failed: [], acc: [], misses: [] })
const newPutStats = (): PutStats => ({ lat: [], reach: [], sentTo: [], getLat: [], ok: 0, n: 0, misses: [] })

async function main (): Promise<void> {
  const t0 = performance.now()
  const progress = (msg: string): void => { process.stderr.write(`[${Math.round((performance.now() - t0) / 1000)} s] ${msg}\n`) }
  const peers: Peer[] = []
  const runId = `${process.pid}-${Math.floor(rng.next() * 1e9)}`
  for (let i = 0; i < N; i++) peers.push(await createPeer(i, rng.bytes(32), runId))
  const createdMs = performance.now() - t0
  const ohtIds = peers.map(p => p.ohtId)
  const kadIds = peers.map(p => p.kadId)
  const byOhtId = new Map(peers.map((p, i) => [toHex(p.ohtId), i]))

  // Join: OHT bootstraps from node 0; kad-dht nodes dial node 0 and look themselves up.
  // Both join in batches of JOIN_BATCH nodes at a time (the first 10 one by one).
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

  const sumOut = (): { req: number, fail: number } => peers.reduce((s, p) => ({ req: s.req + p.net.stats.requestsOut, fail: s.fail + p.net.stats.failuresOut }), { req: 0, fail: 0 })

  async function lookups (alive: number[], oht: LookupStats, kad: LookupStats): Promise<void> {
    for (let l = 0; l < LOOKUPS; l++) {
      const target = rng.bytes(32)
      const fromIdx = alive[rng.int(alive.length)]
      const from = peers[fromIdx]
      const others = alive.filter(i => i !== fromIdx)

      const ohtLookup = async (): Promise<void> => {
        const before = sumOut()
        const t = performance.now()
        const found = await from.oht.findClosest(target)
        oht.lat.push(performance.now() - t)
        const after = sumOut()
        oht.msgs.push(after.req - before.req)
        oht.failed.push(after.fail - before.fail)
        const truth = trueClosest(ohtIds, others, target, K)
        const foundIdx = new Set(found.map(c => byOhtId.get(toHex(nodeIdFromPublicKey(c.publicKey)))))
        oht.acc.push(truth.filter(i => foundIdx.has(i)).length / truth.length)
        truth.forEach((i, rank) => {
          // knownBy: how many live nodes' routing tables list the missed node
          if (!foundIdx.has(i)) oht.misses.push({ lookup: l, rank, node: i, knownBy: alive.filter(j => peers[j].oht.routingTable.has(ohtIds[i])).length })
        })
      }
      const kadLookup = async (): Promise<void> => {
        // kad-dht emits DIAL_PEER for every request it attempts and SEND_QUERY only once the
        // stream is open, so DIAL_PEER counts attempts the way OHT's requestsOut does.
        const t = performance.now()
        let attempted = 0
        let answered = 0
        const finals = new Set<string>()
        for await (const e of from.libp2p.services.dht.getClosestPeers(target)) {
          if (e.type === EventTypes.DIAL_PEER) attempted++
          if (e.type === EventTypes.PEER_RESPONSE) answered++
          if (e.type === EventTypes.FINAL_PEER) finals.add(e.peer.id.toString())
        }
        kad.lat.push(performance.now() - t)
        kad.msgs.push(attempted)
        kad.failed.push(attempted - answered)
        const kTruth = trueClosest(kadIds, others, sha256(target), K)
        kad.acc.push(kTruth.filter(i => finals.has(peers[i].libp2p.peerId.toString())).length / kTruth.length)
        kTruth.forEach((i, rank) => { if (!finals.has(peers[i].libp2p.peerId.toString())) kad.misses.push({ lookup: l, rank, node: i }) })
      }
      // Alternate which DHT goes first: connections one opens are there for the other.
      if (l % 2 === 0) { await ohtLookup(); await kadLookup() } else { await kadLookup(); await ohtLookup() }
    }
  }

  async function putsAndGets (alive: number[], oht: PutStats, kad: PutStats): Promise<void> {
    for (let q = 0; q < PUTS; q++) {
      const value = rng.bytes(256)
      const writer = alive[rng.int(alive.length)]
      const reader = alive.filter(i => i !== writer)[rng.int(alive.length - 1)]

      // OHT
      oht.n++
      let t = performance.now()
      const res = await peers[writer].oht.putImmutable(value)
      oht.lat.push(performance.now() - t)
      const truth = trueClosest(ohtIds, alive, res.key, K)
      const inLookup = new Set(res.closest.map(c => byOhtId.get(toHex(nodeIdFromPublicKey(c.publicKey)))))
      const putErrors = new Map(res.errors.map(e => [byOhtId.get(toHex(nodeIdFromPublicKey(e.peer.publicKey))), e.code]))
      let reach = 0
      truth.forEach((i, rank) => {
        if (peers[i].oht.store.get(res.key) !== undefined) { reach++; return }
        const m: Miss = { put: q, rank, node: i, inLookup: inLookup.has(i) }
        const code = putErrors.get(i)
        if (code !== undefined) m.putError = code
        oht.misses.push(m)
      })
      oht.reach.push(reach)
      // remote PUTs sent: attempts minus the local store (the writer held no copy before)
      oht.sentTo.push(res.attempted - (peers[writer].oht.store.get(res.key) !== undefined ? 1 : 0))
      t = performance.now()
      const got = await peers[reader].oht.get(res.key)
      oht.getLat.push(performance.now() - t)
      if (got !== undefined && toHex(got.value) === toHex(value)) oht.ok++

      // kad-dht
      kad.n++
      const key = new TextEncoder().encode(`/bench/${toHex(rng.bytes(16))}`)
      // put() swallows its lookup's FINAL_PEER events and sends PUT_VALUE to each of those
      // peers instead: the SEND_QUERY events of PUT_VALUE are the put's targets
      const sentTo = new Set<string>()
      const answered = new Set<string>()
      t = performance.now()
      try {
        for await (const e of peers[writer].libp2p.services.dht.put(key, value)) {
          if (e.type === EventTypes.SEND_QUERY && e.messageName === 'PUT_VALUE') sentTo.add(e.to.toString())
          if (e.type === EventTypes.PEER_RESPONSE && e.messageName === 'PUT_VALUE') answered.add(e.from.toString())
        }
      } catch {}
      kad.lat.push(performance.now() - t)
      const kTruth = trueClosest(kadIds, alive, sha256(key), K)
      let kReach = 0
      for (const [rank, i] of kTruth.entries()) {
        // what the node really holds in its datastore, not what its PUT_VALUE answer said
        const holds = await internals(peers[i]).contentFetching.getLocal(key).then(r => toHex(r.value) === toHex(value), () => false)
        if (holds) { kReach++; continue }
        const id = peers[i].libp2p.peerId.toString()
        kad.misses.push({ put: q, rank, node: i, inLookup: sentTo.has(id), putAnswered: answered.has(id) })
      }
      kad.reach.push(kReach)
      kad.sentTo.push(sentTo.size)
      t = performance.now()
      let ok = false
      try {
        for await (const e of peers[reader].libp2p.services.dht.get(key)) {
          if (e.type === EventTypes.VALUE && toHex(e.value) === toHex(value)) { ok = true; break }
        }
      } catch {}
      kad.getLat.push(performance.now() - t)
      if (ok) kad.ok++
    }
  }

  const summary = (name: string, s: LookupStats, p: PutStats): Record<string, number | string> => ({
    dht: name,
    lookupP50Ms: round(pct(s.lat, 50)),
    lookupP95Ms: round(pct(s.lat, 95)),
    msgsPerLookup: round(mean(s.msgs)),
    failedPerLookup: round(mean(s.failed)),
    lookupAccuracy: round(mean(s.acc), 3),
    putP50Ms: round(pct(p.lat, 50)),
    putP95Ms: round(pct(p.lat, 95)),
    reachMeanOf20: round(mean(p.reach), 2),
    reachMinOf20: p.reach.length > 0 ? Math.min(...p.reach) : NaN,
    putsSentMean: round(mean(p.sentTo), 1),
    getP50Ms: round(pct(p.getLat, 50)),
    getSuccess: `${p.ok}/${p.n}`
  })
  const header = `overlay-kad: ${N} nodes on @libp2p/memory (latency ${LATENCY} ms), k=${K}, alpha=${ALPHA}, 1 path, ${LOOKUPS} lookups, ${PUTS} puts per phase, seed ${args.seed}; nodes up in ${round(createdMs / 1000)} s; join OHT ${round(ohtJoinMs / 1000)} s, kad-dht ${round(kadJoinMs / 1000)} s`
  console.log(header)
  const phases: Record<string, unknown> = {}
  async function phase (name: string, alive: number[], note: string): Promise<void> {
    const tPhase = performance.now()
    const ohtL = newLookupStats()
    const kadL = newLookupStats()
    const ohtP = newPutStats()
    const kadP = newPutStats()
    await lookups(alive, ohtL, kadL)
    progress(`${name}: lookups done`)
    await putsAndGets(alive, ohtP, kadP)
    progress(`${name}: puts done`)
    const rows = [summary('OHT', ohtL, ohtP), summary('@libp2p/kad-dht', kadL, kadP)]
    const ratio = {
      lookupP50: round(rows[0].lookupP50Ms as number / (rows[1].lookupP50Ms as number), 2),
      msgsPerLookup: round(rows[0].msgsPerLookup as number / (rows[1].msgsPerLookup as number), 2)
    }
    console.log(`\nphase ${name}: ${note}`)
    console.table(rows)
    console.log(`OHT / kad-dht ratios (${name}):`, ratio)
    phases[name] = {
      note,
      aliveNodes: alive.length,
      wallMs: round(performance.now() - tPhase, 0),
      rows,
      ratio,
      reachPerPut: { oht: ohtP.reach, kad: kadP.reach },
      remotePutsSent: { oht: ohtP.sentTo, kad: kadP.sentTo },
      // each true-closest live node that did not hold the record: its rank (0 = closest);
      // inLookup: OHT, whether the writer's put lookup returned it; kad-dht, whether the put
      // was sent to it (its targets are its lookup's final peers); putAnswered (kad-dht),
      // whether it answered the PUT_VALUE; putError (OHT), the error its PUT got
      misses: { oht: ohtP.misses, kad: kadP.misses },
      // each true-closest live node a lookup did not return (rank 0 = closest)
      lookupMisses: { oht: ohtL.misses, kad: kadL.misses }
    }
  }

  const all = peers.map((_, i) => i)
  await phase('steady', all, 'all nodes up')

  // Churn: crash a seeded random subset (never node 0); the workload then runs from survivors.
  const crashCount = Math.round(CRASH * N)
  const candidates = all.slice(1)
  const crashed: number[] = []
  for (let c = 0; c < crashCount; c++) crashed.push(candidates.splice(rng.int(candidates.length), 1)[0])
  const crashedSet = new Set(crashed)
  const tCrash = performance.now()
  await Promise.all(crashed.map(async (i) => {
    const p = peers[i]
    // abort (not close) every connection, then stop libp2p: peers see a reset, as when a
    // process dies; the OHT node gets no stop() and sends nothing
    for (const c of p.libp2p.getConnections()) c.abort(new Error('crash'))
    await p.libp2p.stop()
  }))
  progress(`crashed ${crashCount} nodes in ${round(performance.now() - tCrash, 0)} ms`)
  const survivors = all.filter(i => !crashedSet.has(i))
  await phase('churn', survivors, `${crashCount} of ${N} nodes crashed (seeded), no repair time; truth = the 20 closest surviving nodes`)

  writeFileSync(new URL('./results/overlay-kad.json', import.meta.url), JSON.stringify({
    bench: 'overlay-kad',
    nodes: N,
    lookups: LOOKUPS,
    puts: PUTS,
    latencyMs: LATENCY,
    seed: args.seed,
    k: K,
    alpha: ALPHA,
    disjointPaths: 1,
    crash: CRASH,
    crashed,
    nodesUpMs: round(createdMs, 0),
    joinMs: { oht: round(ohtJoinMs, 0), kad: round(kadJoinMs, 0) },
    wallMs: round(performance.now() - t0, 0),
    phases
  }, null, 2))

  await Promise.all(peers.map(async (p, i) => {
    try { await p.oht.stop() } catch {}
    try { await p.net.stop() } catch {}
    if (!crashedSet.has(i)) await p.libp2p.stop()
  }))
}

await main()
