/**
 * Abort helpers. Every async call in the stack takes `{ signal }`; deadlines come from the
 * injected Clock (never AbortSignal.timeout(), which the simulator cannot control).
 */
import type { Clock } from './clock.ts'
import { AbortError, TimeoutError } from './errors.ts'

export interface AbortOptions {
  signal?: AbortSignal
}

export interface ScopedSignal {
  signal: AbortSignal
  /** Releases timers and listeners; call it when the operation ends. */
  clear(): void
}

/**
 * A signal that aborts when any of `signals` aborts or, if `timeoutMs` is given, when the
 * clock reaches the deadline (the reason is then a TimeoutError).
 */
export function scopedSignal (clock: Clock, timeoutMs: number | undefined, ...signals: Array<AbortSignal | undefined>): ScopedSignal {
  const controller = new AbortController()
  const cleanups: Array<() => void> = []
  for (const s of signals) {
    if (s == null) continue
    if (s.aborted) { controller.abort(s.reason); break }
    const onAbort = (): void => { controller.abort(s.reason) }
    s.addEventListener('abort', onAbort, { once: true })
    cleanups.push(() => { s.removeEventListener('abort', onAbort) })
  }
  if (timeoutMs !== undefined && Number.isFinite(timeoutMs) && !controller.signal.aborted) {
    const timer = clock.setTimeout(() => {
      controller.abort(new TimeoutError(`timed out after ${Math.round(timeoutMs)} ms`))
    }, timeoutMs)
    cleanups.push(() => { timer.cancel() })
  }
  return {
    signal: controller.signal,
    clear: () => { for (const c of cleanups) c(); cleanups.length = 0 }
  }
}

/** Throws the right typed error if `signal` is aborted. */
export function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw abortReason(signal)
}

/** The typed error for an aborted signal: its reason if that is a TimeoutError/AbortError. */
export function abortReason (signal: AbortSignal): Error {
  const r: unknown = signal.reason
  if (r instanceof TimeoutError || r instanceof AbortError) return r
  return new AbortError(undefined, { cause: r })
}

/** Races `promise` against `signal`; the promise keeps running but its result is ignored. */
export async function raceSignal<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return await promise
  throwIfAborted(signal)
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        onAbort = () => { reject(abortReason(signal)) }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    ])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/** Runs `fn` with a deadline on `clock`. */
export async function withTimeout<T> (clock: Clock, ms: number, fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const scoped = scopedSignal(clock, ms, outer)
  try {
    return await raceSignal(fn(scoped.signal), scoped.signal)
  } finally {
    scoped.clear()
  }
}
