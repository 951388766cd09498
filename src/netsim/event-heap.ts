/**
 * The simulator's event queue: a binary min-heap ordered by (time, seq). `seq` is a global
 * insertion counter, so events due at the same virtual time run in the order they were
 * scheduled, which makes every run a total order and replayable.
 */

const noop = (): void => {}

/** One scheduled callback. It is also the timer handle callers cancel. */
export class SimEvent {
  time: number
  seq: number
  fn: () => void
  /** > 0 for intervals: the period in ms. */
  interval: number
  cancelled = false
  /** Timer group and the group epoch at scheduling time; a crashed host bumps its epoch. */
  group: TimerGroup | undefined
  epoch: number

  constructor (time: number, seq: number, fn: () => void, interval: number, group: TimerGroup | undefined) {
    this.time = time
    this.seq = seq
    this.fn = fn
    this.interval = interval
    this.group = group
    this.epoch = group?.epoch ?? 0
  }

  /** True when the event should still fire. */
  get live (): boolean {
    return !this.cancelled && (this.group === undefined || this.group.epoch === this.epoch)
  }

  /** Voids the event and lets go of its callback at once (a cancelled event waits in the heap until its time). */
  cancel (): void { this.cancelled = true; this.fn = noop }
  unref (): this { return this }
}

/**
 * Timers created through one host's clock share a group; `cancelAll()` voids every one of them
 * in O(1) (no per-timer bookkeeping), which is how a crashed host loses its pending timers.
 */
export class TimerGroup {
  epoch = 0
  cancelAll (): void { this.epoch++ }
}

/**
 * Binary min-heap of events by (time, seq). The keys sit in two Float64Arrays beside the event
 * array, so sifting compares packed numbers instead of loading an event object per level (a
 * large run keeps tens of thousands of events queued, scattered over the heap).
 */
export class EventHeap {
  private items: SimEvent[] = []
  private times = new Float64Array(1024)
  private seqs = new Float64Array(1024)
  private n = 0

  get size (): number { return this.n }

  peek (): SimEvent | undefined { return this.n > 0 ? this.items[0] : undefined }

  push (ev: SimEvent): void {
    if (this.n === this.times.length) this.grow()
    const { items, times, seqs } = this
    const t = ev.time
    const s = ev.seq
    let i = this.n++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = times[parent]
      if (pt < t || (pt === t && seqs[parent] < s)) break
      items[i] = items[parent]; times[i] = pt; seqs[i] = seqs[parent]
      i = parent
    }
    items[i] = ev; times[i] = t; seqs[i] = s
  }

  pop (): SimEvent | undefined {
    if (this.n === 0) return undefined
    const { items, times, seqs } = this
    const top = items[0]
    const n = --this.n
    const last = items[n]
    const lt = times[n]
    const ls = seqs[n]
    items[n] = undefined as unknown as SimEvent // no stale reference keeps a fired event alive
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        let c = l
        if (r < n && (times[r] < times[l] || (times[r] === times[l] && seqs[r] < seqs[l]))) c = r
        const ct = times[c]
        if (ct > lt || (ct === lt && seqs[c] > ls)) break
        items[i] = items[c]; times[i] = ct; seqs[i] = seqs[c]
        i = c
      }
      items[i] = last; times[i] = lt; seqs[i] = ls
    }
    return top
  }

  clear (): void {
    this.items = []
    this.n = 0
  }

  private grow (): void {
    const times = new Float64Array(this.times.length * 2)
    times.set(this.times)
    const seqs = new Float64Array(this.seqs.length * 2)
    seqs.set(this.seqs)
    this.times = times
    this.seqs = seqs
  }
}
