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

function before (a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

export class EventHeap {
  private readonly items: SimEvent[] = []

  get size (): number { return this.items.length }

  peek (): SimEvent | undefined { return this.items[0] }

  push (ev: SimEvent): void {
    const items = this.items
    let i = items.length
    items.push(ev)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = items[parent]
      if (!before(ev, p)) break
      items[i] = p
      i = parent
    }
    items[i] = ev
  }

  pop (): SimEvent | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined) return undefined
    const last = items.pop() as SimEvent
    const n = items.length
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && before(items[r], items[l]) ? r : l
        if (!before(items[c], last)) break
        items[i] = items[c]
        i = c
      }
      items[i] = last
    }
    return top
  }

  clear (): void { this.items.length = 0 }
}
