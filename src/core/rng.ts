/**
 * Randomness enters the stack only through an `Rng`. Real nodes use `cryptoRng` (node:crypto);
 * the simulator uses `SeededRng`, one seed split per node, so a run replays bit for bit.
 * Key material is always drawn from node:crypto, never from a seeded Rng.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto'

export interface Rng {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, max). */
  int(max: number): number
  /** `n` random bytes. */
  bytes(n: number): Uint8Array
  /** An independent generator derived from this one and `label` (deterministic when seeded). */
  fork(label: string): Rng
}

class CryptoRng implements Rng {
  next (): number {
    const b = randomBytes(7)
    // 53 random bits
    let v = 0
    for (let i = 0; i < 7; i++) v = v * 256 + b[i]
    return (v % 2 ** 53) / 2 ** 53
  }

  int (max: number): number {
    if (max <= 0) return 0
    if (max <= 2 ** 48 - 1) return randomInt(max)
    return Math.floor(this.next() * max)
  }

  bytes (n: number): Uint8Array { return new Uint8Array(randomBytes(n)) }
  fork (_label: string): Rng { return this }
}

/** Cryptographically strong randomness for real runs. */
export const cryptoRng: Rng = new CryptoRng()

/**
 * sfc32, seeded from SHA-256 of (seed, label). Small, fast and good enough for simulation;
 * never for keys.
 */
export class SeededRng implements Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  readonly seed: string

  constructor (seed: string | number) {
    this.seed = String(seed)
    const h = createHash('sha256').update(this.seed).digest()
    this.a = h.readUInt32LE(0)
    this.b = h.readUInt32LE(4)
    this.c = h.readUInt32LE(8)
    this.d = h.readUInt32LE(12)
    for (let i = 0; i < 12; i++) this.u32()
  }

  u32 (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  next (): number {
    return (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53
  }

  int (max: number): number {
    if (max <= 0) return 0
    return Math.floor(this.next() * max)
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 4) {
      const v = this.u32()
      out[i] = v & 0xff
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff
      if (i + 3 < n) out[i + 3] = v >>> 24
    }
    return out
  }

  fork (label: string): Rng {
    return new SeededRng(`${this.seed}/${label}`)
  }
}

/** Fisher-Yates shuffle in place, driven by `rng`. */
export function shuffle<T> (rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    const t = items[i]; items[i] = items[j]; items[j] = t
  }
  return items
}
