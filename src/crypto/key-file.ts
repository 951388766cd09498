/**
 * Identity key files: JSON, written atomically with mode 0600 in a 0700 directory, the seed
 * either in the clear or sealed with a passphrase (scrypt + XChaCha20-Poly1305, see seal.ts).
 *
 *   { "format": "oht-identity-key", "version": 1, "onion": "<56 chars>",
 *     "seed": "<base64>" }                                   ← unsealed
 *     "sealed": { "kdf": "scrypt", "N", "r", "p", "salt", "cipher": "xchacha20-poly1305",
 *                 "nonce", "ciphertext" } }                  ← sealed (AAD = format|version|onion)
 *
 * Reading refuses files readable by group or others (CRYPTO_KEY_FILE_PERMISSIONS), files over
 * 64 KiB, malformed JSON, and seeds whose onion address differs from the recorded one.
 *
 * @example
 * await writeKeyFile('/var/lib/oht/identity.key', identity, { passphrase })
 * const same = await readKeyFile('/var/lib/oht/identity.key', { passphrase })
 */
import { mkdir, open, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../core/index.ts'
import { CryptoError } from './errors.ts'
import { identityFromSeed, type Identity } from './identity.ts'
import { DEFAULT_SCRYPT, openWithPassphrase, sealWithPassphrase, type ScryptParams, type SealedBox } from './seal.ts'

const FORMAT = 'oht-identity-key'
const VERSION = 1
const MAX_FILE_BYTES = 64 * 1024

export interface KeyFileOptions {
  /** Seal the seed with this passphrase. */
  passphrase?: string
  /** scrypt cost; @default DEFAULT_SCRYPT (tests may lower it). */
  scrypt?: ScryptParams
}

export interface ReadKeyFileOptions {
  passphrase?: string
  /** Accept a file readable by group/others. @default false */
  allowInsecurePermissions?: boolean
}

interface KeyFileJson { format: string, version: number, onion: string, seed?: string, sealed?: SealedBox }

function aadFor (onion: string): Uint8Array {
  return new TextEncoder().encode(`${FORMAT}|${VERSION}|${onion}`)
}

/** Writes `identity`'s seed to `path` (0600, atomic rename, directory fsynced). Overwrites an existing file. */
export async function writeKeyFile (path: string, identity: Identity, options: KeyFileOptions = {}): Promise<void> {
  const json: KeyFileJson = { format: FORMAT, version: VERSION, onion: identity.onion }
  if (options.passphrase !== undefined) {
    json.sealed = sealWithPassphrase(identity.seed, options.passphrase, aadFor(identity.onion), options.scrypt ?? DEFAULT_SCRYPT)
  } else {
    json.seed = Buffer.from(identity.seed).toString('base64')
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await writeFileAtomic(path, JSON.stringify(json, null, 2) + '\n', { mode: 0o600 })
}

/** Reads an identity key file; see the module doc for the checks made. */
export async function readKeyFile (path: string, options: ReadKeyFileOptions = {}): Promise<Identity> {
  let st
  try {
    st = await stat(path)
  } catch (err) {
    throw new CryptoError('CRYPTO_KEY_FILE_MISSING', `no key file at ${path}: create one first (oht init)`, { cause: err })
  }
  if ((st.mode & 0o077) !== 0 && options.allowInsecurePermissions !== true) {
    throw new CryptoError('CRYPTO_KEY_FILE_PERMISSIONS', `key file ${path} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${path}`)
  }
  if (st.size > MAX_FILE_BYTES) throw new CryptoError('CRYPTO_KEY_FILE_TOO_LARGE', `key file ${path} is ${st.size} bytes, more than a key file can be (${MAX_FILE_BYTES})`)
  const fh = await open(path, 'r')
  let text: string
  try {
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    if (bytesRead > MAX_FILE_BYTES) throw new CryptoError('CRYPTO_KEY_FILE_TOO_LARGE', `key file ${path} is larger than ${MAX_FILE_BYTES} bytes`)
    text = buf.subarray(0, bytesRead).toString('utf8')
    buf.fill(0)
  } finally {
    await fh.close()
  }
  let json: KeyFileJson
  try {
    json = JSON.parse(text) as KeyFileJson
  } catch (err) {
    throw new CryptoError('CRYPTO_KEY_FILE_CORRUPT', `key file ${path} is not valid JSON`, { cause: err })
  }
  if (json == null || typeof json !== 'object' || json.format !== FORMAT || json.version !== VERSION || typeof json.onion !== 'string') {
    throw new CryptoError('CRYPTO_KEY_FILE_CORRUPT', `key file ${path} is not an ${FORMAT} v${VERSION} file`)
  }
  let seed: Uint8Array
  if (json.sealed !== undefined) {
    if (options.passphrase === undefined) throw new CryptoError('CRYPTO_PASSPHRASE_REQUIRED', `key file ${path} is sealed: a passphrase is required`)
    seed = openWithPassphrase(json.sealed, options.passphrase, aadFor(json.onion))
  } else if (typeof json.seed === 'string') {
    seed = new Uint8Array(Buffer.from(json.seed, 'base64'))
  } else {
    throw new CryptoError('CRYPTO_KEY_FILE_CORRUPT', `key file ${path} holds neither a seed nor a sealed seed`)
  }
  try {
    if (seed.byteLength !== 32) throw new CryptoError('CRYPTO_KEY_FILE_CORRUPT', `key file ${path} holds a seed of ${seed.byteLength} bytes, expected 32`)
    const identity = identityFromSeed(seed)
    if (identity.onion !== json.onion) {
      identity.destroy()
      throw new CryptoError('CRYPTO_KEY_FILE_CORRUPT', `key file ${path} is corrupted: its seed does not give the recorded onion address`)
    }
    return identity
  } finally {
    seed.fill(0)
  }
}
