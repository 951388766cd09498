/**
 * A steady put/get workload on the world's virtual time, measured by the world (GET success,
 * hops, messages, latencies, write reach against the true closest nodes).
 */
import type { World, WorldNode } from './world.ts'

export interface WorkloadInit {
  /** Virtual minutes during which operations start. */
  minutes: number
  /** One PUT every this many virtual ms. */
  putEveryMs: number
  /** One GET every this many virtual ms (of a record whose latest write completed). */
  getEveryMs: number
  /** Share of PUTs that are mutable. @default 0.5 */
  mutableFraction?: number
  /** Share of mutable PUTs that update an existing record of an online writer. @default 0.3 */
  updateFraction?: number
  /** @default 128 */
  valueBytes?: number
  /** Record TTL asked by the writer. Default: the engine's default. */
  ttlMs?: number
  /** GETs pick records with at least this much TTL left. @default 5 minutes */
  ttlMarginMs?: number
}

interface LiveRecord {
  key: Uint8Array
  writer: WorldNode
  salt?: Uint8Array
  value: Uint8Array
  seq?: number
  expiresAt: number
  busy: boolean
}

/**
 * A steady put/get workload on virtual time: PUTs (immutable, new mutable, mutable updates)
 * and GETs of records whose latest write completed. Resolves when every started operation
 * has finished (run the simulation meanwhile: `await world.sim.settle(runWorkload(world, …))`).
 */
export async function runWorkload (world: World, init: WorkloadInit): Promise<void> {
  const rng = world.sim.fork('workload')
  const clock = world.sim.clock
  let live: LiveRecord[] = []
  // Operations in flight (settled ones leave, so a day-long run holds only the current ones).
  const pending = new Set<Promise<unknown>>()
  const track = (p: Promise<unknown>): void => { pending.add(p); void p.finally(() => { pending.delete(p) }) }
  const end = world.sim.now + init.minutes * 60_000
  const valueBytes = init.valueBytes ?? 128
  const ttlMs = init.ttlMs ?? world.nodeDefaults.ttlDefault
  const margin = init.ttlMarginMs ?? 5 * 60_000
  let n = 0
  const doPut = (): void => {
    const value = rng.bytes(valueBytes)
    const mutable = rng.next() < (init.mutableFraction ?? 0.5)
    const candidates = live.filter(r => r.salt !== undefined && !r.busy && r.writer.host.online && r.expiresAt - world.sim.now > margin)
    if (mutable && candidates.length > 0 && rng.next() < (init.updateFraction ?? 0.3)) {
      const rec = candidates[rng.int(candidates.length)]
      rec.busy = true
      track(world.put(rec.writer, { kind: 'mutable', value, salt: rec.salt, ttlMs }).then((r) => {
        rec.busy = false
        if (r.ok) { rec.value = value; rec.seq = r.seq; rec.expiresAt = world.sim.now + ttlMs }
      }))
      return
    }
    const writer = world.randomNode()
    const salt = mutable ? Uint8Array.of(0x77, n >> 16, (n >> 8) & 0xff, n & 0xff) : undefined
    n++
    // Expired records are of no use to reads or updates any more: let them (and their writers) go.
    if (n % 64 === 0) live = live.filter(r => r.busy || r.expiresAt > world.sim.now)
    track(world.put(writer, { kind: mutable ? 'mutable' : 'immutable', value, salt, ttlMs }).then((r) => {
      if (r.ok) live.push({ key: r.key, writer, salt, value, seq: r.seq, expiresAt: world.sim.now + ttlMs, busy: false })
    }))
  }
  const doGet = (): void => {
    const now = world.sim.now
    const candidates = live.filter(r => !r.busy && r.expiresAt - now > margin)
    if (candidates.length === 0) return
    const rec = candidates[rng.int(candidates.length)]
    track(world.get(world.randomNode(), rec.key, { value: rec.value, seq: rec.seq }))
  }
  const putTimer = clock.setInterval(() => { if (world.sim.now <= end) doPut() }, init.putEveryMs)
  const getTimer = clock.setInterval(() => { if (world.sim.now <= end) doGet() }, init.getEveryMs)
  await clock.sleep(init.minutes * 60_000)
  putTimer.cancel()
  getTimer.cancel()
  await Promise.all([...pending])
}
