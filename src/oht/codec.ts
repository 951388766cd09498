/**
 * OHT wire frames: one request frame, one response frame per DhtNet round trip. Binary,
 * versioned, every field length-limited; the decoder never trusts a length before checking it
 * against both its limit and the bytes left, and throws OhtError OHT_BAD_FRAME on anything
 * malformed (so a handler answers an ERROR frame instead of crashing).
 *
 * ```
 * frame    = version:u8 (=1) | type:u8 | body
 *
 * requests (body starts with the sender's own dial addresses; its key comes from the transport)
 *   PING      0x01  addrs
 *   FIND_NODE 0x02  addrs | target[32]
 *   GET       0x03  addrs | key[32] | flags:u8 (bit0 = metadata only: no value)
 *   GET       0x03  addrs | key[32] | flags:u8 (bit0 = metadata only, bit1 = values) |
 *                   [kind:u8 | cursor:u32 if values]      (values: the key's multi-value set)
 *   PUT       0x04  addrs | token[32] | key[32] | remainingMs:u64 | flags:u8 (bit0 = cas) |
 *                   [cas:u64] | record
 *   PUT_MANY  0x05  addrs | token[32] | key[32] | kind:u8 | n:u16 (1..512) |
 *                   (remainingMs:u64 | value-record)*n    (values of one multi-value key)
 *   WATCH     0x06  addrs | key[32] | kind:u8 | leaseMs:u32 | flags:u8 (bit0 = cancel)
 *   NOTIFY    0x07  addrs | key[32] | record              (holder -> watcher: a new write)
 * responses
 *   PONG      0x81  (empty; also the answer to NOTIFY)
 *   NODES     0x82  flags:u8 (bit0 = token) | [token[32]] | n:u8 | contact*n
 *   VALUE     0x83  token[32] | n:u8 | contact*n | flags:u8 (bit0 = holds, bit1 = record) |
 *                   [seq:u64 if holds] | [record if bit1]
 *   STORED    0x84  grantedMs:u64 (the lifetime the storing node granted)
 *   VALUES    0x85  token[32] | n:u8 | contact*n | kind:u8 | total:u32 | next:u32 (0 = no more) |
 *                   digest[32] | count:u16 | value-record*count   (a page of the set, by slot)
 *   STORED_MANY 0x86 n:u16 | (status:u8 = 0 | grantedMs:u64 , or status:u8 = 1 | code:u16)*n
 *   WATCHING  0x87  grantedMs:u32 (0 after a cancel)
 *   ERROR     0xff  code:u16 | len:u16 | message utf8 (len <= 512)
 *
 * addrs    = n:u8 (<= 8) | (len:u16 (<= 256) | utf8)*n
 * contact  = nodeId[32] | publicKey[32] | addrs   (nodeId = SHA-256(publicKey), checked by the
 *            receiver before it contacts that peer: lookups sort by it without hashing every key)
 * record   = kind:u8 (0 = immutable, 1 = mutable, 2-255 = a value kind: see kinds.ts) |
 *   immutable: ttlMs:u64 | len:u32 | value
 *   mutable:   publicKey[32] | saltLen:u8 (<= 64) | salt | seq:u64 | ttlMs:u64 | len:u32 |
 *              value | signature[64]
 *   value:     writer[32] | idLen:u8 (1..32) | id | seq:u64 | ttlMs:u64 | flags:u8 (bit0 =
 *              deleted) | len:u32 | value | signature[64]   (its key is the frame's key)
 * value-record = a record of a value kind (the kind byte included)
 * digest   = SHA-256 over the set's (slot, seq) pairs in slot order: equal sets, equal digests
 * ```
 * A kind byte this node's registry does not know is OHT_UNKNOWN_KIND, not a malformed frame.
 * Integers are big-endian; u64 fields must fit 2^53 - 1.
 *
 * Decoded byte fields are views into the frame (no copies on the hot path): the frame must not
 * be reused by the transport, and whoever keeps bytes longer than the frame copies them: the
 * routing table and the store, a lookup for the contacts it ranks (ContactArena), and a query's
 * result for its token and record. Frames share slabs (allocFrame), so one kept view keeps 64 KiB.
 * Decoded messages are typed `Decoded<…>` (deeply read-only) so that a decoded byte field
 * cannot be handed to something that keeps it without an explicit copy (copyRecord, slice).
 *
 * The codec keeps no mutable state between calls (it is re-entrant) and writes into none of
 * the objects it is given: the caches below are memos keyed by content or by objects whose
 * holders never mutate them (frozen address lists).
 */
import { allocFrame } from '../core/bytes.ts'
import { OhtError, wireErrorCode, wireErrorNumber } from './errors.ts'
import type { PeerContact } from './network.ts'
import { DEFAULT_KINDS, type RecordKinds } from './kinds.ts'
import { MAX_SALT_BYTES, MAX_VALUE_ID_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, KEY_BYTES, type OhtRecord, type ValueRecord } from './records.ts'

export const WIRE_VERSION = 1
export const MAX_ADDRS = 8
export const MAX_ADDR_BYTES = 256
export const MAX_CONTACTS = 32
export const MAX_ERROR_MESSAGE_BYTES = 512
export const TOKEN_BYTES = 32
/** Room for everything but the value (a full contact list is ~70 KiB at worst). */
export const FRAME_OVERHEAD_BYTES = 80 * 1024

/** Values one PUT_MANY carries at most. */
export const MAX_PUT_MANY = 512
/** A VALUES page carries at most this many value bytes (records' values, summed). */
export const VALUES_PAGE_BYTES = 60 * 1024
export const DIGEST_BYTES = 32

export const MSG = {
  PING: 0x01,
  FIND_NODE: 0x02,
  GET: 0x03,
  PUT: 0x04,
  PUT_MANY: 0x05,
  WATCH: 0x06,
  NOTIFY: 0x07,
  PONG: 0x81,
  NODES: 0x82,
  VALUE: 0x83,
  STORED: 0x84,
  VALUES: 0x85,
  STORED_MANY: 0x86,
  WATCHING: 0x87,
  ERROR: 0xff
} as const

/** A decoded message: its byte fields are views into the frame (copy what you keep). */
export type Decoded<T> = T extends Uint8Array ? T : T extends Array<infer U> ? ReadonlyArray<Decoded<U>> : T extends object ? { readonly [K in keyof T]: Decoded<T[K]> } : T

/** One value of a PUT_MANY: its remaining lifetime at the sender, and the record. */
export interface PutManyItem { remainingMs: number, record: ValueRecord }

export type OhtRequest =
  | { type: 'ping', addrs: string[] }
  | { type: 'find-node', addrs: string[], target: Uint8Array }
  | { type: 'get', addrs: string[], key: Uint8Array, metadataOnly: boolean, values?: { kind: number, cursor: number } }
  | { type: 'put', addrs: string[], token: Uint8Array, key: Uint8Array, remainingMs: number, cas?: number, record: OhtRecord }
  | { type: 'put-many', addrs: string[], token: Uint8Array, key: Uint8Array, kind: number, items: PutManyItem[] }
  | { type: 'watch', addrs: string[], key: Uint8Array, kind: number, leaseMs: number, cancel: boolean }
  | { type: 'notify', addrs: string[], key: Uint8Array, record: OhtRecord }

/**
 * A contact as it travels: the claimed node id comes along so receivers can sort cheaply.
 * `block`, when present, is the contact's wire form after its id (`contactWireBlock`): holders
 * that answer with the same object again and again (routing-table entries) keep it themselves;
 * the encoder only reads it.
 */
export interface WireContact { readonly id: Uint8Array, readonly contact: PeerContact, readonly block?: Uint8Array }

/** Per-value outcome of a PUT_MANY. */
export type PutManyResult = { grantedMs: number } | { code: string }

export type OhtResponse =
  | { type: 'pong' }
  | { type: 'nodes', token?: Uint8Array, contacts: WireContact[] }
  | { type: 'value', token: Uint8Array, contacts: WireContact[], seq?: number, record?: OhtRecord }
  | { type: 'stored', grantedMs: number }
  | { type: 'values', token: Uint8Array, contacts: WireContact[], kind: number, total: number, next: number, digest: Uint8Array, records: ValueRecord[] }
  | { type: 'stored-many', results: PutManyResult[] }
  | { type: 'watching', grantedMs: number }
  | { type: 'error', code: string, message: string }

export interface CodecLimits {
  /** Largest record value accepted. @default 65536 */
  maxValueBytes?: number
  /** Kinds this node knows (value kinds' codes name their namespace). @default the built-in kinds */
  kinds?: RecordKinds
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

function bad (message: string, cause?: unknown): OhtError {
  return new OhtError('OHT_BAD_FRAME', message, cause === undefined ? undefined : { cause })
}

// ---------------------------------------------------------------- writing

class Writer {
  readonly buf: Uint8Array
  off = 0
  /** `frame`: short-lived bytes from the frame slab (see allocFrame); false for bytes kept long. */
  constructor (size: number, frame = true) { this.buf = frame ? allocFrame(size) : new Uint8Array(size) }

  /** The finished bytes; a size computed wrong is a bug here, not a peer's fault. */
  done (): Uint8Array {
    if (this.off !== this.buf.byteLength) throw new OhtError('OHT_INTERNAL', `frame writer filled ${this.off} of ${this.buf.byteLength} bytes`)
    return this.buf
  }

  u8 (v: number): void { this.buf[this.off++] = v }
  u16 (v: number): void { const b = this.buf; b[this.off++] = v >>> 8; b[this.off++] = v & 0xff }
  u32 (v: number): void {
    const b = this.buf
    b[this.off++] = v >>> 24; b[this.off++] = (v >>> 16) & 0xff; b[this.off++] = (v >>> 8) & 0xff; b[this.off++] = v & 0xff
  }

  u64 (v: number): void { this.u32(Math.floor(v / 2 ** 32)); this.u32(v >>> 0) }
  bytes (b: Uint8Array): void { this.buf.set(b, this.off); this.off += b.byteLength }
  /** Writes an address: UTF-8 straight into the frame (no intermediate buffer). */
  addr (a: EncodedAddr): void {
    this.u16(a.bytes)
    enc.encodeInto(a.text, this.buf.subarray(this.off, this.off + a.bytes))
    this.off += a.bytes
  }
}

/** An address ready to write: its text and UTF-8 length. */
interface EncodedAddr { text: string, bytes: number }

function u64ok (v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be a non-negative safe integer, got ${v}`)
}

function fixed (b: Uint8Array, n: number, what: string): Uint8Array {
  if (b.byteLength !== n) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be ${n} bytes, got ${b.byteLength}`)
  return b
}

function encodedAddrs (addrs: string[]): EncodedAddr[] {
  if (addrs.length > MAX_ADDRS) throw new OhtError('OHT_BAD_ARGUMENT', `at most ${MAX_ADDRS} addresses per contact, got ${addrs.length}`)
  return addrs.map(text => {
    const bytes = Buffer.byteLength(text, 'utf8')
    if (bytes > MAX_ADDR_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `address longer than ${MAX_ADDR_BYTES} bytes`)
    return { text, bytes }
  })
}

/**
 * The wire form of an address list (count, then length-prefixed UTF-8), built once per array
 * object: routing-table contacts keep their `addrs` array, and a node hands the same contacts
 * out in answer after answer. Weak, so it lives as long as the array. Arrays are not mutated
 * once a contact holds them (the table replaces them instead).
 */
const addrBlocks = new WeakMap<string[], Uint8Array>()
/**
 * Single-address lists (every onion peer's) by their text: each routing table copies the
 * array it keeps, so the per-array cache alone re-encoded a peer's address once per table
 * that learned it. Bounded; cleared when full (it only saves work).
 */
const singleAddrBlocks = new Map<string, Uint8Array>()
const SINGLE_ADDR_BLOCKS_MAX = 65_536

function addrsBlock (addrs: string[]): Uint8Array {
  let block = addrBlocks.get(addrs)
  if (block !== undefined) return block
  const single = addrs.length === 1 ? addrs[0] : undefined
  block = single !== undefined ? singleAddrBlocks.get(single) : undefined
  if (block === undefined) {
    const encoded = encodedAddrs(addrs)
    let n = 1
    for (const a of encoded) n += 2 + a.bytes
    const w = new Writer(n, false)
    w.u8(encoded.length)
    for (const a of encoded) w.addr(a)
    block = w.done()
    if (single !== undefined) {
      if (singleAddrBlocks.size >= SINGLE_ADDR_BLOCKS_MAX) singleAddrBlocks.clear()
      singleAddrBlocks.set(single, block)
    }
  }
  addrBlocks.set(addrs, block)
  return block
}

function recordSize (r: OhtRecord): number {
  if (r.kind === 'immutable') return 1 + 8 + 4 + r.value.byteLength
  if (r.kind === 'mutable') return 1 + PUBLIC_KEY_BYTES + 1 + r.salt.byteLength + 8 + 8 + 4 + r.value.byteLength + SIGNATURE_BYTES
  return 1 + PUBLIC_KEY_BYTES + 1 + r.id.byteLength + 8 + 8 + 1 + 4 + r.value.byteLength + SIGNATURE_BYTES
}

/** The wire code of a record's kind (value kinds by their namespace). */
function kindCode (r: OhtRecord, kinds: RecordKinds): number {
  if (r.kind === 'immutable') return 0
  if (r.kind === 'mutable') return 1
  return kinds.valueKind(r.namespace).code
}

function writeRecord (w: Writer, r: OhtRecord, code: number): void {
  w.u8(code)
  if (r.kind === 'immutable') {
    w.u64(r.ttlMs); w.u32(r.value.byteLength); w.bytes(r.value)
    return
  }
  if (r.kind === 'mutable') {
    w.bytes(r.publicKey)
    w.u8(r.salt.byteLength); w.bytes(r.salt)
    w.u64(r.seq); w.u64(r.ttlMs)
    w.u32(r.value.byteLength); w.bytes(r.value)
    w.bytes(r.signature)
    return
  }
  w.bytes(r.writer)
  w.u8(r.id.byteLength); w.bytes(r.id)
  w.u64(r.seq); w.u64(r.ttlMs); w.u8(r.deleted ? 1 : 0)
  w.u32(r.value.byteLength); w.bytes(r.value)
  w.bytes(r.signature)
}

function checkRecord (r: OhtRecord): void {
  u64ok(r.ttlMs, 'ttlMs')
  if (r.kind === 'mutable') {
    fixed(r.publicKey, PUBLIC_KEY_BYTES, 'publicKey')
    fixed(r.signature, SIGNATURE_BYTES, 'signature')
    if (r.salt.byteLength > MAX_SALT_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `salt longer than ${MAX_SALT_BYTES} bytes`)
    u64ok(r.seq, 'seq')
  } else if (r.kind === 'value') {
    fixed(r.writer, PUBLIC_KEY_BYTES, 'writer')
    fixed(r.signature, SIGNATURE_BYTES, 'signature')
    if (r.id.byteLength < 1 || r.id.byteLength > MAX_VALUE_ID_BYTES) throw new OhtError('OHT_BAD_ARGUMENT', `value id must be 1 to ${MAX_VALUE_ID_BYTES} bytes`)
    u64ok(r.seq, 'seq')
  }
}

export function encodeRequest (req: OhtRequest, kinds: RecordKinds = DEFAULT_KINDS): Uint8Array {
  const addrs = addrsBlock(req.addrs)
  let size = 2 + addrs.byteLength
  let code = 0
  switch (req.type) {
    case 'ping': break
    case 'find-node': fixed(req.target, KEY_BYTES, 'target'); size += KEY_BYTES; break
    case 'get': fixed(req.key, KEY_BYTES, 'key'); size += KEY_BYTES + 1 + (req.values !== undefined ? 5 : 0); break
    case 'put':
      fixed(req.token, TOKEN_BYTES, 'token'); fixed(req.key, KEY_BYTES, 'key'); u64ok(req.remainingMs, 'remainingMs')
      if (req.cas !== undefined) u64ok(req.cas, 'cas')
      checkRecord(req.record)
      code = kindCode(req.record, kinds)
      size += TOKEN_BYTES + KEY_BYTES + 8 + 1 + (req.cas !== undefined ? 8 : 0) + recordSize(req.record)
      break
    case 'put-many':
      fixed(req.token, TOKEN_BYTES, 'token'); fixed(req.key, KEY_BYTES, 'key')
      if (req.items.length < 1 || req.items.length > MAX_PUT_MANY) throw new OhtError('OHT_BAD_ARGUMENT', `a PUT_MANY carries 1 to ${MAX_PUT_MANY} values, got ${req.items.length}`)
      size += TOKEN_BYTES + KEY_BYTES + 1 + 2
      for (const it of req.items) {
        u64ok(it.remainingMs, 'remainingMs'); checkRecord(it.record)
        if (kindCode(it.record, kinds) !== req.kind) throw new OhtError('OHT_BAD_ARGUMENT', 'every value of a PUT_MANY is of its kind')
        size += 8 + recordSize(it.record)
      }
      break
    case 'watch':
      fixed(req.key, KEY_BYTES, 'key')
      if (!Number.isInteger(req.leaseMs) || req.leaseMs < 0 || req.leaseMs > 0xffffffff) throw new OhtError('OHT_BAD_ARGUMENT', 'leaseMs must fit 32 bits')
      size += KEY_BYTES + 1 + 4 + 1
      break
    case 'notify':
      fixed(req.key, KEY_BYTES, 'key'); checkRecord(req.record)
      code = kindCode(req.record, kinds)
      size += KEY_BYTES + recordSize(req.record)
      break
  }
  const w = new Writer(size)
  w.u8(WIRE_VERSION)
  switch (req.type) {
    case 'ping': w.u8(MSG.PING); w.bytes(addrs); break
    case 'find-node': w.u8(MSG.FIND_NODE); w.bytes(addrs); w.bytes(req.target); break
    case 'get':
      w.u8(MSG.GET); w.bytes(addrs); w.bytes(req.key); w.u8((req.metadataOnly ? 1 : 0) | (req.values !== undefined ? 2 : 0))
      if (req.values !== undefined) { w.u8(req.values.kind); w.u32(req.values.cursor) }
      break
    case 'put':
      w.u8(MSG.PUT); w.bytes(addrs); w.bytes(req.token); w.bytes(req.key); w.u64(req.remainingMs)
      w.u8(req.cas !== undefined ? 1 : 0)
      if (req.cas !== undefined) w.u64(req.cas)
      writeRecord(w, req.record, code)
      break
    case 'put-many':
      w.u8(MSG.PUT_MANY); w.bytes(addrs); w.bytes(req.token); w.bytes(req.key); w.u8(req.kind); w.u16(req.items.length)
      for (const it of req.items) { w.u64(it.remainingMs); writeRecord(w, it.record, req.kind) }
      break
    case 'watch':
      w.u8(MSG.WATCH); w.bytes(addrs); w.bytes(req.key); w.u8(req.kind); w.u32(req.leaseMs); w.u8(req.cancel ? 1 : 0)
      break
    case 'notify':
      w.u8(MSG.NOTIFY); w.bytes(addrs); w.bytes(req.key); writeRecord(w, req.record, code)
      break
  }
  return w.done()
}

/**
 * A contact's wire form after its id (public key, then address block), built once per contact
 * object: a node answers with the same routing-table contacts again and again, and the table
 * replaces a contact object (never mutates it) when its addresses change. Weak, like addrBlocks.
 */
const contactBlocks = new WeakMap<PeerContact, Uint8Array>()
/**
 * Blocks of single-address contacts by their address, shared by every contact object of the
 * same key and address: each routing table keeps its own contact objects, and one block per
 * table entry was a twentieth of what outlived the young generation. A hit must carry the
 * same key (the block starts with it). Bounded; cleared when full.
 */
const sharedContactBlocks = new Map<string, Uint8Array>()
const SHARED_CONTACT_BLOCKS_MAX = 65_536

function startsWith (block: Uint8Array, key: Uint8Array): boolean {
  if (key.byteLength !== PUBLIC_KEY_BYTES) return false
  for (let i = 0; i < PUBLIC_KEY_BYTES; i++) if (block[i] !== key[i]) return false
  return true
}

function contactBlock (c: PeerContact): Uint8Array {
  let block = contactBlocks.get(c)
  if (block !== undefined) return block
  block = buildContactBlock(c)
  contactBlocks.set(c, block)
  return block
}

/** A contact's block from the shared cache by address, or built (and shared) now. */
function buildContactBlock (c: PeerContact): Uint8Array {
  const single = c.addrs.length === 1 ? c.addrs[0] : undefined
  const shared = single !== undefined ? sharedContactBlocks.get(single) : undefined
  if (shared !== undefined && startsWith(shared, c.publicKey)) return shared
  const addrs = addrsBlock(c.addrs)
  const w = new Writer(PUBLIC_KEY_BYTES + addrs.byteLength, false)
  w.bytes(fixed(c.publicKey, PUBLIC_KEY_BYTES, 'publicKey')); w.bytes(addrs)
  const block = w.done()
  if (single !== undefined) {
    if (sharedContactBlocks.size >= SHARED_CONTACT_BLOCKS_MAX) sharedContactBlocks.clear()
    sharedContactBlocks.set(single, block)
  }
  return block
}

/**
 * The wire form of a contact after its id (public key, then its address block). Holders that
 * answer with the same contact again and again keep it (routing-table entries do) and hand it
 * to the encoder as `WireContact.block`.
 */
export function contactWireBlock (c: PeerContact): Uint8Array {
  return buildContactBlock(c)
}

/** Wire size of a contact list and each contact's block (checked), for writeContacts. */
function contactBlocksOf (contacts: readonly WireContact[]): { size: number, blocks: Uint8Array[] } {
  if (contacts.length > MAX_CONTACTS) throw new OhtError('OHT_BAD_ARGUMENT', `at most ${MAX_CONTACTS} contacts per response`)
  const blocks: Uint8Array[] = new Array(contacts.length)
  let size = 1
  for (let i = 0; i < contacts.length; i++) {
    const w = contacts[i]
    const block = w.block ?? contactBlock(w.contact)
    blocks[i] = block
    size += fixed(w.id, KEY_BYTES, 'node id').byteLength + block.byteLength
  }
  return { size, blocks }
}

function writeContacts (w: Writer, contacts: readonly WireContact[], blocks: Uint8Array[]): void {
  w.u8(contacts.length)
  for (let i = 0; i < contacts.length; i++) { w.bytes(contacts[i].id); w.bytes(blocks[i]) }
}

export function encodeResponse (res: OhtResponse, kinds: RecordKinds = DEFAULT_KINDS): Uint8Array {
  switch (res.type) {
    case 'pong': return Uint8Array.of(WIRE_VERSION, MSG.PONG)
    case 'nodes': {
      const c = contactBlocksOf(res.contacts)
      const w = new Writer(3 + (res.token !== undefined ? TOKEN_BYTES : 0) + c.size)
      w.u8(WIRE_VERSION); w.u8(MSG.NODES); w.u8(res.token !== undefined ? 1 : 0)
      if (res.token !== undefined) w.bytes(fixed(res.token, TOKEN_BYTES, 'token'))
      writeContacts(w, res.contacts, c.blocks)
      return w.done()
    }
    case 'value': {
      const c = contactBlocksOf(res.contacts)
      if (res.seq !== undefined) u64ok(res.seq, 'seq')
      let code = 0
      if (res.record !== undefined) { checkRecord(res.record); code = kindCode(res.record, kinds) }
      const size = 2 + TOKEN_BYTES + c.size + 1 + (res.seq !== undefined ? 8 : 0) + (res.record !== undefined ? recordSize(res.record) : 0)
      const w = new Writer(size)
      w.u8(WIRE_VERSION); w.u8(MSG.VALUE); w.bytes(fixed(res.token, TOKEN_BYTES, 'token')); writeContacts(w, res.contacts, c.blocks)
      w.u8((res.seq !== undefined ? 1 : 0) | (res.record !== undefined ? 2 : 0))
      if (res.seq !== undefined) w.u64(res.seq)
      if (res.record !== undefined) writeRecord(w, res.record, code)
      return w.done()
    }
    case 'values': {
      const c = contactBlocksOf(res.contacts)
      if (res.records.length > 0xffff) throw new OhtError('OHT_BAD_ARGUMENT', 'too many values in one page')
      let size = 2 + TOKEN_BYTES + c.size + 1 + 4 + 4 + DIGEST_BYTES + 2
      for (const r of res.records) {
        checkRecord(r)
        if (kindCode(r, kinds) !== res.kind) throw new OhtError('OHT_BAD_ARGUMENT', 'every value of a VALUES page is of its kind')
        size += recordSize(r)
      }
      const w = new Writer(size)
      w.u8(WIRE_VERSION); w.u8(MSG.VALUES); w.bytes(fixed(res.token, TOKEN_BYTES, 'token')); writeContacts(w, res.contacts, c.blocks)
      w.u8(res.kind); w.u32(res.total); w.u32(res.next); w.bytes(fixed(res.digest, DIGEST_BYTES, 'digest')); w.u16(res.records.length)
      for (const r of res.records) writeRecord(w, r, res.kind)
      return w.done()
    }
    case 'stored': {
      u64ok(res.grantedMs, 'grantedMs')
      const w = new Writer(10)
      w.u8(WIRE_VERSION); w.u8(MSG.STORED); w.u64(res.grantedMs)
      return w.done()
    }
    case 'stored-many': {
      if (res.results.length > MAX_PUT_MANY) throw new OhtError('OHT_BAD_ARGUMENT', `at most ${MAX_PUT_MANY} results`)
      let size = 4
      for (const r of res.results) size += 'grantedMs' in r ? 9 : 3
      const w = new Writer(size)
      w.u8(WIRE_VERSION); w.u8(MSG.STORED_MANY); w.u16(res.results.length)
      for (const r of res.results) {
        if ('grantedMs' in r) { u64ok(r.grantedMs, 'grantedMs'); w.u8(0); w.u64(r.grantedMs) } else { w.u8(1); w.u16(wireErrorNumber(r.code)) }
      }
      return w.done()
    }
    case 'watching': {
      const w = new Writer(6)
      w.u8(WIRE_VERSION); w.u8(MSG.WATCHING); w.u32(Math.max(0, Math.min(0xffffffff, Math.floor(res.grantedMs))))
      return w.done()
    }
    case 'error': {
      let msg = enc.encode(res.message)
      if (msg.byteLength > MAX_ERROR_MESSAGE_BYTES) msg = enc.encode(res.message.slice(0, MAX_ERROR_MESSAGE_BYTES / 4))
      const w = new Writer(2 + 4 + msg.byteLength)
      w.u8(WIRE_VERSION); w.u8(MSG.ERROR); w.u16(wireErrorNumber(res.code)); w.u16(msg.byteLength); w.bytes(msg)
      return w.done()
    }
  }
}

// ---------------------------------------------------------------- reading

class Reader {
  off = 0
  constructor (readonly buf: Uint8Array) {}

  need (n: number, what: string): void {
    if (this.buf.byteLength - this.off < n) throw bad(`truncated frame: ${what} needs ${n} bytes, ${this.buf.byteLength - this.off} left`)
  }

  u8 (what: string): number { this.need(1, what); return this.buf[this.off++] }
  u16 (what: string): number { this.need(2, what); const b = this.buf; const v = (b[this.off] << 8) | b[this.off + 1]; this.off += 2; return v }
  u32 (what: string): number {
    this.need(4, what)
    const b = this.buf; const o = this.off
    this.off += 4
    return ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3])
  }

  u64 (what: string): number {
    const hi = this.u32(what); const lo = this.u32(what)
    if (hi >= 2 ** 21) throw bad(`${what} exceeds 2^53 - 1`)
    return hi * 2 ** 32 + lo
  }

  skip (n: number, what: string): void { this.need(n, what); this.off += n }
  /** A view into the frame: decoding allocates no copies; whoever keeps bytes copies them. */
  view_ (n: number, what: string): Uint8Array { this.need(n, what); const b = this.buf.subarray(this.off, this.off + n); this.off += n; return b }
  end (): void { if (this.off !== this.buf.byteLength) throw bad(`${this.buf.byteLength - this.off} trailing bytes after frame`) }
}

function readAddrs (r: Reader): string[] {
  const n = r.u8('address count')
  if (n > MAX_ADDRS) throw bad(`too many addresses: ${n} > ${MAX_ADDRS}`)
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const len = r.u16('address length')
    if (len > MAX_ADDR_BYTES) throw bad(`address too long: ${len} > ${MAX_ADDR_BYTES}`)
    const b = r.view_(len, 'address')
    try { out.push(dec.decode(b)) } catch (err) { throw bad('address is not valid UTF-8', err) }
  }
  return out
}

/**
 * A decoded contact whose public key and address strings are only built when read: a lookup
 * sees ~20 contacts per answer and most are peers it already knows (it needs just the id).
 * Everything was validated at decode time, so reading can no longer fail.
 */
class LazyContact implements WireContact {
  private built?: PeerContact
  private idView?: Uint8Array
  /** `at`: where the public key starts in `frame` (the id is the 32 bytes before it). */
  constructor (readonly frame: Uint8Array, readonly at: number) {}

  /** A view into the frame, made on first read: lookups compare most ids in place (wireIdBytes). */
  get id (): Uint8Array { return this.idView ??= this.frame.subarray(this.at - KEY_BYTES, this.at) }

  get contact (): PeerContact {
    if (this.built !== undefined) return this.built
    const r = new Reader(this.frame)
    r.off = this.at
    const publicKey = r.view_(PUBLIC_KEY_BYTES, 'contact key')
    const n = r.u8('address count')
    const addrs: string[] = []
    for (let i = 0; i < n; i++) {
      const b = r.view_(r.u16('address length'), 'address')
      addrs.push(dec.decode(b)) // validated at decode time: cannot throw
    }
    this.built = { publicKey, addrs }
    return this.built
  }

  /** The public key alone (a view into the frame; the addresses stay undecoded). */
  get publicKey (): Uint8Array { return this.built?.publicKey ?? this.frame.subarray(this.at, this.at + PUBLIC_KEY_BYTES) }

  /** How many dial addresses the contact carries (0: a client, not routable). */
  get addrCount (): number { return this.built?.addrs.length ?? this.frame[this.at + PUBLIC_KEY_BYTES] }

  toJSON (): WireContact { return { id: this.id, contact: this.contact } }
}

/**
 * Private copies of received contacts for holders that outlive the answer that carried them
 * (a lookup's candidates). A received contact is a view into its frame, and frames are carved
 * from shared 64 KiB slabs (allocFrame): one candidate kept for a minute kept its whole slab
 * alive past two young-generation collections, so nearly every slab was promoted and the
 * promoted slabs' external memory started a full mark-compact every few seconds at 10,000
 * simulated nodes. An arena copies each kept contact (id, key, addresses: a few dozen bytes)
 * into chunks of its own, which live and die with their holder.
 */
export class ContactArena {
  private chunk = new Uint8Array(0)
  private used = 0
  constructor (private readonly chunkBytes = 4096) {}

  /** `w` itself unless it lies in a received frame; otherwise the same contact over a copy of its bytes. */
  detach (w: WireContact): WireContact {
    if (!(w instanceof LazyContact)) return w
    const src = w.frame
    const from = w.at - KEY_BYTES
    let end = w.at + PUBLIC_KEY_BYTES
    const count = src[end++]
    for (let i = 0; i < count; i++) end += 2 + ((src[end] << 8) | src[end + 1]) // validated when decoded
    const n = end - from
    if (this.used + n > this.chunk.byteLength) {
      this.chunk = new Uint8Array(Math.max(this.chunkBytes, n))
      this.used = 0
    }
    const dst = this.chunk
    const off = this.used
    for (let i = 0; i < n; i++) dst[off + i] = src[from + i]
    this.used += n
    return new LazyContact(dst, off + KEY_BYTES)
  }
}

/** Where a wire contact's public key sits (bytes, offset, length): read in place, never a view. */
function keyBytes (w: WireContact): Uint8Array { return w instanceof LazyContact ? w.frame : w.contact.publicKey }
function keyOffset (w: WireContact): number { return w instanceof LazyContact ? w.at : 0 }
function keyLength (w: WireContact): number { return w instanceof LazyContact ? PUBLIC_KEY_BYTES : w.contact.publicKey.byteLength }

/** True if two wire contacts carry the same public key (compared in place: no views, no decoding). */
export function samePublicKey (a: WireContact, b: WireContact): boolean {
  const n = keyLength(a)
  if (n !== keyLength(b)) return false
  const ab = keyBytes(a); const ao = keyOffset(a)
  const bb = keyBytes(b); const bo = keyOffset(b)
  for (let i = 0; i < n; i++) if (ab[ao + i] !== bb[bo + i]) return false
  return true
}

/**
 * Where a wire contact's id sits, for reading it in place: the bytes (`wireIdBytes`) and the
 * offset in them (`wireIdOffset`). A received contact's id is then never made into a view.
 */
export function wireIdBytes (w: WireContact): Uint8Array { return w instanceof LazyContact ? w.frame : w.id }
export function wireIdOffset (w: WireContact): number { return w instanceof LazyContact ? w.at - KEY_BYTES : 0 }

/** A wire contact's public key, without decoding a received contact's addresses. */
export function wirePublicKey (w: WireContact): Uint8Array {
  return w instanceof LazyContact ? w.publicKey : w.contact.publicKey
}

/** True if a wire contact carries dial addresses, without decoding a received contact's addresses. */
export function wireRoutable (w: WireContact): boolean {
  return w instanceof LazyContact ? w.addrCount > 0 : w.contact.addrs.length > 0
}

/** True if every byte in buf[from, to) is below 0x80 (checked in place: no view per contact). */
function asciiBetween (buf: Uint8Array, from: number, to: number): boolean {
  let or = 0
  for (let i = from; i < to; i++) or |= buf[i]
  return or < 0x80
}

function readContacts (r: Reader): WireContact[] {
  const n = r.u8('contact count')
  if (n > MAX_CONTACTS) throw bad(`too many contacts: ${n} > ${MAX_CONTACTS}`)
  const out: WireContact[] = []
  for (let i = 0; i < n; i++) {
    r.skip(KEY_BYTES, 'contact id')
    const at = r.off
    r.skip(PUBLIC_KEY_BYTES, 'contact key')
    // Validate the addresses now (lengths, UTF-8) without building strings: one ASCII check
    // over the whole address block (its length bytes are ASCII too while under 128).
    const count = r.u8('address count')
    if (count > MAX_ADDRS) throw bad(`too many addresses: ${count} > ${MAX_ADDRS}`)
    const block = r.off
    for (let j = 0; j < count; j++) {
      const len = r.u16('address length')
      if (len > MAX_ADDR_BYTES) throw bad(`address too long: ${len} > ${MAX_ADDR_BYTES}`)
      r.skip(len, 'address')
    }
    if (!asciiBetween(r.buf, block, r.off)) {
      // Long or non-ASCII addresses: check the UTF-8 properly so reading later cannot throw.
      const save = r.off
      r.off = at + PUBLIC_KEY_BYTES
      readAddrs(r)
      r.off = save
    }
    out.push(new LazyContact(r.buf, at))
  }
  return out
}

function readValueLength (r: Reader, maxValueBytes: number): number {
  const len = r.u32('value length')
  if (len > maxValueBytes) throw new OhtError('OHT_VALUE_TOO_LARGE', `value is ${len} bytes; at most ${maxValueBytes} are accepted`)
  return len
}

/** Reads one record; `key` is the frame's key (a value record's own key). */
function readRecord (r: Reader, maxValueBytes: number, kinds: RecordKinds, key: Uint8Array | undefined): OhtRecord {
  const code = r.u8('record kind')
  if (code === 0) {
    const ttlMs = r.u64('ttl')
    const len = readValueLength(r, maxValueBytes)
    return { kind: 'immutable', ttlMs, value: r.view_(len, 'value') }
  }
  if (code === 1) {
    const publicKey = r.view_(PUBLIC_KEY_BYTES, 'public key')
    const saltLen = r.u8('salt length')
    if (saltLen > MAX_SALT_BYTES) throw bad(`salt too long: ${saltLen} > ${MAX_SALT_BYTES}`)
    const salt = r.view_(saltLen, 'salt')
    const seq = r.u64('seq')
    const ttlMs = r.u64('ttl')
    const len = readValueLength(r, maxValueBytes)
    const value = r.view_(len, 'value')
    const signature = r.view_(SIGNATURE_BYTES, 'signature')
    return { kind: 'mutable', publicKey, salt, seq, ttlMs, value, signature }
  }
  const kind = kinds.byCode(code)
  if (kind === undefined || kind.shape !== 'value') throw new OhtError('OHT_UNKNOWN_KIND', `record kind ${code} is not known here`)
  if (key === undefined) throw bad(`a ${kind.name} value needs the key of its frame`)
  const writer = r.view_(PUBLIC_KEY_BYTES, 'writer')
  const idLen = r.u8('value id length')
  if (idLen < 1 || idLen > MAX_VALUE_ID_BYTES) throw bad(`value id length ${idLen} is outside 1..${MAX_VALUE_ID_BYTES}`)
  const id = r.view_(idLen, 'value id')
  const seq = r.u64('seq')
  const ttlMs = r.u64('ttl')
  const flags = r.u8('value flags')
  if ((flags & ~1) !== 0) throw bad(`unknown value flags ${flags}`)
  const deleted = (flags & 1) !== 0
  const len = readValueLength(r, Math.min(maxValueBytes, kind.policy.maxValueBytes))
  if (deleted && len !== 0) throw bad('a deleted value carries bytes')
  const value = r.view_(len, 'value')
  const signature = r.view_(SIGNATURE_BYTES, 'signature')
  return { kind: 'value', namespace: kind.name, key, writer, id, seq, ttlMs, deleted, value, signature }
}

/** Reads the kind byte of a multi-value message: it must name a value kind known here. */
function readValueKind (r: Reader, kinds: RecordKinds): number {
  const code = r.u8('kind')
  const kind = kinds.byCode(code)
  if (kind === undefined || kind.shape !== 'value') throw new OhtError('OHT_UNKNOWN_KIND', `kind ${code} is not a value kind known here`)
  return code
}

function readValueRecord (r: Reader, maxValueBytes: number, kinds: RecordKinds, key: Uint8Array, code: number): ValueRecord {
  if (r.buf[r.off] !== code) throw bad(`a value of kind ${r.buf[r.off]} in a frame of kind ${code}`)
  return readRecord(r, maxValueBytes, kinds, key) as ValueRecord
}

function header (frame: Uint8Array, limits: CodecLimits): { r: Reader, type: number, maxValueBytes: number, kinds: RecordKinds } {
  const maxValueBytes = limits.maxValueBytes ?? 65_536
  const kinds = limits.kinds ?? DEFAULT_KINDS
  if (!(frame instanceof Uint8Array)) throw bad('frame is not a byte array')
  if (frame.byteLength > maxValueBytes + FRAME_OVERHEAD_BYTES) throw bad(`frame of ${frame.byteLength} bytes is over the ${maxValueBytes + FRAME_OVERHEAD_BYTES}-byte limit`)
  const r = new Reader(frame)
  const version = r.u8('version')
  if (version !== WIRE_VERSION) throw bad(`unsupported wire version ${version} (this node speaks ${WIRE_VERSION})`)
  return { r, type: r.u8('type'), maxValueBytes, kinds }
}

/** Decodes a request frame. Throws OhtError OHT_BAD_FRAME (or OHT_VALUE_TOO_LARGE). */
export function decodeRequest (frame: Uint8Array, limits: CodecLimits = {}): OhtRequest {
  const { r, type, maxValueBytes, kinds } = header(frame, limits)
  let out: OhtRequest
  switch (type) {
    case MSG.PING: out = { type: 'ping', addrs: readAddrs(r) }; break
    case MSG.FIND_NODE: out = { type: 'find-node', addrs: readAddrs(r), target: r.view_(KEY_BYTES, 'target') }; break
    case MSG.GET: {
      const addrs = readAddrs(r)
      const key = r.view_(KEY_BYTES, 'key')
      const flags = r.u8('flags')
      if ((flags & ~3) !== 0) throw bad(`unknown GET flags ${flags}`)
      out = { type: 'get', addrs, key, metadataOnly: (flags & 1) !== 0 }
      if ((flags & 2) !== 0) out.values = { kind: readValueKind(r, kinds), cursor: r.u32('cursor') }
      break
    }
    case MSG.PUT: {
      const addrs = readAddrs(r)
      const token = r.view_(TOKEN_BYTES, 'token')
      const key = r.view_(KEY_BYTES, 'key')
      const remainingMs = r.u64('remaining')
      const flags = r.u8('flags')
      if ((flags & ~1) !== 0) throw bad(`unknown PUT flags ${flags}`)
      const cas = (flags & 1) !== 0 ? r.u64('cas') : undefined
      const record = readRecord(r, maxValueBytes, kinds, key)
      out = cas === undefined ? { type: 'put', addrs, token, key, remainingMs, record } : { type: 'put', addrs, token, key, remainingMs, cas, record }
      break
    }
    case MSG.PUT_MANY: {
      const addrs = readAddrs(r)
      const token = r.view_(TOKEN_BYTES, 'token')
      const key = r.view_(KEY_BYTES, 'key')
      const kind = readValueKind(r, kinds)
      const n = r.u16('value count')
      if (n < 1 || n > MAX_PUT_MANY) throw bad(`a PUT_MANY carries 1 to ${MAX_PUT_MANY} values, got ${n}`)
      const items: PutManyItem[] = []
      for (let i = 0; i < n; i++) items.push({ remainingMs: r.u64('remaining'), record: readValueRecord(r, maxValueBytes, kinds, key, kind) })
      out = { type: 'put-many', addrs, token, key, kind, items }
      break
    }
    case MSG.WATCH: {
      const addrs = readAddrs(r)
      const key = r.view_(KEY_BYTES, 'key')
      const kind = r.u8('kind')
      const leaseMs = r.u32('lease')
      const flags = r.u8('flags')
      if ((flags & ~1) !== 0) throw bad(`unknown WATCH flags ${flags}`)
      if (kinds.byCode(kind) === undefined) throw new OhtError('OHT_UNKNOWN_KIND', `kind ${kind} is not known here`)
      out = { type: 'watch', addrs, key, kind, leaseMs, cancel: (flags & 1) !== 0 }
      break
    }
    case MSG.NOTIFY: {
      const addrs = readAddrs(r)
      const key = r.view_(KEY_BYTES, 'key')
      out = { type: 'notify', addrs, key, record: readRecord(r, maxValueBytes, kinds, key) }
      break
    }
    default: throw bad(`unknown request type 0x${type.toString(16)}`)
  }
  r.end()
  return out
}

/** Decodes a response frame. Throws OhtError OHT_BAD_FRAME (or OHT_VALUE_TOO_LARGE). */
export function decodeResponse (frame: Uint8Array, limits: CodecLimits = {}, key?: Uint8Array): OhtResponse {
  const { r, type, maxValueBytes, kinds } = header(frame, limits)
  let out: OhtResponse
  switch (type) {
    case MSG.PONG: out = { type: 'pong' }; break
    case MSG.NODES: {
      const flags = r.u8('flags')
      if ((flags & ~1) !== 0) throw bad(`unknown NODES flags ${flags}`)
      out = (flags & 1) !== 0 ? { type: 'nodes', token: r.view_(TOKEN_BYTES, 'token'), contacts: readContacts(r) } : { type: 'nodes', contacts: readContacts(r) }
      break
    }
    case MSG.VALUE: {
      const token = r.view_(TOKEN_BYTES, 'token')
      const contacts = readContacts(r)
      const flags = r.u8('flags')
      if ((flags & ~3) !== 0) throw bad(`unknown VALUE flags ${flags}`)
      const v: { type: 'value', token: Uint8Array, contacts: WireContact[], seq?: number, record?: OhtRecord } = { type: 'value', token, contacts }
      if ((flags & 1) !== 0) v.seq = r.u64('seq')
      if ((flags & 2) !== 0) v.record = readRecord(r, maxValueBytes, kinds, key)
      out = v
      break
    }
    case MSG.STORED: out = { type: 'stored', grantedMs: r.u64('granted') }; break
    case MSG.VALUES: {
      // A page's values are under the key the request asked for: the caller names it.
      if (key === undefined) throw bad('a VALUES frame answers a GET whose key the decoder was not given')
      const token = r.view_(TOKEN_BYTES, 'token')
      const contacts = readContacts(r)
      const kind = readValueKind(r, kinds)
      const total = r.u32('total')
      const next = r.u32('next')
      const digest = r.view_(DIGEST_BYTES, 'digest')
      const n = r.u16('value count')
      const records: ValueRecord[] = []
      for (let i = 0; i < n; i++) records.push(readValueRecord(r, maxValueBytes, kinds, key, kind))
      out = { type: 'values', token, contacts, kind, total, next, digest, records }
      break
    }
    case MSG.STORED_MANY: {
      const n = r.u16('result count')
      if (n > MAX_PUT_MANY) throw bad(`too many results: ${n} > ${MAX_PUT_MANY}`)
      const results: PutManyResult[] = []
      for (let i = 0; i < n; i++) {
        const status = r.u8('status')
        if (status === 0) results.push({ grantedMs: r.u64('granted') })
        else if (status === 1) results.push({ code: wireErrorCode(r.u16('error code')) })
        else throw bad(`unknown STORED_MANY status ${status}`)
      }
      out = { type: 'stored-many', results }
      break
    }
    case MSG.WATCHING: out = { type: 'watching', grantedMs: r.u32('granted') }; break
    case MSG.ERROR: {
      const code = wireErrorCode(r.u16('error code'))
      const len = r.u16('message length')
      if (len > MAX_ERROR_MESSAGE_BYTES) throw bad(`error message too long: ${len}`)
      let message: string
      try { message = dec.decode(r.view_(len, 'message')) } catch (err) { throw bad('error message is not valid UTF-8', err) }
      out = { type: 'error', code, message }
      break
    }
    default: throw bad(`unknown response type 0x${type.toString(16)}`)
  }
  r.end()
  return out
}

// ---------------------------------------------------------------- records at rest

/**
 * A record in its wire form behind `prefixBytes` bytes left for the caller (the store puts the
 * key there), in memory of its own (not a frame slab): one array instead of one per field.
 */
export function encodeRecordAt (record: OhtRecord, kinds: RecordKinds, prefixBytes: number): Uint8Array {
  checkRecord(record)
  const w = new Writer(prefixBytes + recordSize(record), false)
  w.off = prefixBytes
  writeRecord(w, record, kindCode(record, kinds))
  return w.done()
}

/** The record encodeRecordAt wrote at `offset` of `bytes`; its fields are views into `bytes`. */
export function decodeRecordAt (bytes: Uint8Array, offset: number, kinds: RecordKinds, key: Uint8Array | undefined): OhtRecord {
  const r = new Reader(bytes)
  r.off = offset
  const rec = readRecord(r, Number.MAX_SAFE_INTEGER, kinds, key)
  r.end()
  return rec
}

/** Wire size of a record (its kind byte included). */
export function recordWireSize (record: OhtRecord): number { return recordSize(record) }
