/**
 * The local app cache: installed releases on disk, the one in use, pins and rollback. Layout,
 * all under the cache directory and nowhere else:
 *
 *   <dir>/apps/<app key hex>/state.json               { v, current, pinned, history }
 *   <dir>/apps/<app key hex>/<release>/manifest.bin   the signed manifest
 *   <dir>/apps/<app key hex>/<release>/code.bundle    the code bundle (when the app has one)
 *   <dir>/apps/<app key hex>/<release>/assets.bundle  the assets bundle (when it has one)
 *
 * A release is written to a temporary directory and renamed into place, so a crash leaves
 * either the whole release or none. Everything is verified again when read (signature,
 * Merkle roots), so a file altered on disk is refused like a forged download.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fromHex, toHex } from '../core/bytes.ts'
import { chunkBundle, unpackBundle, type BundleFile, type BundleRef } from './bundle.ts'
import { DoaError } from './errors.ts'
import { parseJson } from './json.ts'
import { openManifest, type SignedManifest } from './manifest.ts'

export interface InstalledApp {
  appKey: string
  name: string
  current: number
  pinned: boolean
  releases: number[]
}

export interface OpenedRelease {
  manifest: SignedManifest
  code: BundleFile[] | null
  assets: BundleFile[] | null
}

interface AppState { v: 1, current: number, pinned: boolean, history: number[] }

export interface AppCache {
  /** Stores a verified release (bundles must match the manifest's roots) and makes it current unless pinned. */
  install(manifest: SignedManifest, bundles: { code?: Uint8Array, assets?: Uint8Array }): Promise<void>
  /** Reads and re-verifies a release (default: the current one). */
  open(appKey: Uint8Array, release?: number): Promise<OpenedRelease>
  list(): Promise<InstalledApp[]>
  /** Uses `release` and keeps it: later installs of newer releases do not become current. */
  pin(appKey: Uint8Array, release: number): Promise<void>
  unpin(appKey: Uint8Array): Promise<void>
  /** Goes back to the release used before the current one; returns it. */
  rollback(appKey: Uint8Array): Promise<number>
  remove(appKey: Uint8Array): Promise<void>
}

function cacheError (message: string, cause?: unknown): DoaError { return new DoaError('DOA_CACHE', message, { cause }) }

function checkBundle (bytes: Uint8Array | undefined, ref: BundleRef | null, what: string): void {
  if (ref === null) { if (bytes !== undefined) throw new DoaError('DOA_BAD_ARGUMENT', `the manifest has no ${what} bundle`); return }
  if (bytes === undefined) throw new DoaError('DOA_BAD_ARGUMENT', `the ${what} bundle is missing`)
  const c = chunkBundle(bytes, ref.chunkBytes)
  if (c.ref.root !== ref.root || c.ref.index !== ref.index || c.ref.size !== ref.size) throw new DoaError('DOA_CHUNK_MISMATCH', `the ${what} bundle does not match the manifest's Merkle root`)
  unpackBundle(bytes)
}

export function createAppCache (dir: string): AppCache {
  const appDir = (key: Uint8Array | string): string => join(dir, 'apps', typeof key === 'string' ? key : toHex(key))
  const readState = async (key: Uint8Array | string): Promise<AppState | undefined> => {
    let text: string
    try { text = await readFile(join(appDir(key), 'state.json'), 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw cacheError(`cannot read the cache: ${(err as Error).message}`, err)
    }
    const s = parseJson(text, { maxLength: 1 << 20 }) as unknown as AppState
    if (s?.v !== 1 || !Number.isSafeInteger(s.current) || typeof s.pinned !== 'boolean' || !Array.isArray(s.history)) throw cacheError(`${join(appDir(key), 'state.json')} is corrupt`)
    return s
  }
  const writeState = async (key: Uint8Array | string, s: AppState): Promise<void> => {
    const f = join(appDir(key), 'state.json')
    await writeFile(f + '.tmp', JSON.stringify(s) + '\n', { mode: 0o600 })
    await rename(f + '.tmp', f)
  }
  const releasesOf = async (key: Uint8Array | string): Promise<number[]> => {
    let names: string[] = []
    try { names = await readdir(appDir(key)) } catch { return [] }
    return names.filter(n => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b)
  }
  const readOpt = async (f: string): Promise<Uint8Array | undefined> => {
    try { return new Uint8Array(await readFile(f)) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw cacheError(`cannot read ${f}: ${(err as Error).message}`, err)
    }
  }
  const need = async (key: Uint8Array): Promise<AppState> => {
    const s = await readState(key)
    if (s === undefined) throw new DoaError('DOA_NOT_FOUND', `app ${toHex(key).slice(0, 16)}… is not installed`)
    return s
  }
  const haveRelease = async (key: Uint8Array, release: number): Promise<void> => {
    if (!(await releasesOf(key)).includes(release)) throw new DoaError('DOA_NOT_FOUND', `release ${release} of app ${toHex(key).slice(0, 16)}… is not in the cache`)
  }

  return {
    async install (signed, bundles) {
      const m = signed.manifest
      openManifest(signed.bytes, fromHex(m.author))
      checkBundle(bundles.code, m.bundles.code, 'code')
      checkBundle(bundles.assets, m.bundles.assets, 'assets')
      const base = appDir(m.author)
      await mkdir(base, { recursive: true, mode: 0o700 })
      const final = join(base, String(m.release))
      const tmp = join(base, `.tmp-${m.release}`)
      await rm(tmp, { recursive: true, force: true })
      await mkdir(tmp, { mode: 0o700 })
      await writeFile(join(tmp, 'manifest.bin'), signed.bytes, { mode: 0o600 })
      if (bundles.code !== undefined) await writeFile(join(tmp, 'code.bundle'), bundles.code, { mode: 0o600 })
      if (bundles.assets !== undefined) await writeFile(join(tmp, 'assets.bundle'), bundles.assets, { mode: 0o600 })
      await rm(final, { recursive: true, force: true })
      await rename(tmp, final)
      const s = await readState(m.author) ?? { v: 1, current: m.release, pinned: false, history: [] }
      if (!s.pinned && s.current !== m.release) { s.history = [...s.history.filter(r => r !== s.current), s.current].slice(-32); s.current = m.release }
      await writeState(m.author, s)
    },
    async open (appKey, release) {
      const s = await need(appKey)
      const r = release ?? s.current
      await haveRelease(appKey, r)
      const d = join(appDir(appKey), String(r))
      const bytes = await readOpt(join(d, 'manifest.bin'))
      if (bytes === undefined) throw cacheError(`release ${r} has no manifest on disk`)
      const signed = openManifest(bytes, appKey)
      if (signed.manifest.release !== r) throw cacheError(`the manifest stored as release ${r} is release ${signed.manifest.release}`)
      const code = await readOpt(join(d, 'code.bundle'))
      const assets = await readOpt(join(d, 'assets.bundle'))
      checkBundle(code, signed.manifest.bundles.code, 'code')
      checkBundle(assets, signed.manifest.bundles.assets, 'assets')
      return { manifest: signed, code: code === undefined ? null : unpackBundle(code), assets: assets === undefined ? null : unpackBundle(assets) }
    },
    async list () {
      let keys: string[] = []
      try { keys = (await readdir(join(dir, 'apps'))).filter(k => /^[0-9a-f]{64}$/.test(k)).sort() } catch { return [] }
      const out: InstalledApp[] = []
      for (const k of keys) {
        const s = await readState(k)
        if (s === undefined) continue
        const bytes = await readOpt(join(appDir(k), String(s.current), 'manifest.bin'))
        let name = '?'
        try { if (bytes !== undefined) name = openManifest(bytes, fromHex(k)).manifest.name } catch { name = '(corrupt)' }
        out.push({ appKey: k, name, current: s.current, pinned: s.pinned, releases: await releasesOf(k) })
      }
      return out
    },
    async pin (appKey, release) {
      const s = await need(appKey)
      await haveRelease(appKey, release)
      if (s.current !== release) s.history = [...s.history.filter(r => r !== s.current), s.current].slice(-32)
      s.current = release
      s.pinned = true
      await writeState(appKey, s)
    },
    async unpin (appKey) {
      const s = await need(appKey)
      s.pinned = false
      await writeState(appKey, s)
    },
    async rollback (appKey) {
      const s = await need(appKey)
      const have = await releasesOf(appKey)
      const prev = [...s.history].reverse().find(r => r !== s.current && have.includes(r))
      if (prev === undefined) throw new DoaError('DOA_NOT_FOUND', 'there is no earlier release in the cache to roll back to')
      s.history = s.history.filter(r => r !== prev)
      s.current = prev
      await writeState(appKey, s)
      return prev
    },
    async remove (appKey) {
      await rm(appDir(appKey), { recursive: true, force: true })
    }
  }
}
