/**
 * Latency models: how long one message takes from host `from` to host `to`. A request costs
 * two one-way delays (request, response).
 */
import type { Rng } from '../core/rng.ts'
import { SimError } from './errors.ts'
import { constant, lognormal, standardNormal, uniform, type Distribution } from './distributions.ts'

export interface LatencyModel {
  /** One-way delay in virtual ms for one message from host `from` to host `to`. */
  oneWay(rng: Rng, from: number, to: number): number
  readonly description: string
}

/** Every message draws an independent one-way delay from `dist`. */
export function latencyFrom (dist: Distribution): LatencyModel {
  return { oneWay: (rng) => dist.sample(rng), description: dist.description }
}

/** Constant one-way delay. */
export function constantLatency (ms: number): LatencyModel { return latencyFrom(constant(ms)) }

/** One-way delay uniform on [min, max). */
export function uniformLatency (min: number, max: number): LatencyModel { return latencyFrom(uniform(min, max)) }

/** One-way delay lognormal (optionally clamped). */
export function lognormalLatency (median: number, sigma: number, min?: number, max?: number): LatencyModel {
  return latencyFrom(lognormal({ median, sigma, min, max }))
}

export interface TorLatencyInit {
  /** Shortest round trip. @default 300 */
  rttMinMs?: number
  /** Longest round trip. @default 3000 */
  rttMaxMs?: number
  /** Median round trip between two onion services. @default 900 */
  rttMedianMs?: number
  /** Spread of the per-pair round trip (sigma of the lognormal). @default 0.6 */
  sigma?: number
  /** Per-message jitter as a fraction of the pair's delay (uniform ±). @default 0.15 */
  jitter?: number
  /** Mixed into the per-pair hash so two simulations can differ. @default 0 */
  salt?: number
}

/** 32-bit integer mix (murmur3 finalizer): a stable pseudo-random value per host pair. */
function mix32 (x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

/**
 * Onion-service round trips: each pair of hosts has a stable circuit round trip (lognormal
 * around `rttMedianMs`, clamped to [rttMinMs, rttMaxMs], the pair's value derived by hashing
 * the pair so it needs no per-pair memory), and every message adds a little jitter on top.
 * One-way delay = half the round trip; the sum of both directions stays within the clamp.
 */
export function torLatency (init: TorLatencyInit = {}): LatencyModel {
  const rttMin = init.rttMinMs ?? 300
  const rttMax = init.rttMaxMs ?? 3000
  const median = init.rttMedianMs ?? 900
  const sigma = init.sigma ?? 0.6
  const jitter = init.jitter ?? 0.15
  const salt = init.salt ?? 0
  if (!(rttMin > 0 && rttMax >= rttMin && median > 0 && sigma >= 0 && jitter >= 0 && jitter < 1)) {
    throw new SimError('SIM_BAD_CONFIG', `torLatency needs 0 < rttMinMs <= rttMaxMs, rttMedianMs > 0, sigma >= 0, 0 <= jitter < 1; got ${JSON.stringify(init)}`)
  }
  const mu = Math.log(median)
  // A tiny deterministic Rng for the pair's normal draw, fed by the pair hash.
  const pairRng = { state: 0, next (): number { this.state = mix32(this.state + 0x9e3779b9); return (this.state + 0.5) / 2 ** 32 } }
  const pairRtt = (a: number, b: number): number => {
    const lo = a < b ? a : b
    const hi = a < b ? b : a
    pairRng.state = mix32(mix32(lo * 0x27d4eb2d + salt) ^ (hi + 0x165667b1))
    const z = standardNormal(pairRng)
    return Math.min(rttMax, Math.max(rttMin, Math.exp(mu + sigma * z)))
  }
  return {
    oneWay (rng, from, to) {
      const half = pairRtt(from, to) / 2
      const d = half * (1 + jitter * (2 * rng.next() - 1))
      return Math.min(rttMax / 2, Math.max(rttMin / 2, d))
    },
    description: `tor(rtt median=${median} ms, sigma=${sigma}, clamp=[${rttMin}, ${rttMax}] ms, jitter=±${jitter * 100}%)`
  }
}
