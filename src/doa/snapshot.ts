/**
 * Snapshots: the state of an app after a known set of ops, signed by the host that made it, so
 * a late joiner need not replay a year of ops. The set is named by its heads (per author the
 * last seq covered; a replica's log is a gapless prefix per author, so that is exact) and the
 * frontier (the last op in merge order). Anyone holding the ops can check a snapshot by replay
 * (`verifySnapshotByReplay`); a joiner that trusts the host (or several hosts agreeing on the
 * hash) starts from it with `replicaFromSnapshot` and applies newer ops.
 *
 * Encoding, big-endian:
 *
 *   0       4  magic "DOAS"
 *   4       1  version = 1
 *   5       4  u32 length L of the body JSON (at most 8 MiB)
 *   9       L  canonical JSON { app, release, codeRoot, heads, frontier, count, state, stateHash, host, time }
 *   9+L    64  Ed25519 signature of the host over "doa/snapshot/v1\0" || bytes 0 .. 9+L
 *
 * A snapshot is larger than one record in general; the networked half stores its encoding as
 * a bundle-like chunked blob (bundle.ts) and names it from the host's records.
 */
import { bytesEqual, concatBytes, fromHex, toHex } from '../core/bytes.ts'
import { verifySignature } from '../crypto/index.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, fromUtf8, parseJson, utf8, type Json } from './json.ts'
import type { AppLogic } from './logic.ts'
import type { Signer } from './manifest.ts'
import type { Op } from './ops.ts'
import { createReplica, stateHash, type Replica, type ReplicaInit, type SnapshotHead } from './replica.ts'

export const SNAPSHOT_MAGIC = utf8('DOAS')
export const MAX_SNAPSHOT_JSON = 8 * 1024 * 1024
const SIGN_TAG = utf8('doa/snapshot/v1\0')

export interface Snapshot {
  /** Hex app key. */
  app: string
  /** Release whose reducer made the state (another reducer gives another state). */
  release: number
  /** Hex Merkle root of that release's code bundle. */
  codeRoot: string
  heads: SnapshotHead[]
  frontier: SnapshotHead | null
  /** Ops covered (validator-refused ones included). */
  count: number
  state: Json
  /** Hex state hash (replica.ts `stateHash`). */
  stateHash: string
  /** Hex key of the host that signed it. */
  host: string
  /** When the host made it, by its clock (ms since the epoch). */
  time: number
}

export interface SignedSnapshot { snapshot: Snapshot, bytes: Uint8Array }

function bad (message: string): never { throw new DoaError('DOA_BAD_SNAPSHOT', message) }

/** Makes and signs a snapshot of `replica`'s current state. */
export function makeSnapshot (replica: Replica, meta: { release: number, codeRoot: string, time: number }, host: Signer): SignedSnapshot {
  const state = replica.state
  const snapshot: Snapshot = {
    app: toHex(replica.appKey),
    release: meta.release,
    codeRoot: meta.codeRoot,
    heads: replica.heads(),
    frontier: replica.frontier(),
    count: replica.heads().reduce((n, h) => n + h.seq, 0),
    state,
    stateHash: toHex(stateHash(state)),
    host: toHex(host.publicKey),
    time: meta.time
  }
  const json = utf8(canonicalJson(snapshot, { maxLength: MAX_SNAPSHOT_JSON }))
  const head = new Uint8Array(9)
  head.set(SNAPSHOT_MAGIC, 0)
  head[4] = 1
  new DataView(head.buffer).setUint32(5, json.byteLength)
  const body = concatBytes(head, json)
  return { snapshot, bytes: concatBytes(body, host.sign(concatBytes(SIGN_TAG, body))) }
}

const HEX32 = /^[0-9a-f]{64}$/

function checkHead (h: unknown): SnapshotHead {
  const x = h as SnapshotHead
  if (x === null || typeof x !== 'object' || typeof x.author !== 'string' || !HEX32.test(x.author) || !Number.isSafeInteger(x.seq) || x.seq < 1 || !Number.isSafeInteger(x.lamport) || x.lamport < 1) bad('a snapshot head is malformed')
  return { author: x.author, seq: x.seq, lamport: x.lamport }
}

/**
 * Decodes a snapshot and checks its host signature and that its state hashes to `stateHash`.
 * With `appKey` it must be that app's. Throws DOA_BAD_SNAPSHOT / DOA_BAD_SIGNATURE / DOA_KEY_MISMATCH.
 */
export function openSnapshot (bytes: Uint8Array, appKey?: Uint8Array): SignedSnapshot {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 9 + 64 || !bytesEqual(bytes.subarray(0, 4), SNAPSHOT_MAGIC) || bytes[4] !== 1) bad('not a version-1 DOA snapshot')
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(5)
  if (len > MAX_SNAPSHOT_JSON || bytes.byteLength !== 9 + len + 64) bad('snapshot length does not match its header')
  const text = fromUtf8(bytes.subarray(9, 9 + len))
  const raw = parseJson(text, { maxLength: MAX_SNAPSHOT_JSON }) as unknown as Snapshot
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad('snapshot body is not an object')
  if (canonicalJson(raw) !== text) bad('snapshot body is not canonical JSON')
  if (!HEX32.test(String(raw.app)) || !HEX32.test(String(raw.host)) || !HEX32.test(String(raw.stateHash)) || !HEX32.test(String(raw.codeRoot))) bad('snapshot keys and hashes must be 64 hex digits')
  if (!Number.isSafeInteger(raw.release) || !Number.isSafeInteger(raw.count) || !Number.isSafeInteger(raw.time) || !Array.isArray(raw.heads)) bad('snapshot counters are malformed')
  const heads = raw.heads.map(checkHead)
  for (let i = 1; i < heads.length; i++) if (heads[i - 1].author >= heads[i].author) bad('snapshot heads are not sorted by author')
  const frontier = raw.frontier === null ? null : checkHead(raw.frontier)
  if (appKey !== undefined && raw.app !== toHex(appKey)) throw new DoaError('DOA_KEY_MISMATCH', `snapshot is of app ${raw.app.slice(0, 16)}…, not ${toHex(appKey).slice(0, 16)}…`)
  if (!verifySignature(fromHex(raw.host), concatBytes(SIGN_TAG, bytes.subarray(0, 9 + len)), bytes.subarray(9 + len))) {
    throw new DoaError('DOA_BAD_SIGNATURE', `snapshot does not carry a valid signature of its host ${raw.host.slice(0, 16)}…`)
  }
  if (toHex(stateHash(raw.state)) !== raw.stateHash) bad('snapshot state does not hash to its stateHash')
  return { snapshot: { ...raw, heads, frontier }, bytes: bytes.slice() }
}

/** A replica that starts from a verified snapshot. */
export function replicaFromSnapshot (snapshot: Snapshot, init: Omit<ReplicaInit, 'appKey' | 'base'>, logic: AppLogic): Replica {
  return createReplica({ ...init, appKey: fromHex(snapshot.app), base: { heads: snapshot.heads, frontier: snapshot.frontier, state: snapshot.state } }, { logic })
}

/**
 * Replays `ops` from genesis and checks that they cover exactly the snapshot's heads and give
 * its state hash. Throws DOA_SNAPSHOT_MISMATCH saying which part differs.
 */
export function verifySnapshotByReplay (snapshot: Snapshot, ops: Iterable<Op | Uint8Array>, logic: AppLogic): void {
  const replica = createReplica({ appKey: fromHex(snapshot.app) }, { logic })
  replica.addMany(ops)
  const heads = replica.heads()
  if (canonicalJson(heads as unknown as Json) !== canonicalJson(snapshot.heads as unknown as Json)) {
    throw new DoaError('DOA_SNAPSHOT_MISMATCH', 'the ops given do not cover exactly the ops the snapshot names')
  }
  if (toHex(replica.stateHash()) !== snapshot.stateHash) {
    throw new DoaError('DOA_SNAPSHOT_MISMATCH', 'replaying the ops gives another state than the snapshot: the host that signed it made an error or lied')
  }
}
