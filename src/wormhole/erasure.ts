/**
 * Systematic Reed-Solomon erasure code over GF(2^8): `encode(data, k, n)` gives n fragments of
 * which any k rebuild the data. Fragments 0..k-1 are the data itself (cut in k shards), k..n-1
 * are parity. The generator matrix is [I_k ; C] with C a Cauchy matrix, C[r][c] = 1 / (x_r + y_c)
 * with x_r = k + r and y_c = c (all distinct): every square submatrix of a Cauchy matrix is
 * invertible, so any k rows of [I ; C] are, and any k fragments rebuild. Field: polynomial
 * x^8 + x^4 + x^3 + x^2 + 1 (0x11d), the usual one for Reed-Solomon.
 *
 * Plain TypeScript (a 64 KiB multiplication table, built once): enough for messages of a few KB
 * (see bench/wormhole-crypto.ts), with no native build to carry.
 *
 * Fragment, version 1:
 * ```
 *  0       1          2      3      4              8                 40
 *  | ver=1 | index u8 | k u8 | n u8 | length u32   | SHA-256(data) [32] | shard (ceil(length / k) bytes) |
 * ```
 * The digest of the whole is checked after every rebuild: a corrupted or foreign fragment gives a
 * typed error, never wrong data. With more than k fragments at hand, other k-subsets are tried
 * (up to MAX_ATTEMPTS, and a bound on the work), leaving out one fragment, then two, … so a few
 * bad holders cannot block a rebuild the others allow.
 */
import { bytesEqual } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { wormholeError } from './errors.ts'

export const FRAGMENT_VERSION = 1
export const FRAGMENT_HEADER_BYTES = 40
export const MAX_FRAGMENTS = 255
/** Largest data one call encodes (envelopes are at most 64 KiB). */
export const MAX_ERASURE_DATA_BYTES = 1024 * 1024
/** k-subsets tried at most when some fragments are bad. */
export const MAX_ATTEMPTS = 256
/** GF(256) operations one decode may spend on retries (bounds the work a batch of bad fragments costs). */
const WORK_BUDGET = 64 * 1024 * 1024
/** Distinct copies of one fragment index considered (a good one and a bad one). */
const COPIES_PER_INDEX = 2

// ---------------------------------------------------------------- GF(256)

const EXP = new Uint8Array(512)
const LOG = new Uint8Array(256)
{
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if ((x & 0x100) !== 0) x ^= 0x11d
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]
}
/** MUL[a * 256 + b] = a·b in GF(256). */
const MUL = new Uint8Array(65536)
for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) MUL[a * 256 + b] = EXP[LOG[a] + LOG[b]]

function gfMul (a: number, b: number): number { return MUL[(a << 8) | b] }
function gfInv (a: number): number {
  if (a === 0) throw wormholeError('WORMHOLE_ERASURE_CORRUPT', 'singular matrix')
  return EXP[255 - LOG[a]]
}

/** dst ^= c · src, byte by byte. */
function mulAdd (dst: Uint8Array, src: Uint8Array, c: number): void {
  if (c === 0) return
  const n = dst.byteLength
  if (c === 1) { for (let i = 0; i < n; i++) dst[i] ^= src[i]; return }
  const t = MUL.subarray(c << 8, (c << 8) + 256) // this coefficient's row: a 256-entry table
  for (let i = 0; i < n; i++) dst[i] ^= t[src[i]]
}

/** Row `index` of the generator matrix [I ; Cauchy]. */
function generatorRow (index: number, k: number): Uint8Array {
  const row = new Uint8Array(k)
  if (index < k) { row[index] = 1; return row }
  for (let c = 0; c < k; c++) row[c] = gfInv(index ^ c)
  return row
}

/** Inverse of a k×k matrix (rows) by Gauss-Jordan elimination. */
function invert (m: Uint8Array[]): Uint8Array[] {
  const k = m.length
  const a = m.map(r => Uint8Array.from(r))
  const inv = Array.from({ length: k }, (_, i) => { const r = new Uint8Array(k); r[i] = 1; return r })
  for (let col = 0; col < k; col++) {
    let pivot = col
    while (pivot < k && a[pivot][col] === 0) pivot++
    if (pivot === k) throw wormholeError('WORMHOLE_ERASURE_CORRUPT', 'fragments do not form an invertible set')
    if (pivot !== col) { [a[pivot], a[col]] = [a[col], a[pivot]]; [inv[pivot], inv[col]] = [inv[col], inv[pivot]] }
    const f = gfInv(a[col][col])
    for (let j = 0; j < k; j++) { a[col][j] = gfMul(a[col][j], f); inv[col][j] = gfMul(inv[col][j], f) }
    for (let r = 0; r < k; r++) {
      if (r === col || a[r][col] === 0) continue
      const c = a[r][col]
      mulAdd(a[r], a[col], c)
      mulAdd(inv[r], inv[col], c)
    }
  }
  return inv
}

// ---------------------------------------------------------------- fragments

export interface Fragment {
  index: number
  k: number
  n: number
  length: number
  digest: Uint8Array
  shard: Uint8Array
}

function checkParams (k: number, n: number): void {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || n < k || n > MAX_FRAGMENTS) {
    throw wormholeError('WORMHOLE_BAD_ARGUMENT', `erasure code needs integers 1 <= k <= n <= ${MAX_FRAGMENTS}, got k=${k} n=${n}`)
  }
}

/**
 * Splits `data` into `n` encoded fragments of which any `k` rebuild it.
 *
 * @example
 * const frags = erasureEncode(envelope, 4, 8)       // 8 Uint8Arrays
 * erasureDecode([frags[7], frags[2], frags[5], frags[0]])  // envelope again
 */
export function erasureEncode (data: Uint8Array, k: number, n: number): Uint8Array[] {
  checkParams(k, n)
  if (!(data instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'erasure code input is a Uint8Array')
  if (data.byteLength > MAX_ERASURE_DATA_BYTES) throw wormholeError('WORMHOLE_TOO_LARGE', `erasure code input over ${MAX_ERASURE_DATA_BYTES} bytes`)
  const shardLen = Math.ceil(data.byteLength / k)
  const digest = sha256(data)
  const out: Uint8Array[] = []
  const frags: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const f = new Uint8Array(FRAGMENT_HEADER_BYTES + shardLen)
    f[0] = FRAGMENT_VERSION; f[1] = i; f[2] = k; f[3] = n
    const len = data.byteLength
    f[4] = len >>> 24; f[5] = (len >>> 16) & 0xff; f[6] = (len >>> 8) & 0xff; f[7] = len & 0xff
    f.set(digest, 8)
    out.push(f)
    frags.push(f.subarray(FRAGMENT_HEADER_BYTES))
  }
  for (let i = 0; i < k; i++) frags[i].set(data.subarray(i * shardLen, Math.min(data.byteLength, (i + 1) * shardLen)))
  for (let i = k; i < n; i++) {
    const row = generatorRow(i, k)
    for (let c = 0; c < k; c++) mulAdd(frags[i], frags[c], row[c])
  }
  return out
}

/** Parses a fragment's header; WORMHOLE_TRUNCATED / WORMHOLE_BAD_VERSION / WORMHOLE_MALFORMED. */
export function parseFragment (bytes: Uint8Array): Fragment {
  if (!(bytes instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a fragment is a Uint8Array')
  if (bytes.byteLength < FRAGMENT_HEADER_BYTES) throw wormholeError('WORMHOLE_TRUNCATED', `a fragment has at least ${FRAGMENT_HEADER_BYTES} bytes, got ${bytes.byteLength}`)
  if (bytes[0] !== FRAGMENT_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `fragment version ${bytes[0]} is not supported`)
  const index = bytes[1]
  const k = bytes[2]
  const n = bytes[3]
  const length = ((bytes[4] << 24) >>> 0) + (bytes[5] << 16) + (bytes[6] << 8) + bytes[7]
  if (k < 1 || n < k || index >= n) throw wormholeError('WORMHOLE_MALFORMED', `fragment header out of range (index ${index}, k ${k}, n ${n})`)
  if (length > MAX_ERASURE_DATA_BYTES) throw wormholeError('WORMHOLE_TOO_LARGE', `fragment announces ${length} bytes, over ${MAX_ERASURE_DATA_BYTES}`)
  const shardLen = Math.ceil(length / k)
  if (bytes.byteLength !== FRAGMENT_HEADER_BYTES + shardLen) throw wormholeError('WORMHOLE_MALFORMED', `fragment shard is ${bytes.byteLength - FRAGMENT_HEADER_BYTES} bytes, its header says ${shardLen}`)
  return { index, k, n, length, digest: bytes.subarray(8, 40), shard: bytes.subarray(FRAGMENT_HEADER_BYTES) }
}

function sameMessage (a: Fragment, b: Fragment): boolean {
  return a.k === b.k && a.n === b.n && a.length === b.length && bytesEqual(a.digest, b.digest)
}

function rebuild (set: Fragment[]): Uint8Array {
  const { k, length } = set[0]
  const shardLen = Math.ceil(length / k)
  const out = new Uint8Array(shardLen * k)
  if (set.every(f => f.index < k)) {
    for (const f of set) out.set(f.shard, f.index * shardLen)
  } else {
    const inv = invert(set.map(f => generatorRow(f.index, k)))
    for (let j = 0; j < k; j++) {
      const dst = out.subarray(j * shardLen, (j + 1) * shardLen)
      for (let t = 0; t < k; t++) mulAdd(dst, set[t].shard, inv[j][t])
    }
  }
  return out.subarray(0, length)
}

/** e-subsets of 0..m-1, lexicographic, lazily. */
function * combinations (m: number, e: number): Generator<number[]> {
  if (e > m) return
  const idx = Array.from({ length: e }, (_, i) => i)
  for (;;) {
    yield idx.slice()
    let i = e - 1
    while (i >= 0 && idx[i] === m - e + i) i--
    if (i < 0) return
    idx[i]++
    for (let j = i + 1; j < e; j++) idx[j] = idx[j - 1] + 1
  }
}

/**
 * Candidate k-sets in the order that finds a good one soonest: the first k, then the first k
 * once each single fragment is left out, then each pair, and so on. With b bad fragments the set
 * that leaves out exactly those comes after at most sum(C(m, e), e <= b) tries, whatever k is.
 */
function * kSets (candidates: Fragment[], k: number): Generator<Fragment[]> {
  const m = candidates.length
  for (let e = 0; e <= m - k; e++) {
    for (const ex of combinations(m, e)) {
      const out = new Set(ex)
      const set: Fragment[] = []
      const indices = new Set<number>()
      for (let i = 0; i < m && set.length < k; i++) {
        if (out.has(i) || indices.has(candidates[i].index)) continue
        indices.add(candidates[i].index)
        set.push(candidates[i])
      }
      if (set.length === k) yield set
    }
  }
}

/**
 * Rebuilds the data from any k distinct fragments of one message (extra ones are fine).
 * Fragments of other messages (another digest) are ignored when `digest` is given; without it
 * the message with the most distinct fragments is rebuilt. Errors: WORMHOLE_ERASURE_TOO_FEW
 * (fewer than k distinct indices), WORMHOLE_ERASURE_CORRUPT (no k of them match the digest),
 * and the parse errors of parseFragment.
 */
export function erasureDecode (fragments: Uint8Array[], options: { digest?: Uint8Array } = {}): Uint8Array {
  if (!Array.isArray(fragments)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'fragments must be an array')
  if (fragments.length > 4 * MAX_FRAGMENTS) throw wormholeError('WORMHOLE_TOO_LARGE', 'too many fragments')
  let parsed = fragments.map(parseFragment)
  if (options.digest !== undefined) {
    const d = options.digest
    parsed = parsed.filter(f => bytesEqual(f.digest, d))
  } else if (parsed.length > 0) {
    // Group by message; the largest group wins.
    const groups: Fragment[][] = []
    for (const f of parsed) {
      const g = groups.find(x => sameMessage(x[0], f))
      if (g === undefined) groups.push([f]); else g.push(f)
    }
    const distinct = (g: Fragment[]): number => new Set(g.map(f => f.index)).size
    groups.sort((a, b) => distinct(b) - distinct(a))
    parsed = groups[0]
  }
  if (parsed.length === 0) throw wormholeError('WORMHOLE_ERASURE_TOO_FEW', 'no fragments of this message')
  const head = parsed[0]
  parsed = parsed.filter(f => sameMessage(f, head))
  // One candidate per distinct (index, shard); conflicting copies of one index are kept (two at most).
  const candidates: Fragment[] = []
  for (const f of parsed) {
    const same = candidates.filter(c => c.index === f.index)
    if (same.length < COPIES_PER_INDEX && !same.some(c => bytesEqual(c.shard, f.shard))) candidates.push(f)
  }
  candidates.sort((a, b) => a.index - b.index) // data fragments first: a rebuild from them is a copy
  const indices = new Set(candidates.map(f => f.index))
  if (indices.size < head.k) throw wormholeError('WORMHOLE_ERASURE_TOO_FEW', `${indices.size} distinct fragments of ${head.k} needed`)
  const k = head.k
  const perAttempt = k * k * k + k * k * Math.ceil(head.length / k) + head.length
  const maxAttempts = Math.max(1, Math.min(MAX_ATTEMPTS, Math.floor(WORK_BUDGET / perAttempt)))
  let attempts = 0
  let visited = 0
  const tried = new Set<string>()
  for (const set of kSets(candidates, k)) {
    // Every set visited counts, repeats too: no input makes this loop long.
    if (++visited > 16 * MAX_ATTEMPTS) break
    const id = set.map(f => candidates.indexOf(f)).join(',')
    if (tried.has(id)) continue
    tried.add(id)
    if (++attempts > maxAttempts) break
    const data = rebuild(set)
    if (bytesEqual(sha256(data), head.digest)) return Uint8Array.from(data)
  }
  throw wormholeError('WORMHOLE_ERASURE_CORRUPT', 'the fragments do not rebuild data matching their digest: some are corrupted')
}
