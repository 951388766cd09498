/**
 * Per-peer request rate limiting: a token bucket per peer on the injected clock. The table of
 * buckets is bounded (the longest-known peers are forgotten first) so many distinct
 * peers cannot grow it without limit.
 */
import type { Clock } from '../core/clock.ts'

export interface RateLimiter {
  /** Takes one token for `peer` (any stable key); false when the peer is over its rate. */
  take(peer: string | number): boolean
  /** Forgets peers whose bucket has refilled (they are indistinguishable from new ones). */
  sweep(): void
  readonly size: number
  clear(): void
}

export interface RateLimiterInit {
  /** Sustained requests per second per peer. @default 50 */
  ratePerSecond?: number
  /** Bucket size (requests allowed in a burst). @default 100 */
  burst?: number
  /** Peers tracked at once. @default 4096 */
  maxPeers?: number
}

interface Bucket { tokens: number, at: number }

export function createRateLimiter (clock: Clock, init: RateLimiterInit = {}): RateLimiter {
  const rate = init.ratePerSecond ?? 50
  const burst = init.burst ?? 100
  const maxPeers = init.maxPeers ?? 4096
  const buckets = new Map<string | number, Bucket>()
  return {
    take (peer) {
      const now = clock.monotonic()
      let b = buckets.get(peer)
      if (b === undefined) {
        // Oldest-inserted peer goes first: a forgotten peer merely starts with a full bucket.
        if (buckets.size >= maxPeers) buckets.delete(buckets.keys().next().value as string | number)
        b = { tokens: burst, at: now }
        buckets.set(peer, b)
      } else {
        b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
        b.at = now
      }
      if (b.tokens < 1) return false
      b.tokens -= 1
      return true
    },
    sweep () {
      const now = clock.monotonic()
      const refillMs = (burst / rate) * 1000
      for (const [peer, b] of buckets) if (now - b.at >= refillMs) buckets.delete(peer)
    },
    get size () { return buckets.size },
    clear () { buckets.clear() }
  }
}
