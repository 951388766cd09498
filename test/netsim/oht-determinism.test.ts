/**
 * Same seed, same run: 1,000 nodes with Tor-like latency, churn and a put/get workload, run
 * twice in one process; every deterministic metric (events, messages, latencies, reach,
 * churn, store bytes, engine counters) must be identical. Wall time and memory are excluded.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { seedFromEnv } from '../../src/netsim/index.ts'
import { formatReport, runWorkload, createWorld, type WorldMetrics } from '../../src/netsim/world/index.ts'

const SEED = seedFromEnv('oht-determinism-1')

async function once (seed: string): Promise<WorldMetrics> {
  const world = await createWorld({ seed, size: 1000, churnPerHour: 0.2 })
  try {
    await world.sim.settle(runWorkload(world, { minutes: 10, putEveryMs: 30_000, getEveryMs: 10_000 }))
    return world.metrics()
  } finally {
    world.stop()
  }
}

describe(`OHT simulation determinism (seed ${SEED})`, () => {
  it('the same seed gives identical metrics, bit for bit', async () => {
    const a = await once(SEED)
    const b = await once(SEED)
    console.log(formatReport('determinism run 1', a))
    console.log(formatReport('determinism run 2', b))
    assert.ok(a.deterministic.gets.attempted > 0 && a.deterministic.puts.attempted > 0 && a.deterministic.churn.left > 0, 'the run did nothing worth comparing')
    assert.deepEqual(b.deterministic, a.deterministic, `runs with seed ${SEED} diverged: re-run with OHT_SIM_SEED=${SEED}`)
  })
})
