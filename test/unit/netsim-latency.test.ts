import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, SeededRng } from '../../src/core/index.ts'
import { constant, constantLatency, exponential, lognormal, lognormalLatency, summarize, torLatency, uniform, uniformLatency, weibull } from '../../src/netsim/index.ts'

const N = 20_000

function samples (f: (rng: SeededRng) => number, seed = 'lat'): number[] {
  const rng = new SeededRng(seed)
  return Array.from({ length: N }, () => f(rng))
}

describe('netsim distributions and latency models', () => {
  it('constant is constant; uniform stays in [min, max) with the right mean', () => {
    assert.ok(samples((r) => constant(7).sample(r)).every(v => v === 7))
    const u = samples((r) => uniform(100, 300).sample(r))
    assert.ok(u.every(v => v >= 100 && v < 300))
    const s = summarize(u)
    assert.ok(Math.abs(s.mean - 200) < 3, `mean ${s.mean}`)
    assert.equal(constantLatency(40).oneWay(new SeededRng(1), 0, 1), 40)
    const ul = uniformLatency(10, 20)
    const r = new SeededRng(2)
    for (let i = 0; i < 100; i++) { const v = ul.oneWay(r, 0, 1); assert.ok(v >= 10 && v < 20) }
  })

  it('exponential has the requested mean; weibull with shape 1 is exponential', () => {
    const e = summarize(samples((r) => exponential(1000).sample(r)))
    assert.ok(Math.abs(e.mean - 1000) < 40, `mean ${e.mean}`)
    const w = summarize(samples((r) => weibull(1, 1000).sample(r)))
    assert.ok(Math.abs(w.mean - 1000) < 40, `mean ${w.mean}`)
    const heavy = summarize(samples((r) => weibull(0.5, 1000).sample(r)))
    assert.ok(heavy.p50 < 1000 && heavy.mean > 1500, `weibull(0.5) p50 ${heavy.p50} mean ${heavy.mean}`)
  })

  it('lognormal has its median and respects the clamp', () => {
    const s = summarize(samples((r) => lognormal({ median: 400, sigma: 0.5 }).sample(r)))
    assert.ok(Math.abs(s.p50 - 400) < 15, `median ${s.p50}`)
    const c = samples((r) => lognormalLatency(400, 2, 100, 900).oneWay(r, 0, 1))
    assert.ok(c.every(v => v >= 100 && v <= 900))
    assert.ok(c.some(v => v === 100) && c.some(v => v === 900), 'a wide sigma hits both clamps')
  })

  it('tor latency: round trips within 0.3–3 s, stable per pair, symmetric, spread across pairs', () => {
    const tor = torLatency()
    const rng = new SeededRng('tor')
    const rtts: number[] = []
    for (let i = 0; i < N; i++) {
      const a = rng.int(10_000)
      const b = rng.int(10_000)
      rtts.push(tor.oneWay(rng, a, b) + tor.oneWay(rng, b, a))
    }
    const s = summarize(rtts)
    assert.ok(s.min >= 300 && s.max <= 3000, `rtt range ${s.min}..${s.max}`)
    assert.ok(s.p50 > 700 && s.p50 < 1100, `median rtt ${s.p50}`)
    assert.ok(s.p95 > 1800, `tail p95 ${s.p95}`)
    // Per pair: the jitter is ±15 % around a stable value; the direction does not matter.
    const pair = Array.from({ length: 200 }, () => tor.oneWay(rng, 17, 4242))
    const rev = Array.from({ length: 200 }, () => tor.oneWay(rng, 4242, 17))
    const ps = summarize(pair)
    assert.ok(ps.max / ps.min < 1.4, `pair spread ${ps.min}..${ps.max}`)
    assert.ok(Math.abs(summarize(rev).mean - ps.mean) / ps.mean < 0.05)
  })

  it('rejects invalid parameters with SIM_BAD_CONFIG', () => {
    assert.throws(() => uniform(5, 1), (e) => isCodedError(e, 'SIM_BAD_CONFIG'))
    assert.throws(() => exponential(0), (e) => isCodedError(e, 'SIM_BAD_CONFIG'))
    assert.throws(() => lognormal({ median: -1, sigma: 1 }), (e) => isCodedError(e, 'SIM_BAD_CONFIG'))
    assert.throws(() => torLatency({ rttMinMs: 500, rttMaxMs: 100 }), (e) => isCodedError(e, 'SIM_BAD_CONFIG'))
  })
})
