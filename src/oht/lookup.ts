/**
 * Iterative Kademlia lookup: α requests in flight per path, always to the closest candidate
 * not yet asked among the k closest known; a path ends when the k closest candidates that did
 * not fail have all answered. With d > 1 it runs S/Kademlia disjoint paths: the seeds are split
 * between the paths and a peer is used by at most one path, so d − 1 paths can be poisoned by
 * Sybils and the lookup still reaches the target region.
 *
 * The transport-facing work (encode, timeouts, routing-table upkeep) is the caller's `query`.
 */
import { setMaxListeners } from 'node:events'
import { idEqualsAt, idHi24, idLo24, idPrefixAt, idsEqualAt } from './id-map.ts'
import { abortReason } from '../core/abort.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { compareDistance, ID_BYTES } from './distance.ts'
import { ContactArena, samePublicKey, wireIdBytes, wireIdOffset, wirePublicKey, wireRoutable, type WireContact } from './codec.ts'
import { OhtError } from './errors.ts'
import type { PeerContact } from './network.ts'
import type { OhtRecord, ValueRecord } from './records.ts'

export interface QueryResult {
  closer: readonly WireContact[]
  token?: Uint8Array
  record?: OhtRecord
  seq?: number
  /** A multi-value GET: this page of the holder's set, its size, where the next page starts (0: none), its digest. */
  values?: ValueRecord[]
  total?: number
  next?: number
  digest?: Uint8Array
}

export type LookupEvent =
  | { type: 'query', peer: PeerContact, path: number }
  | { type: 'peer-response', peer: PeerContact, path: number, closer: PeerContact[] }
  | { type: 'value', peer: PeerContact, path: number, record: OhtRecord }
  | { type: 'peer-error', peer: PeerContact, path: number, error: Error }
  | { type: 'final-peers', peers: PeerContact[] }

export interface Candidate {
  readonly id: Uint8Array
  /** Built from the answer that offered it on first read (most candidates are never asked). */
  readonly contact: PeerContact
  readonly path: number
  /** False while the id is only what another peer claimed. */
  verified: boolean
  state: 'new' | 'inflight' | 'answered' | 'failed'
  /** Still in flight but slow: the path no longer waits for it (it may still answer). */
  stalled?: boolean
  result?: QueryResult
}

export interface LookupSpec {
  target: Uint8Array
  selfId: Uint8Array
  /** Starting contacts (ids trusted: they come from our routing table). */
  seeds: WireContact[]
  k: number
  alpha: number
  disjointPaths: number
  /** True if `id` is SHA-256 of `publicKey` (the caller may answer from verified knowledge). */
  verifyId: (id: Uint8Array, publicKey: Uint8Array) => boolean
  /** True for a contact the caller knows to be unreachable right now (by idPrefix of its id): it is not asked. */
  skip?: (idPrefix: number) => boolean
  query: (candidate: Candidate, signal: AbortSignal) => Promise<QueryResult>
  /** Clock for stall timers. */
  clock?: Clock
  /** Ms after which a path stops waiting for a candidate and asks another (undefined: never). */
  stallAfter?: (candidate: Candidate) => number | undefined
  /**
   * true: a stalled candidate among the k closest still has to answer or time out before the
   * lookup ends (stalls only add parallelism): completeness for writes. false: stalled peers no
   * longer hold the lookup up: latency for reads. @default false
   */
  waitForStalled?: boolean
  onEvent?: (event: LookupEvent) => void
  /** Called for every record an answer carries (cheaper than onEvent when only values matter). */
  onValue?: (record: OhtRecord) => void
  /** Checked after every answer: true ends the lookup early (e.g. a value was found). */
  done?: () => boolean
  signal?: AbortSignal
}

export interface LookupOutcome {
  /** Peers that answered, closest first (up to k, merged over all paths). */
  closest: Candidate[]
  /** Every peer that answered, closest first (spares beyond the k closest included). */
  answered: Candidate[]
  queried: number
  /**
   * Settles when the requests still in flight at the end have answered or timed out. They are
   * not cancelled when the lookup ends, so a dead peer still gets its failure counted (and a
   * slow one its success) by the caller's routing-table upkeep.
   */
  drained: Promise<void>
}

const NO_CONTACTS: WireContact[] = []

/**
 * A candidate keeps the wire contact that offered it (copied out of the answer's frame) and
 * builds its PeerContact on first read: a lookup ranks many more contacts than it asks, and a
 * built contact (key view, address strings) held for the whole lookup outlived the young
 * generation (measured: the largest share of what survived scavenges).
 */
class PathCandidate implements Candidate {
  state: Candidate['state'] = 'new'
  stalled?: boolean
  result?: QueryResult
  /** The next candidate whose id has the same 48-bit prefix (Claims' chain). */
  nextClaim?: PathCandidate
  /** Its key was found not to hash to its id. */
  forged?: boolean
  constructor (readonly wire: WireContact, readonly path: number, public verified: boolean) {}
  /** A view made on first read: ranking and claims read the id in place (most candidates are never asked). */
  get id (): Uint8Array { return this.wire.id }
  get contact (): PeerContact { return this.wire.contact }
  get publicKey (): Uint8Array { return wirePublicKey(this.wire) }
}

/**
 * A lookup's candidates by id: the 48-bit prefix picks a chain that runs through the candidates
 * themselves, and ids are compared where they lie, so claiming an id allocates no slot and no
 * id view. A later claim of the same id shadows the earlier one.
 */
class Claims {
  private readonly heads = new Map<number, PathCandidate>()

  getAt (buf: Uint8Array, off: number, prefix: number): PathCandidate | undefined {
    for (let c = this.heads.get(prefix); c !== undefined; c = c.nextClaim) {
      if (idsEqualAt(wireIdBytes(c.wire), wireIdOffset(c.wire), buf, off)) return c
    }
    return undefined
  }

  add (c: PathCandidate, prefix: number): void {
    c.nextClaim = this.heads.get(prefix)
    this.heads.set(prefix, c)
  }
}

/** Runs one lookup to completion (or abort). */
export async function runLookup (spec: LookupSpec): Promise<LookupOutcome> {
  const { target, k, onEvent } = spec
  const alpha = Math.max(1, spec.alpha)
  const d = Math.max(1, spec.disjointPaths)
  const claimed = new Claims()
  const paths: PathCandidate[][] = Array.from({ length: d }, () => [])
  // Beside each path, its candidates' distances to the target cut to 48 bits (exact in a
  // double): the binary search below compares these and reads ids only on a tie.
  const near: number[][] = Array.from({ length: d }, () => [])
  const thi = idHi24(target)
  const tlo = idLo24(target)
  const inflight = new Array<number>(d).fill(0)
  // A path only ever asks its k closest that did not fail, so a contact ranked past
  // `room + failed` on it could only be reached if that many closer ones failed first: it is
  // passed over unread (no decode, no entry), and a later answer may offer it again.
  const room = 3 * k + 20
  const failed = new Array<number>(d).fill(0)
  const controller = new AbortController()
  setMaxListeners(0, controller.signal) // one listener per request in flight
  let queried = 0
  // A candidate keeps a copy of its contact, not the answer's frame (see ContactArena).
  let arena: ContactArena | undefined

  /** Adds a contact to a path unless known; the contact itself is only read when it is new. */
  const insert = (path: number, w: WireContact, verified = false): void => {
    // The id is read where it lies (a received contact's frame): most contacts an answer
    // offers are already known or too far, and never need an array of their own.
    const buf = wireIdBytes(w)
    const off = wireIdOffset(w)
    if (buf.byteLength - off < ID_BYTES) return
    if (idEqualsAt(spec.selfId, buf, off)) return
    const prefix = idPrefixAt(buf, off)
    // A claim already proven false (its key does not hash to the id) blocks nobody: the real
    // peer may still be offered after a forger's contact for its id was tried.
    const claim = claimed.getAt(buf, off, prefix)
    const prior = claim?.forged === true ? undefined : claim
    if (prior !== undefined && (prior.verified || prior.state !== 'new')) return
    if (prior === undefined && spec.skip?.(prefix) === true) return
    const list = paths[path]
    const dists = near[path]
    const dist = (idHi24(buf, off) ^ thi) * 0x1000000 + (idLo24(buf, off) ^ tlo)
    let lo = 0; let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const m = dists[mid]
      if (m < dist || (m === dist && compareDistance(list[mid].id, w.id, target) < 0)) lo = mid + 1
      else hi = mid
    }
    if (lo >= room + failed[path]) return
    if (!wireRoutable(w)) return // a client: cannot be asked
    if (prior !== undefined) {
      // Two contacts claim one id: at most one can be honest. Settle it now so a forged claim
      // cannot shadow the real peer.
      if (samePublicKey(prior.wire, w)) return
      if (!spec.verifyId(prior.id, prior.publicKey)) {
        prior.state = 'failed'
        prior.forged = true
        failed[prior.path]++
      } else {
        prior.verified = true
        return
      }
    }
    const c = new PathCandidate((arena ??= new ContactArena()).detach(w), path, verified)
    claimed.add(c, prefix)
    list.splice(lo, 0, c)
    dists.splice(lo, 0, dist)
  }

  const seeds = spec.seeds.slice().sort((a, b) => compareDistance(a.id, b.id, target))
  seeds.forEach((s, i) => { insert(i % d, s, true) })

  let active = 0
  let onDrained: (() => void) | undefined
  const drained = new Promise<void>((resolve) => { onDrained = resolve })
  const release = (): void => {
    active--
    if (active === 0 && settledOuter) onDrained?.()
  }
  let settledOuter = false

  return await new Promise<LookupOutcome>((resolve, reject) => {
    let settled = false
    const finish = (err?: Error): void => {
      if (settled) return
      settled = true
      settledOuter = true
      if (active === 0) onDrained?.()
      spec.signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) { controller.abort(err); reject(err); return }
      const answered: Candidate[] = []
      for (const list of paths) for (const c of list) if (c.state === 'answered') answered.push(c)
      answered.sort((a, b) => compareDistance(a.id, b.id, target))
      const closest = answered.slice(0, k)
      onEvent?.({ type: 'final-peers', peers: closest.map(c => c.contact) })
      resolve({ closest, answered, queried, drained })
    }
    const onAbort = (): void => { if (spec.signal !== undefined) finish(abortReason(spec.signal)) }
    if (spec.signal?.aborted === true) { onAbort(); return }
    spec.signal?.addEventListener('abort', onAbort, { once: true })

    /** Launches what path `p` may launch; returns true if the path is finished. */
    const pump = (p: number): boolean => {
      const list = paths[p]
      let seen = 0
      let busy = false
      for (let i = 0; i < list.length && seen < k; i++) {
        const c = list[i]
        if (c.state === 'new' && inflight[p] < alpha) launch(c) // may fail id verification
        if (c.state === 'failed' || (c.stalled === true && spec.waitForStalled !== true)) continue
        seen++
        if (c.state === 'new' || c.state === 'inflight') busy = true
      }
      return !busy
    }

    const step = (): void => {
      if (settled) return
      if (spec.done?.() === true) { finish(); return }
      let allDone = true
      for (let p = 0; p < d; p++) if (!pump(p)) allDone = false
      if (allDone) finish()
    }

    const launch = (c: PathCandidate): void => {
      if (!c.verified) {
        c.verified = true
        if (!spec.verifyId(c.id, c.publicKey)) {
          c.state = 'failed'
          c.forged = true
          failed[c.path]++
          onEvent?.({ type: 'peer-error', peer: c.contact, path: c.path, error: new OhtError('OHT_BAD_RESPONSE', 'a peer advertised a contact whose id is not the hash of its key') })
          return
        }
      }
      c.state = 'inflight'
      inflight[c.path]++
      queried++
      onEvent?.({ type: 'query', peer: c.contact, path: c.path })
      let stallTimer: TimerHandle | undefined
      const stallMs = spec.clock !== undefined ? spec.stallAfter?.(c) : undefined
      if (stallMs !== undefined && spec.clock !== undefined) {
        stallTimer = spec.clock.setTimeout(() => {
          stallTimer = undefined
          if (settled || c.state !== 'inflight') return
          c.stalled = true
          inflight[c.path]--
          step()
        }, stallMs)
      }
      const landed = (): void => {
        stallTimer?.cancel()
        if (c.stalled === true) c.stalled = false
        else inflight[c.path]--
      }
      active++
      spec.query(c, controller.signal).finally(release).then((result) => {
        if (settled) { stallTimer?.cancel(); return }
        landed()
        c.state = 'answered'
        // Kept for the caller (token, record, seq), without the closer contacts: those are
        // merged into the paths below, and keeping every answer's list alive for the whole
        // lookup made them outlive the young generation (measured: a fifth of what survived).
        c.result = result.closer.length === 0
          ? result
          : result.values === undefined && result.digest === undefined
            ? { closer: NO_CONTACTS, token: result.token, record: result.record, seq: result.seq }
            : { closer: NO_CONTACTS, token: result.token, values: result.values, total: result.total, next: result.next, digest: result.digest }
        if (result.record !== undefined) {
          spec.onValue?.(result.record)
          onEvent?.({ type: 'value', peer: c.contact, path: c.path, record: result.record })
        }
        if (onEvent !== undefined) onEvent({ type: 'peer-response', peer: c.contact, path: c.path, closer: result.closer.map(w => w.contact) })
        for (const w of result.closer) insert(c.path, w)
        step()
      }, (error: unknown) => {
        if (settled) { stallTimer?.cancel(); return }
        landed()
        c.state = 'failed'
        failed[c.path]++
        onEvent?.({ type: 'peer-error', peer: c.contact, path: c.path, error: error instanceof Error ? error : new Error(String(error)) })
        step()
      })
    }

    step()
  })
}
