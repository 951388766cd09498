/** Byte helpers shared by every layer. */
import { timingSafeEqual } from 'node:crypto'
import { DecodeError } from './errors.ts'

export function concatBytes (...parts: Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.byteLength
  const out = new Uint8Array(len)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.byteLength }
  return out
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Constant-time comparison for secrets (cookies, MACs). */
export function secretEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  return timingSafeEqual(a, b)
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toHex (b: Uint8Array): string {
  // Short arrays (ids, keys) by table: reading `.buffer` of a typed array V8 keeps inside its
  // own heap (64 bytes or less) moves its bytes out to a separate backing store for good.
  if (b.byteLength <= 64) {
    let s = ''
    for (let i = 0; i < b.byteLength; i++) s += HEX_PAIRS[b[i]]
    return s
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

export function fromHex (s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new DecodeError('CORE_BAD_HEX', 'not a hex string of even length')
  }
  return new Uint8Array(Buffer.from(s, 'hex'))
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const B32_INDEX = new Map([...B32].map((c, i) => [c, i]))

/** RFC 4648 base32, lower case, no padding (the onion address alphabet). */
export function base32Encode (data: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of data) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31]
  return out
}

/** Decodes unpadded RFC 4648 base32 (either case). Throws DecodeError on bad characters. */
export function base32Decode (text: string): Uint8Array {
  const s = text.toLowerCase().replace(/=+$/, '')
  const out = new Uint8Array(Math.floor((s.length * 5) / 8))
  let bits = 0
  let value = 0
  let idx = 0
  for (const ch of s) {
    const v = B32_INDEX.get(ch)
    if (v === undefined) throw new DecodeError('CORE_BAD_BASE32', `invalid base32 character ${JSON.stringify(ch)}`)
    value = ((value << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      out[idx++] = (value >>> (bits - 8)) & 0xff
      bits -= 8
    }
  }
  return out
}

/** Overwrites secret bytes in place. */
export function wipe (...buffers: Array<Uint8Array | undefined>): void {
  for (const b of buffers) b?.fill(0)
}

const SLAB_BYTES = 64 * 1024
const SLAB_MAX_ALLOC = 4096
let slab = new ArrayBuffer(SLAB_BYTES)
let slabUsed = 0

/**
 * Zeroed bytes for a short-lived frame. Small sizes (≤ 4 KiB) are carved from a shared 64 KiB
 * slab, each region handed out once and never reused, so no frame ever sees another's bytes
 * through its own view. This is for the hot paths that build a frame per message: a fresh
 * ArrayBuffer costs ~0.5 µs and its own garbage-collector bookkeeping; a view into a slab
 * costs a tenth of that. Two rules for callers: keep `byteOffset` in mind (the view does not
 * start at 0 of `.buffer`), and copy bytes you keep long-term (a kept view pins its slab).
 */
export function allocFrame (n: number): Uint8Array {
  if (n > SLAB_MAX_ALLOC) return new Uint8Array(n)
  if (slabUsed + n > SLAB_BYTES) { slab = new ArrayBuffer(SLAB_BYTES); slabUsed = 0 }
  const view = new Uint8Array(slab, slabUsed, n)
  slabUsed += (n + 7) & ~7
  return view
}

/** A copy of `b` in memory of its own from allocFrame (a frame crossing between hosts). */
export function copyFrame (b: Uint8Array): Uint8Array {
  const out = allocFrame(b.byteLength)
  out.set(b)
  return out
}
