/**
 * Safety numbers: Signal's numeric fingerprint (libsignal NumericFingerprintGenerator, version 0,
 * 5200 iterations), so two people can compare 60 digits read aloud or side by side.
 *
 *   hash_0     = u16 version=0 || key || id
 *   hash_{i+1} = SHA-512(hash_i || key)                      for i < 5200
 *   half       = for offset in 0, 5, … 25: u40(hash[offset .. offset+5]) mod 100000, 5 digits
 *   number     = the two halves (ours, theirs) sorted as strings, concatenated: 60 digits
 *
 * Sorting makes both sides see the same number. Ours: key = Ed25519 key || X25519 key (so any key
 * change changes the number, not only the signing key's), id = the Ed25519 key (our identities
 * have no other stable name: no phone number, no account).
 */
import { createHash } from 'node:crypto'
import { wormholeError } from './errors.ts'

export const SAFETY_NUMBER_ITERATIONS = 5200
const VERSION = 0

/** One side's 30 digits (Signal's construction, any key and stable id bytes). */
export function fingerprintHalf (key: Uint8Array, id: Uint8Array, iterations = SAFETY_NUMBER_ITERATIONS): string {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'iterations out of range')
  let hash: Uint8Array = new Uint8Array(2 + key.byteLength + id.byteLength)
  hash[0] = VERSION >> 8
  hash[1] = VERSION & 0xff
  hash.set(key, 2)
  hash.set(id, 2 + key.byteLength)
  for (let i = 0; i < iterations; i++) hash = createHash('sha512').update(hash).update(key).digest()
  let out = ''
  for (let off = 0; off < 30; off += 5) {
    let v = 0
    for (let j = 0; j < 5; j++) v = v * 256 + hash[off + j]
    out += String(v % 100000).padStart(5, '0')
  }
  return out
}

/** The 60 digits both sides compute the same way from their two fingerprint halves. */
export function combineHalves (a: string, b: string): string {
  return a <= b ? a + b : b + a
}

export interface SafetyKeys { publicKey: Uint8Array, dhPublicKey: Uint8Array }

function half (k: SafetyKeys): string {
  if (k.publicKey.byteLength !== 32 || k.dhPublicKey.byteLength !== 32) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'safety numbers take 32-byte Ed25519 and X25519 keys')
  const key = new Uint8Array(64)
  key.set(k.publicKey, 0)
  key.set(k.dhPublicKey, 32)
  return fingerprintHalf(key, k.publicKey)
}

/**
 * The safety number of two people (order does not matter), as 60 digits.
 *
 * @example
 * formatSafetyNumber(safetyNumber(me, theirCard))  // "30035 44776 92869 …" on both phones
 */
export function safetyNumber (a: SafetyKeys, b: SafetyKeys): string {
  return combineHalves(half(a), half(b))
}

/** 12 groups of 5 digits, as people read them out. */
export function formatSafetyNumber (digits: string): string {
  return (digits.match(/.{1,5}/g) ?? []).join(' ')
}
