/**
 * What draining promise continuations between events costs. Runs the same toy workload (1,000
 * hosts, each request answered by an async handler with a few awaits, Tor-like latency) under:
 *   - exact: one setImmediate turn after every event (the default: continuations always run
 *     at their event's virtual time);
 *   - quantum 1 / 10 / 100 ms: events due within the quantum run back to back, one turn per
 *     batch;
 * and, as the floor, the bare heap (schedule + pop + call, no drain, no network), measured in
 * the same run.
 *
 *   node --import tsx bench/netsim-scheduler.ts [--requests 100000]
 *
 * Prints µs per event and per request and writes bench/results/netsim-scheduler.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { systemClock } from '../src/core/index.ts'
import { createSimulation, EventHeap, SimEvent, torLatency } from '../src/netsim/index.ts'

const { values: opt } = parseArgs({ options: { requests: { type: 'string', default: '100000' } } })
const REQUESTS = Number(opt.requests)

function bareHeap (n: number): number {
  const heap = new EventHeap()
  let sink = 0
  const t0 = systemClock.monotonic()
  for (let i = 0; i < n; i++) heap.push(new SimEvent((i * 7919) % n, i, () => { sink++ }, 0, undefined))
  for (let ev = heap.pop(); ev !== undefined; ev = heap.pop()) ev.fn()
  const us = ((systemClock.monotonic() - t0) * 1000) / n
  if (sink !== n) throw new Error('lost events')
  return us
}

async function run (quantumMs: number): Promise<{ usPerEvent: number, usPerRequest: number, events: number, virtualMs: number }> {
  const sim = createSimulation({ seed: 'sched', quantumMs, network: { latency: torLatency() } })
  const hosts = Array.from({ length: 1000 }, (_, i) => {
    const h = sim.addHost({ publicKey: Uint8Array.of(i & 0xff, i >> 8) })
    h.net.handle(async (_from, frame) => {
      for (let d = 0; d < 5; d++) await Promise.resolve()
      return frame
    })
    return h
  })
  const t0 = systemClock.monotonic()
  await sim.settle(Promise.all(Array.from({ length: REQUESTS }, async (_, i) => {
    const h = hosts[i % 1000]
    await h.clock.sleep(i * 5)
    await h.net.request(hosts[(i * 7919) % 1000].contact, Uint8Array.of(1, 2, 3))
  })))
  const ms = systemClock.monotonic() - t0
  const events = sim.scheduler.eventsProcessed
  return { usPerEvent: (ms * 1000) / events, usPerRequest: (ms * 1000) / REQUESTS, events, virtualMs: sim.elapsed }
}

const results: Record<string, unknown> = {}
const heapUs = bareHeap(REQUESTS * 3)
console.log(`bare heap (push + pop + call, no drain): ${heapUs.toFixed(3)} µs per event`)
results.bareHeapUsPerEvent = heapUs
const modes: Array<[string, number]> = [['exact', 0], ['quantum 1 ms', 1], ['quantum 10 ms', 10], ['quantum 100 ms', 100]]
let exact = 0
for (const [name, q] of modes) {
  const r = await run(q)
  if (q === 0) exact = r.usPerEvent
  console.log(`${name.padEnd(15)} ${r.usPerEvent.toFixed(2)} µs/event, ${r.usPerRequest.toFixed(2)} µs/request (${r.events} events, ${(r.virtualMs / 1000).toFixed(0)} s virtual), ${(exact / r.usPerEvent).toFixed(2)}× vs exact, ${(r.usPerEvent / heapUs).toFixed(1)}× the bare heap`)
  results[name] = { ...r, speedupVsExact: exact / r.usPerEvent }
}
await mkdir(new URL('../bench/results/', import.meta.url), { recursive: true })
await writeFile('bench/results/netsim-scheduler.json', JSON.stringify({ name: 'netsim-scheduler', requests: REQUESTS, ...results }, null, 2) + '\n')
console.log('wrote bench/results/netsim-scheduler.json')
