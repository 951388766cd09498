import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRttEstimator } from '../../src/oht/index.ts'

describe('adaptive request timeouts (RFC 6298 style)', () => {
  it('an unknown peer gets the conservative initial timeout', () => {
    const rtt = createRttEstimator({ initialMs: 8000, minMs: 500, maxMs: 30_000 })
    assert.equal(rtt.timeout(2), 8000)
    assert.equal(rtt.estimate(2), undefined)
  })

  it('converges to SRTT + 4·RTTVAR of a steady peer, bounded below by minMs', () => {
    const rtt = createRttEstimator({ initialMs: 10_000, minMs: 500, maxMs: 30_000 })
    rtt.sample(1, 2000)
    assert.equal(rtt.timeout(1), 6000, 'first sample: RTT + 4·RTT/2')
    for (let i = 0; i < 60; i++) rtt.sample(1, 2000)
    const e = rtt.estimate(1)
    assert.ok(e !== undefined && Math.abs(e.srtt - 2000) < 1)
    assert.ok(rtt.timeout(1) < 2100 && rtt.timeout(1) >= 2000)
    for (let i = 0; i < 60; i++) rtt.sample(3, 10)
    assert.equal(rtt.timeout(3), 500)
  })

  it('a jittery peer gets a longer timeout than a steady one with the same mean', () => {
    const rtt = createRttEstimator({ initialMs: 10_000, minMs: 100, maxMs: 60_000 })
    for (let i = 0; i < 100; i++) { rtt.sample(4, 1500); rtt.sample(5, i % 2 === 0 ? 500 : 2500) }
    assert.ok(rtt.timeout(5) > rtt.timeout(4) + 1000)
  })

  it('a timeout doubles a measured peer\'s next timeout up to maxMs; a sample brings it back', () => {
    const rtt = createRttEstimator({ initialMs: 10_000, minMs: 500, maxMs: 30_000 })
    for (let i = 0; i < 30; i++) rtt.sample(1, 1000)
    const before = rtt.timeout(1)
    rtt.timedOut(1)
    assert.equal(rtt.timeout(1), Math.min(30_000, before * 2))
    for (let i = 0; i < 10; i++) rtt.timedOut(1)
    assert.equal(rtt.timeout(1), 30_000)
    rtt.sample(1, 1000)
    assert.ok(rtt.timeout(1) < 30_000)
    rtt.timedOut(6)
    assert.equal(rtt.timeout(6), 10_000, 'a peer that never answered does not back off: it is most likely gone')
  })
})

describe('stall threshold (lookups stop waiting, requests stay open)', () => {
  it('unmeasured peers stall at the network-wide RTO once enough samples exist', () => {
    const rtt = createRttEstimator({ initialMs: 10_000, minMs: 100, maxMs: 30_000 })
    assert.equal(rtt.stallAfter(7), undefined, 'no samples yet: only the hard timeout')
    for (let i = 0; i < 20; i++) rtt.sample(100 + i, 1000 + (i % 2) * 1000)
    const stall = rtt.stallAfter(7)
    assert.ok(stall !== undefined && stall > 1500 && stall < 10_000, `stall ${String(stall)}`)
    assert.equal(rtt.timeout(7), 10_000, 'the request itself keeps the conservative timeout')
  })

  it('a measured peer that timed out stalls at its estimate instead of its backed-off timeout', () => {
    const rtt = createRttEstimator({ initialMs: 10_000, minMs: 100, maxMs: 30_000 })
    for (let i = 0; i < 20; i++) rtt.sample(1, 1000)
    assert.equal(rtt.stallAfter(1), undefined, 'healthy peer: its RTO is the limit')
    rtt.timedOut(1)
    const stall = rtt.stallAfter(1)
    assert.ok(stall !== undefined && stall < rtt.timeout(1))
  })
})
