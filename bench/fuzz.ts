/**
 * The long fuzz run: every decoder in fuzz/index.ts, 1,000,000 inputs each by default, in a
 * worker thread watched for hangs and heap blow-ups (fuzz/worker-runner.ts). Prints per
 * target the inputs run, how many decoded and how many were rejected with the typed error,
 * failures (crashes, failed invariants, slow inputs, hangs), the slowest input, the peak heap
 * and the rate; as baseline, measured in the same run, the rate of generating the inputs
 * alone, so the decoder's share of the cost shows. Writes bench/results/fuzz.json.
 *
 *   node --import tsx bench/fuzz.ts [--inputs 1000000] [--seed bench] [--target a,b]
 *        [--slow-ms 1000] [--hang-ms 10000] [--parallel 1] [--json]
 *   node --import tsx bench/fuzz.ts --target oht.request --seed S --iteration N   (replay one input)
 *   node --import tsx bench/fuzz.ts --target oht.request --input <hex>            (decode given bytes)
 *   node --import tsx bench/fuzz.ts --list
 *
 * Exit 1 when any target had a failure; every failure is printed with its replay command.
 * Measured here (2 shared cores, node 20, commit 61eaf91): 14 targets x 1,000,000 inputs in
 * 763 s, no failure; per target from ~21 s (IPv6 packets, 47k inputs/s) to 188 s (control-port
 * framing with every reply parser, 5.4k/s); slowest single input 15.8 ms (control replies);
 * peak worker heap 39-52 MiB.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { systemClock, toHex } from '../src/core/index.ts'
import { FUZZ_TARGETS, findTarget, formatFailure, generateInput, type FuzzReport } from '../fuzz/index.ts'
import { fuzzInWorker } from '../fuzz/worker-runner.ts'

const HELP = `usage: node --import tsx bench/fuzz.ts [options]
  --inputs N        inputs per target (default 1000000)
  --seed S          seed of the run (default "bench")
  --target a,b      targets to run (default all; --list shows them)
  --slow-ms N       an input slower than this (best of 3) is a failure (default 1000)
  --hang-ms N       no new input for this long is a hang (default 10000)
  --parallel N      workers at once, one target each (default 1: the machine is shared)
  --iteration N     with one --target: rebuild input N of --seed and decode it
  --input HEX       with one --target: decode these bytes
  --json            print the JSON report instead of the table
  --list            list the targets`

let args: ReturnType<typeof parse>
function parse (): { values: Record<string, string | boolean | undefined> } {
  return parseArgs({
    options: {
      inputs: { type: 'string' },
      seed: { type: 'string' },
      target: { type: 'string' },
      'slow-ms': { type: 'string' },
      'hang-ms': { type: 'string' },
      parallel: { type: 'string' },
      iteration: { type: 'string' },
      input: { type: 'string' },
      json: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean' }
    }
  })
}
try {
  args = parse()
} catch (err) {
  console.error(`bench/fuzz: ${(err as Error).message}\n\n${HELP}`)
  process.exit(2)
}
const opt = args.values

function positiveInt (name: string, fallback: number): number {
  const v = opt[name]
  if (v === undefined) return fallback
  const n = Number(v)
  if (typeof v !== 'string' || !Number.isSafeInteger(n) || n < 0) {
    console.error(`bench/fuzz: --${name} must be a whole number, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}

if (opt.help === true) { console.log(HELP); process.exit(0) }
if (opt.list === true) { for (const t of FUZZ_TARGETS) console.log(t.name); process.exit(0) }

const seed = typeof opt.seed === 'string' ? opt.seed : 'bench'
const inputs = positiveInt('inputs', 1_000_000)
const slowMs = positiveInt('slow-ms', 1000)
const hangMs = positiveInt('hang-ms', 10_000)
const parallel = Math.max(1, positiveInt('parallel', 1))
const names = typeof opt.target === 'string' ? opt.target.split(',').map(s => s.trim()).filter(s => s !== '') : FUZZ_TARGETS.map(t => t.name)
for (const n of names) {
  try { findTarget(n, FUZZ_TARGETS) } catch (err) { console.error(`bench/fuzz: ${(err as Error).message}`); process.exit(2) }
}

// ---- replay one input
if (opt.iteration !== undefined || opt.input !== undefined) {
  if (names.length !== 1) { console.error('bench/fuzz: --iteration and --input need exactly one --target'); process.exit(2) }
  const target = findTarget(names[0], FUZZ_TARGETS)
  let input: Uint8Array
  if (typeof opt.input === 'string') {
    if (!/^([0-9a-f]{2})*$/i.test(opt.input)) { console.error('bench/fuzz: --input must be hex'); process.exit(2) }
    input = new Uint8Array(Buffer.from(opt.input, 'hex'))
  } else {
    input = generateInput(target, target.seeds(), seed, positiveInt('iteration', 0))
  }
  console.log(`${target.name}, ${input.byteLength} bytes: ${toHex(input)}`)
  const t0 = systemClock.monotonic()
  try {
    const value = target.decode(input)
    target.check?.(value, input)
    console.log(`decoded in ${(systemClock.monotonic() - t0).toFixed(3)} ms`)
  } catch (err) {
    const typed = target.rejects(err)
    console.log(`${typed ? 'rejected (typed)' : 'FAILED'} in ${(systemClock.monotonic() - t0).toFixed(3)} ms:`, err)
    process.exit(typed ? 0 : 1)
  }
  process.exit(0)
}

// ---- the run
function commitOf (): string {
  try {
    const commit = execFileSync('git', ['log', '-1', '--format=%h'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'fuzz'], { encoding: 'utf8' }).trim() !== ''
    return `${commit}${dirty ? '+local changes' : ''}`
  } catch {
    return 'unknown'
  }
}

/** Inputs per second of generating inputs alone (no decoding), over a sample. */
function generationRate (name: string): number {
  const target = findTarget(name, FUZZ_TARGETS)
  const seeds = target.seeds()
  const n = Math.min(inputs, 50_000)
  const t0 = systemClock.monotonic()
  for (let i = 0; i < n; i++) generateInput(target, seeds, seed, i)
  return n / ((systemClock.monotonic() - t0) / 1000)
}

const started = systemClock.monotonic()
if (opt.json !== true) console.log(`fuzz: ${names.length} targets x ${inputs.toLocaleString('en')} inputs, seed ${JSON.stringify(seed)}, slow > ${slowMs} ms, hang > ${hangMs} ms, ${parallel} worker(s), node ${process.version}`)
const queue = [...names]
const reports: FuzzReport[] = []
await Promise.all(Array.from({ length: Math.min(parallel, names.length) }, async () => {
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const t0 = systemClock.monotonic()
    let lastNote = t0
    const [report] = await fuzzInWorker({
      targets: [name],
      seed,
      inputs,
      slowMs,
      hangMs,
      onProgress: (p) => {
        const now = systemClock.monotonic()
        if (now - lastNote < 15_000) return
        lastNote = now
        console.error(`  ${p.target}: ${p.inputs.toLocaleString('en')} / ${inputs.toLocaleString('en')} inputs, ${((now - t0) / 1000).toFixed(0)} s`)
      }
    })
    reports.push(report)
    if (opt.json !== true) console.error(`  ${name}: done in ${((systemClock.monotonic() - t0) / 1000).toFixed(1)} s, ${report.failureCount} failures`)
  }
}))
reports.sort((a, b) => names.indexOf(a.target) - names.indexOf(b.target))

const rows = reports.map(r => {
  const perSec = r.inputs / Math.max(1e-9, r.wallMs / 1000)
  const genPerSec = generationRate(r.target)
  return {
    target: r.target,
    inputs: r.inputs,
    accepted: r.accepted,
    rejected: r.rejected,
    failures: r.failureCount,
    slowestMs: r.slowest.ms,
    slowestIteration: r.slowest.iteration,
    slowestInputHex: r.slowest.inputHex,
    peakHeapMiB: r.peakHeapBytes / 2 ** 20,
    perSec,
    baselineGenerationPerSec: genPerSec,
    costVsGeneration: genPerSec / perSec,
    rejectCodes: r.rejectCodes,
    failureDetails: r.failures
  }
})

const result = {
  when: new Date(systemClock.now()).toISOString(),
  commit: commitOf(),
  node: process.version,
  seed,
  inputsPerTarget: inputs,
  slowMs,
  hangMs,
  wallS: (systemClock.monotonic() - started) / 1000,
  totals: { inputs: rows.reduce((s, r) => s + r.inputs, 0), failures: rows.reduce((s, r) => s + r.failures, 0) },
  targets: rows
}

if (opt.json === true) {
  console.log(JSON.stringify(result, null, 2))
} else {
  const pad = (s: string, n: number): string => s.length >= n ? s : s + ' '.repeat(n - s.length)
  const lpad = (s: string, n: number): string => s.length >= n ? s : ' '.repeat(n - s.length) + s
  console.log(`\n${pad('target', 22)} ${lpad('inputs', 10)} ${lpad('decoded', 9)} ${lpad('rejected', 9)} ${lpad('failures', 8)} ${lpad('slowest ms', 10)} ${lpad('peak heap', 10)} ${lpad('inputs/s', 9)} ${lpad('gen only/s', 10)} ${lpad('x gen', 6)}`)
  for (const r of rows) {
    console.log(`${pad(r.target, 22)} ${lpad(r.inputs.toLocaleString('en'), 10)} ${lpad(String(r.accepted), 9)} ${lpad(String(r.rejected), 9)} ${lpad(String(r.failures), 8)} ${lpad(r.slowestMs.toFixed(2), 10)} ${lpad(r.peakHeapMiB.toFixed(1) + ' MiB', 10)} ${lpad(r.perSec.toFixed(0), 9)} ${lpad(r.baselineGenerationPerSec.toFixed(0), 10)} ${lpad(r.costVsGeneration.toFixed(1), 6)}`)
  }
  console.log(`\n${result.totals.inputs.toLocaleString('en')} inputs, ${result.totals.failures} failures, ${result.wallS.toFixed(0)} s (commit ${result.commit})`)
  for (const r of reports) for (const f of r.failures) console.log(`\n${formatFailure(f)}`)
}
const out = new URL('./results/', import.meta.url).pathname
await mkdir(out, { recursive: true })
await writeFile(join(out, 'fuzz.json'), JSON.stringify(result, null, 2) + '\n')
if (opt.json !== true) console.log(`wrote ${join(out, 'fuzz.json')}`)
process.exit(result.totals.failures > 0 ? 1 : 0)
