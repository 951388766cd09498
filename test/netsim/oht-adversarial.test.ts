/**
 * 1,000 nodes, 20 % of them adversarial (droppers that never answer, wrong-closer nodes that
 * steer every lookup towards other adversaries and swallow PUTs, forgers that answer GETs with
 * forged records), Tor-like latency and 20 %/h churn of the honest nodes: with S/Kademlia
 * disjoint lookup paths, GETs still succeed and no forged value is ever accepted.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { seedFromEnv } from '../../src/netsim/index.ts'
import { formatReport, runWorkload, createWorld, type World, type WorldMetrics } from '../../src/netsim/world/index.ts'

const SEED = seedFromEnv('oht-adversarial-1')
const DISJOINT_PATHS = Number(process.env.OHT_SIM_DISJOINT ?? 3)

describe(`OHT with 20 % adversarial nodes and ${DISJOINT_PATHS} disjoint paths (seed ${SEED})`, () => {
  let world: World
  let m: WorldMetrics

  before(async () => {
    world = await createWorld({ seed: SEED, size: 1000, churnPerHour: 0.2, adversaries: { fraction: 0.2 }, node: { disjointPaths: DISJOINT_PATHS } })
    await world.sim.run({ forMs: 5 * 60_000 })
    await world.sim.settle(runWorkload(world, { minutes: 20, putEveryMs: 30_000, getEveryMs: 6_000 }))
    m = world.metrics()
    console.log(formatReport(`20 % adversaries, d=${DISJOINT_PATHS}`, m))
    console.log(`   adversary actions: ${JSON.stringify(m.deterministic.adversaries)}`)
  })

  after(() => { world?.stop() })

  it('has the adversaries it claims: 200 of 1,000, all three kinds', () => {
    const kinds = new Map<string, number>()
    for (const p of world.nodes) if (p.adversary !== undefined) kinds.set(p.adversary, (kinds.get(p.adversary) ?? 0) + 1)
    assert.equal([...kinds.values()].reduce((a, b) => a + b, 0), 200)
    assert.deepEqual([...kinds.keys()].sort(), ['dropper', 'forger', 'wrong-closer'])
    assert.ok(m.deterministic.network.swallowed > 0, 'droppers swallowed nothing: they were never asked')
    const a = m.deterministic.adversaries
    assert.ok(a.lies > 100 && a.forgeries > 0 && a.fakePuts > 0, `the adversaries barely acted: ${JSON.stringify(a)}`)
  })

  it('GET success >= 99 %, and a forged value is never returned', () => {
    const g = m.deterministic.gets
    assert.ok(g.attempted >= 150, `only ${g.attempted} GETs ran`)
    assert.equal(g.wrongValue, 0, `a GET returned a value other than the one written; seed ${SEED}: re-run with OHT_SIM_SEED=${SEED}`)
    assert.ok(g.successRate >= 0.99, `GET success ${(100 * g.successRate).toFixed(2)} % < 99 %; seed ${SEED}: re-run with OHT_SIM_SEED=${SEED}; last failures: ${world.failures.slice(-5).join(' | ')}`)
  })
})
