/**
 * Time enters the stack only through a `Clock`, so the simulator can run the same code on a
 * virtual clock. Nothing outside src/core may call Date.now(), setTimeout() or setInterval()
 * (scripts/lint.ts enforces it).
 */
import { AbortError } from './errors.ts'

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

export interface TimerHandle {
  /** Cancels the timer; calling it twice is harmless. */
  cancel(): void
  /** Lets the process exit while this timer is pending (no-op on virtual clocks). */
  unref(): TimerHandle
}

export interface Clock {
  /** Milliseconds since the Unix epoch (virtual on simulated clocks). */
  now(): number
  /** Monotonic milliseconds, for measuring durations. */
  monotonic(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  setInterval(fn: () => void, ms: number): TimerHandle
  /** Resolves after `ms`; rejects with AbortError when `signal` aborts first. */
  sleep(ms: number, options?: { signal?: AbortSignal }): Promise<void>
}

function sleepOn (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) { reject(new AbortError(undefined, { cause: signal.reason })); return }
    const onAbort = (): void => {
      timer.cancel()
      reject(new AbortError(undefined, { cause: signal?.reason }))
    }
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

class SystemClock implements Clock {
  now (): number { return Date.now() }
  monotonic (): number { return performance.now() }
  setTimeout (fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms))
    return { cancel: () => { clearTimeout(t) }, unref () { t.unref(); return this } }
  }

  setInterval (fn: () => void, ms: number): TimerHandle {
    const t = setInterval(fn, Math.max(1, ms))
    return { cancel: () => { clearInterval(t) }, unref () { t.unref(); return this } }
  }

  sleep (ms: number, options?: { signal?: AbortSignal }): Promise<void> {
    return sleepOn(this, ms, options?.signal)
  }
}

/** The real wall clock. */
export const systemClock: Clock = new SystemClock()

interface FakeTimer { at: number, seq: number, fn: () => void, every: number, cancelled: boolean }

/**
 * A clock that moves only when told to, for unit tests.
 *
 * @example
 * const clock = new FakeClock()
 * clock.setTimeout(() => fired = true, 1000)
 * await clock.advance(1000) // fired === true
 */
export class FakeClock implements Clock {
  private time: number
  private seq = 0
  private timers: FakeTimer[] = []

  constructor (start = 1_700_000_000_000) { this.time = start }

  now (): number { return this.time }
  monotonic (): number { return this.time }

  setTimeout (fn: () => void, ms: number): TimerHandle {
    return this.add(fn, Math.max(0, ms), 0)
  }

  setInterval (fn: () => void, ms: number): TimerHandle {
    return this.add(fn, Math.max(1, ms), Math.max(1, ms))
  }

  sleep (ms: number, options?: { signal?: AbortSignal }): Promise<void> {
    return sleepOn(this, ms, options?.signal)
  }

  /** Number of timers still pending. */
  get pending (): number { return this.timers.filter(t => !t.cancelled).length }

  /**
   * Moves time forward by `ms`, firing due timers in (time, creation) order and letting
   * promise callbacks run between them.
   */
  async advance (ms: number): Promise<void> {
    const end = this.time + ms
    for (;;) {
      await drainMicrotasks()
      this.timers = this.timers.filter(t => !t.cancelled)
      let next: FakeTimer | undefined
      for (const t of this.timers) {
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t
      }
      if (next === undefined) break
      this.time = Math.max(this.time, next.at)
      if (next.every > 0) {
        next.at += next.every
        next.seq = this.seq++
      } else {
        next.cancelled = true
      }
      next.fn()
    }
    this.time = end
    await drainMicrotasks()
  }

  private add (fn: () => void, ms: number, every: number): TimerHandle {
    const timer: FakeTimer = { at: this.time + ms, seq: this.seq++, fn, every, cancelled: false }
    this.timers.push(timer)
    return { cancel: () => { timer.cancelled = true }, unref () { return this } }
  }
}

/** Lets queued promise callbacks run (a few macrotask-free turns). */
export async function drainMicrotasks (turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve()
}
