import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HOUR, MINUTE } from '../../src/core/index.ts'
import { churnPerHour, constant, constantLatency, createSimulation, exponential } from '../../src/netsim/index.ts'

describe('netsim churn', () => {
  it('20 %/h churn replaces about a fifth of the population per hour and keeps its size', async () => {
    const sim = createSimulation({ seed: 'churn', network: { latency: constantLatency(10) } })
    const key = new Uint8Array(32)
    const online = new Set<number>()
    const join = (): number => { const h = sim.addHost({ publicKey: key }); online.add(h.index); return h.index }
    const churn = sim.churn({ sessionLifetime: churnPerHour(0.2) }, {
      leave: (i) => { sim.network.crash(sim.network.host(i)); online.delete(i) },
      join
    })
    for (let i = 0; i < 1000; i++) churn.track(join())
    await sim.run({ forMs: 10 * HOUR })
    // Expected 2,000 departures over 10 h (Poisson, sd ≈ 45).
    assert.ok(churn.stats.left > 1850 && churn.stats.left < 2150, `left ${churn.stats.left}`)
    assert.equal(churn.stats.joined, churn.stats.left)
    assert.equal(online.size, 1000)
    assert.equal(churn.size, 1000)
    assert.equal(sim.network.hosts.filter(h => h.online).length, 1000)
    assert.equal(churn.stats.failures, 0)
    churn.stop()
  })

  it('without replacement the population decays; joins after a delay; stop() ends all churn', async () => {
    const sim = createSimulation({ seed: 'decay' })
    const left: number[] = []
    const churn = sim.churn({ sessionLifetime: exponential(HOUR), replace: false }, { leave: (i) => { left.push(i) }, join: () => { throw new Error('no joins expected') } })
    for (let i = 0; i < 500; i++) churn.track(i)
    await sim.run({ forMs: HOUR })
    // e^-1 of the population remains after one mean lifetime.
    assert.ok(Math.abs(500 - left.length - 500 / Math.E) < 35, `remaining ${500 - left.length}`)
    churn.stop()
    const before = left.length
    await sim.run({ forMs: 10 * HOUR })
    assert.equal(left.length, before)

    const joinedAt: number[] = []
    const delayed = sim.churn({ sessionLifetime: constant(MINUTE), joinDelay: constant(30_000) }, { leave: () => {}, join: () => { joinedAt.push(sim.elapsed); return 1000 + joinedAt.length } })
    const t0 = sim.elapsed
    delayed.track(1)
    await sim.run({ forMs: MINUTE + 30_000 })
    assert.deepEqual(joinedAt, [t0 + MINUTE + 30_000])
    delayed.stop()
  })

  it('counts failing join/leave callbacks instead of crashing the run', async () => {
    const sim = createSimulation({ seed: 'fail' })
    const churn = sim.churn({ sessionLifetime: constant(1000) }, { leave: () => { throw new Error('x') }, join: async () => { throw new Error('y') } })
    churn.track(1)
    await sim.run({ forMs: 5000 })
    assert.equal(churn.stats.failures, 2)
    assert.equal(churn.stats.left, 1)
  })
})
