/**
 * Random distributions driven by an injected Rng (never Math.random), used for message
 * latency, session lifetimes and workload timing. Parameters are validated when built.
 */
import type { Rng } from '../core/rng.ts'
import { SimError } from './errors.ts'

export interface Distribution {
  /** One sample (ms for latencies and lifetimes). */
  sample(rng: Rng): number
  /** Short human-readable description for reports, e.g. "lognormal(median=400, sigma=0.5)". */
  readonly description: string
}

function check (ok: boolean, what: string): void {
  if (!ok) throw new SimError('SIM_BAD_CONFIG', `invalid distribution parameter: ${what}`)
}

/** Standard normal sample (Box–Muller; one of the pair is discarded to keep draws simple). */
export function standardNormal (rng: Pick<Rng, 'next'>): number {
  let u = rng.next()
  while (u <= 0) u = rng.next()
  const v = rng.next()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

/** Always `value`. */
export function constant (value: number): Distribution {
  check(Number.isFinite(value) && value >= 0, `constant value ${value} must be finite and >= 0`)
  return { sample: () => value, description: `constant(${value})` }
}

/** Uniform on [min, max). */
export function uniform (min: number, max: number): Distribution {
  check(Number.isFinite(min) && Number.isFinite(max) && min >= 0 && max >= min, `uniform needs 0 <= min <= max, got ${min}, ${max}`)
  const span = max - min
  return { sample: (rng) => min + rng.next() * span, description: `uniform(${min}, ${max})` }
}

/** Exponential with the given mean (memoryless session lifetimes). */
export function exponential (mean: number): Distribution {
  check(Number.isFinite(mean) && mean > 0, `exponential mean ${mean} must be > 0`)
  return {
    sample: (rng) => -mean * Math.log(1 - rng.next()),
    description: `exponential(mean=${mean})`
  }
}

export interface LognormalInit {
  /** Median of the distribution (= e^mu). */
  median: number
  /** Standard deviation of the underlying normal. */
  sigma: number
  /** Samples are clamped to [min, max]. @default 0 */
  min?: number
  /** @default Infinity */
  max?: number
}

/** Lognormal, optionally clamped: heavy-tailed latencies. */
export function lognormal (init: LognormalInit): Distribution {
  const { median, sigma } = init
  const min = init.min ?? 0
  const max = init.max ?? Infinity
  check(Number.isFinite(median) && median > 0, `lognormal median ${median} must be > 0`)
  check(Number.isFinite(sigma) && sigma >= 0, `lognormal sigma ${sigma} must be >= 0`)
  check(min >= 0 && max >= min, `lognormal clamp needs 0 <= min <= max, got ${min}, ${max}`)
  const mu = Math.log(median)
  return {
    sample: (rng) => Math.min(max, Math.max(min, Math.exp(mu + sigma * standardNormal(rng)))),
    description: `lognormal(median=${median}, sigma=${sigma}${init.min !== undefined || init.max !== undefined ? `, clamp=[${min}, ${max}]` : ''})`
  }
}

/**
 * Weibull with `shape` k and `scale` λ. Shapes below 1 give the "most sessions are short, a
 * few are very long" lifetimes measured in deployed P2P networks.
 */
export function weibull (shape: number, scale: number): Distribution {
  check(Number.isFinite(shape) && shape > 0 && Number.isFinite(scale) && scale > 0, `weibull needs shape > 0 and scale > 0, got ${shape}, ${scale}`)
  return {
    sample: (rng) => scale * Math.pow(-Math.log(1 - rng.next()), 1 / shape),
    description: `weibull(shape=${shape}, scale=${scale})`
  }
}
