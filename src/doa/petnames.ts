/**
 * Petnames: each user's own map from short names to zone keys they trust ("alice" → her zone
 * key), so `chat.alice` resolves to (alice's zone, "chat"). Kept in one JSON file, mode 0600,
 * written atomically (temp file + rename).
 */
import { chmod, readFile, rename, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fromHex, toHex } from '../core/bytes.ts'
import { DoaError } from './errors.ts'
import { parseJson } from './json.ts'
import { normalizeLabel } from './zone-keys.ts'

export interface PetnameStore {
  get(petname: string): Uint8Array | undefined
  set(petname: string, zoneKey: Uint8Array): void
  remove(petname: string): boolean
  list(): Array<{ petname: string, zone: string }>
  /** After a verified rotation: every petname of `from` now names `to`. Returns how many changed. */
  applyRotation(from: string, to: string): number
  save(): Promise<void>
}

/** Loads (or starts) the petname file at `file`. */
export async function openPetnames (file: string): Promise<PetnameStore> {
  const map = new Map<string, string>()
  let text: string | undefined
  try { text = await readFile(file, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DoaError('DOA_CACHE', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
  if (text !== undefined) {
    const doc = parseJson(text, { maxLength: 1 << 20 }) as { v?: unknown, petnames?: Record<string, unknown> }
    if (doc === null || typeof doc !== 'object' || doc.v !== 1 || typeof doc.petnames !== 'object' || doc.petnames === null) throw new DoaError('DOA_CACHE', `${file} is not a petname file`)
    for (const [k, v] of Object.entries(doc.petnames)) {
      if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw new DoaError('DOA_CACHE', `${file}: petname ${k} has no valid zone key`)
      map.set(normalizeLabel(k), v)
    }
  }
  return {
    get: (p) => { const z = map.get(normalizeLabel(p)); return z === undefined ? undefined : fromHex(z) },
    set: (p, zone) => {
      if (zone?.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'a zone key has 32 bytes')
      map.set(normalizeLabel(p), toHex(zone))
    },
    remove: (p) => map.delete(normalizeLabel(p)),
    list: () => [...map].sort(([a], [b]) => a < b ? -1 : 1).map(([petname, zone]) => ({ petname, zone })),
    applyRotation (from, to) {
      let n = 0
      for (const [k, v] of map) if (v === from) { map.set(k, to); n++ }
      return n
    },
    async save () {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
      const tmp = `${file}.tmp`
      const petnames = Object.fromEntries([...map].sort(([a], [b]) => a < b ? -1 : 1))
      await writeFile(tmp, JSON.stringify({ v: 1, petnames }, null, 2) + '\n', { mode: 0o600 })
      await chmod(tmp, 0o600)
      await rename(tmp, file)
    }
  }
}
