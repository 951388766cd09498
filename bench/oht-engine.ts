/**
 * OHT engine micro/meso benchmark: codec throughput, routing-table closest() against a
 * brute-force baseline, and an in-process network of N nodes (zero-latency bus, FakeClock)
 * measuring lookups, puts and gets: messages per operation (p50/p95), engine CPU per request
 * against a raw echo round trip on the same bus, and heap per node.
 *
 * Usage: node --import tsx bench/oht-engine.ts [nodes=500] [ops=200]
 * Writes bench/results/oht-engine.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { FakeClock, SeededRng, type AbortOptions } from '../src/core/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import {
  compareDistance, createOhtNode, createRoutingTable, createSignatureVerifier, decodeResponse, encodeResponse,
  nodeIdFromPublicKey, type DhtNet, type DhtRequestHandler, type OhtNode, type PeerContact
} from '../src/oht/index.ts'

const N = Number(process.argv[2] ?? 500)
const OPS = Number(process.argv[3] ?? 200)
const rng = new SeededRng('bench-oht')
const results: Record<string, unknown> = { nodes: N, ops: OPS, node: process.version }

function pct (xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
function rate (n: number, ms: number): number { return Math.round(n / (ms / 1000)) }
const now = (): number => performance.now()

// ---------------------------------------------------------------- codec
{
  const contacts = Array.from({ length: 20 }, (_, i) => ({ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs: [`/onion3/${'b'.repeat(56)}:${4000 + i}`] } }))
  const frame = encodeResponse({ type: 'nodes', token: rng.bytes(32), contacts })
  const iters = 20_000
  let t = now()
  for (let i = 0; i < iters; i++) encodeResponse({ type: 'nodes', token: contacts[0].id, contacts })
  const encMs = now() - t
  t = now()
  for (let i = 0; i < iters; i++) decodeResponse(frame)
  const decMs = now() - t
  // Baseline: JSON of the same content, what a naive codec would do.
  const json = JSON.stringify(contacts.map(c => ({ id: Buffer.from(c.id).toString('hex'), pk: Buffer.from(c.contact.publicKey).toString('hex'), addrs: c.contact.addrs })))
  t = now()
  for (let i = 0; i < iters; i++) JSON.parse(json)
  const jsonMs = now() - t
  results.codec = { nodesFrameBytes: frame.byteLength, jsonBytes: json.length, encodePerSec: rate(iters, encMs), decodePerSec: rate(iters, decMs), jsonParsePerSec: rate(iters, jsonMs), decodeVsJsonParse: +(jsonMs / decMs).toFixed(2) }
  console.log(`codec: NODES(20) frame ${frame.byteLength} B (JSON ${json.length} B); encode ${rate(iters, encMs)}/s, decode ${rate(iters, decMs)}/s, JSON.parse baseline ${rate(iters, jsonMs)}/s (decode ${(jsonMs / decMs).toFixed(2)}x faster)`)
}

// ---------------------------------------------------------------- routing table
{
  const self = rng.bytes(32)
  const table = createRoutingTable(self)
  for (let i = 0; i < 5000; i++) table.add(rng.bytes(32), { publicKey: rng.bytes(32), addrs: ['x'] }, 0)
  const all = table.contacts()
  const targets = Array.from({ length: 2000 }, () => rng.bytes(32))
  let t = now()
  for (const target of targets) table.closest(target, 20)
  const ms = now() - t
  t = now()
  for (const target of targets.slice(0, 500)) all.slice().sort((a, b) => compareDistance(a.id, b.id, target)).slice(0, 20)
  const bruteMs = (now() - t) * 4
  results.routingTable = { contacts: table.size, closestPerSec: rate(targets.length, ms), bruteForcePerSec: rate(targets.length, bruteMs), speedup: +(bruteMs / ms).toFixed(1) }
  console.log(`routing table (${table.size} contacts): closest(20) ${rate(targets.length, ms)}/s vs brute-force sort ${rate(targets.length, bruteMs)}/s (${(bruteMs / ms).toFixed(1)}x)`)
}

// ---------------------------------------------------------------- network
class Bus {
  readonly handlers = new Map<string, DhtRequestHandler>()
  requests = 0
  endpoint (self: PeerContact): DhtNet {
    return {
      request: async (to: PeerContact, frame: Uint8Array, options: AbortOptions = {}) => {
        this.requests++
        const h = this.handlers.get(to.addrs[0])
        if (h === undefined) throw new Error('unreachable')
        return await h(self, frame, options)
      },
      handle: (handler) => { this.handlers.set(self.addrs[0], handler) }
    }
  }
}

const clock = new FakeClock()
const bus = new Bus()
const verifier = createSignatureVerifier({ cacheSize: 4096 })
const heap0 = (globalThis.gc?.(), process.memoryUsage().heapUsed)
const nodes: OhtNode[] = []
let t0 = now()
for (let i = 0; i < N; i++) {
  const identity = identityFromSeed(rng.bytes(32))
  const addr = `sim:${i}`
  const node = createOhtNode({ addrs: [addr] }, { identity, net: bus.endpoint({ publicKey: identity.publicKey, addrs: [addr] }), clock, rng: rng.fork(`n${i}`), verifier })
  await node.start()
  nodes.push(node)
}
// Warm start from global knowledge: each node's buckets filled up to k (no replacement churn).
for (const n of nodes) {
  for (const m of nodes) {
    if (n !== m && n.routingTable.bucketSize(n.routingTable.bucketIndex(m.id)) < 20) n.routingTable.add(m.id, m.contact, clock.now())
  }
}
const setupMs = now() - t0
globalThis.gc?.()
const heapPerNode = (process.memoryUsage().heapUsed - heap0) / N
console.log(`network: ${N} nodes warm-started in ${setupMs.toFixed(0)} ms; heap ${(heapPerNode / 1024).toFixed(1)} KiB/node; routing table ~${Math.round(nodes.reduce((s, n) => s + n.routingTable.size, 0) / N)} contacts`)

// Baseline: a raw echo round trip over the same bus (no engine work).
{
  const echo = bus.endpoint({ publicKey: rng.bytes(32), addrs: ['echo'] })
  echo.handle(async (_from, frame) => frame)
  const caller = bus.endpoint({ publicKey: rng.bytes(32), addrs: ['caller'] })
  const frame = new Uint8Array(200)
  const iters = 50_000
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < iters; i++) await caller.request({ publicKey: frame, addrs: ['echo'] }, frame)
  const cpu = process.cpuUsage(cpu0)
  results.echoRoundTripUs = +((cpu.user + cpu.system) / iters).toFixed(2)
}

async function measure (name: string, op: (i: number) => Promise<unknown>): Promise<void> {
  const msgs: number[] = []
  const lat: number[] = []
  const r0 = bus.requests
  const t = now()
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < OPS; i++) {
    const before = bus.requests
    const s = now()
    await op(i)
    await clock.advance(0) // lets the FakeClock drop cancelled timers (it keeps them until it moves)
    lat.push(now() - s)
    msgs.push(bus.requests - before)
  }
  const ms = now() - t
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = (cpu.user + cpu.system) / 1000
  const requests = bus.requests - r0
  const usPerRequest = (cpuMs * 1000) / requests
  const out = { opsPerSec: rate(OPS, ms), cpuOpsPerSec: rate(OPS, cpuMs), messagesP50: pct(msgs, 50), messagesP95: pct(msgs, 95), wallMsP50: +pct(lat, 50).toFixed(3), wallMsP95: +pct(lat, 95).toFixed(3), cpuUsPerRequest: +usPerRequest.toFixed(1), vsEchoRoundTrip: +(usPerRequest / (results.echoRoundTripUs as number)).toFixed(1) }
  results[name] = out
  console.log(`${name}: ${out.opsPerSec} ops/s wall (${out.cpuOpsPerSec}/s of CPU); messages p50 ${out.messagesP50} p95 ${out.messagesP95}; wall p50 ${out.wallMsP50} ms p95 ${out.wallMsP95} ms; ${out.cpuUsPerRequest} us CPU/request (${out.vsEchoRoundTrip}x a raw echo round trip)`)
}

const keys: Uint8Array[] = []
await measure('lookup', async (i) => await nodes[i % N].findClosest(rng.bytes(32)))
await measure('lookupDisjoint3', async (i) => { for await (const _e of nodes[i % N].lookup(rng.bytes(32), { disjointPaths: 3 })) { /* drain */ } })
await measure('putImmutable', async (i) => { keys.push((await nodes[(i * 7) % N].putImmutable(rng.bytes(1024))).key) })
await measure('getImmutable', async (i) => await nodes[(i * 13 + 5) % N].get(keys[i % keys.length]))
const mkeys: Uint8Array[] = []
await measure('putMutable', async (i) => { mkeys.push((await nodes[(i * 11) % N].putMutable({ salt: Uint8Array.of(i & 0xff), value: rng.bytes(256) })).key) })
await measure('getMutable', async (i) => await nodes[(i * 17 + 3) % N].get(mkeys[i % mkeys.length]))

// Check: the lookup result is the true k closest (what the speed figures are worth).
{
  let exact = 0
  for (let i = 0; i < 20; i++) {
    const target = rng.bytes(32)
    const asker = nodes[(i * 31) % N]
    const found = (await asker.findClosest(target)).map(c => Buffer.from(nodeIdFromPublicKey(c.publicKey)).toString('hex'))
    const truth = nodes.filter(n => n !== asker).map(n => n.id).sort((a, b) => compareDistance(a, b, target)).slice(0, 20).map(x => Buffer.from(x).toString('hex'))
    if (found.join() === truth.join()) exact++
  }
  results.lookupExactOf20 = exact
  console.log(`lookups returning exactly the true 20 closest: ${exact}/20`)
}

for (const n of nodes) await n.stop()
mkdirSync(new URL('results/', import.meta.url), { recursive: true })
writeFileSync(new URL('results/oht-engine.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
console.log('wrote bench/results/oht-engine.json')
