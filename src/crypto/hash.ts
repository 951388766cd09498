import { createHash } from 'node:crypto'

function digest (alg: string, parts: Uint8Array[]): Uint8Array {
  const h = createHash(alg)
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256 (...parts: Uint8Array[]): Uint8Array { return digest('sha256', parts) }
/** SHA3-256 (FIPS 202) of the concatenation of `parts`. */
export function sha3_256 (...parts: Uint8Array[]): Uint8Array { return digest('sha3-256', parts) }
/** SHA-512 of the concatenation of `parts`. */
export function sha512 (...parts: Uint8Array[]): Uint8Array { return digest('sha512', parts) }
