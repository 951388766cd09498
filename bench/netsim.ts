/**
 * The OHT at scale on the simulator: N nodes (default 10,000) for H simulated hours (default
 * 24) on Tor-like latency, 20 % of the nodes replaced per hour, a steady put/get workload
 * (mixed immutable / mutable / mutable updates). Prints GET success, hops, messages per
 * lookup, virtual latencies p50/p95/p99, PUT write reach against the true 20 closest, stored
 * bytes, events, wall time and peak RSS, plus a baseline measured in the same run: the bare
 * simulator's cost per request on a toy echo protocol, so the engine's share is visible.
 *
 *   node --import tsx bench/netsim.ts [--nodes 10000] [--hours 24] [--seed 1] [--churn 0.2]
 *        [--put-every-s 20] [--get-every-s 10] [--quantum-ms 50] [--max-wall-min 0]
 *        [--live-heap-every-h 0]   (full collections inside the run to report the live heap)
 *        [--node '{"probeIntervalMs":600000}']   (engine settings for every node: OhtNodeInit)
 *
 * It runs with a bigger V8 heap and a young generation of fixed size, and relaunches itself
 * with these V8 flags when started without them (any of them given on the command line wins):
 *
 *   node --expose-gc --max-old-space-size=7168 --min-semi-space-size=128 --max-semi-space-size=128 --import tsx bench/netsim.ts
 *
 * - The old generation: the live state of 10,000 nodes is ~0.9 GiB, and the process peaks at
 *   ~2.5 GiB of RSS.
 * - The young generation: with V8's default size the collector dominated. 128 MiB
 *   semi-spaces, pinned (min = max) so V8 cannot shrink them: at 10,000 nodes × 8 h, three
 *   runs took 129–145 s of wall against 155 s with 64 MiB in the same hour, with half the
 *   scavenges (172 against 356).
 * - With 64 MiB (and once with 256 MiB) some runs fell into a slow mode: V8 started a full
 *   collection for "external memory pressure" every few seconds from the first ten seconds
 *   on, and a day took ~12 min instead of 8. The external memory is the ArrayBuffers of frame
 *   slabs (see core's allocFrame) that outlive two scavenges. No run with 128 MiB has done so
 *   yet (five runs of 8 h and six of 24 h); `--trace-gc` shows which mode a run is in.
 * - --expose-gc lets it print the live heap after a full collection at the end of the run,
 *   outside the timed window, and every N simulated hours with --live-heap-every-h N, inside it.
 *
 * --quantum-ms (default 50) runs every event due within that many ms before letting promise
 * continuations drain: 50 ms of timing precision against 300–3,000 ms round trips, for fewer
 * event-loop turns (each costs ~2 µs plus the loop's idle poll; at 3,000 nodes the profile's
 * idle share fell from 13 % at 10 ms to 5 % at 50 ms, with the same GET and PUT figures).
 * 0 drains after every single event.
 *
 * --max-wall-min stops early (figures then cover the simulated time reached, flagged
 * `partial`). Writes bench/results/netsim.json. Goal: 10,000 nodes × 24 h in ≤ 10 min wall and
 * ≤ 8 GiB on the 2-core CI machine.
 */
import { execFileSync, spawn } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { systemClock } from '../src/core/index.ts'
import { createSimulation, torLatency } from '../src/netsim/index.ts'
import type { OhtNodeInit } from '../src/oht/index.ts'
import { createWorld, formatReport, runWorkload, type WorldMetrics } from '../src/netsim/world/index.ts'

/** The V8 flags above, by name; `relaunch` adds the ones missing from this process's. */
const V8_FLAGS = ['--expose-gc', '--max-old-space-size=7168', '--min-semi-space-size=128', '--max-semi-space-size=128']
const flagName = (arg: string): string => arg.split('=')[0]
const missingFlags = V8_FLAGS.filter(f => !process.execArgv.some(a => flagName(a) === flagName(f)))

/** Runs this script again in a child with `flags` added; resolves to its exit code. */
async function relaunch (flags: string[]): Promise<number> {
  console.log(`relaunching with ${flags.join(' ')}`)
  const child = spawn(process.execPath, [...flags, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' })
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig) }
  process.on('SIGINT', forward).on('SIGTERM', forward)
  return await new Promise<number>((resolve) => {
    child.on('error', (err) => { console.error(`cannot relaunch: ${err.message}`); resolve(1) })
    child.on('exit', (code, signal) => { resolve(code ?? (signal !== null ? 128 + (osConstants.signals[signal] ?? 0) : 1)) })
  })
}

const { values: opt } = parseOptions(() => parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    hours: { type: 'string', default: '24' },
    seed: { type: 'string', default: '1' },
    churn: { type: 'string', default: '0.2' },
    'put-every-s': { type: 'string', default: '20' },
    'get-every-s': { type: 'string', default: '10' },
    'quantum-ms': { type: 'string', default: '50' },
    'max-wall-min': { type: 'string', default: '0' },
    'live-heap-every-h': { type: 'string', default: '0' },
    node: { type: 'string', default: '{}' },
    out: { type: 'string', default: 'bench/results/netsim.json' },
    help: { type: 'boolean', short: 'h', default: false }
  }
}))
/** A bad command line ends the run with one line, not a stack trace (exit status 2). */
function badOption (message: string): never {
  console.error(`bench/netsim: ${message}`)
  process.exit(2)
}
/** Runs a parser of the command line; what it throws is a bad option. */
function parseOptions<T> (parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    return badOption((err as Error).message)
  }
}
/** A numeric option (a typo must not run a 10-minute benchmark). */
function num (name: keyof typeof opt, min: number, integer = false): number {
  const raw = opt[name] as string
  const v = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    badOption(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${JSON.stringify(raw)}`)
  }
  return v
}
if (opt.help === true) {
  console.log(`usage: node --import tsx bench/netsim.ts [--nodes 10000] [--hours 24] [--seed 1] [--churn 0.2]
         [--put-every-s 20] [--get-every-s 10] [--quantum-ms 50] [--max-wall-min 0]
         [--live-heap-every-h 0] [--node '{"probeIntervalMs":600000}'] [--out bench/results/netsim.json]
Simulates the OHT on N nodes for H hours of virtual time and prints its figures (see the header
of bench/netsim.ts). Relaunches itself with ${V8_FLAGS.join(' ')} when they are missing.`)
  process.exit(0)
}
const NODES = num('nodes', 2, true)
const HOURS = num('hours', 0)
const CHURN = num('churn', 0)
const QUANTUM = num('quantum-ms', 0)
const MAX_WALL_MS = num('max-wall-min', 0) * 60_000
const LIVE_HEAP_EVERY_H = num('live-heap-every-h', 0)
const PUT_EVERY_S = num('put-every-s', 0.001)
const GET_EVERY_S = num('get-every-s', 0.001)
const nodeInit = parseOptions(() => JSON.parse(opt.node as string) as Partial<OhtNodeInit>)
if (missingFlags.length > 0) process.exit(await relaunch(missingFlags))
const HOUR = 3_600_000
/**
 * Heap still in use right after a full collection (needs --expose-gc; -1 without it): what the
 * run retains, as opposed to RSS, which also counts the collector's spare room.
 */
function liveHeapMiB (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return -1
  gc()
  return Math.round(process.memoryUsage().heapUsed / 1048576)
}
/** CPU seconds this process used since the run began: on a shared machine wall time also counts others' work. */
const cpuSeconds = (): number => { const u = process.cpuUsage(cpu0); return (u.user + u.system) / 1e6 }

/** Baseline: the bare simulator (1,000 hosts, echo handler, Tor latency), µs of wall per request. */
async function baseline (): Promise<{ usPerRequest: number, usPerEvent: number, requests: number }> {
  const sim = createSimulation({ seed: 'baseline', quantumMs: QUANTUM, network: { latency: torLatency() } })
  const hosts = Array.from({ length: 1000 }, (_, i) => {
    const h = sim.addHost({ publicKey: Uint8Array.of(i & 0xff, i >> 8) })
    h.net.handle(async (_from, frame) => frame)
    return h
  })
  const requests = 100_000
  const t0 = systemClock.monotonic()
  const e0 = sim.scheduler.eventsProcessed
  await sim.settle(Promise.all(Array.from({ length: requests }, async (_, i) => {
    const h = hosts[i % 1000]
    await h.clock.sleep(i * 10)
    await h.net.request(hosts[(i * 7919) % 1000].contact, Uint8Array.of(1, 2, 3))
  })))
  const ms = systemClock.monotonic() - t0
  return { usPerRequest: (ms * 1000) / requests, usPerEvent: (ms * 1000) / (sim.scheduler.eventsProcessed - e0), requests }
}

const engine = engineVersion() // read before the run: the tree may change while it runs
const base = await baseline()
console.log(`baseline (bare simulator, toy echo): ${base.usPerRequest.toFixed(1)} µs wall per request, ${base.usPerEvent.toFixed(2)} µs per event`)

const cpu0 = process.cpuUsage()
const started = systemClock.monotonic()
const world = await createWorld({ seed: opt.seed as string, size: NODES, churnPerHour: CHURN, quantumMs: QUANTUM, node: nodeInit })
const populateMs = systemClock.monotonic() - started
console.log(`populated ${NODES} nodes (identities, engines, warm routing tables) in ${(populateMs / 1000).toFixed(1)} s`)

let partial = false
let lastWall = systemClock.monotonic()
let lastReq = 0
let lastEvents = 0
const lastBy: Record<string, number> = {}
const lastFailed: Record<string, number> = {}
/** This hour's count per cause (lookups by purpose, then probes), from running totals; `last` moves on. */
function perCause (last: Record<string, number>, lookupsBy: Record<string, { queries: number, failed: number }>, count: (n: { queries: number, failed: number }) => number, probes: number): Record<string, number> {
  const totals: Array<[string, number]> = [...Object.entries(lookupsBy).map(([why, n]): [string, number] => [why, count(n)]), ['probes', probes]]
  const out: Record<string, number> = {}
  for (const [why, total] of totals) { out[why] = total - (last[why] ?? 0); last[why] = total }
  return out
}
const hourly: Array<Record<string, number | Record<string, number>>> = []
const progress = world.sim.clock.setInterval(() => {
  const now = systemClock.monotonic()
  const m = world.metrics().deterministic
  const reqs = m.network.requests - lastReq
  const row = {
    hour: Math.round(world.sim.elapsed / HOUR),
    wallS: Math.round((now - started) / 1000),
    requests: reqs,
    events: m.events - lastEvents,
    usPerRequest: Math.round(((now - lastWall) * 1000) / Math.max(1, reqs)),
    getSuccess: m.gets.successRate,
    rssMiB: Math.round(process.memoryUsage.rss() / 1048576),
    // A full collection of a 1–2 GiB heap takes a second or more, inside the timed run: only
    // on request (--live-heap-every-h); the end of the run always measures it, untimed.
    heapLiveMiB: LIVE_HEAP_EVERY_H > 0 && Math.round(world.sim.elapsed / HOUR) % LIVE_HEAP_EVERY_H === 0 ? liveHeapMiB() : -1,
    cpuS: Math.round(cpuSeconds()),
    online: m.nodesOnline,
    // Requests by what caused them this hour (lookups by purpose, probes, and the PUT rounds),
    // and how many of them failed (mostly timeouts on departed peers).
    by: perCause(lastBy, m.traffic.lookupsBy, n => n.queries, m.engine.probes),
    failed: perCause(lastFailed, m.traffic.lookupsBy, n => n.failed, m.engine.probesFailed)
  }
  hourly.push(row)
  console.log(`  h${row.hour}: wall ${row.wallS} s, cpu ${row.cpuS} s, ${row.requests} requests (${row.usPerRequest} µs each), ${row.events} events, GET ok ${(100 * row.getSuccess).toFixed(2)} %, online ${row.online}, rss ${row.rssMiB} MiB, live heap ${row.heapLiveMiB < 0 ? '-' : `${row.heapLiveMiB} MiB`}`)
  console.log(`      by cause (failed): ${Object.entries(row.by).map(([why, n]) => `${why} ${n} (${Math.round((100 * row.failed[why]) / Math.max(1, n))} %)`).join(', ')}`)
  lastWall = now
  lastReq = m.network.requests
  lastEvents = m.events
}, HOUR)

const workload = runWorkload(world, { minutes: HOURS * 60, putEveryMs: PUT_EVERY_S * 1000, getEveryMs: GET_EVERY_S * 1000 })
let done = false
workload.then(() => { done = true }, () => { done = true })
await world.sim.run({
  stopWhen: () => {
    if (done) return true
    if (MAX_WALL_MS > 0 && systemClock.monotonic() - started > MAX_WALL_MS) { partial = true; return true }
    return false
  }
})
progress.cancel()
world.sim.meter.sample()
const m: WorldMetrics = world.metrics()
const wallMs = systemClock.monotonic() - started
const d = m.deterministic
console.log(formatReport(`bench netsim: ${NODES} nodes, ${HOURS} h${partial ? ` (PARTIAL: stopped after ${(d.virtualMs / HOUR).toFixed(2)} simulated hours)` : ''}`, m))
const cpuS = cpuSeconds()
const runMs = wallMs - populateMs
const usPerRequest = (runMs * 1000) / Math.max(1, d.network.requests)
const projectedFullMin = partial ? (populateMs + runMs * (HOURS * HOUR) / Math.max(1, d.virtualMs)) / 60_000 : wallMs / 60_000
console.log(`wall per request ${usPerRequest.toFixed(1)} µs = ${(usPerRequest / base.usPerRequest).toFixed(1)}× the bare simulator; events/s ${Math.round(d.events / (runMs / 1000))} (run phase, setup excluded)`)
console.log(`CPU ${cpuS.toFixed(0)} s for ${(wallMs / 1000).toFixed(0)} s of wall (${(100 * cpuS * 1000 / wallMs).toFixed(0)} % of one core: the rest of the wall time was other processes on this shared machine)`)
const projectedCpuMin = (cpuS / 60) * (partial ? (HOURS * HOUR) / Math.max(1, d.virtualMs) : 1)
if (partial) console.log(`projected CPU for the full ${HOURS} h: ${projectedCpuMin.toFixed(0)} min (= wall on an otherwise idle core)`)
console.log(`goal 10 min / 8 GiB: wall ${(wallMs / 60_000).toFixed(1)} min${partial ? ` (projected for the full ${HOURS} h: ${projectedFullMin.toFixed(0)} min)` : ''}, peak RSS ${m.peakRssMiB} MiB`)
// After the timed window: what the network retains at the end (a full collection).
const finalLiveHeapMiB = liveHeapMiB()
if (finalLiveHeapMiB >= 0) console.log(`live heap at the end (after a full collection, not timed): ${finalLiveHeapMiB} MiB`)

world.stop()
/**
 * Which code ran: the last commit touching src/ (the engine, and the simulator, codec, crypto
 * and core code it runs on) and whether the tree differs from it.
 */
function engineVersion (): string {
  try {
    const commit = execFileSync('git', ['log', '-1', '--format=%h', '--', 'src'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== ''
    return `${commit === '' ? 'uncommitted' : commit}${dirty ? '+local changes' : ''}`
  } catch {
    return 'unknown'
  }
}

const result = {
  name: 'netsim',
  engine,
  nodeFlags: process.execArgv.filter(a => V8_FLAGS.some(f => flagName(a) === flagName(f))),
  config: { nodes: NODES, hours: HOURS, seed: opt.seed, churnPerHour: CHURN, putEveryS: PUT_EVERY_S, getEveryS: GET_EVERY_S, quantumMs: QUANTUM, latency: torLatency().description, node: nodeInit },
  partial,
  simulatedHours: d.virtualMs / HOUR,
  wallMs: Math.round(wallMs),
  populateMs: Math.round(populateMs),
  cpuS,
  peakRssMiB: m.peakRssMiB,
  finalLiveHeapMiB,
  usPerRequest,
  baseline: base,
  ratioVsBareSimulator: usPerRequest / base.usPerRequest,
  projectedFullRunMin: projectedFullMin,
  projectedFullRunCpuMin: projectedCpuMin,
  goal: { wallMin: 10, rssGiB: 8, met: !partial && wallMs <= 10 * 60_000 && m.peakRssMiB <= 8192 },
  metrics: d,
  hourly
}
await mkdir(new URL('../bench/results/', import.meta.url), { recursive: true })
await writeFile(opt.out as string, JSON.stringify(result, null, 2) + '\n')
console.log(`wrote ${opt.out as string}`)
