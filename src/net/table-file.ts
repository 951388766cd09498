/**
 * The routing table on disk, so a restarted node rejoins through the peers it knew instead of
 * the bootstrap list (and, over tor, without a directory of well-known nodes).
 *
 *   { "version": 1, "savedAt": <ms>, "contacts": [ { "publicKey": "<64 hex>", "addrs": ["/onion3/…", …] }, … ] }
 *
 * Reading is defensive: a size cap, a contact cap, and every entry validated; a damaged file
 * is a NET_TABLE_FILE error, never a crash.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fromHex, toHex, writeFileAtomic } from '../core/index.ts'
import type { PeerContact } from '../oht/network.ts'
import { NetError } from './errors.ts'

export const TABLE_FILE_MAX_BYTES = 2 * 1024 * 1024
export const TABLE_FILE_MAX_CONTACTS = 2_000
const MAX_ADDRS = 8
const MAX_ADDR_CHARS = 256

export async function saveTableFile (path: string, contacts: PeerContact[], now: number): Promise<void> {
  const body = JSON.stringify({
    version: 1,
    savedAt: now,
    contacts: contacts.slice(0, TABLE_FILE_MAX_CONTACTS).map(c => ({ publicKey: toHex(c.publicKey), addrs: c.addrs.slice(0, MAX_ADDRS) }))
  })
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    // A unique temp file, fsynced, renamed, directory fsynced: a crash mid-write never leaves
    // a torn file, and two saves in flight never write into the same temp file.
    await writeFileAtomic(path, body, { mode: 0o600 })
  } catch (err) {
    throw new NetError('NET_TABLE_FILE', `could not save the routing table to ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/** The saved contacts, or [] when there is no file yet. */
export async function loadTableFile (path: string): Promise<PeerContact[]> {
  let text: string
  try {
    const buf = await readFile(path)
    if (buf.byteLength > TABLE_FILE_MAX_BYTES) throw new NetError('NET_TABLE_FILE', `${path} is larger than ${TABLE_FILE_MAX_BYTES} bytes: not a routing table file`)
    text = buf.toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    if (err instanceof NetError) throw err
    throw new NetError('NET_TABLE_FILE', `could not read ${path}: ${(err as Error).message}`, { cause: err })
  }
  return parseTable(text, path)
}

export function parseTable (text: string, path = 'routing table'): PeerContact[] {
  let doc: unknown
  try { doc = JSON.parse(text) } catch (err) {
    throw new NetError('NET_TABLE_FILE', `${path} is not valid JSON; delete it to start from the bootstrap list`, { cause: err })
  }
  const d = doc as { version?: unknown, contacts?: unknown }
  if (d === null || typeof d !== 'object' || d.version !== 1 || !Array.isArray(d.contacts)) {
    throw new NetError('NET_TABLE_FILE', `${path} is not a version 1 routing table file; delete it to start from the bootstrap list`)
  }
  const out: PeerContact[] = []
  for (const c of d.contacts.slice(0, TABLE_FILE_MAX_CONTACTS) as unknown[]) {
    const e = c as { publicKey?: unknown, addrs?: unknown }
    if (e === null || typeof e !== 'object' || typeof e.publicKey !== 'string' || !/^[0-9a-f]{64}$/.test(e.publicKey)) continue
    if (!Array.isArray(e.addrs)) continue
    const addrs = e.addrs.filter((a): a is string => typeof a === 'string' && a.length <= MAX_ADDR_CHARS).slice(0, MAX_ADDRS)
    if (addrs.length === 0) continue
    out.push({ publicKey: fromHex(e.publicKey), addrs })
  }
  return out
}
