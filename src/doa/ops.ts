/**
 * Operations: the signed, self-contained entries of an app's per-author logs. An op verifies on
 * its own (it names its app, author, position and causal past, and carries its signature), so a
 * holder can store it as one value of a multi-value OHT key and anyone can check it.
 *
 * Layout (big-endian), at most 17,246 bytes:
 *
 *   0        1  version = 1
 *   1       32  app key
 *   33      32  author key (Ed25519)
 *   65       8  u64 seq: the author's own counter, 1, 2, 3 … without gaps
 *   73       8  u64 lamport: above the author's previous op and above every parent
 *   81       8  u64 time: ms since the epoch by the author's clock (a claim, not a fact)
 *   89       1  u8 parent count P (at most 16)
 *   90    40·P  parents, sorted by author key, one per author, never the op's own author:
 *                 32 author key | u64 seq   ("I had seen that author's log up to seq")
 *   …        4  u32 body length B (at most 16,384)
 *   …        B  body: canonical JSON, UTF-8
 *   …       64  Ed25519 signature by the author over "doa/op/v1\0" || every byte above
 *
 * Parents name (author, seq) rather than op hashes: a snapshot then covers them with one seq
 * per author, and an equivocating author (two ops with one seq) is cut at that seq, so a
 * reference is never ambiguous among the ops a replica accepts. The op id is SHA-256 of the
 * whole encoding.
 */
import { bytesEqual, concatBytes, toHex } from '../core/bytes.ts'
import { sha256, verifySignature } from '../crypto/index.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, fromUtf8, parseJson, utf8, type Json } from './json.ts'
import type { Signer } from './manifest.ts'

export const OP_VERSION = 1
export const MAX_PARENTS = 16
export const MAX_OP_BODY = 16 * 1024
const HEADER = 90
const SIGN_TAG = utf8('doa/op/v1\0')
export const MAX_OP_BYTES = HEADER + 40 * MAX_PARENTS + 4 + MAX_OP_BODY + 64

export interface OpParent { author: Uint8Array, seq: number }

export interface Op {
  /** SHA-256 of `bytes`. */
  id: Uint8Array
  appKey: Uint8Array
  author: Uint8Array
  seq: number
  lamport: number
  time: number
  parents: OpParent[]
  body: Json
  /** The signed encoding. */
  bytes: Uint8Array
}

export interface OpFields {
  appKey: Uint8Array
  seq: number
  lamport: number
  time: number
  parents?: OpParent[]
  body: Json
}

function badOp (message: string): never { throw new DoaError('DOA_BAD_OP', message) }

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.byteLength && i < b.byteLength; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.byteLength - b.byteLength
}

function writeU64 (dv: DataView, off: number, v: number): void {
  dv.setUint32(off, Math.floor(v / 2 ** 32)); dv.setUint32(off + 4, v >>> 0)
}
function readU64 (dv: DataView, off: number): number {
  const hi = dv.getUint32(off)
  if (hi >= 2 ** 21) badOp('a 64-bit field is above 2^53')
  return hi * 2 ** 32 + dv.getUint32(off + 4)
}

function checkCounter (v: number, what: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) badOp(`${what} must be an integer of at least ${min}, got ${v}`)
}

/** Signs an op with the author's key. */
export function signOp (author: Signer, fields: OpFields): Op {
  if (fields.appKey?.byteLength !== 32) badOp('app key must be 32 bytes')
  checkCounter(fields.seq, 'seq', 1)
  checkCounter(fields.lamport, 'lamport', 1)
  checkCounter(fields.time, 'time', 0)
  const parents = [...(fields.parents ?? [])].sort((a, b) => compareBytes(a.author, b.author))
  if (parents.length > MAX_PARENTS) badOp(`an op names at most ${MAX_PARENTS} parents`)
  parents.forEach((p, i) => {
    if (p.author.byteLength !== 32) badOp('a parent author key must be 32 bytes')
    checkCounter(p.seq, 'parent seq', 1)
    if (bytesEqual(p.author, author.publicKey)) badOp('an op does not name its own author as a parent (its seq already does)')
    if (i > 0 && bytesEqual(parents[i - 1].author, p.author)) badOp('an op names each parent author once')
  })
  const body = utf8(canonicalJson(fields.body, { maxLength: MAX_OP_BODY }))
  if (body.byteLength > MAX_OP_BODY) throw new DoaError('DOA_TOO_LARGE', `op body is ${body.byteLength} bytes; at most ${MAX_OP_BODY} are allowed`)
  const unsigned = new Uint8Array(HEADER + 40 * parents.length + 4 + body.byteLength)
  const dv = new DataView(unsigned.buffer)
  unsigned[0] = OP_VERSION
  unsigned.set(fields.appKey, 1)
  unsigned.set(author.publicKey, 33)
  writeU64(dv, 65, fields.seq)
  writeU64(dv, 73, fields.lamport)
  writeU64(dv, 81, fields.time)
  unsigned[89] = parents.length
  let off = HEADER
  for (const p of parents) { unsigned.set(p.author, off); writeU64(dv, off + 32, p.seq); off += 40 }
  dv.setUint32(off, body.byteLength); off += 4
  unsigned.set(body, off)
  const sig = author.sign(concatBytes(SIGN_TAG, unsigned))
  return decodeOp(concatBytes(unsigned, sig))
}

/**
 * Decodes and verifies an op. With `appKey`, it must belong to that app. Throws DOA_BAD_OP
 * (malformed), DOA_TOO_LARGE, DOA_BAD_SIGNATURE or DOA_KEY_MISMATCH (another app's op).
 */
export function decodeOp (bytes: Uint8Array, appKey?: Uint8Array): Op {
  if (!(bytes instanceof Uint8Array)) badOp('an op is bytes')
  if (bytes.byteLength > MAX_OP_BYTES) throw new DoaError('DOA_TOO_LARGE', `op of ${bytes.byteLength} bytes is over the ${MAX_OP_BYTES}-byte limit`)
  if (bytes.byteLength < HEADER + 4 + 64) badOp('op is truncated')
  if (bytes[0] !== OP_VERSION) badOp(`op version ${bytes[0]} is not supported (this build reads ${OP_VERSION})`)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const app = bytes.slice(1, 33)
  const author = bytes.slice(33, 65)
  const seq = readU64(dv, 65)
  const lamport = readU64(dv, 73)
  const time = readU64(dv, 81)
  checkCounter(seq, 'seq', 1)
  checkCounter(lamport, 'lamport', 1)
  const n = bytes[89]
  if (n > MAX_PARENTS) badOp(`op names ${n} parents; at most ${MAX_PARENTS} are allowed`)
  let off = HEADER
  if (off + 40 * n + 4 + 64 > bytes.byteLength) badOp('op is truncated in its parents')
  const parents: OpParent[] = []
  for (let i = 0; i < n; i++) {
    const p = { author: bytes.slice(off, off + 32), seq: readU64(dv, off + 32) }
    checkCounter(p.seq, 'parent seq', 1)
    if (bytesEqual(p.author, author)) badOp('op names its own author as a parent')
    if (i > 0 && compareBytes(parents[i - 1].author, p.author) >= 0) badOp('op parents are not sorted by author or repeat one')
    parents.push(p)
    off += 40
  }
  const len = dv.getUint32(off); off += 4
  if (len > MAX_OP_BODY) throw new DoaError('DOA_TOO_LARGE', `op body of ${len} bytes is over the ${MAX_OP_BODY}-byte limit`)
  if (off + len + 64 !== bytes.byteLength) badOp('op length does not match its body length')
  const text = fromUtf8(bytes.subarray(off, off + len))
  let body: Json
  try { body = parseJson(text, { maxLength: MAX_OP_BODY }) } catch (err) { throw new DoaError('DOA_BAD_OP', `op body is not JSON: ${(err as Error).message}`, { cause: err }) }
  if (canonicalJson(body) !== text) badOp('op body is not canonical JSON')
  if (appKey !== undefined && !bytesEqual(app, appKey)) throw new DoaError('DOA_KEY_MISMATCH', `op belongs to app ${toHex(app).slice(0, 16)}…, not ${toHex(appKey).slice(0, 16)}…`)
  const signed = bytes.subarray(0, off + len)
  if (!verifySignature(author, concatBytes(SIGN_TAG, signed), bytes.subarray(off + len))) {
    throw new DoaError('DOA_BAD_SIGNATURE', `op ${seq} of author ${toHex(author).slice(0, 16)}… does not carry a valid signature`)
  }
  return { id: sha256(bytes), appKey: app, author, seq, lamport, time, parents, body, bytes: bytes.slice() }
}

/** The merge order every host computes: Lamport clock, then author key, then seq. */
export function compareOps (a: Pick<Op, 'lamport' | 'author' | 'seq'>, b: Pick<Op, 'lamport' | 'author' | 'seq'>): number {
  if (a.lamport !== b.lamport) return a.lamport - b.lamport
  const c = compareBytes(a.author, b.author)
  if (c !== 0) return c
  return a.seq - b.seq
}

export { compareBytes }
