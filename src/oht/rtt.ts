/**
 * Adaptive per-peer request timeouts, the way TCP computes its RTO (RFC 6298): a smoothed
 * round-trip time and its variance per peer, timeout = SRTT + 4·RTTVAR within [min, max].
 * Onion round trips take seconds, so an unknown peer gets a conservative initial timeout, and a
 * timeout doubles a measured peer's next one (back-off) until a sample arrives.
 */

export interface RttInit {
  /** Timeout for a peer with no sample yet. @default 10000 */
  initialMs?: number
  /** Floor of any timeout. @default 500 */
  minMs?: number
  /** Ceiling of any timeout. @default 30000 */
  maxMs?: number
  /** Peers remembered, oldest forgotten first (a forgotten peer counts as unmeasured again). @default 128 */
  maxPeers?: number
}

interface RttState { srtt: number, rttvar: number, rto: number }

/** Peers are keyed by a number (e.g. the first 48 bits of their id: collisions merely share an estimate). */
export type PeerKey = number

export interface RttEstimator {
  timeout(peer: PeerKey): number
  /**
   * When a lookup stops waiting for `peer` and asks someone else meanwhile (the request itself
   * stays open until `timeout`): for a peer never measured, the network-wide RTO once enough
   * samples exist; undefined when the hard timeout should be the only limit.
   */
  stallAfter(peer: PeerKey): number | undefined
  sample(peer: PeerKey, rttMs: number): void
  /** A request timed out: back off that peer's timeout. */
  timedOut(peer: PeerKey): void
  estimate(peer: PeerKey): { srtt: number, rttvar: number, rto: number } | undefined
  clear(): void
}

export function createRttEstimator (init: RttInit = {}): RttEstimator {
  const initial = init.initialMs ?? 10_000
  const min = init.minMs ?? 500
  const max = init.maxMs ?? 30_000
  const maxPeers = init.maxPeers ?? 128
  const peers = new Map<PeerKey, RttState>()
  // Network-wide estimate over all samples: what an unmeasured peer probably looks like.
  const global: RttState & { n: number } = { srtt: 0, rttvar: 0, rto: initial, n: 0 }
  const clamp = (v: number): number => Math.min(max, Math.max(min, v))
  const remember = (peer: PeerKey, s: RttState): void => {
    if (peers.size >= maxPeers) peers.delete(peers.keys().next().value as PeerKey)
    peers.set(peer, s)
  }
  return {
    timeout (peer) { return peers.get(peer)?.rto ?? clamp(initial) },
    stallAfter (peer) {
      const s = peers.get(peer)
      if (s !== undefined && s.srtt >= 0) {
        // Measured peer: its own RTO, unless a timeout backed it off (then stall at the estimate).
        const est = clamp(s.srtt + 4 * s.rttvar)
        return est < s.rto ? est : undefined
      }
      if (global.n < 8) return undefined
      return clamp(global.srtt + 4 * global.rttvar)
    },
    sample (peer, rtt) {
      const r = Math.max(0, rtt)
      if (global.n === 0) { global.srtt = r; global.rttvar = r / 2 } else {
        global.rttvar = 0.75 * global.rttvar + 0.25 * Math.abs(global.srtt - r)
        global.srtt = 0.875 * global.srtt + 0.125 * r
      }
      global.n++
      const s = peers.get(peer)
      if (s === undefined || s.srtt < 0) {
        remember(peer, { srtt: r, rttvar: r / 2, rto: clamp(r + 2 * r) })
        return
      }
      s.rttvar = 0.75 * s.rttvar + 0.25 * Math.abs(s.srtt - r)
      s.srtt = 0.875 * s.srtt + 0.125 * r
      s.rto = clamp(s.srtt + 4 * s.rttvar)
    },
    timedOut (peer) {
      const s = peers.get(peer)
      // A peer that never answered keeps the initial timeout (it is most likely gone; waiting
      // longer on it would only slow lookups down). A measured one backs off like TCP.
      if (s === undefined) { remember(peer, { srtt: -1, rttvar: 0, rto: clamp(initial) }); return }
      if (s.srtt >= 0) s.rto = clamp(s.rto * 2)
    },
    estimate (peer) {
      const s = peers.get(peer)
      return s === undefined || s.srtt < 0 ? undefined : { ...s }
    },
    clear () { peers.clear(); global.n = 0 }
  }
}
