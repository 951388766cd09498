/**
 * Exact 256-bit XOR metric on byte arrays. Ids are compared byte by byte, most significant
 * first, so no BigInt or float rounding ever enters the ordering.
 */

export const ID_BYTES = 32
export const ID_BITS = ID_BYTES * 8

/** XOR of two ids (a new array). */
export function xorDistance (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES)
  for (let i = 0; i < ID_BYTES; i++) out[i] = a[i] ^ b[i]
  return out
}

/** <0 when `a` is closer to `target` than `b`, >0 when farther, 0 when equal. */
export function compareDistance (a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const t = target[i]
    const d = (a[i] ^ t) - (b[i] ^ t)
    if (d !== 0) return d
  }
  return 0
}

/** Compares two distances (or ids) as big-endian unsigned integers. */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i]
    if (d !== 0) return d
  }
  return a.byteLength - b.byteLength
}

/**
 * Number of leading bits `a` and `b` share (0..256). The bucket of a contact in a routing
 * table is its common prefix length with the table's own id.
 */
export function commonPrefixLength (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return ID_BITS
}
