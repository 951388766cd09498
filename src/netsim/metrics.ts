/**
 * Run metrics: percentiles of virtual-time samples, and the two wall-side figures (wall time,
 * peak resident memory), which never feed back into the simulation so they cannot break
 * determinism. Compare runs on `deterministic` parts only.
 */
import { systemClock } from '../core/clock.ts'

export interface Summary {
  count: number
  min: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

/** Nearest-rank percentile summary; an empty input gives zeros. */
export function summarize (values: readonly number[]): Summary {
  if (values.length === 0) return { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
  const sorted = Float64Array.from(values).sort()
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  return { count: sorted.length, min: sorted[0], mean: sum / sorted.length, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: sorted[sorted.length - 1] }
}

/** Samples process RSS; call `sample()` from a scheduler probe. */
export class ResourceMeter {
  private readonly startWall = systemClock.monotonic()
  peakRssBytes = process.memoryUsage.rss()

  sample (): void {
    const rss = process.memoryUsage.rss()
    if (rss > this.peakRssBytes) this.peakRssBytes = rss
  }

  /** Wall-clock ms since the meter was made. */
  get wallMs (): number { return systemClock.monotonic() - this.startWall }

  get peakRssMiB (): number { return Math.round(this.peakRssBytes / 1048576) }
}
