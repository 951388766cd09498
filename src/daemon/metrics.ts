/**
 * Prometheus text exposition (format 0.0.4) for the daemon: gauges, counters and latency
 * histograms kept in an instance (no global registry).
 */

export class Histogram {
  private readonly counts: number[]
  private sum = 0
  private count = 0
  constructor (readonly buckets: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]) {
    this.counts = buckets.map(() => 0)
  }

  observe (seconds: number): void {
    this.sum += seconds
    this.count++
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]) this.counts[i]++
  }

  render (name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`]
    this.buckets.forEach((b, i) => { lines.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`) })
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`)
    return lines.join('\n')
  }
}

function escapeLabel (v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

export interface Sample { labels?: Record<string, string>, value: number }

/** One metric family as text. */
export function family (name: string, type: 'gauge' | 'counter', help: string, samples: Sample[] | number): string {
  const list = typeof samples === 'number' ? [{ value: samples }] : samples
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`]
  for (const s of list) {
    const labels = s.labels === undefined ? '' : '{' + Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',') + '}'
    lines.push(`${name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`)
  }
  return lines.join('\n')
}

/** Counts by label set, e.g. API requests by route and status. */
export class LabelledCounter {
  private readonly values = new Map<string, { labels: Record<string, string>, value: number }>()
  inc (labels: Record<string, string>, by = 1): void {
    const key = JSON.stringify(labels)
    const e = this.values.get(key)
    if (e === undefined) this.values.set(key, { labels, value: by })
    else e.value += by
  }

  samples (): Sample[] { return [...this.values.values()].map(e => ({ labels: e.labels, value: e.value })) }
}
