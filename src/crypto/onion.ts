/**
 * Tor v3 onion addresses (rend-spec-v3 §6):
 *
 *   address  = base32(pubkey || checksum || version)        56 characters, lower case
 *   checksum = SHA3-256(".onion checksum" || pubkey || version)[0..2]
 *   version  = 0x03
 *
 *   +----------------------+----------+---------+
 *   | Ed25519 pubkey (32)  | csum (2) | ver (1) |   = 35 bytes = 56 base32 characters
 *   +----------------------+----------+---------+
 */
import { base32Decode, base32Encode, bytesEqual, concatBytes } from '../core/bytes.ts'
import { CryptoError } from './errors.ts'
import { sha3_256 } from './hash.ts'

export const ONION_V3_VERSION = 0x03
export const ONION_V3_LENGTH = 56
const CHECKSUM_PREFIX = new TextEncoder().encode('.onion checksum')

function checksum (publicKey: Uint8Array): Uint8Array {
  return sha3_256(CHECKSUM_PREFIX, publicKey, Uint8Array.of(ONION_V3_VERSION)).subarray(0, 2)
}

/** The 56-character v3 onion address (without ".onion") of an Ed25519 public key. */
export function onionAddressFromPublicKey (publicKey: Uint8Array): string {
  if (publicKey.byteLength !== 32) throw new CryptoError('CRYPTO_BAD_PUBLIC_KEY', `an Ed25519 public key has 32 bytes, got ${publicKey.byteLength}`)
  return base32Encode(concatBytes(publicKey, checksum(publicKey), Uint8Array.of(ONION_V3_VERSION)))
}

export interface ParsedOnionAddress {
  /** 56 characters, lower case, without ".onion". */
  address: string
  publicKey: Uint8Array
}

/**
 * Parses and validates a v3 onion address, with or without ".onion" (and in any case).
 * Throws CryptoError naming what is wrong: length, alphabet, version or checksum.
 *
 * @example
 * const { publicKey } = parseOnionAddress('pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion')
 */
export function parseOnionAddress (input: string): ParsedOnionAddress {
  if (typeof input !== 'string') throw new CryptoError('CRYPTO_ONION_LENGTH', 'an onion address must be a string')
  let s = input.trim().toLowerCase()
  if (s.endsWith('.onion')) s = s.slice(0, -'.onion'.length)
  // Tor accepts subdomains (foo.<addr>.onion); the service is the last label.
  const lastDot = s.lastIndexOf('.')
  if (lastDot >= 0) s = s.slice(lastDot + 1)
  if (s.length !== ONION_V3_LENGTH) {
    throw new CryptoError('CRYPTO_ONION_LENGTH', `a v3 onion address has ${ONION_V3_LENGTH} characters before ".onion", got ${s.length}` + (s.length === 16 ? ' (v2 onion addresses are no longer supported)' : ''))
  }
  if (!/^[a-z2-7]+$/.test(s)) throw new CryptoError('CRYPTO_ONION_BASE32', 'an onion address may only contain the letters a-z and digits 2-7')
  const raw = base32Decode(s)
  const publicKey = raw.slice(0, 32)
  const version = raw[34]
  if (version !== ONION_V3_VERSION) throw new CryptoError('CRYPTO_ONION_VERSION', `onion address version byte is ${version}, expected 3`)
  if (!bytesEqual(raw.subarray(32, 34), checksum(publicKey))) {
    throw new CryptoError('CRYPTO_ONION_CHECKSUM', 'onion address checksum does not match: the address is mistyped or corrupted')
  }
  // Reject non-canonical encodings (the last character carries 5 bits, all used).
  if (onionAddressFromPublicKey(publicKey) !== s) throw new CryptoError('CRYPTO_ONION_BASE32', 'onion address is not canonically encoded')
  return { address: s, publicKey }
}

/** True when `input` is a valid v3 onion address (with or without ".onion"). */
export function isValidOnionAddress (input: string): boolean {
  try { parseOnionAddress(input); return true } catch { return false }
}
