/**
 * Churn: members live for a session drawn from a lifetime distribution, then leave; by
 * default a fresh member joins in their place, so the population stays steady while its
 * membership turns over. What leaving and joining mean (crash a host, start a new node) is
 * up to the caller's callbacks; churn only decides when.
 */
import { HOUR } from '../core/clock.ts'
import type { Rng } from '../core/rng.ts'
import { constant, exponential, type Distribution } from './distributions.ts'
import { SimError } from './errors.ts'
import type { SimEvent } from './event-heap.ts'
import type { Scheduler } from './scheduler.ts'

export interface ChurnInit {
  /** How long a member stays (virtual ms), drawn once per member when tracked. */
  sessionLifetime: Distribution
  /** Whether a new member joins for each one that leaves. @default true */
  replace?: boolean
  /** Delay between a departure and its replacement's arrival. @default constant(0) */
  joinDelay?: Distribution
}

export interface ChurnComponents {
  scheduler: Scheduler
  rng: Rng
  /** Makes `member` leave (e.g. crash its host). */
  leave(member: number): void | Promise<void>
  /** Adds a new member and returns its id; it is tracked (given a lifetime) once known. */
  join(): number | Promise<number>
}

export interface ChurnStats {
  left: number
  joined: number
  /** join()/leave() callbacks that threw or rejected. */
  failures: number
}

/**
 * Session lifetimes for a population of which `fractionPerHour` leaves every hour on average:
 * exponential sessions with mean 1/rate (memoryless, so initial members need no warm-up).
 *
 * @example
 * const churn = new Churn({ sessionLifetime: churnPerHour(0.2) }, { scheduler, rng, leave, join })
 */
export function churnPerHour (fractionPerHour: number): Distribution {
  if (!(fractionPerHour > 0)) throw new SimError('SIM_BAD_CONFIG', `churn fraction per hour must be > 0, got ${fractionPerHour}`)
  return exponential(HOUR / fractionPerHour)
}

export class Churn {
  private readonly init: Required<ChurnInit>
  private readonly components: ChurnComponents
  private readonly departures = new Map<number, SimEvent>()
  private stopped = false
  /** The last callback failure, kept for diagnostics. */
  lastError: unknown
  readonly stats: ChurnStats = { left: 0, joined: 0, failures: 0 }

  constructor (init: ChurnInit, components: ChurnComponents) {
    this.init = { replace: true, joinDelay: constant(0), ...init }
    this.components = components
  }

  /** Members currently tracked (online and due to leave some day). */
  get size (): number { return this.departures.size }

  /** Gives `member` a session; it leaves when the session ends. */
  track (member: number): void {
    if (this.stopped) return
    this.departures.get(member)?.cancel()
    const lifetime = this.init.sessionLifetime.sample(this.components.rng)
    this.departures.set(member, this.components.scheduler.schedule(lifetime, () => { this.depart(member) }))
  }

  /** Stops tracking `member` (it left for another reason). */
  untrack (member: number): void {
    this.departures.get(member)?.cancel()
    this.departures.delete(member)
  }

  /** Cancels every pending departure and arrival. */
  stop (): void {
    this.stopped = true
    for (const ev of this.departures.values()) ev.cancel()
    this.departures.clear()
  }

  private depart (member: number): void {
    if (this.stopped) return
    this.departures.delete(member)
    this.stats.left++
    this.guard(() => this.components.leave(member))
    if (this.init.replace) {
      const delay = this.init.joinDelay.sample(this.components.rng)
      this.components.scheduler.schedule(delay, () => { this.arrive() })
    }
  }

  private arrive (): void {
    if (this.stopped) return
    this.stats.joined++
    this.guard(() => this.components.join(), (id) => { if (typeof id === 'number') this.track(id) })
  }

  private guard<T> (fn: () => T | Promise<T>, then?: (v: T) => void): void {
    const fail = (err: unknown): void => { this.stats.failures++; this.lastError = err }
    try {
      const r = fn()
      if (r instanceof Promise) r.then((v) => { then?.(v) }, fail)
      else then?.(r)
    } catch (err) {
      fail(err)
    }
  }
}
