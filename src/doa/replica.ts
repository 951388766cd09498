/**
 * Deterministic replay: an app's state is the fold of its reducer over the set of accepted ops
 * in one total order, (Lamport clock, author key, seq), that every host computes the same way
 * whatever order the ops arrived in. The accepted set is itself a function of the set of ops
 * seen, never of their arrival order:
 *
 * - an author's ops are accepted as a gapless prefix, seq 1, 2, 3 …; an op further than
 *   `maxGap` past the next expected seq is refused outright (bounded memory), one inside the
 *   gap waits until the gap fills;
 * - an op waits until every parent (author, seq) it names is accepted;
 * - its Lamport clock must be above its predecessor's and every parent's, or it is rejected
 *   (the author's log then stops there for good);
 * - two different signed ops for one (author, seq) are equivocation: that author's log is cut
 *   at that seq on every host, and ops depending on the cut part wait forever;
 * - the validator (sandboxed) may refuse an accepted op: it stays in the log (it was signed and
 *   in order) but changes nothing.
 *
 * Out-of-order arrivals are folded in by replaying from the nearest checkpoint before the
 * insertion point. A replica may start from a snapshot (snapshot.ts) instead of genesis; an op
 * it cannot place because it sorts before the snapshot's frontier is reported
 * `before-snapshot` (the caller fetches history or a newer snapshot) and never silently
 * accepted or dropped, so a snapshot host never accepts what a genesis host would refuse.
 */
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { DoaError, type DoaErrorCode } from './errors.ts'
import { canonicalJson, utf8, type Json } from './json.ts'
import type { AppLogic, OpInput, OpOutcome } from './logic.ts'
import { compareOps, decodeOp, type Op } from './ops.ts'

export interface SnapshotHead { author: string, seq: number, lamport: number }

/** What a replica starting from a snapshot needs of it (already verified by the caller). */
export interface ReplicaBase {
  heads: SnapshotHead[]
  frontier: SnapshotHead | null
  state: Json
}

export interface ReplicaInit {
  appKey: Uint8Array
  /** Ops further than this past an author's next seq are refused. @default 1024 */
  maxGap?: number
  /** Ops held while they wait for a gap or a parent. @default 10000 */
  maxPending?: number
  /** A state checkpoint is kept every this many ops (bounds the replay after a late arrival). @default 256 */
  checkpointEvery?: number
  /** Start from this snapshot instead of genesis. */
  base?: ReplicaBase
}

export interface ReplicaComponents { logic: AppLogic }

export type AddStatus = 'accepted' | 'pending' | 'duplicate' | 'rejected' | 'before-snapshot'

export interface AddResult {
  status: AddStatus
  /** Hex op id (absent when the bytes did not decode). */
  id?: string
  code?: DoaErrorCode
  reason?: string
}

const STATE_TAG = utf8('doa/state/v1\0')

/** SHA-256 over the canonical JSON of a state, domain-separated. */
export function stateHash (state: Json): Uint8Array {
  return sha256(STATE_TAG, utf8(canonicalJson(state)))
}

interface Checkpoint { index: number, state: Json }

export class Replica {
  readonly appKey: Uint8Array
  private readonly maxGap: number
  private readonly maxPending: number
  private readonly every: number
  private readonly logic: AppLogic
  private readonly base: ReplicaBase | undefined
  private readonly baseHeads = new Map<string, SnapshotHead>()

  private readonly known = new Map<string, Op>()
  private readonly slots = new Map<string, Map<number, string>>()
  private readonly cut = new Map<string, number>()
  private readonly rejected = new Map<string, string>()
  private readonly before = new Set<string>()
  private accepted = new Set<string>()
  private next = new Map<string, number>()
  private order: Op[] = []
  private checkpoints: Checkpoint[] = []
  private folded = 0
  private current: Json = null
  private readonly outcomes = new Map<string, OpOutcome>()
  /** "author:seq" → ids of ops naming that parent (so an acceptance wakes exactly them). */
  private readonly waiters = new Map<string, Set<string>>()

  constructor (init: ReplicaInit, components: ReplicaComponents) {
    if (init.appKey?.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'a replica needs the 32-byte app key')
    this.appKey = init.appKey
    this.maxGap = init.maxGap ?? 1024
    this.maxPending = init.maxPending ?? 10_000
    this.every = Math.max(1, init.checkpointEvery ?? 256)
    this.logic = components.logic
    this.base = init.base
    for (const h of init.base?.heads ?? []) this.baseHeads.set(h.author, h)
    const start = init.base !== undefined ? init.base.state : this.logic.init()
    this.checkpoints = [{ index: 0, state: start }]
    this.current = start
    this.resetNext()
  }

  private resetNext (): void {
    this.next = new Map()
    for (const [a, h] of this.baseHeads) this.next.set(a, h.seq + 1)
  }

  private nextOf (author: string): number { return this.next.get(author) ?? 1 }

  /** Number of ops in the accepted log (snapshot base not counted). */
  get size (): number { return this.order.length }
  /** Ops held waiting for a gap or a parent. */
  get pending (): number { return this.known.size - this.accepted.size - this.rejected.size }
  /** True once an op arrived that sorts before the snapshot this replica started from. */
  get needsHistory (): boolean { return this.before.size > 0 }

  /** Adds one op (bytes are decoded and verified first). Never throws for bad input. */
  add (input: Op | Uint8Array): AddResult {
    let op: Op
    try {
      op = input instanceof Uint8Array ? decodeOp(input, this.appKey) : input
      if (!bytesEqual(op.appKey, this.appKey)) return { status: 'rejected', id: toHex(op.id), code: 'DOA_KEY_MISMATCH', reason: 'op belongs to another app' }
    } catch (err) {
      const e = err as DoaError
      return { status: 'rejected', code: e.code ?? 'DOA_BAD_OP', reason: e.message }
    }
    const id = toHex(op.id)
    if (this.known.has(id)) return { status: 'duplicate', id }
    const author = toHex(op.author)
    const baseHead = this.baseHeads.get(author)
    if (baseHead !== undefined && op.seq <= baseHead.seq) return { status: 'duplicate', id, reason: 'covered by the snapshot' }
    if (op.seq > this.nextOf(author) + this.maxGap) {
      return { status: 'rejected', id, code: 'DOA_OP_REJECTED', reason: `seq ${op.seq} is more than ${this.maxGap} past the next expected seq ${this.nextOf(author)}` }
    }
    if (this.pending >= this.maxPending) return { status: 'rejected', id, code: 'DOA_OP_REJECTED', reason: `${this.maxPending} ops are already waiting; try again later` }
    this.known.set(id, op)
    let bySeq = this.slots.get(author)
    if (bySeq === undefined) { bySeq = new Map(); this.slots.set(author, bySeq) }
    const other = bySeq.get(op.seq)
    if (other !== undefined) {
      // Equivocation: cut the author's log at this seq, the same on every host.
      const c = Math.min(this.cut.get(author) ?? Infinity, op.seq)
      this.cut.set(author, c)
      this.rebuild()
      return { status: 'rejected', id, code: 'DOA_OP_REJECTED', reason: `author ${author.slice(0, 16)}… signed two different ops with seq ${op.seq}; its log is cut there` }
    }
    bySeq.set(op.seq, id)
    for (const p of op.parents) {
      const k = `${toHex(p.author)}:${p.seq}`
      let w = this.waiters.get(k)
      if (w === undefined) { w = new Set(); this.waiters.set(k, w) }
      w.add(id)
    }
    this.admitFrom(op)
    if (this.accepted.has(id)) return { status: 'accepted', id }
    if (this.rejected.has(id)) return { status: 'rejected', id, code: 'DOA_OP_REJECTED', reason: this.rejected.get(id) }
    if (this.before.has(id)) return { status: 'before-snapshot', id, reason: 'the op sorts before the snapshot this replica started from: fetch older history or a newer snapshot' }
    return { status: 'pending', id }
  }

  /** Adds many ops; the state is folded once, when next read. */
  addMany (inputs: Iterable<Op | Uint8Array>): AddResult[] {
    const out: AddResult[] = []
    for (const i of inputs) out.push(this.add(i))
    return out
  }

  private lamportAt (author: string, seq: number): number | undefined {
    const id = this.slots.get(author)?.get(seq)
    if (id === undefined || !this.accepted.has(id)) return undefined
    return this.known.get(id)?.lamport
  }

  /** 'ok' | 'wait' | 'before' | a rejection reason. */
  private check (op: Op): string {
    const author = toHex(op.author)
    if (op.seq >= (this.cut.get(author) ?? Infinity)) return 'wait'
    if (op.seq !== this.nextOf(author)) return 'wait'
    const baseHead = this.baseHeads.get(author)
    const prev = op.seq === 1 ? 0 : (baseHead !== undefined && baseHead.seq === op.seq - 1 ? baseHead.lamport : this.lamportAt(author, op.seq - 1))
    if (prev === undefined) return 'wait'
    if (op.lamport <= prev) return `lamport ${op.lamport} is not above the author's previous op (${prev})`
    for (const p of op.parents) {
      const pa = toHex(p.author)
      if (p.seq >= (this.cut.get(pa) ?? Infinity) || p.seq >= this.nextOf(pa)) return 'wait'
      const head = this.baseHeads.get(pa)
      if (head !== undefined && p.seq <= head.seq) {
        if (p.seq === head.seq) { if (op.lamport <= head.lamport) return `lamport ${op.lamport} is not above its parent's (${head.lamport})` } else if (op.lamport <= head.lamport) return 'before'
        continue
      }
      const pl = this.lamportAt(pa, p.seq)
      if (pl === undefined) return 'wait'
      if (op.lamport <= pl) return `lamport ${op.lamport} is not above its parent's (${pl})`
    }
    const f = this.base?.frontier
    if (f != null && compareOps(op, { lamport: f.lamport, author: fromHex(f.author), seq: f.seq }) <= 0) return 'before'
    return 'ok'
  }

  /** Admits `op` if it can be, then whatever was waiting on it, transitively. */
  private admitFrom (first: Op): void {
    const queue: Op[] = [first]
    while (queue.length > 0) {
      const op = queue.shift() as Op
      const id = toHex(op.id)
      if (this.accepted.has(id) || this.rejected.has(id)) continue
      const verdict = this.check(op)
      if (verdict === 'wait') continue
      if (verdict === 'before') { this.before.add(id); continue }
      if (verdict !== 'ok') { this.rejected.set(id, verdict); continue }
      this.before.delete(id)
      this.accept(op)
      // Whatever may have waited on this op: the author's next seq, and ops naming it as parent.
      const author = toHex(op.author)
      const nextId = this.slots.get(author)?.get(op.seq + 1)
      if (nextId !== undefined) queue.push(this.known.get(nextId) as Op)
      for (const w of this.waitingOn(author, op.seq)) queue.push(w)
    }
  }

  private waitingOn (author: string, seq: number): Op[] {
    const ids = this.waiters.get(`${author}:${seq}`)
    if (ids === undefined) return []
    return [...ids].filter(id => !this.accepted.has(id)).map(id => this.known.get(id) as Op)
  }

  private accept (op: Op): void {
    const id = toHex(op.id)
    this.accepted.add(id)
    this.next.set(toHex(op.author), op.seq + 1)
    // Binary search for the position in the total order.
    let lo = 0
    let hi = this.order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareOps(this.order[mid], op) < 0) lo = mid + 1
      else hi = mid
    }
    this.order.splice(lo, 0, op)
    if (lo < this.folded) this.invalidate(lo)
  }

  private invalidate (index: number): void {
    while (this.checkpoints.length > 1 && this.checkpoints[this.checkpoints.length - 1].index > index) this.checkpoints.pop()
    const cp = this.checkpoints[this.checkpoints.length - 1]
    this.folded = cp.index
    this.current = cp.state
  }

  /** Recomputes the accepted set from scratch (after an equivocation cut). */
  private rebuild (): void {
    this.accepted = new Set()
    this.rejected.clear()
    this.before.clear()
    this.order = []
    this.resetNext()
    this.invalidate(0)
    // Admit in author/seq order; admitFrom follows what each admission unblocks.
    const all = [...this.known.values()].sort((a, b) => compareOps(a, b))
    for (const op of all) this.admitFrom(op)
  }

  /** Folds whatever is not folded yet. */
  private fold (): void {
    while (this.folded < this.order.length) {
      const end = Math.min(this.order.length, (Math.floor(this.folded / this.every) + 1) * this.every)
      const batch = this.order.slice(this.folded, end)
      const ops: OpInput[] = batch.map(op => ({ body: op.body, ctx: { id: toHex(op.id), author: toHex(op.author), seq: op.seq, lamport: op.lamport, time: op.time } }))
      const r = this.logic.applyMany(this.current, ops)
      batch.forEach((op, i) => this.outcomes.set(toHex(op.id), r.outcomes[i]))
      this.current = r.state
      this.folded = end
      if (end % this.every === 0) this.checkpoints.push({ index: end, state: r.state })
    }
  }

  /** The app state after every accepted op. */
  get state (): Json { this.fold(); return this.current }

  /** SHA-256 of the canonical state: equal on every host for the same set of ops. */
  stateHash (): Uint8Array { return stateHash(this.state) }

  /** What the validator/reducer made of an accepted op (undefined if not accepted). */
  outcomeOf (id: string): OpOutcome | undefined { this.fold(); return this.outcomes.get(id) }

  /** Accepted ops in merge order (the snapshot base excluded). */
  log (): readonly Op[] { return this.order }

  /** Per author, the highest seq accepted (a version vector for anti-entropy). */
  versionVector (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [a, n] of this.next) if (n > 1) out[a] = n - 1
    return out
  }

  /** Heads for a snapshot: per author the last accepted seq and its Lamport clock. */
  heads (): SnapshotHead[] {
    const out: SnapshotHead[] = []
    for (const [a, n] of this.next) {
      if (n <= 1) continue
      const lamport = this.lamportAt(a, n - 1) ?? this.baseHeads.get(a)?.lamport ?? 0
      out.push({ author: a, seq: n - 1, lamport })
    }
    return out.sort((x, y) => x.author < y.author ? -1 : x.author > y.author ? 1 : 0)
  }

  /** The last op of the merge order (the snapshot frontier). */
  frontier (): SnapshotHead | null {
    const last = this.order[this.order.length - 1]
    if (last === undefined) return this.base?.frontier ?? null
    return { author: toHex(last.author), seq: last.seq, lamport: last.lamport }
  }

  /**
   * Anti-entropy: the ops a peer whose version vector is `vector` lacks, accepted ones and
   * those still waiting, by author then seq. Send them; the peer's replica sorts them out.
   */
  opsAfter (vector: Record<string, number>): Op[] {
    const out: Op[] = []
    for (const [id, op] of this.known) {
      if (this.rejected.has(id)) continue
      if (op.seq > (vector[toHex(op.author)] ?? 0)) out.push(op)
    }
    return out.sort((a, b) => { const x = toHex(a.author); const y = toHex(b.author); return x < y ? -1 : x > y ? 1 : a.seq - b.seq })
  }
}

export function createReplica (init: ReplicaInit, components: ReplicaComponents): Replica {
  return new Replica(init, components)
}
