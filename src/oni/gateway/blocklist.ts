/**
 * The ad and malware blocklist: a hosts-format file (`0.0.0.0 ads.example.com`, `#` comments,
 * several names per line) or a plain list of names, one a line. A listed name blocks itself
 * and every name under it (`ads.example.com` also blocks `x.ads.example.com`). The addresses
 * in the file are ignored: blocked names are answered with 0.0.0.0 / :: by the resolver.
 * The usual hosts-file entries for the machine itself (localhost, broadcasthost, ip6-*) are
 * not blocklist entries and are skipped.
 */
import { readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'
import type { AbortOptions } from '../../core/index.ts'
import { OniError } from '../errors.ts'

/** @default limits of a blocklist file */
export const MAX_BLOCKLIST_BYTES = 64 * 1024 * 1024
export const MAX_BLOCKLIST_NAMES = 2_000_000
const NAME_RE = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/
const NOT_ENTRIES = new Set(['localhost', 'localhost.localdomain', 'local', 'broadcasthost', '0.0.0.0'])

export interface Blocklist {
  /** Distinct names listed. */
  readonly size: number
  /** Lines that were neither comments, blank, nor valid entries. */
  readonly skipped: number
  /** True when `name` (lower case, no trailing dot) or a parent of it is listed. */
  blocks(name: string): boolean
}

class NameSet implements Blocklist {
  constructor (private readonly names: Set<string>, readonly skipped: number) {}
  get size (): number { return this.names.size }
  blocks (name: string): boolean {
    let n = name
    for (;;) {
      if (this.names.has(n)) return true
      const dot = n.indexOf('.')
      if (dot === -1) return false
      n = n.slice(dot + 1)
    }
  }
}

export const EMPTY_BLOCKLIST: Blocklist = new NameSet(new Set(), 0)

function entryName (raw: string): string | undefined {
  const n = raw.toLowerCase().replace(/\.$/, '')
  if (n.length > 253 || !NAME_RE.test(n) || NOT_ENTRIES.has(n) || n.startsWith('ip6-')) return undefined
  return n
}

/**
 * Parses blocklist text. Throws ONI_GATEWAY_BLOCKLIST when it lists more than `maxNames`
 * names (the previous list should then stay in force).
 */
export function parseBlocklist (text: string, maxNames = MAX_BLOCKLIST_NAMES): Blocklist {
  const names = new Set<string>()
  let skipped = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const hash = text.indexOf('#', start)
    const line = text.slice(start, hash !== -1 && hash < end ? hash : end).trim()
    start = end + 1
    if (line === '') continue
    const fields = line.split(/\s+/)
    const candidates = isIP(fields[0]) !== 0 ? fields.slice(1) : (fields.length === 1 ? fields : [])
    if (candidates.length === 0) { skipped++; continue }
    for (const f of candidates) {
      const n = entryName(f)
      if (n === undefined) {
        if (!NOT_ENTRIES.has(f.toLowerCase()) && !f.toLowerCase().startsWith('ip6-')) skipped++
        continue
      }
      names.add(n)
      if (names.size > maxNames) throw new OniError('ONI_GATEWAY_BLOCKLIST', `the blocklist lists more than ${maxNames} names: split it or raise the limit`)
    }
  }
  return new NameSet(names, skipped)
}

/** Reads and parses a blocklist file (at most MAX_BLOCKLIST_BYTES). Throws ONI_GATEWAY_BLOCKLIST. */
export async function loadBlocklist (file: string, options: AbortOptions & { maxNames?: number } = {}): Promise<Blocklist> {
  let text: string
  try {
    const st = await stat(file)
    if (!st.isFile()) throw new OniError('ONI_GATEWAY_BLOCKLIST', `blocklist ${file} is not a file`)
    if (st.size > MAX_BLOCKLIST_BYTES) throw new OniError('ONI_GATEWAY_BLOCKLIST', `blocklist ${file} is ${st.size} bytes; the limit is ${MAX_BLOCKLIST_BYTES}`)
    text = await readFile(file, { encoding: 'utf8', signal: options.signal })
  } catch (err) {
    if (err instanceof OniError) throw err
    throw new OniError('ONI_GATEWAY_BLOCKLIST', `cannot read blocklist ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
  }
  return parseBlocklist(text, options.maxNames)
}
