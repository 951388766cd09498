/**
 * Watch vs polling over onion services on the private Tor network: how long after a writer
 * starts a put does a reader learn of the new record? (The put itself waits for all k holders;
 * a watcher hears from the first holder that stored it, often before the put returns.)
 *  - watch: the reader watches the key (its holders push the write: one onion trip after they
 *    store it);
 *  - polling: another reader, in the same run, GETs the key back to back until it sees the
 *    new seq (the best a poller can do, and what it costs: one lookup per poll).
 * Both readers are onion-only SDK nodes on their own tor clients. Figures p50/p95 in ms, and
 * the requests each approach sent per update; JSON to bench/results/watch-tor.json.
 *
 * Usage: node --import tsx bench/watch-tor.ts [--nodes 6] [--clients 4] [--updates 15]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { mutableKey, type OhtNode } from '../src/oht/index.ts'
import { createNode, type OhtSdkNode } from '../src/sdk/index.ts'
import { startTestnet } from '../src/tor/index.ts'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '6' },
    clients: { type: 'string', default: '4' },
    updates: { type: 'string', default: '15' }
  }
})
const N = Number(args.nodes)
const CLIENTS = Number(args.clients)
const UPDATES = Number(args.updates)
for (const [k, v] of Object.entries({ nodes: N, clients: CLIENTS, updates: UPDATES })) {
  if (!Number.isInteger(v) || v < 1) { console.error(`--${k} must be a positive integer`); process.exit(2) }
}
if (N < 4) { console.error('--nodes must be at least 4 (a writer, two readers, a holder)'); process.exit(2) }

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const requestsOf = (o: OhtNode): number => Object.values(o.stats.requestsOut).reduce((a, b) => a + b, 0)

const t0 = performance.now()
const tn = await startTestnet({ clients: CLIENTS })
console.log(`private Tor network usable in ${Math.round(performance.now() - t0)} ms`)
const nodes: OhtSdkNode[] = []
try {
  const make = async (i: number, bootstrap: string[]): Promise<OhtSdkNode> => {
    const c = tn.clients[i % CLIENTS]
    return await createNode({
      transport: 'tor',
      tor: { attach: { controlPort: c.controlPort, cookiePath: c.cookiePath, socksPort: c.socksPort } },
      bootstrap,
      oht: { requestTimeout: { initialMs: 20_000, minMs: 2_000, maxMs: 45_000 } }
    })
  }
  nodes.push(await make(0, []))
  nodes.push(...await Promise.all(Array.from({ length: N - 1 }, async (_, j) => await make(j + 1, nodes[0].multiaddrs))))
  const [writer, watcher, poller] = [nodes[0], nodes[1], nodes[2]]
  const salt = text('bench/watch')
  const key = mutableKey(writer.publicKey, salt)
  await writer.putMutable({ salt, value: text('0') })

  // The watcher: every pushed write, with the time it arrived.
  const seen = new Map<number, number>()
  const stop = new AbortController()
  let notified = 0
  const watching = (async () => {
    for await (const e of watcher.dht.watch(key, { signal: stop.signal })) {
      if (e.type !== 'record' || e.record.kind !== 'mutable') continue
      if (e.via === 'notify') notified++
      if (!seen.has(e.record.seq)) seen.set(e.record.seq, performance.now())
    }
  })().catch(() => {})
  const deadline = performance.now() + 120_000
  while (!seen.has(0) && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  if (!seen.has(0)) throw new Error('the watch never caught up with the first record')
  await new Promise(resolve => setTimeout(resolve, 3_000)) // its subscriptions settle

  const watchMs: number[] = []
  const pollMs: number[] = []
  const pollRequests: number[] = []
  const watchRequests: number[] = []
  const putMs: number[] = []
  for (let u = 1; u <= UPDATES; u++) {
    const wReq0 = requestsOf(watcher.dht)
    const pReq0 = requestsOf(poller.dht)
    // Both clocks start when the write starts: the poller polls meanwhile, back to back.
    const start = performance.now()
    const polling = (async () => {
      for (let tries = 0; tries < 200; tries++) {
        const got = await poller.get(key).catch(() => undefined)
        if (got?.seq !== undefined && got.seq >= u) return performance.now() - start
      }
      return NaN
    })()
    await writer.putMutable({ salt, value: text(String(u)) })
    putMs.push(performance.now() - start)
    const polled = await polling
    const until = performance.now() + 30_000
    while (!seen.has(u) && performance.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
    const w = (seen.get(u) ?? NaN) - start
    watchMs.push(w)
    pollMs.push(polled)
    watchRequests.push(requestsOf(watcher.dht) - wReq0)
    pollRequests.push(requestsOf(poller.dht) - pReq0)
    console.log(`update ${u}: watch ${Number.isNaN(w) ? 'missed' : `${Math.round(w)} ms`}, polling ${Number.isNaN(polled) ? 'missed' : `${Math.round(polled)} ms`}`)
  }
  stop.abort()
  await watching
  const ok = (xs: number[]): number[] => xs.filter(x => !Number.isNaN(x))
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  const result = {
    nodes: N,
    clients: CLIENTS,
    updates: UPDATES,
    watch: { p50Ms: Math.round(pct(ok(watchMs), 50)), p95Ms: Math.round(pct(ok(watchMs), 95)), missed: watchMs.length - ok(watchMs).length, pushed: notified, requestsPerUpdate: +mean(watchRequests).toFixed(1) },
    polling: { p50Ms: Math.round(pct(ok(pollMs), 50)), p95Ms: Math.round(pct(ok(pollMs), 95)), missed: pollMs.length - ok(pollMs).length, requestsPerUpdate: +mean(pollRequests).toFixed(1) },
    put: { p50Ms: Math.round(pct(putMs, 50)), p95Ms: Math.round(pct(putMs, 95)) },
    note: 'latency from the start of the writer\'s put to the reader seeing the new seq; polling = back-to-back GETs (lookups) by a second reader in the same run, started with the put'
  }
  console.log(`watch:   p50 ${result.watch.p50Ms} ms, p95 ${result.watch.p95Ms} ms, ${result.watch.requestsPerUpdate} requests per update by the watcher`)
  console.log(`put:     p50 ${result.put.p50Ms} ms, p95 ${result.put.p95Ms} ms (the writer's own wait, for scale)`)
  console.log(`polling: p50 ${result.polling.p50Ms} ms, p95 ${result.polling.p95Ms} ms, ${result.polling.requestsPerUpdate} requests per update by the poller`)
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL('./results/watch-tor.json', import.meta.url), JSON.stringify(result, null, 2))
  console.log('wrote bench/results/watch-tor.json')
} finally {
  for (const n of nodes.reverse()) await n.stop().catch(() => {})
  await tn.stop()
}
