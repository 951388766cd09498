/**
 * Fetching a bundle from several sources at once: the OHT (every chunk is an immutable record,
 * found by a lookup) and the app's hosts (one direct request each, over PeerNet). The index
 * comes first (checked against the manifest's index hash and Merkle root), then the chunks in
 * parallel: each source runs its own workers, a chunk is checked against its index entry the
 * moment it arrives, and a chunk a source did not have or got wrong goes back to the queue for
 * the other sources. A source that fails `maxSourceFailures` times in a row is dropped (a
 * forger or a dead host stops costing time); a chunk every source failed is DOA_NOT_FOUND (or
 * DOA_CHUNK_MISMATCH when a source sent a wrong one).
 *
 * What comes out is the exact bundle the manifest names, whoever sent the bytes.
 */
import type { AbortOptions } from '../core/abort.ts'
import { AbortError, isCodedError } from '../core/errors.ts'
import { fromHex, toHex } from '../core/bytes.ts'
import { assembleBundle, checkBundleRef, decodeIndex, verifyChunk, type BundleRef } from './bundle.ts'
import { DoaError } from './errors.ts'

/** One place chunks can come from. */
export interface ChunkProvider {
  /** For reports: "oht", "host 3f2a…". */
  readonly name: string
  /** Chunks it is asked for at once. */
  readonly concurrency: number
  /** The bytes stored under `key`, or undefined when it has none. Errors count as failures. */
  get(key: Uint8Array, options: AbortOptions): Promise<Uint8Array | undefined>
}

export interface ProviderReport {
  name: string
  /** Chunks (and the index) it delivered that verified. */
  served: number
  /** Answers that did not match their hash: a forger or a broken host. */
  forged: number
  /** Misses and errors. */
  failed: number
  /** Dropped after too many failures in a row. */
  dropped: boolean
}

export interface ChunkFetchOptions extends AbortOptions {
  /** Failures in a row after which a source is no longer asked. @default 3 */
  maxSourceFailures?: number
  /** Called after each verified chunk. */
  onChunk?: (done: number, total: number) => void
}

export interface FetchedBundle {
  bytes: Uint8Array
  sources: ProviderReport[]
}

interface Source { p: ChunkProvider, report: ProviderReport, streak: number }

function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
}

/**
 * Fetches and verifies the bundle `ref` from `providers` (tried in the given order for the
 * index; for chunks, every provider works in parallel). Throws DOA_NOT_FOUND /
 * DOA_CHUNK_MISMATCH when some chunk could not be had from any of them.
 */
export async function fetchBundleFrom (ref: BundleRef, providers: readonly ChunkProvider[], options: ChunkFetchOptions = {}): Promise<FetchedBundle> {
  checkBundleRef(ref)
  if (providers.length === 0) throw new DoaError('DOA_NETWORK', 'no source to fetch the bundle from')
  const maxFailures = options.maxSourceFailures ?? 3
  const sources: Source[] = providers.map(p => ({ p, report: { name: p.name, served: 0, forged: 0, failed: 0, dropped: false }, streak: 0 }))
  const fail = (s: Source, forged: boolean): void => {
    if (forged) s.report.forged++
    else s.report.failed++
    s.streak++
    if (s.streak >= maxFailures) s.report.dropped = true
  }
  const call = async (s: Source, key: Uint8Array): Promise<Uint8Array | undefined> => {
    try {
      return await s.p.get(key, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      if (isCodedError(err, 'CORE_ABORTED')) throw err
      return undefined
    }
  }

  // The index: from the first source that has one that verifies.
  let keys: Uint8Array[] | undefined
  let forgedSeen = false
  for (const s of sources) {
    throwIfAborted(options.signal)
    const index = await call(s, fromHex(ref.index))
    if (index === undefined) { fail(s, false); continue }
    try {
      keys = decodeIndex(index, ref)
      s.report.served++
      s.streak = 0
      break
    } catch {
      forgedSeen = true
      fail(s, true)
    }
  }
  if (keys === undefined) {
    throw new DoaError(forgedSeen ? 'DOA_CHUNK_MISMATCH' : 'DOA_NOT_FOUND', `the chunk index ${ref.index.slice(0, 16)}… was not found${forgedSeen ? ' (some sources sent a wrong one)' : ''} at ${sources.map(s => s.p.name).join(', ')}`)
  }
  const chunkKeys = keys
  const chunks = new Array<Uint8Array | undefined>(chunkKeys.length)
  const triedBy = chunkKeys.map(() => new Set<Source>())
  const mismatched = new Set<number>()
  const queue: number[] = chunkKeys.map((_, i) => i)
  let done = 0
  let active = 0
  let failure: DoaError | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { const w = wake; wake = undefined; w?.() }

  const alive = (): Source[] => sources.filter(s => !s.report.dropped)
  // The next chunk `s` has not tried yet; gives up on chunks every live source has tried.
  const take = (s: Source): number | undefined => {
    for (let qi = 0; qi < queue.length; qi++) {
      const i = queue[qi]
      if (!triedBy[i].has(s)) { queue.splice(qi, 1); return i }
    }
    return undefined
  }
  const settleExhausted = (): void => {
    const live = alive()
    for (let qi = queue.length - 1; qi >= 0; qi--) {
      const i = queue[qi]
      if (live.every(s => triedBy[i].has(s))) {
        failure ??= new DoaError(mismatched.has(i) ? 'DOA_CHUNK_MISMATCH' : 'DOA_NOT_FOUND', `chunk ${i} (${toHex(chunkKeys[i]).slice(0, 16)}…) could not be had from ${sources.map(x => x.p.name).join(', ')}${mismatched.has(i) ? ' (some sent a wrong one)' : ''}`)
      }
    }
  }

  const worker = async (s: Source): Promise<void> => {
    for (;;) {
      if (failure !== undefined || done === chunkKeys.length || s.report.dropped) return
      throwIfAborted(options.signal)
      const i = take(s)
      if (i === undefined) {
        // Nothing this source has not tried: wait for a chunk in flight elsewhere to come back
        // (every attempt ends with notify()), unless nothing is in flight any more.
        if (active === 0) {
          settleExhausted()
          if (failure !== undefined || queue.length === 0) return
        }
        await new Promise<void>((resolve) => { const prev = wake; wake = () => { prev?.(); resolve() } })
        continue
      }
      triedBy[i].add(s)
      active++
      const bytes = await call(s, chunkKeys[i]).finally(() => { active-- })
      let ok = false
      if (bytes !== undefined) {
        try {
          verifyChunk(ref, chunkKeys, i, bytes)
          ok = true
        } catch {
          mismatched.add(i)
          fail(s, true)
        }
      } else fail(s, false)
      if (ok) {
        chunks[i] = bytes
        s.report.served++
        s.streak = 0
        done++
        options.onChunk?.(done, chunkKeys.length)
      } else {
        queue.push(i)
        settleExhausted()
      }
      notify()
    }
  }

  const workers: Array<Promise<void>> = []
  for (const s of sources) for (let w = 0; w < Math.max(1, s.p.concurrency); w++) workers.push(worker(s))
  try {
    await Promise.all(workers)
  } finally {
    notify()
  }
  throwIfAborted(options.signal)
  if (failure !== undefined) throw failure
  if (done !== chunkKeys.length) {
    const missing = chunks.findIndex(c => c === undefined)
    throw new DoaError(mismatched.has(missing) ? 'DOA_CHUNK_MISMATCH' : 'DOA_NOT_FOUND', `chunk ${missing} could not be had from ${sources.map(x => x.p.name).join(', ')} (every source failed or was dropped)`)
  }
  return { bytes: assembleBundle(ref, chunkKeys, chunks as Uint8Array[]), sources: sources.map(s => ({ ...s.report })) }
}
