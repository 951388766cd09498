/**
 * Every decoder in fuzz/index.ts under a short seeded run: each input decodes or is rejected
 * with the layer's typed error, none takes a second, none hangs the thread or blows its heap.
 * A failure prints the seed, the iteration, the input in hex and the command that replays it.
 * FUZZ_SEED and FUZZ_INPUTS vary the run (the seed is fixed by default: a failure is a
 * regression, not luck); bench/fuzz.ts runs the same targets a million inputs each.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FUZZ_TARGETS, formatFailure, type FuzzReport } from '../../fuzz/index.ts'
import { fuzzInWorker } from '../../fuzz/worker-runner.ts'

const SEED = process.env.FUZZ_SEED ?? 'ci'
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 3000)

describe(`decoders under fuzzing (seed ${JSON.stringify(SEED)}, ${INPUTS} inputs each)`, () => {
  const reports = new Map<string, FuzzReport>()

  before(async () => {
    for (const r of await fuzzInWorker({ targets: FUZZ_TARGETS.map(t => t.name), seed: SEED, inputs: INPUTS, slowMs: 1000, hangMs: 30_000 })) reports.set(r.target, r)
  }, { timeout: 600_000 })

  it('every seed input of every target decodes (so mutations start from valid messages)', () => {
    const bad: string[] = []
    for (const t of FUZZ_TARGETS) {
      for (const [i, s] of t.seeds().entries()) {
        try { t.decode(s) } catch (err) { bad.push(`${t.name} seed ${i}: ${(err as Error).message}`) }
      }
    }
    assert.deepEqual(bad, [])
  })

  for (const t of FUZZ_TARGETS) {
    it(`${t.name}: only typed rejections, no slow input, no hang`, () => {
      const r = reports.get(t.name)
      assert.ok(r !== undefined, 'the target ran')
      if (r.failureCount > 0) assert.fail(`${r.failureCount} failing inputs:\n\n${r.failures.map(formatFailure).join('\n\n')}`)
      assert.equal(r.inputs, INPUTS)
      assert.ok(r.accepted > 0, 'some mutated inputs still decode: the fuzzer gets past the first checks')
      assert.ok(r.rejected > 0, 'some inputs are rejected')
    })
  }
})
