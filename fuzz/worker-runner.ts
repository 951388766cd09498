/**
 * Runs fuzz targets in a worker thread watched from this one, so that what a decoder does
 * wrong to its whole thread is caught too, with the input that did it:
 *
 * - a hang: no new input for `hangMs` (a synchronous loop cannot be interrupted from inside);
 * - an unbounded allocation: the worker's heap is capped (`maxHeapMb`) and dies instead of
 *   the machine;
 * - any other death of the thread.
 *
 * The worker writes each input to shared memory before decoding it (`[seq, iteration, length,
 * target index]` then the bytes), so the report names that input. After such a failure the
 * remaining targets go on in a fresh worker.
 *
 * @example
 * const reports = await fuzzInWorker({ targets: ['oht.request'], seed: 'ci', inputs: 3000 })
 */
import { Worker } from 'node:worker_threads'
import { systemClock, toHex } from '../src/core/index.ts'
import type { FuzzReport } from './harness.ts'

/** What the worker is given (structured-cloned; `shared` is shared). */
export interface WorkerJob {
  modules: string[]
  targets: string[]
  seed: string
  inputs: number
  from: number
  slowMs?: number
  maxFailures?: number
  shared: SharedArrayBuffer
}

export interface WorkerRunOptions {
  /** Target names, run in this order. */
  targets: string[]
  seed: string
  /** Inputs per target. */
  inputs: number
  /** @default 0 */
  from?: number
  /** See RunOptions.slowMs. @default 1000 */
  slowMs?: number
  /** No new input for this long is a hang. @default 10_000 */
  hangMs?: number
  /** Heap limit of the worker (old generation), in MiB. @default 512 */
  maxHeapMb?: number
  /** @default 10 */
  maxFailures?: number
  /** Modules (file URLs) exporting FUZZ_TARGETS. @default [fuzz/index.ts] */
  modules?: string[]
  /** Called about once a second: the target running and its inputs so far. */
  onProgress?: (p: { target: string, inputs: number }) => void
}

const INPUT_AREA_BYTES = 64 * 1024
const DEFAULT_HANG_MS = 10_000

type Outcome = { kind: 'done' } | { kind: 'died', index: number, report: FuzzReport }

export async function fuzzInWorker (opts: WorkerRunOptions): Promise<FuzzReport[]> {
  const reports: FuzzReport[] = []
  let remaining = [...opts.targets]
  while (remaining.length > 0) {
    const outcome = await runBatch(remaining, opts, (r) => { reports.push(r) })
    if (outcome.kind === 'done') break
    reports.push(outcome.report)
    remaining = remaining.slice(outcome.index + 1)
  }
  return reports
}

function runBatch (names: string[], opts: WorkerRunOptions, onReport: (r: FuzzReport) => void): Promise<Outcome> {
  const shared = new SharedArrayBuffer(16 + INPUT_AREA_BYTES)
  const head = new Int32Array(shared, 0, 4)
  const area = new Uint8Array(shared, 16)
  const from = opts.from ?? 0
  const hangMs = opts.hangMs ?? DEFAULT_HANG_MS
  const job: WorkerJob = {
    modules: opts.modules ?? [new URL('./index.ts', import.meta.url).href],
    targets: names,
    seed: opts.seed,
    inputs: opts.inputs,
    from,
    ...(opts.slowMs !== undefined ? { slowMs: opts.slowMs } : {}),
    ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}),
    shared
  }
  const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: job,
    resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 512 },
    stdout: false,
    stderr: false
  })
  return new Promise<Outcome>((resolve, reject) => {
    let settled = false
    let finished = 0
    let lastSeq = Atomics.load(head, 0)
    let lastChange = systemClock.monotonic()
    let lastProgress = lastChange
    const started = lastChange
    /** A report for the target the worker was on when it stopped: the input it was decoding. */
    const died = (kind: 'hang' | 'crash', message: string): FuzzReport => {
      const index = Atomics.load(head, 3)
      const seq = Atomics.load(head, 0)
      const iteration = head[1]
      const onInput = seq > 0 && index === finished
      return {
        target: names[finished],
        seed: opts.seed,
        inputs: onInput ? iteration - from + 1 : 0,
        accepted: 0,
        rejected: 0,
        failureCount: 1,
        failures: [{
          kind,
          target: names[finished],
          seed: opts.seed,
          iteration: onInput ? iteration : -1,
          inputHex: onInput ? toHex(area.slice(0, head[2])) : '',
          message
        }],
        rejectCodes: {},
        slowest: { ms: 0, iteration: -1, inputHex: '' },
        peakHeapBytes: 0,
        wallMs: systemClock.monotonic() - started
      }
    }
    const settle = (o: Outcome | Error): void => {
      if (settled) return
      settled = true
      watchdog.cancel()
      void worker.terminate()
      if (o instanceof Error) reject(o)
      else resolve(o)
    }
    const watchdog = systemClock.setInterval(() => {
      const now = systemClock.monotonic()
      const seq = Atomics.load(head, 0)
      if (seq !== lastSeq) { lastSeq = seq; lastChange = now }
      if (now - lastProgress >= 1000 && finished < names.length) {
        lastProgress = now
        const index = Atomics.load(head, 3)
        if (index === finished && seq > 0) opts.onProgress?.({ target: names[finished], inputs: head[1] - from + 1 })
      }
      // Before the first input, give the worker (loading TypeScript, building seeds) longer.
      const limit = seq === 0 ? Math.max(hangMs, 60_000) : hangMs
      if (now - lastChange > limit) settle({ kind: 'died', index: finished, report: died('hang', `no progress for ${Math.round(now - lastChange)} ms: the decoder hangs on this input (or runs far past the ${hangMs} ms bound)`) })
    }, Math.min(250, Math.max(10, hangMs / 4)))
    worker.on('message', (m: { type: 'report', index: number, report: FuzzReport } | { type: 'done' }) => {
      if (m.type === 'report') {
        finished = m.index + 1
        lastChange = systemClock.monotonic()
        onReport(m.report)
      } else {
        settle({ kind: 'done' })
      }
    })
    worker.on('error', (err: Error) => {
      // Before any input ran, it is the harness that failed (a module that does not load...).
      if (Atomics.load(head, 0) === 0 && finished === 0) { settle(err); return }
      settle({ kind: 'died', index: finished, report: died('crash', `the worker died: ${err.name}: ${err.message}`) })
    })
    worker.on('exit', (code) => {
      if (!settled) settle({ kind: 'died', index: finished, report: died('crash', `the worker exited with code ${code} in the middle of the run`) })
    })
  })
}
