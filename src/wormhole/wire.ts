/**
 * Byte reader and writer for the wormhole formats. The reader never trusts a length before
 * checking it against the bytes left, copies every field it returns (decoded keys are kept and
 * later wiped on their own, never views into a frame someone else owns), and raises
 * WormholeError with a code callers can branch on: WORMHOLE_TRUNCATED when the input ends early,
 * WORMHOLE_MALFORMED for bytes left over. Integers are big-endian; u64 values must fit 2^53 - 1.
 */
import { wormholeError } from './errors.ts'

export class Writer {
  private buf: Uint8Array
  private off = 0

  constructor (initial = 256) { this.buf = new Uint8Array(initial) }

  private room (n: number): void {
    if (this.off + n <= this.buf.byteLength) return
    let size = this.buf.byteLength * 2
    while (size < this.off + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.off))
    this.buf.fill(0) // the old buffer may hold secrets (serialised state)
    this.buf = next
  }

  u8 (v: number): this { this.room(1); this.buf[this.off++] = v & 0xff; return this }
  u16 (v: number): this { this.room(2); this.buf[this.off++] = (v >>> 8) & 0xff; this.buf[this.off++] = v & 0xff; return this }
  u32 (v: number): this {
    this.room(4)
    const b = this.buf
    b[this.off++] = v >>> 24; b[this.off++] = (v >>> 16) & 0xff; b[this.off++] = (v >>> 8) & 0xff; b[this.off++] = v & 0xff
    return this
  }

  u64 (v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `u64 field out of range: ${v}`)
    return this.u32(Math.floor(v / 2 ** 32)).u32(v >>> 0)
  }

  bytes (b: Uint8Array): this { this.room(b.byteLength); this.buf.set(b, this.off); this.off += b.byteLength; return this }

  get length (): number { return this.off }

  /** The written bytes as an array of their own; the working buffer is wiped. */
  finish (): Uint8Array {
    const out = this.buf.slice(0, this.off)
    this.buf.fill(0)
    return out
  }
}

export class Reader {
  private off = 0
  /** `what` names the format in error messages ("contact card", "ratchet state"). */
  constructor (private readonly buf: Uint8Array, private readonly what: string) {}

  get left (): number { return this.buf.byteLength - this.off }
  get offset (): number { return this.off }

  private need (n: number): void {
    if (n > this.left) throw wormholeError('WORMHOLE_TRUNCATED', `${this.what} is truncated: ${n} more bytes expected at offset ${this.off}, ${this.left} left`)
  }

  u8 (): number { this.need(1); return this.buf[this.off++] }
  u16 (): number { this.need(2); const b = this.buf; const v = (b[this.off] << 8) | b[this.off + 1]; this.off += 2; return v }
  u32 (): number {
    this.need(4)
    const b = this.buf
    const v = ((b[this.off] << 24) >>> 0) + (b[this.off + 1] << 16) + (b[this.off + 2] << 8) + b[this.off + 3]
    this.off += 4
    return v
  }

  u64 (): number {
    const hi = this.u32()
    const lo = this.u32()
    if (hi >= 2 ** 21) throw wormholeError('WORMHOLE_MALFORMED', `${this.what}: a 64-bit field is over 2^53 - 1`)
    return hi * 2 ** 32 + lo
  }

  /** `n` bytes, copied. */
  bytes (n: number): Uint8Array { this.need(n); const out = this.buf.slice(this.off, this.off + n); this.off += n; return out }

  /** A u16-length-prefixed field of at most `max` bytes. */
  lenBytes16 (max: number, field: string): Uint8Array {
    const n = this.u16()
    if (n > max) throw wormholeError('WORMHOLE_MALFORMED', `${this.what}: ${field} of ${n} bytes is over its limit of ${max}`)
    return this.bytes(n)
  }

  /** A u32-length-prefixed field of at most `max` bytes. */
  lenBytes32 (max: number, field: string): Uint8Array {
    const n = this.u32()
    if (n > max) throw wormholeError('WORMHOLE_MALFORMED', `${this.what}: ${field} of ${n} bytes is over its limit of ${max}`)
    return this.bytes(n)
  }

  /** Everything left, copied. */
  rest (): Uint8Array { return this.bytes(this.left) }

  /** Throws WORMHOLE_MALFORMED if bytes are left over. */
  end (): void {
    if (this.left !== 0) throw wormholeError('WORMHOLE_MALFORMED', `${this.what} has ${this.left} unexpected bytes at its end`)
  }
}

/** Rejects an input over `max` bytes before anything is parsed. */
export function checkSize (input: unknown, max: number, what: string): asserts input is Uint8Array {
  if (!(input instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `${what} must be a Uint8Array`)
  if (input.byteLength > max) throw wormholeError('WORMHOLE_TOO_LARGE', `${what} is ${input.byteLength} bytes, over its limit of ${max}`)
}

const utf8 = new TextEncoder()
/** UTF-8 bytes of a constant label (domain-separation tags, HKDF info strings). */
export function label (text: string): Uint8Array { return utf8.encode(text) }
