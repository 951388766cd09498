import * as nodeCrypto from 'node:crypto'
import { sha256Into } from './sha256.ts'

/** Node's one-shot digest (20.12+): about half the cost of createHash for a 32-byte input. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash

function digest (alg: string, parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && oneShot !== undefined) {
    return new Uint8Array(oneShot(alg, parts[0], 'buffer')) // a copy: small arrays live on V8's heap, cheaper to collect
  }
  const h = nodeCrypto.createHash(alg)
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** Inputs up to this size go through the JavaScript SHA-256 (see sha256.ts); larger ones through node:crypto. */
const SMALL = 512
const JOINED = new Uint8Array(SMALL)

/**
 * SHA-256 of the concatenation of `parts`. Small inputs (ids of keys, record keys, signature
 * cache keys: the hot ones) are hashed in JavaScript, which allocates nothing but the result;
 * large values go to OpenSSL, which is faster per byte.
 */
export function sha256 (...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0].byteLength <= SMALL ? sha256Into(parts[0], new Uint8Array(32)) : digest('sha256', parts)
  let n = 0
  for (const p of parts) n += p.byteLength
  if (n > SMALL) return digest('sha256', parts)
  let off = 0
  for (const p of parts) { JOINED.set(p, off); off += p.byteLength }
  const out = sha256Into(JOINED.subarray(0, n), new Uint8Array(32))
  JOINED.fill(0, 0, n)
  return out
}
/** SHA3-256 (FIPS 202) of the concatenation of `parts`. */
export function sha3_256 (...parts: Uint8Array[]): Uint8Array { return digest('sha3-256', parts) }
/** SHA-512 of the concatenation of `parts`. */
export function sha512 (...parts: Uint8Array[]): Uint8Array { return digest('sha512', parts) }
