/**
 * The session store on disk: one file per name in a state directory (0700), each file 0600,
 * written atomically (temp file, fsync, rename, fsync of the directory), so a crash leaves either
 * the old or the new state, never a torn one. A leftover temp file from a crash is removed when
 * the store opens.
 *
 * With a passphrase, every file is sealed: a random 32-byte data key encrypts each file with
 * XChaCha20-Poly1305 (random 24-byte nonce), and the data key itself is sealed with the
 * passphrase in `store.key` (src/crypto seal.ts: scrypt + XChaCha20-Poly1305). scrypt runs once
 * when the store opens, not on every message.
 *
 * File, version 1:
 * ```
 *  0      4       5          6
 *  | OHTW | ver=1 | flags u8 | sealed (flags & 1): nonce [24] | ciphertext + tag [16]  (AAD = bytes 0..6 || name)
 *                            | plain:              value      | SHA-256(bytes 0..6 || name || value) [32]
 * ```
 * The name is bound in both forms, so one contact's state cannot be swapped for another's.
 * Reading refuses files readable by group or others (WORMHOLE_STORE_PERMISSIONS).
 */
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import type { AbortOptions } from '../core/abort.ts'
import { throwIfAborted } from '../core/abort.ts'
import { bytesEqual, concatBytes, toHex } from '../core/bytes.ts'
import type { Rng } from '../core/rng.ts'
import { openWithPassphrase, sealWithPassphrase, sha256, DEFAULT_SCRYPT, type ScryptParams, type SealedBox } from '../crypto/index.ts'
import { WormholeError, wormholeError } from './errors.ts'
import { checkStoreName, type SessionStore } from './session-store.ts'
import { label } from './wire.ts'

const MAGIC = label('OHTW')
const VERSION = 1
const SUFFIX = '.state'
const KEY_FILE = 'store.key'
const KEY_FORMAT = 'oht-wormhole-store-key'
/** Largest state file read. */
export const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024

export interface FileSessionStoreInit {
  /** The state directory (created 0700). */
  dir: string
  /** Seal every file with a data key sealed by this passphrase. */
  passphrase?: string
  /** scrypt cost for the data key. @default DEFAULT_SCRYPT (N=2^16, r=8, p=1) */
  scrypt?: ScryptParams
  /** Accept group/other-readable files and directory. @default false */
  allowInsecurePermissions?: boolean
}

export interface FileSessionStoreComponents {
  /** Data keys, nonces and temp-file names. */
  rng: Rng
}

function ioError (what: string, err: unknown): WormholeError {
  if (err instanceof WormholeError) return err
  return wormholeError('WORMHOLE_STORE_IO', `${what}: ${(err as Error)?.message ?? String(err)}`, err)
}

async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

async function atomicWrite (dir: string, file: string, data: Uint8Array, rng: Rng): Promise<void> {
  const path = join(dir, file)
  const tmp = `${path}.tmp-${toHex(rng.bytes(6))}`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}

async function readChecked (path: string, allowInsecure: boolean): Promise<Uint8Array | undefined> {
  let st
  try {
    st = await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if ((st.mode & 0o077) !== 0 && !allowInsecure) {
    throw wormholeError('WORMHOLE_STORE_PERMISSIONS', `state file ${path} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${path}`)
  }
  if (st.size > MAX_STATE_FILE_BYTES) throw wormholeError('WORMHOLE_STORE_CORRUPT', `state file ${path} is ${st.size} bytes, over ${MAX_STATE_FILE_BYTES}`)
  const fh = await open(path, 'r')
  try {
    const buf = new Uint8Array(st.size)
    const { bytesRead } = await fh.read(buf, 0, buf.byteLength, 0)
    return bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * Opens (creating if needed) a state directory.
 *
 * @example
 * const store = await createFileSessionStore({ dir: join(stateDir, 'wormhole'), passphrase }, { rng: cryptoRng })
 */
export async function createFileSessionStore (init: FileSessionStoreInit, components: FileSessionStoreComponents, options: AbortOptions = {}): Promise<SessionStore> {
  throwIfAborted(options.signal)
  const { dir, rng } = { dir: init.dir, rng: components.rng }
  const allowInsecure = init.allowInsecurePermissions === true
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const st = await stat(dir)
    if ((st.mode & 0o077) !== 0 && !allowInsecure) {
      throw wormholeError('WORMHOLE_STORE_PERMISSIONS', `state directory ${dir} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}): run chmod 700 ${dir}`)
    }
    for (const f of await readdir(dir)) if (f.includes('.tmp-')) await rm(join(dir, f), { force: true })
  } catch (err) {
    throw ioError(`cannot open state directory ${dir}`, err)
  }

  let dataKey: Uint8Array | undefined
  const keyPath = join(dir, KEY_FILE)
  const keyAad = label(`${KEY_FORMAT}|${VERSION}`)
  let keyText: Uint8Array | undefined
  try { keyText = await readChecked(keyPath, allowInsecure) } catch (err) { throw ioError(`cannot read ${keyPath}`, err) }
  if (keyText !== undefined) {
    if (init.passphrase === undefined) throw wormholeError('WORMHOLE_PASSPHRASE_REQUIRED', `the wormhole state in ${dir} is sealed: a passphrase is required`)
    let box: SealedBox
    try {
      const json = JSON.parse(new TextDecoder().decode(keyText)) as { format?: unknown, version?: unknown, sealed?: SealedBox }
      if (json.format !== KEY_FORMAT || json.version !== VERSION || json.sealed === undefined) throw new Error('not a store key file')
      box = json.sealed
    } catch (err) {
      throw wormholeError('WORMHOLE_STORE_CORRUPT', `${keyPath} is not a ${KEY_FORMAT} v${VERSION} file`, err)
    }
    try {
      dataKey = openWithPassphrase(box, init.passphrase, keyAad)
    } catch (err) {
      if ((err as { code?: string }).code === 'CRYPTO_WRONG_PASSPHRASE') throw wormholeError('WORMHOLE_WRONG_PASSPHRASE', 'wrong passphrase for the wormhole state, or its key file was modified', err)
      throw wormholeError('WORMHOLE_STORE_CORRUPT', `${keyPath} is damaged`, err)
    }
    if (dataKey.byteLength !== 32) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${keyPath} holds a key of ${dataKey.byteLength} bytes`)
  } else if (init.passphrase !== undefined) {
    dataKey = rng.bytes(32)
    const box = sealWithPassphrase(dataKey, init.passphrase, keyAad, init.scrypt ?? DEFAULT_SCRYPT)
    try {
      await atomicWrite(dir, KEY_FILE, label(JSON.stringify({ format: KEY_FORMAT, version: VERSION, sealed: box }, null, 2) + '\n'), rng)
    } catch (err) {
      throw ioError(`cannot write ${keyPath}`, err)
    }
  }

  let closed = false
  const check = (name: string, signal?: AbortSignal): void => {
    if (closed) throw wormholeError('WORMHOLE_CLOSED', 'the state store is closed')
    throwIfAborted(signal)
    checkStoreName(name)
  }

  const encode = (name: string, value: Uint8Array): Uint8Array => {
    const flags = dataKey !== undefined ? 1 : 0
    const head = concatBytes(MAGIC, Uint8Array.of(VERSION, flags))
    const aad = concatBytes(head, label(name))
    if (dataKey !== undefined) {
      const nonce = rng.bytes(24)
      return concatBytes(head, nonce, xchacha20poly1305(dataKey, nonce, aad).encrypt(value))
    }
    return concatBytes(head, value, sha256(aad, value))
  }

  const decode = (name: string, file: Uint8Array): Uint8Array => {
    const path = join(dir, name + SUFFIX)
    if (file.byteLength < 6 || !bytesEqual(file.subarray(0, 4), MAGIC)) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} is not a wormhole state file`)
    if (file[4] !== VERSION) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} has state file version ${file[4]}, not ${VERSION}`)
    const flags = file[5]
    const head = file.subarray(0, 6)
    const aad = concatBytes(head, label(name))
    if ((flags & 1) !== 0) {
      if (dataKey === undefined) throw wormholeError('WORMHOLE_PASSPHRASE_REQUIRED', `${path} is sealed: a passphrase is required`)
      if (file.byteLength < 6 + 24 + 16) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} is truncated`)
      try {
        return xchacha20poly1305(dataKey, file.subarray(6, 30), aad).decrypt(file.subarray(30))
      } catch (err) {
        throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} does not authenticate: it was damaged or belongs elsewhere`, err)
      }
    }
    if (flags !== 0) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} has unknown flags`)
    if (file.byteLength < 6 + 32) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} is truncated`)
    const value = file.subarray(6, file.byteLength - 32)
    if (!bytesEqual(file.subarray(file.byteLength - 32), sha256(aad, value))) throw wormholeError('WORMHOLE_STORE_CORRUPT', `${path} checksum does not match: the file was damaged`)
    // Unsealed files written before a passphrase was set are still read; the next put seals them.
    return Uint8Array.from(value)
  }

  return {
    async get (name, opts) {
      check(name, opts?.signal)
      let file: Uint8Array | undefined
      try { file = await readChecked(join(dir, name + SUFFIX), allowInsecure) } catch (err) { throw ioError(`cannot read state ${name}`, err) }
      if (file === undefined) return undefined
      try { return decode(name, file) } finally { file.fill(0) }
    },
    async put (name, value, opts) {
      check(name, opts?.signal)
      const file = encode(name, value)
      try {
        await atomicWrite(dir, name + SUFFIX, file, rng)
      } catch (err) {
        throw ioError(`cannot write state ${name}`, err)
      } finally {
        file.fill(0)
      }
    },
    async delete (name, opts) {
      check(name, opts?.signal)
      try {
        await rm(join(dir, name + SUFFIX), { force: true })
        await fsyncDir(dir)
      } catch (err) {
        throw ioError(`cannot delete state ${name}`, err)
      }
    },
    async list (prefix, opts) {
      if (closed) throw wormholeError('WORMHOLE_CLOSED', 'the state store is closed')
      throwIfAborted(opts?.signal)
      try {
        return (await readdir(dir)).filter(f => f.endsWith(SUFFIX) && !f.includes('.tmp-')).map(f => f.slice(0, -SUFFIX.length)).filter(n => n.startsWith(prefix)).sort()
      } catch (err) {
        throw ioError(`cannot list ${dir}`, err)
      }
    },
    async close () {
      closed = true
      dataKey?.fill(0)
      dataKey = undefined
    }
  }
}

/** File name suffix of a state entry (`<name>.state`). */
export const STATE_FILE_SUFFIX = SUFFIX
