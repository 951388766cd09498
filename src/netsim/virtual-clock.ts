/**
 * src/core's Clock on virtual time. Every host gets its own VirtualClock over the shared
 * scheduler, grouped so a crash voids all of that host's pending timers at once.
 */
import type { Clock, TimerHandle } from '../core/clock.ts'
import { AbortError } from '../core/errors.ts'
import { TimerGroup } from './event-heap.ts'
import type { Scheduler } from './scheduler.ts'

export class VirtualClock implements Clock {
  private readonly scheduler: Scheduler
  /** The group this clock's timers belong to. */
  readonly timers: TimerGroup

  constructor (scheduler: Scheduler, group: TimerGroup = new TimerGroup()) {
    this.scheduler = scheduler
    this.timers = group
  }

  now (): number { return this.scheduler.now }
  monotonic (): number { return this.scheduler.now - this.scheduler.startTime }

  setTimeout (fn: () => void, ms: number): TimerHandle {
    return this.scheduler.schedule(ms, fn, this.timers)
  }

  setInterval (fn: () => void, ms: number): TimerHandle {
    return this.scheduler.every(ms, fn, this.timers)
  }

  sleep (ms: number, options?: { signal?: AbortSignal }): Promise<void> {
    const signal = options?.signal
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) { reject(new AbortError(undefined, { cause: signal.reason })); return }
      const onAbort = (): void => {
        timer.cancel()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const timer = this.scheduler.schedule(ms, () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, this.timers)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Voids every timer this clock created (a crashed host's timers never fire). */
  cancelAll (): void { this.timers.cancelAll() }
}
