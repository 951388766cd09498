/**
 * The fuzz harness finds what it is for: planted crashes, failed invariants, slow inputs,
 * hangs and unbounded allocations are reported with the seed, the iteration and the input,
 * and that input replays to the same failure. A clean decoder gives no failure.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { findTarget, formatFailure, generateInput, runTarget } from '../../fuzz/harness.ts'
import { fuzzInWorker } from '../../fuzz/worker-runner.ts'
import { FUZZ_TARGETS as PLANTED } from './planted-targets.ts'

const planted = (name: string): ReturnType<typeof findTarget> => findTarget(name, PLANTED)
const plantedModule = new URL('./planted-targets.ts', import.meta.url).href

describe('fuzz harness', () => {
  it('the same seed gives the same inputs; another seed other inputs', () => {
    const t = planted('planted.clean')
    const seeds = t.seeds()
    const a = Array.from({ length: 200 }, (_, i) => Buffer.from(generateInput(t, seeds, 's1', i)).toString('hex'))
    const b = Array.from({ length: 200 }, (_, i) => Buffer.from(generateInput(t, seeds, 's1', i)).toString('hex'))
    const c = Array.from({ length: 200 }, (_, i) => Buffer.from(generateInput(t, seeds, 's2', i)).toString('hex'))
    assert.deepEqual(a, b)
    assert.ok(a.filter((x, i) => x !== c[i]).length > 150)
    assert.ok(new Set(a).size > 100, 'mostly distinct inputs')
  })

  it('a clean decoder: no failure, typed rejections counted by code', () => {
    const r = runTarget(planted('planted.clean'), { seed: 'clean', inputs: 2000 })
    assert.equal(r.inputs, 2000)
    assert.equal(r.failureCount, 0)
    assert.equal(r.accepted + r.rejected, 2000)
    assert.ok(r.accepted > 0 && r.rejected > 0)
    assert.equal(r.rejectCodes.PLANTED_REJECTED, r.rejected)
    assert.ok(r.peakHeapBytes > 0)
  })

  it('a crash is reported with its seed, iteration and input, and the input replays to it', () => {
    const t = planted('planted.crash')
    const r = runTarget(t, { seed: 'crash', inputs: 3000 })
    assert.ok(r.failureCount > 0, 'the planted crash was found')
    const f = r.failures[0]
    assert.equal(f.kind, 'crash')
    assert.match(f.message, /TypeError: planted crash/)
    assert.match(formatFailure(f), /seed "crash" iteration \d+/)
    assert.match(formatFailure(f), new RegExp(`input \\(\\d+ bytes\\): ${f.inputHex}`))
    assert.equal(Buffer.from(generateInput(t, t.seeds(), 'crash', f.iteration)).toString('hex'), f.inputHex, 'seed + iteration rebuild the input')
    assert.throws(() => t.decode(Buffer.from(f.inputHex, 'hex')), TypeError)
  })

  it('a failed invariant is a check failure', () => {
    const r = runTarget(planted('planted.check'), { seed: 'check', inputs: 3000 })
    assert.ok(r.failures.some(f => f.kind === 'check' && /planted invariant/.test(f.message)))
  })

  it('an input slower than the bound on three tries is a slow failure, and the slowest input is reported', () => {
    const r = runTarget(planted('planted.slow'), { seed: 'slow', inputs: 1500, slowMs: 100 })
    const f = r.failures.find(x => x.kind === 'slow')
    assert.ok(f !== undefined, 'the slow input was found')
    assert.equal(Buffer.from(f.inputHex, 'hex')[0], 0xfe)
    assert.ok(r.slowest.ms >= 300)
    assert.equal(Buffer.from(r.slowest.inputHex, 'hex')[0], 0xfe)
  })

  it('in a worker: a hang is caught from outside with its input, and the next targets still run', { timeout: 120_000 }, async () => {
    const reports = await fuzzInWorker({ modules: [plantedModule], targets: ['planted.hang', 'planted.clean'], seed: 'hang', inputs: 1500, hangMs: 2000 })
    assert.deepEqual(reports.map(r => r.target), ['planted.hang', 'planted.clean'])
    const f = reports[0].failures[0]
    assert.equal(f.kind, 'hang')
    assert.equal(Buffer.from(f.inputHex, 'hex')[0], 0xfe, 'the input it hung on')
    assert.ok(f.iteration >= 0)
    assert.equal(reports[1].failureCount, 0)
    assert.equal(reports[1].inputs, 1500)
  })

  it('in a worker: an unbounded allocation kills only the worker and is reported with its input', { timeout: 120_000 }, async () => {
    const reports = await fuzzInWorker({ modules: [plantedModule], targets: ['planted.alloc'], seed: 'alloc', inputs: 1500, maxHeapMb: 64 })
    const f = reports[0].failures[0]
    assert.equal(f.kind, 'crash')
    assert.match(f.message, /worker/)
    assert.equal(Buffer.from(f.inputHex, 'hex')[0], 0xfe)
  })
})
