/**
 * The worker side of fuzz/worker-runner.ts: runs the named targets one after the other and
 * records, before each input, which input it is (shared memory), so the main thread can name
 * the input a hang or a crash of the whole thread happened on.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { findTarget, runTarget, type FuzzTarget } from './harness.ts'
import type { WorkerJob } from './worker-runner.ts'

const job = workerData as WorkerJob
const head = new Int32Array(job.shared, 0, 4)
const area = new Uint8Array(job.shared, 16)

const targets: FuzzTarget[] = []
for (const url of job.modules) {
  const mod = await import(url) as { FUZZ_TARGETS?: readonly FuzzTarget[] }
  if (mod.FUZZ_TARGETS === undefined) throw new Error(`${url} exports no FUZZ_TARGETS`)
  targets.push(...mod.FUZZ_TARGETS)
}

for (const [k, name] of job.targets.entries()) {
  const target = findTarget(name, targets)
  Atomics.store(head, 3, k)
  const report = runTarget(target, {
    seed: job.seed,
    inputs: job.inputs,
    from: job.from,
    slowMs: job.slowMs,
    maxFailures: job.maxFailures,
    onInput: (iteration, input) => {
      const n = Math.min(input.byteLength, area.byteLength)
      area.set(input.subarray(0, n))
      head[1] = iteration
      head[2] = n
      Atomics.add(head, 0, 1)
    }
  })
  parentPort?.postMessage({ type: 'report', index: k, report })
}
parentPort?.postMessage({ type: 'done' })
