/**
 * The own-record journal in a file: what this node wrote (its own records, and the highest seq
 * per mutable key after a record expired), kept across restarts so a restarted node serves and
 * republishes its records and never reuses a seq (src/oht: OwnRecordJournal).
 *
 * Durability: every change rewrites the whole file atomically: a temp name unique per write
 * (`<file>.<pid>.<n>.tmp`, created 0600 with O_EXCL), written and fsynced, renamed over the
 * file, then the directory fsynced so the rename itself survives a power cut. A crash at any
 * point leaves either the old or the new version, never a mix; a temp file left by a crash is
 * removed at the next load. Saves that arrive while a write runs share the next write (group
 * commit), so a burst of puts costs about two writes, not one each. A save resolves only once
 * the file holding it is durable, and the engine saves before any peer sees the record.
 *
 * Sealing (optional, with a passphrase): scrypt derives a key once at load; each version of the
 * entry list is sealed with XChaCha20-Poly1305 under a fresh random nonce (src/crypto/seal.ts).
 * A key check (an empty box) tells a wrong passphrase from a damaged file.
 *
 * Bounds: at most `maxEntries` entries and `maxBytes` of encoded entries; a save past either
 * is refused (OHT_JOURNAL_FULL) and changes nothing. A file larger than the limits allow is
 * refused unread.
 *
 * A damaged file is never silently dropped: load() moves it aside to `<file>.corrupt-<time>`
 * and throws OHT_JOURNAL_CORRUPT naming both paths.
 *
 * Errors are OhtError (the journal is the engine's seam) with these codes:
 * - OHT_JOURNAL_CORRUPT: the file is damaged (it was set aside; the message says where).
 * - OHT_JOURNAL_PASSPHRASE: the journal is sealed and no or a wrong passphrase was given.
 * - OHT_JOURNAL_FULL: a save would pass the entry or byte limit (nothing was written), or the
 *   file is larger than the limits allow.
 * - OHT_JOURNAL_IO: the file could not be read or written.
 *
 * File layout (JSON, version 1):
 *
 *   { "format": "oht-own-records", "version": 1,
 *     "entries": [ Entry… ]                                        (plain)
 *     or
 *     "sealed": { "kdf": "scrypt", "N", "r", "p", "salt": b64,
 *                 "check": { nonce, ciphertext },                  (empty plaintext, AAD "…|check")
 *                 "box": { nonce, ciphertext } }                    (JSON of [ Entry… ], AAD "…|entries")
 *   }
 *   Entry = { "id": string ≤ 256, "key": 64 hex, "expiresAt": ms, "seq"?: u53,
 *             "record"?: { "kind": string, <field>: u53 | boolean | string ≤ 256 | { "b64": bytes }, … ≤ 16 fields } }
 *   e.g. "record": { "kind": "mutable", "publicKey": { "b64": … }, "salt": { "b64": … }, "seq": 3,
 *                    "ttlMs": 7200000, "value": { "b64": … }, "signature": { "b64": … } }
 *   (field by field whatever the record kind, so new kinds journal unchanged)
 */
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { errorMessage, isCodedError, logger, type Clock, type Logger } from '../core/index.ts'
import { derivePassphraseKey, DEFAULT_SCRYPT, type PassphraseKey, type ScryptParams } from '../crypto/index.ts'
import { OhtError, type OhtRecord, type OwnRecordEntry, type OwnRecordJournal } from '../oht/index.ts'

export const JOURNAL_FILE = 'own-records.json'
const FORMAT = 'oht-own-records'
const VERSION = 1
const MAX_ID_CHARS = 256
/** A record value in the journal: the engine's own limit applies again when it loads. */
const MAX_VALUE_BYTES = 1024 * 1024

export interface FileJournalInit {
  /** The journal file (0600; its directory should be 0700). */
  path: string
  /** Seal the entries with this passphrase. @default undefined (plain, protected by 0600 only) */
  passphrase?: string
  /** scrypt cost for a new sealed file. @default DEFAULT_SCRYPT (N 2^16, r 8, p 1) */
  scrypt?: ScryptParams
  /** Most entries held (live records and seq-only ones). @default 10000 */
  maxEntries?: number
  /** Most bytes of encoded entries. @default 67108864 */
  maxBytes?: number
}

export interface FileJournalComponents {
  /** Names set-aside files (`.corrupt-<time>`). */
  clock: Clock
  log?: Logger
  /**
   * Test seam: runs after a version is written and fsynced, before it is renamed into place
   * (where a crash leaves a temp file and the old version).
   */
  beforeRename?: (tmpPath: string) => Promise<void>
}

export interface FileJournal extends OwnRecordJournal {
  readonly path: string
  /** Entries held now. */
  readonly size: number
  /** Bytes of the encoded entries held now. */
  readonly bytes: number
  /** Versions of the file written by this instance. */
  readonly writes: number
  /** Waits for pending writes, then zeroes the values and the sealing key held in memory. */
  close(): Promise<void>
}

interface Held { entry: OwnRecordEntry, encoded: string }

const text = new TextEncoder()
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

class Malformed extends Error {}

function fromB64 (v: unknown, what: string, max: number): Uint8Array {
  if (typeof v !== 'string' || v.length > Math.ceil(max / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new Malformed(`${what} is not base64 of at most ${max} bytes`)
  return new Uint8Array(Buffer.from(v, 'base64'))
}

function fromHex32 (v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw new Malformed(`${what} is not 64 lower-case hex characters`)
  return new Uint8Array(Buffer.from(v, 'hex'))
}

function u53 (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Malformed(`${what} is not a whole number >= 0`)
  return v
}

const MAX_RECORD_FIELDS = 16
const MAX_STRING_CHARS = 256

/**
 * Records are journaled field by field, whatever their kind: numbers, booleans and strings as
 * they are, bytes as { "b64": … }. The engine checks each record again (key, signature, size)
 * when it loads the journal, so this layer only bounds and types what it reads.
 */
function encodeRecord (r: OhtRecord): unknown {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(r)) out[k] = v instanceof Uint8Array ? { b64: b64(v) } : v
  return out
}

function decodeRecord (v: unknown): OhtRecord {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Malformed('a record is not an object')
  const o = v as Record<string, unknown>
  const names = Object.keys(o)
  if (names.length > MAX_RECORD_FIELDS) throw new Malformed('a record has too many fields')
  if (typeof o.kind !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(o.kind)) throw new Malformed('a record has no kind')
  const out: Record<string, unknown> = {}
  let bytes = 0
  for (const name of names) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(name)) throw new Malformed(`a record field is named ${JSON.stringify(name.slice(0, 40))}`)
    const x = o[name]
    if (typeof x === 'number') out[name] = u53(x, name)
    else if (typeof x === 'boolean') out[name] = x
    else if (typeof x === 'string') {
      if (x.length > MAX_STRING_CHARS) throw new Malformed(`record field ${name} is too long`)
      out[name] = x
    } else if (x !== null && typeof x === 'object' && typeof (x as { b64?: unknown }).b64 === 'string' && Object.keys(x).length === 1) {
      const b = fromB64((x as { b64: string }).b64, name, MAX_VALUE_BYTES)
      bytes += b.byteLength
      if (bytes > MAX_VALUE_BYTES + 4096) throw new Malformed('a record is too large')
      out[name] = b
    } else throw new Malformed(`record field ${name} has an unknown type`)
  }
  return out as unknown as OhtRecord
}

function encodeEntry (e: OwnRecordEntry): string {
  const o: Record<string, unknown> = { id: e.id, key: hex(e.key), expiresAt: e.expiresAt }
  if (e.seq !== undefined) o.seq = e.seq
  if (e.record !== undefined) o.record = encodeRecord(e.record)
  return JSON.stringify(o)
}

function decodeEntry (v: unknown): OwnRecordEntry {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Malformed('an entry is not an object')
  const o = v as Record<string, unknown>
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > MAX_ID_CHARS) throw new Malformed('an entry id is not a string of 1-256 characters')
  if (typeof o.expiresAt !== 'number' || !Number.isFinite(o.expiresAt)) throw new Malformed('expiresAt is not a number')
  const e: OwnRecordEntry = { id: o.id, key: fromHex32(o.key, 'key'), expiresAt: o.expiresAt }
  if (o.seq !== undefined) e.seq = u53(o.seq, 'seq')
  if (o.record !== undefined) e.record = decodeRecord(o.record)
  if (e.record === undefined && e.seq === undefined) throw new Malformed(`entry ${o.id} has neither a record nor a seq`)
  return e
}

function copyRecord (r: OhtRecord): OhtRecord {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(r)) out[k] = v instanceof Uint8Array ? v.slice() : v
  return out as unknown as OhtRecord
}

/** Zeroes every byte field of a record (its value, and what else it carries). */
function wipeRecord (r: OhtRecord): void {
  for (const v of Object.values(r)) if (v instanceof Uint8Array) v.fill(0)
}

function copyEntry (e: OwnRecordEntry): OwnRecordEntry {
  const out: OwnRecordEntry = { id: e.id, key: e.key.slice(), expiresAt: e.expiresAt }
  if (e.seq !== undefined) out.seq = e.seq
  if (e.record !== undefined) out.record = copyRecord(e.record)
  return out
}

/**
 * @example
 * const journal = createFileJournal({ path: join(dataDir, JOURNAL_FILE), passphrase }, { clock: systemClock })
 * const node = createOhtNode(init, { identity, net, clock, rng, journal })
 * await node.start()          // loads the journal: own records served and republished
 * // … on shutdown
 * await node.stop(); await journal.close()
 */
export function createFileJournal (init: FileJournalInit, components: FileJournalComponents): FileJournal {
  return new FileJournalImpl(init, components)
}

class FileJournalImpl implements FileJournal {
  readonly path: string
  private readonly held = new Map<string, Held>()
  private readonly maxEntries: number
  private readonly maxBytes: number
  private readonly log: Logger
  private totalBytes = 0
  private key: PassphraseKey | undefined
  private loading: Promise<void> | undefined
  private tail: Promise<void> = Promise.resolve()
  private queued: Promise<void> | undefined
  private written = 0
  private closed = false

  constructor (private readonly init: FileJournalInit, private readonly components: FileJournalComponents) {
    this.path = init.path
    this.maxEntries = init.maxEntries ?? 10_000
    this.maxBytes = init.maxBytes ?? 64 * 1024 * 1024
    if (!(Number.isSafeInteger(this.maxEntries) && this.maxEntries > 0)) throw new OhtError('OHT_BAD_ARGUMENT', `journal maxEntries must be a positive whole number, got ${String(init.maxEntries)}`)
    if (!(Number.isSafeInteger(this.maxBytes) && this.maxBytes > 0)) throw new OhtError('OHT_BAD_ARGUMENT', `journal maxBytes must be a positive whole number, got ${String(init.maxBytes)}`)
    this.log = components.log ?? logger('oht:journal')
  }

  get size (): number { return this.held.size }
  get bytes (): number { return this.totalBytes }
  get writes (): number { return this.written }

  private aad (part: string): Uint8Array { return text.encode(`${FORMAT}|${VERSION}|${part}`) }

  /** The largest file the limits allow: entries, JSON framing, base64 of a sealed box. */
  private get maxFileBytes (): number { return Math.ceil((this.maxBytes + this.maxEntries + 4096) * 4 / 3) + 4096 }

  async load (): Promise<OwnRecordEntry[]> {
    await this.ensureLoaded()
    return [...this.held.values()].map(h => copyEntry(h.entry))
  }

  private async ensureLoaded (): Promise<void> {
    if (this.closed) throw new OhtError('OHT_JOURNAL_IO', `the journal ${this.path} is closed`)
    this.loading ??= this.readFromDisk().catch((err: unknown) => { this.loading = undefined; throw err })
    await this.loading
  }

  private async readFromDisk (): Promise<void> {
    await this.removeStaleTemps()
    let size: number
    try {
      size = (await stat(this.path)).size
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') { this.newKey(); return }
      throw new OhtError('OHT_JOURNAL_IO', `cannot read the own-record journal ${this.path}: ${errorMessage(err)}`, { cause: err })
    }
    if (size > this.maxFileBytes) {
      throw new OhtError('OHT_JOURNAL_FULL', `the own-record journal ${this.path} is ${size} bytes, more than its limits allow (${this.maxEntries} entries, ${this.maxBytes} bytes): raise the limits to load it`)
    }
    let raw: string
    try { raw = await readFile(this.path, 'utf8') } catch (err) {
      throw new OhtError('OHT_JOURNAL_IO', `cannot read the own-record journal ${this.path}: ${errorMessage(err)}`, { cause: err })
    }
    let list: unknown[]
    try {
      list = this.unwrap(raw)
    } catch (err) {
      if (isCodedError(err, 'OHT_JOURNAL_PASSPHRASE')) throw err
      throw await this.setAside(err instanceof Malformed || err instanceof SyntaxError || isCodedError(err) ? err.message : errorMessage(err), err)
    }
    const entries: OwnRecordEntry[] = []
    try {
      for (const item of list) entries.push(decodeEntry(item))
    } catch (err) {
      throw await this.setAside(errorMessage(err), err)
    }
    for (const e of entries) {
      const encoded = encodeEntry(e)
      const prev = this.held.get(e.id)
      if (prev !== undefined) this.totalBytes -= prev.encoded.length
      this.held.set(e.id, { entry: e, encoded })
      this.totalBytes += encoded.length
    }
    if (this.init.passphrase !== undefined && this.key === undefined) this.newKey()
  }

  /** The entry list out of the file's JSON, opening the sealed box when there is one. */
  private unwrap (raw: string): unknown[] {
    const doc = JSON.parse(raw) as Record<string, unknown>
    if (doc === null || typeof doc !== 'object' || doc.format !== FORMAT) throw new Malformed('it is not an own-record journal')
    if (doc.version !== VERSION) throw new Malformed(`unknown journal version ${JSON.stringify(doc.version)}`)
    if (doc.sealed === undefined) {
      if (!Array.isArray(doc.entries)) throw new Malformed('it has no entry list')
      if (doc.entries.length > this.maxFileBytes / 64) throw new Malformed('it has more entries than its size allows')
      if (this.init.passphrase !== undefined) this.log('journal %s is not sealed yet; the next write seals it', this.path)
      return doc.entries
    }
    const s = doc.sealed as Record<string, unknown>
    if (s === null || typeof s !== 'object' || s.kdf !== 'scrypt' || typeof s.salt !== 'string') throw new Malformed('its sealing header is malformed')
    if (this.init.passphrase === undefined) {
      throw new OhtError('OHT_JOURNAL_PASSPHRASE', `the own-record journal ${this.path} is sealed: give its passphrase (the identity's passphrase file, for the daemon)`)
    }
    const params = { N: u53(s.N, 'N'), r: u53(s.r, 'r'), p: u53(s.p, 'p') }
    let key: PassphraseKey
    try {
      key = derivePassphraseKey(this.init.passphrase, { salt: s.salt, params })
    } catch (err) {
      throw new Malformed(`its sealing header is malformed: ${errorMessage(err)}`)
    }
    const box = (v: unknown): { nonce: string, ciphertext: string } => {
      if (v === null || typeof v !== 'object') throw new Malformed('a sealed box is missing')
      return v as { nonce: string, ciphertext: string }
    }
    try {
      key.open(box(s.check), this.aad('check'), 0)
    } catch (err) {
      key.destroy()
      if (isCodedError(err, 'CRYPTO_WRONG_PASSPHRASE')) throw new OhtError('OHT_JOURNAL_PASSPHRASE', `wrong passphrase for the sealed own-record journal ${this.path}`, { cause: err })
      throw err
    }
    let plain: Uint8Array
    try {
      plain = key.open(box(s.box), this.aad('entries'), this.maxFileBytes)
    } catch (err) {
      key.destroy()
      throw new Malformed(`its sealed entries do not open with the right passphrase: ${errorMessage(err)}`)
    }
    this.key = key
    try {
      const list = JSON.parse(Buffer.from(plain).toString('utf8')) as unknown
      if (!Array.isArray(list)) throw new Malformed('its sealed entries are not a list')
      return list
    } finally {
      plain.fill(0)
    }
  }

  private newKey (): void {
    if (this.init.passphrase === undefined || this.key !== undefined) return
    this.key = derivePassphraseKey(this.init.passphrase, { params: this.init.scrypt ?? DEFAULT_SCRYPT })
  }

  /** Moves a damaged file aside and makes the error that says so. */
  private async setAside (detail: string, cause: unknown): Promise<OhtError> {
    const aside = `${this.path}.corrupt-${Math.floor(this.components.clock.now())}`
    try {
      await rename(this.path, aside)
    } catch (err) {
      return new OhtError('OHT_JOURNAL_CORRUPT', `the own-record journal ${this.path} is damaged (${detail}) and could not be moved aside (${errorMessage(err)}): move it away yourself to start with an empty journal`, { cause })
    }
    this.log.error('own-record journal %s is damaged (%s): moved to %s', this.path, detail, aside)
    return new OhtError('OHT_JOURNAL_CORRUPT', `the own-record journal ${this.path} is damaged (${detail}): it was moved to ${aside} and nothing was read from it. ` +
      'The next start begins with an empty journal (records this node wrote live on only at peers that hold them; a mutable seq continues from the highest peers hold); restore the file from a backup instead if you have one', { cause })
  }

  /** Temp files of writes that never reached their rename (a crash): the file itself is intact. */
  private async removeStaleTemps (): Promise<void> {
    const dir = dirname(this.path)
    const prefix = `${basename(this.path)}.`
    let names: string[]
    try { names = await readdir(dir) } catch { return }
    for (const n of names) {
      if (n.startsWith(prefix) && n.endsWith('.tmp')) {
        await rm(join(dir, n), { force: true })
        this.log('removed %s, left by a write that did not finish', n)
      }
    }
  }

  async save (entry: OwnRecordEntry): Promise<void> {
    await this.ensureLoaded()
    if (!(entry.key instanceof Uint8Array) || entry.key.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'a journal entry key is 32 bytes')
    if (typeof entry.id !== 'string' || entry.id.length === 0 || entry.id.length > MAX_ID_CHARS) throw new OhtError('OHT_BAD_ARGUMENT', 'a journal entry id is a string of 1-256 characters')
    const prev = this.held.get(entry.id)
    const e = copyEntry(entry)
    // A seq only goes up, whatever order saves come in.
    if (prev?.entry.seq !== undefined) e.seq = Math.max(prev.entry.seq, e.seq ?? -1)
    const encoded = encodeEntry(e)
    const bytes = this.totalBytes - (prev?.encoded.length ?? 0) + encoded.length
    if (prev === undefined && this.held.size >= this.maxEntries) {
      throw new OhtError('OHT_JOURNAL_FULL', `the own-record journal holds ${this.held.size} entries, its limit: nothing was written (raise the journal's maxEntries)`)
    }
    if (bytes > this.maxBytes) {
      throw new OhtError('OHT_JOURNAL_FULL', `the own-record journal would hold ${bytes} bytes, over its limit of ${this.maxBytes}: nothing was written (raise the journal's maxBytes)`)
    }
    const mine: Held = { entry: e, encoded }
    this.put(entry.id, mine)
    try {
      await this.persist()
    } catch (err) {
      // Not durable: the put fails, so the record must not come back after a restart either.
      if (this.held.get(entry.id) === mine) {
        if (prev !== undefined) this.put(entry.id, prev)
        else this.drop(entry.id)
      }
      throw err
    }
  }

  async expire (id: string): Promise<void> {
    await this.ensureLoaded()
    const h = this.held.get(id)
    if (h?.entry.record === undefined) return
    wipeRecord(h.entry.record)
    if (h.entry.seq === undefined) {
      this.drop(id)
    } else {
      const e: OwnRecordEntry = { id, key: h.entry.key, expiresAt: h.entry.expiresAt, seq: h.entry.seq }
      this.put(id, { entry: e, encoded: encodeEntry(e) })
    }
    await this.persist()
  }

  private put (id: string, h: Held): void {
    const prev = this.held.get(id)
    if (prev !== undefined) this.totalBytes -= prev.encoded.length
    this.held.set(id, h)
    this.totalBytes += h.encoded.length
  }

  private drop (id: string): void {
    const prev = this.held.get(id)
    if (prev === undefined) return
    this.totalBytes -= prev.encoded.length
    this.held.delete(id)
  }

  /** Resolves once a version holding every change made so far is durable. */
  private async persist (): Promise<void> {
    if (this.queued !== undefined) return await this.queued
    const run = this.tail.catch(() => {}).then(async () => {
      this.queued = undefined // changes from here on need the next write
      await this.writeVersion()
    })
    this.queued = run
    this.tail = run
    await run
  }

  private serialize (): string {
    const list = `[${[...this.held.values()].map(h => h.encoded).join(',')}]`
    if (this.key === undefined) return `{"format":"${FORMAT}","version":${VERSION},"entries":${list}}\n`
    const plain = text.encode(list)
    try {
      const sealed = {
        kdf: 'scrypt',
        ...this.key.params,
        salt: this.key.salt,
        check: this.key.seal(new Uint8Array(0), this.aad('check')),
        box: this.key.seal(plain, this.aad('entries'))
      }
      return JSON.stringify({ format: FORMAT, version: VERSION, sealed }) + '\n'
    } finally {
      plain.fill(0)
    }
  }

  private async writeVersion (): Promise<void> {
    const body = this.serialize()
    const tmp = `${this.path}.${process.pid}.${++this.written}.tmp`
    try {
      const fh = await open(tmp, 'wx', 0o600)
      try {
        await fh.writeFile(body)
        await fh.sync()
      } finally {
        await fh.close()
      }
      await this.components.beforeRename?.(tmp)
      await rename(tmp, this.path)
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {})
      throw new OhtError('OHT_JOURNAL_IO', `cannot write the own-record journal ${this.path}: ${errorMessage(err)}`, { cause: err })
    }
    // The rename is durable only once the directory is.
    try {
      const dir = await open(dirname(this.path), 'r')
      try { await dir.sync() } finally { await dir.close() }
    } catch (err) {
      this.log.warn('fsync of %s failed: %s', dirname(this.path), errorMessage(err))
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    await this.tail.catch(() => {})
    this.closed = true
    for (const h of this.held.values()) if (h.entry.record !== undefined) wipeRecord(h.entry.record)
    this.held.clear()
    this.totalBytes = 0
    this.key?.destroy()
    this.key = undefined
  }
}
