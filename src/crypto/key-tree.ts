/**
 * Key tree: child seeds derived deterministically from a master seed and a dotted path such
 * as `universe.router.multiverse`, so a VM's onion address is reproducible from the master
 * key and its name.
 *
 *   child = HKDF-SHA256(ikm = master seed (32 bytes),
 *                       salt = "multiverse/oht key-tree v1",
 *                       info = normalised path (UTF-8), length = 32)
 *
 * The path is normalised to lower case; labels are 1–63 characters of [a-z0-9_-], separated by
 * single dots, at most 253 characters in all (like DNS names). Different paths give independent
 * keys; knowing a child seed reveals nothing about the master or its siblings.
 *
 * @example
 * const vm = identityFromSeed(deriveChildSeed(master, 'universe.router.multiverse'))
 * vm.onion // the same address every time for this master and name
 */
import { hkdfSync } from 'node:crypto'
import { CryptoError } from './errors.ts'

const SALT = 'multiverse/oht key-tree v1'
const LABEL = /^[a-z0-9_-]{1,63}$/

/** Lower-cases and validates a key-tree path; throws CRYPTO_BAD_KEY_PATH naming the problem. */
export function normaliseKeyPath (path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new CryptoError('CRYPTO_BAD_KEY_PATH', 'a key path must be a non-empty string such as "universe.router.multiverse"')
  const p = path.trim().toLowerCase()
  if (p.length > 253) throw new CryptoError('CRYPTO_BAD_KEY_PATH', `a key path has at most 253 characters, got ${p.length}`)
  for (const label of p.split('.')) {
    if (!LABEL.test(label)) {
      throw new CryptoError('CRYPTO_BAD_KEY_PATH', `bad label ${JSON.stringify(label)} in key path ${JSON.stringify(path)}: labels are 1-63 characters of a-z, 0-9, "-" or "_", separated by single dots`)
    }
  }
  return p
}

/** Derives the 32-byte child seed for `path` from a 32-byte master seed. */
export function deriveChildSeed (masterSeed: Uint8Array, path: string): Uint8Array {
  if (!(masterSeed instanceof Uint8Array) || masterSeed.byteLength !== 32) {
    throw new CryptoError('CRYPTO_BAD_SEED', 'a master seed has 32 bytes')
  }
  const info = normaliseKeyPath(path)
  return new Uint8Array(hkdfSync('sha256', masterSeed, SALT, info, 32))
}
