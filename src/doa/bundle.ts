/**
 * Bundles: an app's files packed into one deterministic byte string, split into chunks that
 * each fit one immutable OHT record (key = SHA-256(chunk)), with an index record listing the
 * chunk keys and an RFC 6962 Merkle root over them that the manifest carries.
 *
 * Bundle layout (all integers big-endian):
 *
 *   0       4  magic "DOAB"
 *   4       1  version = 1
 *   5       4  u32 file count N
 *   9       …  N entries, sorted by path bytes, no duplicates:
 *                u16 path length (1..255) | path (UTF-8) | u8 flags (bit 0: executable) | u32 size
 *   …       …  the N file contents, concatenated in entry order
 *
 * Index record layout:
 *
 *   0       4  magic "DOAI"
 *   4       1  version = 1
 *   5       4  u32 chunk size C (every chunk but the last is exactly C bytes)
 *   9       8  u64 bundle size S
 *  17       4  u32 chunk count n = ceil(S / C)
 *  21    32·n  chunk keys, SHA-256 of each chunk, in order
 *
 * Chunk size: 60 KiB (61,440 bytes). OHT nodes accept values up to 64 KiB by default; a chunk
 * a little under that keeps headroom for record kinds that wrap a value in an envelope under
 * the same limit, at the cost of 7 % more chunks than 64 KiB would give (18 instead of 16 for
 * 1 MiB). Larger is not possible (one chunk = one record); smaller means more lookups, and
 * each lookup over onion services is seconds, not milliseconds.
 *
 * Verification: a fetcher gets the index first (one record, checked against the manifest: its
 * SHA-256 is the manifest's `index` key and the Merkle root of its keys is the manifest's
 * `root`), then checks each chunk as it arrives with one hash against its index entry. That is
 * cheaper than a Merkle proof per chunk and needs nothing beside the chunk record itself (a
 * chunk record's key already is its hash, so it has no room for a proof). Proofs
 * (`merkleProof`) remain for a host that serves single chunks without the index.
 */
import { lstat, readdir, readFile, realpath, mkdir, writeFile } from 'node:fs/promises'
import { join, relative, sep, isAbsolute, resolve } from 'node:path'
import type { AbortOptions } from '../core/abort.ts'
import { AbortError } from '../core/errors.ts'
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { DoaError } from './errors.ts'
import { fromUtf8, utf8 } from './json.ts'
import { merkleRoot } from './merkle.ts'

export const BUNDLE_MAGIC = utf8('DOAB')
export const INDEX_MAGIC = utf8('DOAI')
export const BUNDLE_VERSION = 1
export const DEFAULT_CHUNK_BYTES = 60 * 1024
/** One chunk is one OHT record value: never larger than the engine's default value limit. */
export const MAX_CHUNK_BYTES = 64 * 1024
export const MAX_PATH_BYTES = 255
const INDEX_HEADER = 21

export interface BundleLimits {
  /** Most files in one bundle. @default 10000 */
  maxFiles?: number
  /** Largest single file. @default 16777216 (16 MiB) */
  maxFileBytes?: number
  /** Largest bundle (header and contents). @default 67108864 (64 MiB) */
  maxBundleBytes?: number
}

const DEFAULT_LIMITS: Required<BundleLimits> = { maxFiles: 10_000, maxFileBytes: 16 * 1024 * 1024, maxBundleBytes: 64 * 1024 * 1024 }

export interface BundleFile {
  /** Relative, '/'-separated path (see `checkBundlePath`). */
  path: string
  data: Uint8Array
  executable?: boolean
}

/** What a manifest says about one bundle. */
export interface BundleRef {
  /** Hex RFC 6962 Merkle root over the chunk keys. */
  root: string
  /** Hex SHA-256 of the index record (its immutable OHT key). */
  index: string
  /** Bundle size in bytes. */
  size: number
  /** Number of chunks. */
  chunks: number
  /** Chunk size in bytes. */
  chunkBytes: number
}

export interface ChunkedBundle {
  ref: BundleRef
  /** The index record value. */
  index: Uint8Array
  /** Chunk keys in order (SHA-256 of each chunk). */
  keys: Uint8Array[]
  chunks: Uint8Array[]
}

function bad (message: string): never { throw new DoaError('DOA_BAD_BUNDLE', message) }
function tooLarge (message: string): never { throw new DoaError('DOA_TOO_LARGE', message) }

// Names Windows and macOS treat specially, or that would make unpacking surprising.
const CONTROL = /[\u0000-\u001f\u007f\\]/

/**
 * Checks that `path` is a safe relative path: 1..255 UTF-8 bytes, '/'-separated segments that
 * are neither empty, '.' nor '..', no leading '/', no backslash or control characters. Throws
 * DOA_BAD_BUNDLE with the reason.
 */
export function checkBundlePath (path: string): void {
  if (typeof path !== 'string' || path.length === 0) bad('a bundle path is empty')
  const bytes = utf8(path).byteLength
  if (bytes > MAX_PATH_BYTES) bad(`bundle path ${JSON.stringify(path.slice(0, 40))}… is ${bytes} bytes; at most ${MAX_PATH_BYTES} are allowed`)
  if (CONTROL.test(path)) bad(`bundle path ${JSON.stringify(path)} contains a backslash or a control character`)
  if (path.startsWith('/')) bad(`bundle path ${JSON.stringify(path)} is absolute`)
  if (path.normalize('NFC') !== path) bad(`bundle path ${JSON.stringify(path)} is not in Unicode NFC form`)
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') bad(`bundle path ${JSON.stringify(path)} has an empty, '.' or '..' segment`)
  }
}

function comparePaths (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.byteLength - b.byteLength
}

/** Packs files into the deterministic bundle layout (order of `files` does not matter). */
export function packFiles (files: readonly BundleFile[], limits: BundleLimits = {}): Uint8Array {
  const lim = { ...DEFAULT_LIMITS, ...limits }
  if (files.length > lim.maxFiles) tooLarge(`${files.length} files; a bundle holds at most ${lim.maxFiles}`)
  const entries = files.map(f => {
    checkBundlePath(f.path)
    if (!(f.data instanceof Uint8Array)) throw new DoaError('DOA_BAD_ARGUMENT', `file ${f.path} has no byte data`)
    if (f.data.byteLength > lim.maxFileBytes) tooLarge(`file ${f.path} is ${f.data.byteLength} bytes; at most ${lim.maxFileBytes} are allowed`)
    return { path: utf8(f.path), name: f.path, data: f.data, exec: f.executable === true }
  }).sort((a, b) => comparePaths(a.path, b.path))
  const folded = new Set<string>()
  for (let i = 0; i < entries.length; i++) {
    if (i > 0 && comparePaths(entries[i - 1].path, entries[i].path) === 0) bad(`file ${entries[i].name} appears twice`)
    // Two paths that differ only in case would overwrite each other on a case-insensitive disk.
    const f = entries[i].name.toLowerCase()
    if (folded.has(f)) bad(`files ${entries[i].name} and another differ only in letter case`)
    folded.add(f)
  }
  let size = 9
  for (const e of entries) size += 2 + e.path.byteLength + 1 + 4 + e.data.byteLength
  if (size > lim.maxBundleBytes) tooLarge(`bundle would be ${size} bytes; at most ${lim.maxBundleBytes} are allowed`)
  const out = new Uint8Array(size)
  const dv = new DataView(out.buffer)
  out.set(BUNDLE_MAGIC, 0)
  out[4] = BUNDLE_VERSION
  dv.setUint32(5, entries.length)
  let off = 9
  for (const e of entries) {
    dv.setUint16(off, e.path.byteLength); off += 2
    out.set(e.path, off); off += e.path.byteLength
    out[off++] = e.exec ? 1 : 0
    dv.setUint32(off, e.data.byteLength); off += 4
  }
  for (const e of entries) { out.set(e.data, off); off += e.data.byteLength }
  return out
}

/** Decodes a bundle, checking every rule `packFiles` follows; throws DOA_BAD_BUNDLE / DOA_TOO_LARGE. */
export function unpackBundle (bundle: Uint8Array, limits: BundleLimits = {}): BundleFile[] {
  const lim = { ...DEFAULT_LIMITS, ...limits }
  if (bundle.byteLength > lim.maxBundleBytes) tooLarge(`bundle is ${bundle.byteLength} bytes; at most ${lim.maxBundleBytes} are allowed`)
  if (bundle.byteLength < 9 || !bytesEqual(bundle.subarray(0, 4), BUNDLE_MAGIC)) bad('not a DOA bundle (bad magic)')
  if (bundle[4] !== BUNDLE_VERSION) bad(`bundle version ${bundle[4]} is not supported (this build reads version ${BUNDLE_VERSION})`)
  const dv = new DataView(bundle.buffer, bundle.byteOffset, bundle.byteLength)
  const n = dv.getUint32(5)
  if (n > lim.maxFiles) tooLarge(`bundle declares ${n} files; at most ${lim.maxFiles} are allowed`)
  let off = 9
  const heads: Array<{ path: Uint8Array, name: string, exec: boolean, size: number }> = []
  let total = 0
  for (let i = 0; i < n; i++) {
    if (off + 2 > bundle.byteLength) bad('bundle header is truncated')
    const len = dv.getUint16(off); off += 2
    if (len === 0 || len > MAX_PATH_BYTES || off + len + 5 > bundle.byteLength) bad('bundle entry has a bad path length or is truncated')
    const path = bundle.subarray(off, off + len); off += len
    const name = fromUtf8(path)
    checkBundlePath(name)
    const flags = bundle[off++]
    if ((flags & ~1) !== 0) bad(`file ${name} has unknown flags ${flags}`)
    const size = dv.getUint32(off); off += 4
    if (size > lim.maxFileBytes) tooLarge(`file ${name} is ${size} bytes; at most ${lim.maxFileBytes} are allowed`)
    if (heads.length > 0 && comparePaths(heads[heads.length - 1].path, path) >= 0) bad(`file ${name} is out of order or repeated`)
    heads.push({ path, name, exec: (flags & 1) === 1, size })
    total += size
  }
  if (off + total !== bundle.byteLength) bad(`bundle contents are ${bundle.byteLength - off} bytes but the header declares ${total}`)
  const files: BundleFile[] = []
  const folded = new Set<string>()
  for (const h of heads) {
    const f = h.name.toLowerCase()
    if (folded.has(f)) bad(`files ${h.name} and another differ only in letter case`)
    folded.add(f)
    files.push({ path: h.name, data: bundle.slice(off, off + h.size), executable: h.exec })
    off += h.size
  }
  return files
}

/**
 * Reads the regular files under `dir` (recursively) as bundle files. A symbolic link to a file
 * is followed only when its target stays inside `dir`; one that points outside, a link to a
 * directory, and anything that is neither a file nor a directory (sockets, devices) is a
 * DOA_BAD_BUNDLE error.
 */
export async function readDirectoryFiles (dir: string, options: AbortOptions & { limits?: BundleLimits, exclude?: (path: string) => boolean } = {}): Promise<BundleFile[]> {
  const lim = { ...DEFAULT_LIMITS, ...options.limits }
  const root = await realpath(dir)
  const out: BundleFile[] = []
  let total = 0
  const walk = async (abs: string): Promise<void> => {
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    const names = (await readdir(abs)).sort()
    for (const name of names) {
      const p = join(abs, name)
      const rel = relative(root, p).split(sep).join('/')
      if (options.exclude?.(rel) === true) continue
      let st = await lstat(p)
      let target = p
      if (st.isSymbolicLink()) {
        target = await realpath(p)
        const r = relative(root, target)
        if (r.startsWith('..') || isAbsolute(r)) bad(`${rel} is a symbolic link to ${target}, outside ${root}`)
        st = await lstat(target)
        // A linked directory could loop back on itself; only linked files are followed.
        if (st.isDirectory()) bad(`${rel} is a symbolic link to a directory; link the files instead`)
      }
      if (st.isDirectory()) { await walk(p); continue }
      if (!st.isFile()) bad(`${rel} is neither a regular file nor a directory`)
      if (st.size > lim.maxFileBytes) tooLarge(`file ${rel} is ${st.size} bytes; at most ${lim.maxFileBytes} are allowed`)
      total += st.size
      if (total > lim.maxBundleBytes) tooLarge(`files under ${dir} are over ${lim.maxBundleBytes} bytes`)
      if (out.length >= lim.maxFiles) tooLarge(`more than ${lim.maxFiles} files under ${dir}`)
      checkBundlePath(rel)
      out.push({ path: rel, data: new Uint8Array(await readFile(target)), executable: (st.mode & 0o111) !== 0 })
    }
  }
  await walk(root)
  return out
}

/**
 * Writes bundle files under `dir` (created if missing). Every path is checked again and the
 * resolved target must stay inside `dir`: a bundle cannot write anywhere else.
 */
export async function writeFilesToDirectory (files: readonly BundleFile[], dir: string): Promise<void> {
  const root = resolve(dir)
  await mkdir(root, { recursive: true })
  for (const f of files) {
    checkBundlePath(f.path)
    const target = resolve(root, ...f.path.split('/'))
    const r = relative(root, target)
    if (r.startsWith('..') || isAbsolute(r)) bad(`${f.path} would be written outside ${root}`)
    await mkdir(resolve(target, '..'), { recursive: true })
    await writeFile(target, f.data, { mode: f.executable === true ? 0o755 : 0o644, flag: 'wx' })
  }
}

/** Splits a bundle into chunks and builds its index record and manifest reference. */
export function chunkBundle (bundle: Uint8Array, chunkBytes: number = DEFAULT_CHUNK_BYTES): ChunkedBundle {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1024 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new DoaError('DOA_BAD_ARGUMENT', `chunk size ${chunkBytes} is outside 1024..${MAX_CHUNK_BYTES}`)
  }
  if (bundle.byteLength === 0) throw new DoaError('DOA_BAD_ARGUMENT', 'an empty byte string is not a bundle')
  const chunks: Uint8Array[] = []
  for (let off = 0; off < bundle.byteLength; off += chunkBytes) chunks.push(bundle.slice(off, off + chunkBytes))
  const keys = chunks.map(c => sha256(c))
  const index = encodeIndex(chunkBytes, bundle.byteLength, keys)
  const ref: BundleRef = { root: toHex(merkleRoot(keys)), index: toHex(sha256(index)), size: bundle.byteLength, chunks: chunks.length, chunkBytes }
  return { ref, index, keys, chunks }
}

function encodeIndex (chunkBytes: number, size: number, keys: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(INDEX_HEADER + 32 * keys.length)
  if (out.byteLength > MAX_CHUNK_BYTES) tooLarge(`the chunk index of ${keys.length} chunks does not fit one record`)
  const dv = new DataView(out.buffer)
  out.set(INDEX_MAGIC, 0)
  out[4] = BUNDLE_VERSION
  dv.setUint32(5, chunkBytes)
  dv.setUint32(9, Math.floor(size / 2 ** 32)); dv.setUint32(13, size >>> 0)
  dv.setUint32(17, keys.length)
  keys.forEach((k, i) => out.set(k, INDEX_HEADER + 32 * i))
  return out
}

/** Checks that `ref` is well formed (sizes agree with each other). Throws DOA_BAD_BUNDLE / DOA_TOO_LARGE. */
export function checkBundleRef (ref: BundleRef, limits: BundleLimits = {}): void {
  const lim = { ...DEFAULT_LIMITS, ...limits }
  if (ref === null || typeof ref !== 'object') bad('bundle reference is missing')
  if (typeof ref.root !== 'string' || !/^[0-9a-f]{64}$/.test(ref.root)) bad('bundle root is not 64 lower-case hex digits')
  if (typeof ref.index !== 'string' || !/^[0-9a-f]{64}$/.test(ref.index)) bad('bundle index key is not 64 lower-case hex digits')
  if (!Number.isSafeInteger(ref.chunkBytes) || ref.chunkBytes < 1024 || ref.chunkBytes > MAX_CHUNK_BYTES) bad(`bundle chunk size ${ref.chunkBytes} is outside 1024..${MAX_CHUNK_BYTES}`)
  if (!Number.isSafeInteger(ref.size) || ref.size < 9) bad(`bundle size ${ref.size} is not a size`)
  if (ref.size > lim.maxBundleBytes) tooLarge(`bundle is ${ref.size} bytes; at most ${lim.maxBundleBytes} are allowed`)
  if (ref.chunks !== Math.ceil(ref.size / ref.chunkBytes)) bad(`bundle of ${ref.size} bytes in ${ref.chunkBytes}-byte chunks has ${Math.ceil(ref.size / ref.chunkBytes)} chunks, not ${ref.chunks}`)
}

/**
 * Verifies a fetched index record against the manifest's reference and returns the chunk keys.
 * Any flipped byte changes the record's hash (DOA_CHUNK_MISMATCH).
 */
export function decodeIndex (index: Uint8Array, ref: BundleRef): Uint8Array[] {
  checkBundleRef(ref)
  if (!bytesEqual(sha256(index), fromHex(ref.index))) throw new DoaError('DOA_CHUNK_MISMATCH', 'the chunk index does not hash to the key the manifest names')
  if (index.byteLength < INDEX_HEADER || !bytesEqual(index.subarray(0, 4), INDEX_MAGIC) || index[4] !== BUNDLE_VERSION) bad('not a version-1 DOA chunk index')
  const dv = new DataView(index.buffer, index.byteOffset, index.byteLength)
  const chunkBytes = dv.getUint32(5)
  const size = dv.getUint32(9) * 2 ** 32 + dv.getUint32(13)
  const n = dv.getUint32(17)
  if (chunkBytes !== ref.chunkBytes || size !== ref.size || n !== ref.chunks || index.byteLength !== INDEX_HEADER + 32 * n) bad('the chunk index disagrees with the manifest on sizes')
  const keys: Uint8Array[] = []
  for (let i = 0; i < n; i++) keys.push(index.slice(INDEX_HEADER + 32 * i, INDEX_HEADER + 32 * (i + 1)))
  if (!bytesEqual(merkleRoot(keys), fromHex(ref.root))) throw new DoaError('DOA_CHUNK_MISMATCH', 'the chunk keys do not give the Merkle root the manifest names')
  return keys
}

/** Checks chunk `i` as it arrives: its length and its hash against the index entry. */
export function verifyChunk (ref: BundleRef, keys: readonly Uint8Array[], i: number, chunk: Uint8Array): void {
  if (!Number.isSafeInteger(i) || i < 0 || i >= keys.length) throw new DoaError('DOA_BAD_ARGUMENT', `chunk ${i} is outside 0..${keys.length - 1}`)
  const expected = i < ref.chunks - 1 ? ref.chunkBytes : ref.size - ref.chunkBytes * (ref.chunks - 1)
  if (chunk.byteLength !== expected) throw new DoaError('DOA_CHUNK_MISMATCH', `chunk ${i} is ${chunk.byteLength} bytes, not ${expected}`)
  if (!bytesEqual(sha256(chunk), keys[i])) throw new DoaError('DOA_CHUNK_MISMATCH', `chunk ${i} does not hash to its index entry`)
}

/** Joins verified chunks back into the bundle, checking each one again. */
export function assembleBundle (ref: BundleRef, keys: readonly Uint8Array[], chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length !== ref.chunks) throw new DoaError('DOA_CHUNK_MISMATCH', `${chunks.length} chunks given, the bundle has ${ref.chunks}`)
  const out = new Uint8Array(ref.size)
  let off = 0
  chunks.forEach((c, i) => { verifyChunk(ref, keys, i, c); out.set(c, off); off += c.byteLength })
  return out
}

/** Where chunks come from: the networked half passes the OHT engine (`node.get`). */
export interface ChunkSource {
  /** The value stored under immutable key `key`, or undefined if no holder has it. */
  getImmutable(key: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined>
}

export interface FetchBundleOptions extends AbortOptions {
  /** Chunks requested at once. @default 4 */
  concurrency?: number
  /** Called after each verified chunk (progress for long fetches). */
  onChunk?: (done: number, total: number) => void
}

/**
 * Fetches a bundle by its reference: the index first, then every chunk in parallel, each
 * verified as it arrives; a chunk that fails its hash is a DOA_CHUNK_MISMATCH (the fetcher
 * may retry from other holders), a missing one DOA_NOT_FOUND.
 */
export async function fetchBundle (ref: BundleRef, source: ChunkSource, options: FetchBundleOptions = {}): Promise<Uint8Array> {
  checkBundleRef(ref)
  const index = await source.getImmutable(fromHex(ref.index), options)
  if (index === undefined) throw new DoaError('DOA_NOT_FOUND', `the chunk index ${ref.index.slice(0, 16)}… was not found`)
  const keys = decodeIndex(index, ref)
  const chunks = new Array<Uint8Array>(keys.length)
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const i = next++
      if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
      const c = await source.getImmutable(keys[i], options)
      if (c === undefined) throw new DoaError('DOA_NOT_FOUND', `chunk ${i} (${toHex(keys[i]).slice(0, 16)}…) was not found`)
      verifyChunk(ref, keys, i, c)
      chunks[i] = c
      options.onChunk?.(++done, keys.length)
    }
  }
  const n = Math.max(1, Math.min(options.concurrency ?? 4, keys.length))
  await Promise.all(Array.from({ length: n }, worker))
  return assembleBundle(ref, keys, chunks)
}
