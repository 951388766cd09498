/**
 * Path selection: 0 to 3 relays between a sender and a recipient, drawn with the injected Rng.
 *
 * Rules, in order:
 * 1. Only relays with a descriptor valid now and a key for the current epoch; never the sender
 *    or the recipient; every relay at most once; none that failed recently (`avoid`).
 * 2. Diversity: no two nodes of the path (endpoints included) share the first `prefixBits`
 *    bits of their node id (SHA-256 of the identity), so one operator grinding identities into
 *    one region of the id space does not get two hops of one path; and no two share a
 *    non-empty tor-client hint (two relays behind one tor client are one machine to an
 *    observer of that tor). When the relays known cannot satisfy this, the path is filled
 *    without it and marked `diverse: false` (or refused, with `strict`).
 * 3. Uniform among the candidates. Relays are not weighted by the capacity they claim: a
 *    self-reported number would let a liar attract the traffic (Tor weights by measured
 *    bandwidth, which we do not have yet).
 */
import type { Clock, Rng } from '../core/index.ts'
import { shuffle, toHex } from '../core/index.ts'
import { sha256 } from '../crypto/index.ts'
import { usableKey, type RelayDescriptor } from './descriptor.ts'
import { ScrambleError } from './errors.ts'
import { MAX_RELAYS } from './geometry.ts'

export interface PathRequest {
  /** Relays wanted, 0..3. */
  hops: number
  relays: RelayDescriptor[]
  /** Identities that must not be on the path (sender, recipient). */
  endpoints: Uint8Array[]
  /** Tor-client hints of the endpoints, where known. */
  endpointTorClients?: Uint8Array[]
  /** Hex identities to leave out (failed recently). */
  avoid?: ReadonlySet<string>
  now: number
  rng: Rng
  /** Node-id prefix bits two nodes of the path may not share (0: no prefix rule). @default 8 */
  prefixBits?: number
  /** Refuse a path that cannot be diverse. @default false */
  strict?: boolean
}

export interface SelectedPath {
  relays: RelayDescriptor[]
  /** False when rule 2 could not be met with the relays known. */
  diverse: boolean
}

/** The first `bits` bits of SHA-256(identity), as a number. */
export function idPrefix (identity: Uint8Array, bits: number): number {
  const h = sha256(identity)
  let v = 0
  for (let i = 0; i < bits; i++) v = v * 2 + ((h[i >>> 3] >>> (7 - (i & 7))) & 1)
  return v
}

export function selectPath (req: PathRequest): SelectedPath {
  const { hops, now } = req
  if (!Number.isInteger(hops) || hops < 0 || hops > MAX_RELAYS) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `hops must be 0 to ${MAX_RELAYS}, got ${hops}`)
  if (hops === 0) return { relays: [], diverse: true }
  const bits = req.prefixBits ?? 8
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `prefixBits must be 0 to 32, got ${bits}`)
  const excluded = new Set(req.endpoints.map(toHex))
  const seen = new Set<string>()
  const candidates: RelayDescriptor[] = []
  for (const d of req.relays) {
    const id = toHex(d.identity)
    if (!d.relay || excluded.has(id) || seen.has(id) || req.avoid?.has(id) === true || usableKey(d, now) === undefined) continue
    seen.add(id)
    candidates.push(d)
  }
  if (candidates.length < hops) {
    throw new ScrambleError('SCRAMBLE_NOT_ENOUGH_RELAYS', `a ${hops}-hop path needs ${hops} usable relays; ${candidates.length} are known (${req.relays.length} listed): wait for more relays, or use fewer hops`)
  }
  shuffle(req.rng, candidates)
  const prefixes = new Set(req.endpoints.map(e => idPrefix(e, bits)))
  const hints = new Set((req.endpointTorClients ?? []).filter(h => h.byteLength > 0).map(toHex))
  const chosen: RelayDescriptor[] = []
  const used = new Set<RelayDescriptor>()
  for (const d of candidates) {
    if (chosen.length === hops) break
    const p = idPrefix(d.identity, bits)
    const h = d.torClient.byteLength > 0 ? toHex(d.torClient) : undefined
    if ((bits > 0 && prefixes.has(p)) || (h !== undefined && hints.has(h))) continue
    chosen.push(d)
    used.add(d)
    prefixes.add(p)
    if (h !== undefined) hints.add(h)
  }
  let diverse = true
  if (chosen.length < hops) {
    if (req.strict === true) throw new ScrambleError('SCRAMBLE_NOT_ENOUGH_RELAYS', `no diverse ${hops}-hop path among ${candidates.length} usable relays (distinct id prefixes and tor clients)`)
    diverse = false
    for (const d of candidates) {
      if (chosen.length === hops) break
      if (!used.has(d)) chosen.push(d)
    }
  }
  return { relays: chosen, diverse }
}

/** Relays that failed recently, left out of new paths for `forMs` (bounded in size). */
export class FailedRelays {
  private readonly until = new Map<string, number>()
  constructor (private readonly clock: Clock, private readonly forMs: number, private readonly max = 4096) {}

  mark (identity: Uint8Array): void {
    const id = toHex(identity)
    this.until.delete(id)
    if (this.until.size >= this.max) this.until.delete(this.until.keys().next().value as string)
    this.until.set(id, this.clock.now() + this.forMs)
  }

  /** The identities still left out now. */
  current (): Set<string> {
    const now = this.clock.now()
    const out = new Set<string>()
    for (const [id, t] of this.until) { if (t <= now) this.until.delete(id); else out.add(id) }
    return out
  }
}
