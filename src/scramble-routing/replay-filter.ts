/**
 * Replay filter of one key epoch: a Bloom filter of replay tags, sized for the packets a key
 * may take in its lifetime. No false negatives (a replay is always caught); false positives
 * (a fresh packet taken for a replay and dropped) at most `falsePositiveRate` while the filter
 * holds no more than `capacity` tags. Past that the filter refuses every new packet
 * (SCRAMBLE_REPLAY_FILTER_FULL): forgetting tags would let replays through, and a relay that
 * meets its capacity is over what it advertised anyway. The filter dies with its key.
 *
 * Bit positions come from SHA-256(salt | tag) with a salt only this relay knows, so a sender
 * cannot grind packets whose tags pile onto the same bits (Substrate's mixnet asks for keyed
 * hashes for the same reason). Memory: capacity 1,000,000 at 1e-4 is 2.4 MB, so the bits are
 * allocated only once a key has taken more than `exactTags` packets: until then the tags are
 * kept exactly (no false positives, ~100 bytes each), which keeps endpoints and quiet relays
 * small (a thousand simulated nodes would otherwise hold gigabytes of empty filters).
 */
import { fromHex, toHex } from '../core/index.ts'
import { sha256 } from '../crypto/index.ts'
import { ScrambleError } from './errors.ts'

export interface ReplayFilterInit {
  /** Tags the filter holds at its false-positive rate. @default 1000000 */
  capacity?: number
  /** @default 0.0001 */
  falsePositiveRate?: number
  /** Tags kept exactly before the Bloom filter is allocated. @default 4096 */
  exactTags?: number
}

export type ReplayVerdict = 'fresh' | 'replay' | 'full'

export class ReplayFilter {
  readonly capacity: number
  readonly bits: number
  readonly hashes: number
  private words: Uint32Array | undefined
  private exact: Set<string> | undefined = new Set()
  private readonly exactTags: number
  private readonly salt: Uint8Array
  private count = 0

  constructor (salt: Uint8Array, init: ReplayFilterInit = {}) {
    const capacity = init.capacity ?? 1_000_000
    const p = init.falsePositiveRate ?? 0.0001
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 100_000_000) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `replay filter capacity ${capacity} is not in 1..100000000`)
    if (!(p > 0 && p < 0.5)) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `replay filter false-positive rate ${p} is not in (0, 0.5)`)
    this.capacity = capacity
    this.bits = Math.max(64, Math.ceil((-capacity * Math.log(p)) / (Math.LN2 * Math.LN2)))
    this.hashes = Math.min(16, Math.max(1, Math.round((this.bits / capacity) * Math.LN2)))
    this.exactTags = Math.min(capacity, init.exactTags ?? 4096)
    this.salt = salt.slice()
  }

  /** Tags added so far. */
  get size (): number { return this.count }
  /** Bytes of filter allocated (0 while the tags are kept exactly). */
  get bytes (): number { return this.words?.byteLength ?? 0 }

  /** Checks `tag` and, when fresh, adds it. */
  checkAndAdd (tag: Uint8Array): ReplayVerdict {
    if (this.exact !== undefined) {
      const id = toHex(tag)
      if (this.exact.has(id)) return 'replay'
      if (this.exact.size < this.exactTags) { this.exact.add(id); this.count++; return 'fresh' }
      // Past the exact budget: move every tag into the Bloom filter and go on there.
      this.words = new Uint32Array(Math.ceil(this.bits / 32))
      for (const t of this.exact) this.setBits(fromHex(t))
      this.exact = undefined
    }
    return this.checkBits(tag)
  }

  private positions (tag: Uint8Array): number[] {
    const h = sha256(this.salt, tag)
    const h1 = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0
    // Odd, so the k positions differ; `>>> 0` last, or `| 1` would make it a negative int32.
    const h2 = ((h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7] | 1) >>> 0
    const idx: number[] = []
    for (let i = 0; i < this.hashes; i++) idx.push((h1 + i * h2) % this.bits)
    return idx
  }

  private setBits (tag: Uint8Array): void {
    const words = this.words as Uint32Array
    for (const bit of this.positions(tag)) words[bit >>> 5] |= 1 << (bit & 31)
  }

  private checkBits (tag: Uint8Array): ReplayVerdict {
    const words = this.words as Uint32Array
    const idx = this.positions(tag)
    let present = true
    for (const bit of idx) if ((words[bit >>> 5] & (1 << (bit & 31))) === 0) { present = false; break }
    if (present) return 'replay'
    if (this.count >= this.capacity) return 'full'
    for (const bit of idx) words[bit >>> 5] |= 1 << (bit & 31)
    this.count++
    return 'fresh'
  }

  /** Zeroes the filter and its salt (the key it served is gone). */
  destroy (): void {
    this.words?.fill(0)
    this.words = undefined
    this.exact?.clear()
    this.exact = new Set()
    this.salt.fill(0)
    this.count = 0
  }
}
