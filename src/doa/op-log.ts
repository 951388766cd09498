/**
 * An app's op logs in the OHT (net-keys.ts has the keys). An author's op is written twice, as
 * values signed by the author's own key (the OHT checks that signature, and that the value
 * cannot move to another key):
 *
 * - into its page key, value id = u64 seq: the durable log, 256 ops of one author per key;
 * - into the app's heads key, value id "head": its latest op, which replaces the previous one.
 *   Watching the heads key is how a session hears every author's new ops live; a head further
 *   than one op ahead of what a replica has says which pages to fetch.
 *
 * Both values carry the op's own signed bytes, so a reader checks every op again (decodeOp
 * against the app key) and that its author is the value's writer: a holder serving another
 * author's op under a writer's slot is refused.
 *
 * Limits: a value of the `set` kind is at most 16,384 bytes, so an op sent to the OHT is too
 * (MAX_NET_OP_BYTES; its JSON body then has about 16,000 bytes). Values live at most the kind's
 * 7 days: an author's node republishes its own while they live; hosts re-put the ops newer than
 * their latest snapshot (hosting.ts), and everything older is carried by snapshots.
 */
import type { AbortOptions } from '../core/abort.ts'
import { bytesEqual, toHex } from '../core/bytes.ts'
import type { OhtNode, PutResult, ValueRecord } from '../oht/index.ts'
import { DoaError } from './errors.ts'
import { HEAD_VALUE_ID, opHeadsKey, opPageKey, opValueId, pageOf, OPS_PER_PAGE } from './net-keys.ts'
import { decodeOp, type Op } from './ops.ts'
import type { Signer } from './manifest.ts'

/** What DOA needs of the OHT engine (an `OhtNode`, or the SDK node's `oht`). */
export type DoaDht = Pick<OhtNode, 'contact' | 'get' | 'put' | 'putValue' | 'deleteValue' | 'getValues' | 'watch'>

/** The `set` kind's value limit: the largest op the OHT carries. */
export const MAX_NET_OP_BYTES = 16_384
/** Lifetime asked for op values (the `set` kind grants at most 7 days). */
export const OP_TTL_MS = 7 * 24 * 3_600_000

export interface PublishedOp {
  op: Op
  /** Holders that stored the op in its page (the durable copy). */
  stored: number
  /** Holders that stored it as the author's head. */
  headStored: number
}

/** An op read back from a value, with the record that carried it (hosts re-put such records). */
export interface FetchedOp { op: Op, record: ValueRecord }

function opOf (appKey: Uint8Array, record: ValueRecord, expectSeq?: number): Op | undefined {
  if (record.deleted) return undefined
  try {
    const op = decodeOp(record.value, appKey)
    if (!bytesEqual(op.author, record.writer)) return undefined
    if (expectSeq !== undefined && op.seq !== expectSeq) return undefined
    return op
  } catch {
    return undefined
  }
}

function seqOfId (id: Uint8Array): number | undefined {
  if (id.byteLength !== 8) return undefined
  const dv = new DataView(id.buffer, id.byteOffset, 8)
  const hi = dv.getUint32(0)
  if (hi >= 2 ** 21) return undefined
  return hi * 2 ** 32 + dv.getUint32(4)
}

/**
 * Writes `op` (signed by `author`, whose key must be the op's author) to its page and as the
 * author's head. Throws DOA_TOO_LARGE for an op over MAX_NET_OP_BYTES, DOA_NETWORK when no
 * holder stored the page value.
 */
export async function publishOp (dht: DoaDht, op: Op, author: Signer, options: AbortOptions & { ttlMs?: number } = {}): Promise<PublishedOp> {
  if (op.bytes.byteLength > MAX_NET_OP_BYTES) {
    throw new DoaError('DOA_TOO_LARGE', `this op is ${op.bytes.byteLength} bytes; ops sent over the OHT are at most ${MAX_NET_OP_BYTES} (keep the body under ~16,000 bytes)`)
  }
  if (!bytesEqual(author.publicKey, op.author)) throw new DoaError('DOA_KEY_MISMATCH', 'an op is published by its own author')
  const ttlMs = options.ttlMs ?? OP_TTL_MS
  const signal = options.signal !== undefined ? { signal: options.signal } : {}
  const page = dht.putValue(opPageKey(op.appKey, op.author, pageOf(op.seq)), { id: opValueId(op.seq), value: op.bytes, seq: op.seq, signer: author, ttlMs, ...signal })
  const head = dht.putValue(opHeadsKey(op.appKey), { id: HEAD_VALUE_ID, value: op.bytes, seq: op.seq, signer: author, ttlMs, ...signal })
  const [p, h] = await Promise.allSettled([page, head])
  if (p.status === 'rejected') throw new DoaError('DOA_NETWORK', `publishing op ${op.seq} failed: ${(p.reason as Error)?.message ?? String(p.reason)}`, { cause: p.reason })
  if (p.value.stored === 0) throw new DoaError('DOA_NETWORK', `no OHT node stored op ${op.seq}: it stays local until the next sync`)
  return { op, stored: p.value.stored, headStored: h.status === 'fulfilled' ? h.value.stored : 0 }
}

/** Every author's latest op of `appKey` that the OHT holds (verified). */
export async function fetchHeads (dht: DoaDht, appKey: Uint8Array, options: AbortOptions = {}): Promise<FetchedOp[]> {
  const r = await dht.getValues(opHeadsKey(appKey), options)
  const out: FetchedOp[] = []
  for (const record of r.values) {
    const op = opOf(appKey, record)
    if (op !== undefined) out.push({ op, record })
  }
  return out
}

/**
 * Ops `from`..`to` (inclusive, 1-based) of one author, verified, by seq; gaps where no holder
 * had an op. At most `to - from + 1` pages are read, one lookup each.
 */
export async function fetchAuthorOps (dht: DoaDht, appKey: Uint8Array, author: Uint8Array, from: number, to: number, options: AbortOptions = {}): Promise<FetchedOp[]> {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from) return []
  const out: FetchedOp[] = []
  for (let page = pageOf(from); page <= pageOf(to); page++) {
    const r = await dht.getValues(opPageKey(appKey, author, page), options)
    for (const record of r.values) {
      const seq = seqOfId(record.id)
      if (seq === undefined || seq < from || seq > to || pageOf(seq) !== page) continue
      const op = opOf(appKey, record, seq)
      if (op !== undefined) out.push({ op, record })
    }
  }
  return out.sort((a, b) => a.op.seq - b.op.seq)
}

/**
 * New heads as holders store them: each value pushed on the heads key (or found by the
 * watch's catch-up lookup), verified. Ends when `signal` aborts or the node stops.
 */
export async function * watchHeads (dht: DoaDht, appKey: Uint8Array, options: AbortOptions = {}): AsyncGenerator<FetchedOp> {
  for await (const e of dht.watch(opHeadsKey(appKey), { kind: 'set', ...options })) {
    if (e.type !== 'record' || e.record.kind !== 'value') continue
    const op = opOf(appKey, e.record)
    if (op !== undefined) yield { op, record: e.record }
  }
}

/** The hex authors a version vector is behind on, with the seq range missing for each. */
export function missingRanges (vector: Record<string, number>, heads: readonly Op[]): Array<{ author: string, from: number, to: number }> {
  const out: Array<{ author: string, from: number, to: number }> = []
  for (const h of heads) {
    const a = toHex(h.author)
    const have = vector[a] ?? 0
    if (h.seq > have + 1) out.push({ author: a, from: have + 1, to: h.seq - 1 })
  }
  return out
}

export { OPS_PER_PAGE }
