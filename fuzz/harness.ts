/**
 * The fuzz harness: seeded mutation of valid inputs (plus plain random bytes) fed to one
 * decoder, where each input must either decode or be rejected with the layer's typed error.
 * Anything else is a failure that carries what is needed to replay it: the seed, the
 * iteration and the input in hex.
 *
 * - crash: the decoder threw something other than its typed error (a TypeError, a RangeError,
 *   a bare Error, a string...).
 * - check: the target's own invariant failed on a decoded value (e.g. re-encoding it does not
 *   give the input back).
 * - slow: one input took longer than `slowMs`, on three tries (so a GC pause or a busy machine
 *   is not taken for a slow decoder).
 * - hang: the decoder never returned (only the worker runner, fuzz/worker-runner.ts, can see
 *   that: it watches from another thread).
 *
 * Input i of target T under seed S comes from its own generator, `SeededRng("S/T/i")`, so any
 * one input is rebuilt without replaying the others (`bench/fuzz.ts --target T --seed S
 * --iteration i`).
 *
 * @example
 * const report = runTarget(ohtRequestTarget, { seed: 'ci', inputs: 3000 })
 * if (report.failures.length > 0) console.error(formatFailure(report.failures[0]))
 */
import { getHeapStatistics } from 'node:v8'
import { SeededRng, toHex, type Rng } from '../src/core/index.ts'

/** One decoder under test. A layer adds its decoders as a list of these (see fuzz/index.ts). */
export interface FuzzTarget {
  /** `layer.decoder`, e.g. `oht.request`. */
  name: string
  /** Valid inputs, covering each message type: mutations start from these. */
  seeds: () => Uint8Array[]
  /** Decodes one input and returns what it made of it; throws to reject it. */
  decode: (input: Uint8Array) => unknown
  /** True for the errors this decoder is allowed to throw: the layer's typed error. */
  rejects: (err: unknown) => boolean
  /** An invariant over an accepted input; throws (anything) when it does not hold. */
  check?: (decoded: unknown, input: Uint8Array) => void
  /** Longest input generated. @default 4096 */
  maxInputBytes?: number
}

export type FailureKind = 'crash' | 'check' | 'slow' | 'hang'

export interface FuzzFailure {
  kind: FailureKind
  target: string
  seed: string
  iteration: number
  inputHex: string
  message: string
}

export interface FuzzReport {
  target: string
  seed: string
  /** Inputs run. */
  inputs: number
  /** Inputs decoded without error. */
  accepted: number
  /** Inputs rejected with the typed error. */
  rejected: number
  /** Inputs that failed (crash, check, slow, hang); `failures` keeps the first few. */
  failureCount: number
  failures: FuzzFailure[]
  /** Typed rejections by error code: shows how deep the inputs got. */
  rejectCodes: Record<string, number>
  /** The slowest input (its best of up to three runs, so noise does not win). */
  slowest: { ms: number, iteration: number, inputHex: string }
  /** Largest V8 heap in use, sampled every 256 inputs (bytes; the runner's isolate). */
  peakHeapBytes: number
  wallMs: number
}

export interface RunOptions {
  seed: string
  inputs: number
  /** First iteration number (to replay or to split a run). @default 0 */
  from?: number
  /** An input slower than this on three tries is a failure. @default 1000 */
  slowMs?: number
  /** Failures kept in the report (all are counted). @default 10 */
  maxFailures?: number
  /** Called before each input is decoded (the worker runner records it for hang reports). */
  onInput?: (iteration: number, input: Uint8Array) => void
}

export const DEFAULT_MAX_INPUT_BYTES = 4096
export const DEFAULT_SLOW_MS = 1000

// ------------------------------------------------------------------ input generation

const INTERESTING_8 = [0x00, 0x01, 0x02, 0x03, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff]
const INTERESTING_16 = [0x0000, 0x0001, 0x00ff, 0x0100, 0x01ff, 0x0200, 0x7fff, 0x8000, 0xfffe, 0xffff]
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x00200000, 0x001fffff, 0x00010000]

/** A length biased towards small values: most bugs live at the edges of short inputs. */
function smallLength (rng: Rng, max: number): number {
  const r = rng.next()
  if (r < 0.5) return rng.int(Math.min(max, 16) + 1)
  if (r < 0.85) return rng.int(Math.min(max, 256) + 1)
  return rng.int(max + 1)
}

function writeBE (buf: Uint8Array, at: number, value: number, bytes: number): void {
  for (let i = bytes - 1; i >= 0; i--) {
    if (at + i < buf.byteLength) buf[at + i] = value & 0xff
    value = Math.floor(value / 256)
  }
}

/** One havoc step (AFL-style) on `buf`; returns the new buffer (it may change length). */
function mutateOnce (rng: Rng, buf: Uint8Array, seeds: Uint8Array[], max: number): Uint8Array {
  const n = buf.byteLength
  const at = n === 0 ? 0 : rng.int(n)
  switch (rng.int(14)) {
    case 0: if (n > 0) buf[at] ^= 1 << rng.int(8); return buf
    case 1: if (n > 0) buf[at] = rng.int(256); return buf
    case 2: if (n > 0) buf[at] = INTERESTING_8[rng.int(INTERESTING_8.length)]; return buf
    case 3: if (n > 0) buf[at] = (buf[at] + (rng.int(2) === 0 ? 1 : -1) * (1 + rng.int(16))) & 0xff; return buf
    case 4: { // a 16-bit length field set to an edge value, either byte order
      const v = rng.int(3) === 0 ? n + rng.int(5) - 2 : INTERESTING_16[rng.int(INTERESTING_16.length)]
      if (rng.int(2) === 0) writeBE(buf, at, v, 2)
      else { if (at < n) buf[at] = v & 0xff; if (at + 1 < n) buf[at + 1] = (v >> 8) & 0xff }
      return buf
    }
    case 5: writeBE(buf, at, INTERESTING_32[rng.int(INTERESTING_32.length)], 4); return buf
    case 6: { // insert random bytes
      const k = 1 + rng.int(16)
      const out = new Uint8Array(Math.min(max, n + k))
      out.set(buf.subarray(0, at), 0)
      const ins = rng.bytes(k)
      out.set(ins.subarray(0, Math.max(0, out.byteLength - at)), at)
      if (at + k < out.byteLength) out.set(buf.subarray(at, at + out.byteLength - at - k), at + k)
      return out
    }
    case 7: { // delete a range
      if (n === 0) return buf
      const k = 1 + rng.int(Math.min(n - at, 32))
      const out = new Uint8Array(n - k)
      out.set(buf.subarray(0, at), 0)
      out.set(buf.subarray(at + k), at)
      return out
    }
    case 8: { // duplicate a range in place
      if (n === 0) return buf
      const k = 1 + rng.int(Math.min(n - at, 64))
      const out = new Uint8Array(Math.min(max, n + k))
      out.set(buf.subarray(0, at + k), 0)
      const rest = new Uint8Array(k + n - at - k)
      rest.set(buf.subarray(at, at + k), 0)
      rest.set(buf.subarray(at + k), k)
      out.set(rest.subarray(0, out.byteLength - at - k), at + k)
      return out
    }
    case 9: return buf.slice(0, rng.int(n + 1)) // truncate
    case 10: { // append random bytes
      const k = 1 + rng.int(32)
      const out = new Uint8Array(Math.min(max, n + k))
      out.set(buf.subarray(0, Math.min(n, out.byteLength)), 0)
      if (out.byteLength > n) out.set(rng.bytes(out.byteLength - n), n)
      return out
    }
    case 11: { // overwrite with a chunk of another seed
      const other = seeds[rng.int(seeds.length)]
      if (other.byteLength === 0 || n === 0) return buf
      const from = rng.int(other.byteLength)
      const k = 1 + rng.int(Math.min(other.byteLength - from, n - at, 64))
      buf.set(other.subarray(from, from + k), at)
      return buf
    }
    case 12: { // splice: our head, another seed's tail
      const other = seeds[rng.int(seeds.length)]
      const cut = rng.int(other.byteLength + 1)
      const out = new Uint8Array(Math.min(max, at + other.byteLength - cut))
      out.set(buf.subarray(0, Math.min(at, out.byteLength)), 0)
      if (out.byteLength > at) out.set(other.subarray(cut, cut + out.byteLength - at), at)
      return out
    }
    default: { // a run of one byte value (padding, repeated fields)
      if (n === 0) return buf
      const k = 1 + rng.int(Math.min(n - at, 64))
      buf.fill(rng.int(2) === 0 ? buf[at] : INTERESTING_8[rng.int(INTERESTING_8.length)], at, at + k)
      return buf
    }
  }
}

/**
 * Input `iteration` of `target` under `seed`: 10 % plain random bytes, otherwise a seed input
 * after 1-8 havoc steps (sometimes none: the seeds themselves are inputs too).
 */
export function generateInput (target: FuzzTarget, seeds: Uint8Array[], seed: string, iteration: number): Uint8Array {
  const rng = new SeededRng(`${seed}/${target.name}/${iteration}`)
  const max = target.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
  if (seeds.length === 0 || rng.next() < 0.1) return rng.bytes(smallLength(rng, max))
  let buf: Uint8Array = seeds[rng.int(seeds.length)].slice(0, max)
  if (rng.next() < 0.03) return buf
  for (let steps = 1 + rng.int(8); steps > 0; steps--) buf = mutateOnce(rng, buf, seeds, max)
  return buf
}

// ------------------------------------------------------------------ running

function describe (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    const frame = (err.stack ?? '').split('\n').slice(1, 4).map(l => l.trim()).join(' | ')
    return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}${frame !== '' ? ` (${frame})` : ''}`
  }
  return `a non-Error was thrown: ${typeof err} ${String(err).slice(0, 200)}`
}

type Outcome = { ok: true, value: unknown } | { ok: false, err: unknown }

function attempt (target: FuzzTarget, input: Uint8Array): Outcome {
  try {
    return { ok: true, value: target.decode(input) }
  } catch (err) {
    return { ok: false, err }
  }
}

/** Runs `target` over `opts.inputs` generated inputs in this thread. */
export function runTarget (target: FuzzTarget, opts: RunOptions): FuzzReport {
  const started = performance.now()
  const seeds = target.seeds()
  const from = opts.from ?? 0
  const slowMs = opts.slowMs ?? DEFAULT_SLOW_MS
  const maxFailures = opts.maxFailures ?? 10
  const report: FuzzReport = {
    target: target.name,
    seed: opts.seed,
    inputs: 0,
    accepted: 0,
    rejected: 0,
    failureCount: 0,
    failures: [],
    rejectCodes: {},
    slowest: { ms: 0, iteration: -1, inputHex: '' },
    peakHeapBytes: getHeapStatistics().used_heap_size,
    wallMs: 0
  }
  const fail = (kind: FailureKind, iteration: number, input: Uint8Array, message: string): void => {
    report.failureCount++
    if (report.failures.length < maxFailures) report.failures.push({ kind, target: target.name, seed: opts.seed, iteration, inputHex: toHex(input), message })
  }
  for (let i = from; i < from + opts.inputs; i++) {
    const input = generateInput(target, seeds, opts.seed, i)
    opts.onInput?.(i, input)
    const t0 = performance.now()
    const out = attempt(target, input)
    let ms = performance.now() - t0
    if (ms > report.slowest.ms || ms > slowMs) {
      // Best of three: a collector pause or a busy core is not the decoder's doing.
      for (let k = 0; k < 2 && ms > Math.min(report.slowest.ms, slowMs); k++) {
        const t1 = performance.now()
        attempt(target, input)
        ms = Math.min(ms, performance.now() - t1)
      }
      if (ms > report.slowest.ms) report.slowest = { ms, iteration: i, inputHex: toHex(input) }
    }
    report.inputs++
    if (ms > slowMs) fail('slow', i, input, `took ${ms.toFixed(1)} ms (best of 3; the bound is ${slowMs} ms)`)
    if (out.ok) {
      report.accepted++
      if (target.check !== undefined) {
        try {
          target.check(out.value, input)
        } catch (err) {
          fail('check', i, input, describe(err))
        }
      }
    } else if (target.rejects(out.err)) {
      report.rejected++
      const code = String((out.err as { code?: unknown }).code ?? 'untyped')
      report.rejectCodes[code] = (report.rejectCodes[code] ?? 0) + 1
    } else {
      fail('crash', i, input, describe(out.err))
    }
    if ((i & 255) === 0) {
      const used = getHeapStatistics().used_heap_size
      if (used > report.peakHeapBytes) report.peakHeapBytes = used
    }
  }
  const used = getHeapStatistics().used_heap_size
  if (used > report.peakHeapBytes) report.peakHeapBytes = used
  report.wallMs = performance.now() - started
  return report
}

/** The target called `name` in `targets`; the error lists the names there are. */
export function findTarget (name: string, targets: readonly FuzzTarget[]): FuzzTarget {
  const t = targets.find(x => x.name === name)
  if (t === undefined) throw new Error(`no fuzz target ${JSON.stringify(name)}; there are: ${targets.map(x => x.name).join(', ')}`)
  return t
}

/** A failure as a block to print: what happened, how to replay it, the input in hex. */
export function formatFailure (f: FuzzFailure): string {
  return `fuzz ${f.target}: ${f.kind} at seed ${JSON.stringify(f.seed)} iteration ${f.iteration}\n` +
    `  ${f.message}\n` +
    `  replay: node --import tsx bench/fuzz.ts --target ${f.target} --seed ${JSON.stringify(f.seed)} --iteration ${f.iteration}\n` +
    `  input (${f.inputHex.length / 2} bytes): ${f.inputHex}`
}
