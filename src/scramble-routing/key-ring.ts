/**
 * Per-epoch X25519 keys of a node (relay or endpoint), rotated on global epochs
 * (epoch = floor(now / epochMs) on the wall clock, the same for every node), with an overlap
 * window: the key of epoch e is published during e-1 (as "next") and e, and accepted until
 * `overlapMs` after e ends, so packets built just before a rotation, or on a slightly skewed
 * clock, still get through. After that the key is destroyed, and with it its replay filter:
 * a packet for a dead key no longer verifies, so it cannot be replayed either, and old
 * traffic cannot be decrypted with keys taken from the relay later (forward secrecy).
 *
 * The raw scalar is zeroed as soon as it is imported. What node:crypto's KeyObject holds
 * (OpenSSL memory) cannot be zeroed from JavaScript; dropping the object frees it when the
 * collector runs. That is the limit of zeroing on this runtime.
 */
import type { KeyObject } from 'node:crypto'
import type { Clock, Rng } from '../core/index.ts'
import { ScrambleError } from './errors.ts'
import { ReplayFilter, type ReplayFilterInit } from './replay-filter.ts'
import { privateKeyFromScalar, publicFromScalar } from './x25519.ts'

export const EPOCH_MS_DEFAULT = 3_600_000
export const OVERLAP_MS_DEFAULT = 900_000

export interface KeyRingInit {
  /** Length of a key epoch. @default 3600000 */
  epochMs?: number
  /** How long after its epoch a key is still accepted. @default 900000 */
  overlapMs?: number
  /** Sizing of each key's replay filter. @default { capacity: 1000000, falsePositiveRate: 0.0001 } */
  replay?: ReplayFilterInit
}

export interface EpochKey {
  readonly epoch: number
  readonly publicKey: Uint8Array
  readonly privateKey: KeyObject
  readonly filter: ReplayFilter
}

export class EpochKeyRing {
  readonly epochMs: number
  readonly overlapMs: number
  private readonly keys = new Map<number, EpochKey>()
  private readonly replay: ReplayFilterInit
  private destroyed = false

  constructor (private readonly clock: Clock, private readonly keyRng: Rng, init: KeyRingInit = {}) {
    this.epochMs = init.epochMs ?? EPOCH_MS_DEFAULT
    this.overlapMs = init.overlapMs ?? OVERLAP_MS_DEFAULT
    this.replay = init.replay ?? {}
    if (!Number.isInteger(this.epochMs) || this.epochMs < 1000) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `epochMs ${this.epochMs} must be an integer of at least 1000`)
    if (!Number.isInteger(this.overlapMs) || this.overlapMs < 0 || this.overlapMs > this.epochMs) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `overlapMs ${this.overlapMs} must be in 0..epochMs`)
  }

  epochAt (now = this.clock.now()): number { return Math.floor(now / this.epochMs) }

  /** Creates the current and next keys if missing and destroys those past their overlap. */
  refresh (now = this.clock.now()): void {
    if (this.destroyed) throw new ScrambleError('SCRAMBLE_NOT_STARTED', 'the key ring was destroyed')
    const e = this.epochAt(now)
    for (const [epoch, key] of this.keys) {
      if (now >= (epoch + 1) * this.epochMs + this.overlapMs) { key.filter.destroy(); this.keys.delete(epoch) }
    }
    for (const epoch of [e, e + 1]) if (!this.keys.has(epoch)) this.keys.set(epoch, this.generate(epoch))
  }

  /** Keys a packet may be for, most likely first: current, previous (in overlap), next. */
  accepting (now = this.clock.now()): EpochKey[] {
    this.refresh(now)
    const e = this.epochAt(now)
    const out: EpochKey[] = []
    for (const epoch of [e, e - 1, e + 1]) { const k = this.keys.get(epoch); if (k !== undefined) out.push(k) }
    return out
  }

  /** Public keys to publish now: current and next epoch. */
  published (now = this.clock.now()): Array<{ epoch: number, publicKey: Uint8Array }> {
    this.refresh(now)
    const e = this.epochAt(now)
    return [e, e + 1].map(epoch => ({ epoch, publicKey: (this.keys.get(epoch) as EpochKey).publicKey }))
  }

  /** The key of `epoch`, if still held. */
  key (epoch: number): EpochKey | undefined { return this.keys.get(epoch) }

  /** Destroys every key and filter. */
  destroy (): void {
    for (const k of this.keys.values()) k.filter.destroy()
    this.keys.clear()
    this.destroyed = true
  }

  private generate (epoch: number): EpochKey {
    const scalar = this.keyRng.bytes(32)
    const salt = this.keyRng.bytes(16)
    try {
      const privateKey = privateKeyFromScalar(scalar)
      return { epoch, privateKey, publicKey: publicFromScalar(privateKey), filter: new ReplayFilter(salt, this.replay) }
    } finally {
      scalar.fill(0)
      salt.fill(0)
    }
  }
}
