/**
 * Crash-safe file replacement, for keys, tokens and state files:
 *
 * ```
 *   open  <path>.tmp-<12 hex>  O_CREAT|O_EXCL, mode      unique: concurrent writers never share it
 *   write data; fsync                                    the bytes are on disk before the name
 *   rename tmp → path        (replace: true)             readers see the old file or the new one
 *   link   tmp → path; unlink tmp   (replace: false)     publish once: EEXIST if someone was first
 *   fsync  the directory                                 the new name itself survives a power cut
 * ```
 *
 * A failure at any step removes the temp file and leaves `path` as it was. Errors are the
 * fs errors themselves (callers wrap them in their own layer's error).
 *
 * @example
 * await writeFileAtomic('/var/lib/oht/endpoints.json', JSON.stringify(state), { mode: 0o600 })
 */
import * as nodeFs from 'node:fs/promises'
import { dirname } from 'node:path'
import { toHex } from './bytes.ts'
import { cryptoRng, type Rng } from './rng.ts'

/** The file operations used, so tests can watch their order. */
export type AtomicFs = Pick<typeof nodeFs, 'open' | 'rename' | 'link' | 'rm'>

export interface WriteFileAtomicOptions {
  /** Mode of the new file. @default 0o600 */
  mode?: number
  /**
   * false: never replace an existing file; fail with the fs error EEXIST instead (for files
   * several processes may try to create at once, like an API token). @default true
   */
  replace?: boolean
  /** Names the temp file. @default cryptoRng */
  rng?: Rng
  /** @default node:fs/promises */
  fs?: AtomicFs
}

/** Writes `data` to `path` atomically and durably; see the module doc. */
export async function writeFileAtomic (path: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const fs = options.fs ?? nodeFs
  const tmp = `${path}.tmp-${toHex((options.rng ?? cryptoRng).bytes(6))}`
  const fh = await fs.open(tmp, 'wx', options.mode ?? 0o600)
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (options.replace === false) {
      await fs.link(tmp, path)
      await fs.rm(tmp, { force: true })
    } else {
      await fs.rename(tmp, path)
    }
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {})
    throw err
  }
  await syncDirectory(dirname(path), fs)
}

/**
 * fsync of a directory: makes a rename or a new name in it durable. File systems that cannot
 * sync a directory (EINVAL, ENOTSUP, EISDIR on some) are not an error: there is nothing more
 * to do there.
 */
export async function syncDirectory (dir: string, fs: Pick<typeof nodeFs, 'open'> = nodeFs): Promise<void> {
  const dh = await fs.open(dir, 'r')
  try {
    await dh.sync()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EBADF') throw err
  } finally {
    await dh.close()
  }
}
