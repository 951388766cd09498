/**
 * Relay descriptors: what a node that takes scrambled packets publishes about itself, as a
 * signed mutable OHT record of its own Ed25519 identity (key = SHA-256(identity |
 * "scramble/relay/v1"), signed by the identity through src/oht's signMutable). Relays (nodes
 * that opted in to forwarding for others) set `relay`; endpoints that only receive publish the
 * same record with `relay` off, so a sender can find the recipient's key from its identity.
 *
 * Record value, version 1 (integers big-endian):
 *
 *   0     1   version = 1
 *   1     1   flags: bit 0 = relay (forwards for others); other bits zero
 *   2     4   capacity: packets per second the node takes in all
 *   6     4   epoch length (ms)
 *   10    8   valid from (ms since the Unix epoch)
 *   18    8   valid until (ms)
 *   26    1   key count n (1..3)
 *   27    36n keys, epochs strictly increasing: epoch (u32) | X25519 public key (32)
 *   ..    1   tor-client hint length h (0..32) | hint (h): equal for nodes behind one tor client
 *   ..    1   address count a (0..8) | a × ( length (u16, 1..256) | address, UTF-8 )
 *
 * Nothing may follow. The identity is the record's signer and is not repeated.
 */
import { bytesEqual } from '../core/index.ts'
import { createSignatureVerifier, mutableKey, signMutable, validateRecord, type MutableRecord, type SignatureVerifier } from '../oht/index.ts'
import { ScrambleError } from './errors.ts'

export const DESCRIPTOR_VERSION = 1
export const RELAY_SALT = new TextEncoder().encode('scramble/relay/v1')
export const MAX_DESCRIPTOR_KEYS = 3
export const MAX_TOR_HINT_BYTES = 32
export const MAX_ADDRS = 8
export const MAX_ADDR_BYTES = 256
export const MAX_DESCRIPTOR_BYTES = 27 + 36 * MAX_DESCRIPTOR_KEYS + 1 + MAX_TOR_HINT_BYTES + 1 + MAX_ADDRS * (2 + MAX_ADDR_BYTES)
const MAX_EPOCH_MS = 7 * 24 * 3_600_000
const FLAG_RELAY = 1

export interface RelayKey { epoch: number, publicKey: Uint8Array }

export interface RelayDescriptor {
  /** The node's Ed25519 identity: signer of the record, its id on paths. */
  identity: Uint8Array
  /** True when the node forwards packets for others. */
  relay: boolean
  /** Packets per second the node takes in all. */
  capacity: number
  epochMs: number
  validFrom: number
  validUntil: number
  /** X25519 keys by epoch (current and next, typically). */
  keys: RelayKey[]
  /** Opaque hint shared by nodes behind one tor client (empty when unknown). */
  torClient: Uint8Array
  /** How to reach the node (multiaddrs, or simulator addresses). */
  addrs: string[]
  /** The record's seq (absent on a descriptor not yet signed). */
  seq?: number
}

function bad (message: string, cause?: unknown): ScrambleError {
  return new ScrambleError('SCRAMBLE_BAD_DESCRIPTOR', `relay descriptor rejected: ${message}`, cause === undefined ? undefined : { cause })
}

function checkFields (d: Omit<RelayDescriptor, 'identity' | 'seq'>): void {
  const u32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff
  if (!u32(d.capacity)) throw bad(`capacity ${d.capacity} is not a u32`)
  if (!Number.isInteger(d.epochMs) || d.epochMs < 1000 || d.epochMs > MAX_EPOCH_MS) throw bad(`epoch length ${d.epochMs} ms is not in 1 s..7 days`)
  if (!Number.isSafeInteger(d.validFrom) || !Number.isSafeInteger(d.validUntil) || d.validFrom < 0 || d.validUntil <= d.validFrom) throw bad('validity window is empty or out of range')
  if (!Array.isArray(d.keys) || d.keys.length < 1 || d.keys.length > MAX_DESCRIPTOR_KEYS) throw bad(`${Array.isArray(d.keys) ? d.keys.length : 0} keys; 1 to ${MAX_DESCRIPTOR_KEYS} are allowed`)
  for (let i = 0; i < d.keys.length; i++) {
    const k = d.keys[i]
    if (!u32(k.epoch) || k.publicKey?.byteLength !== 32) throw bad('a key needs a u32 epoch and 32 bytes')
    if (i > 0 && k.epoch <= d.keys[i - 1].epoch) throw bad('key epochs must increase')
  }
  if (!(d.torClient instanceof Uint8Array) || d.torClient.byteLength > MAX_TOR_HINT_BYTES) throw bad(`tor-client hint over ${MAX_TOR_HINT_BYTES} bytes`)
  if (!Array.isArray(d.addrs) || d.addrs.length > MAX_ADDRS) throw bad(`more than ${MAX_ADDRS} addresses`)
  for (const a of d.addrs) {
    const n = typeof a === 'string' ? Buffer.byteLength(a) : 0
    if (n < 1 || n > MAX_ADDR_BYTES) throw bad(`an address must have 1 to ${MAX_ADDR_BYTES} bytes`)
  }
}

/** The record value of a descriptor (see the layout above). */
export function encodeDescriptorValue (d: Omit<RelayDescriptor, 'identity' | 'seq'>): Uint8Array {
  checkFields(d)
  const addrs = d.addrs.map(a => new TextEncoder().encode(a))
  const size = 27 + 36 * d.keys.length + 1 + d.torClient.byteLength + 1 + addrs.reduce((n, a) => n + 2 + a.byteLength, 0)
  const out = new Uint8Array(size)
  const v = new DataView(out.buffer)
  out[0] = DESCRIPTOR_VERSION
  out[1] = d.relay ? FLAG_RELAY : 0
  v.setUint32(2, d.capacity)
  v.setUint32(6, d.epochMs)
  v.setBigUint64(10, BigInt(d.validFrom))
  v.setBigUint64(18, BigInt(d.validUntil))
  out[26] = d.keys.length
  let off = 27
  for (const k of d.keys) { v.setUint32(off, k.epoch); out.set(k.publicKey, off + 4); off += 36 }
  out[off++] = d.torClient.byteLength
  out.set(d.torClient, off); off += d.torClient.byteLength
  out[off++] = addrs.length
  for (const a of addrs) { v.setUint16(off, a.byteLength); out.set(a, off + 2); off += 2 + a.byteLength }
  return out
}

/** Strict decoder of a record value; throws SCRAMBLE_BAD_DESCRIPTOR. */
export function decodeDescriptorValue (identity: Uint8Array, bytes: Uint8Array): RelayDescriptor {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 29 || bytes.byteLength > MAX_DESCRIPTOR_BYTES) throw bad(`${bytes?.byteLength} bytes is not a descriptor's size`)
  if (bytes[0] !== DESCRIPTOR_VERSION) throw bad(`unknown version ${bytes[0]}`)
  if ((bytes[1] & ~FLAG_RELAY) !== 0) throw bad(`unknown flags ${bytes[1]}`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const need = (off: number, n: number): void => { if (off + n > bytes.byteLength) throw bad('truncated') }
  const validFrom = v.getBigUint64(10)
  const validUntil = v.getBigUint64(18)
  if (validFrom > BigInt(Number.MAX_SAFE_INTEGER) || validUntil > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('validity window out of range')
  const n = bytes[26]
  if (n < 1 || n > MAX_DESCRIPTOR_KEYS) throw bad(`${n} keys`)
  let off = 27
  need(off, 36 * n)
  const keys: RelayKey[] = []
  for (let i = 0; i < n; i++) { keys.push({ epoch: v.getUint32(off), publicKey: bytes.slice(off + 4, off + 36) }); off += 36 }
  need(off, 1)
  const h = bytes[off++]
  if (h > MAX_TOR_HINT_BYTES) throw bad('tor-client hint too long')
  need(off, h)
  const torClient = bytes.slice(off, off + h); off += h
  need(off, 1)
  const a = bytes[off++]
  if (a > MAX_ADDRS) throw bad(`${a} addresses`)
  const addrs: string[] = []
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  for (let i = 0; i < a; i++) {
    need(off, 2)
    const len = v.getUint16(off); off += 2
    if (len < 1 || len > MAX_ADDR_BYTES) throw bad('address length out of range')
    need(off, len)
    try { addrs.push(utf8.decode(bytes.subarray(off, off + len))) } catch (err) { throw bad('address is not UTF-8', err) }
    off += len
  }
  if (off !== bytes.byteLength) throw bad(`${bytes.byteLength - off} trailing bytes`)
  const d: RelayDescriptor = {
    identity: identity.slice(), relay: (bytes[1] & FLAG_RELAY) !== 0, capacity: v.getUint32(2), epochMs: v.getUint32(6),
    validFrom: Number(validFrom), validUntil: Number(validUntil), keys, torClient, addrs
  }
  checkFields(d)
  return d
}

export interface DescriptorSigner { publicKey: Uint8Array, sign(message: Uint8Array): Uint8Array }

/**
 * Signs a descriptor as the mutable OHT record of `signer`. `seq` must rise with every new
 * descriptor (the node uses validFrom, in ms). The record's TTL is the time left to validUntil.
 */
export function signRelayDescriptor (signer: DescriptorSigner, d: Omit<RelayDescriptor, 'identity' | 'seq'>, seq: number = d.validFrom): MutableRecord {
  const value = encodeDescriptorValue(d)
  return signMutable(signer, { salt: RELAY_SALT, seq, ttlMs: d.validUntil - d.validFrom, value })
}

const defaultVerifier = createSignatureVerifier({ cacheSize: 0 })

/**
 * Verifies and decodes a descriptor record: mutable, salt "scramble/relay/v1", signature by
 * its key, value well-formed, and (with `identity`) by that identity. Throws
 * SCRAMBLE_BAD_DESCRIPTOR. Validity in time is the caller's check (isDescriptorValid).
 */
export function verifyRelayDescriptor (record: MutableRecord, options: { identity?: Uint8Array, verifier?: SignatureVerifier } = {}): RelayDescriptor {
  if (record?.kind !== 'mutable') throw bad('not a mutable record')
  if (!bytesEqual(record.salt, RELAY_SALT)) throw bad('wrong salt')
  if (options.identity !== undefined && !bytesEqual(record.publicKey, options.identity)) throw bad('signed by another identity than the one asked for')
  try {
    validateRecord(mutableKey(record.publicKey, RELAY_SALT), record, MAX_DESCRIPTOR_BYTES, options.verifier ?? defaultVerifier)
  } catch (err) {
    throw bad('its signature does not verify', err)
  }
  return { ...decodeDescriptorValue(record.publicKey, record.value), seq: record.seq }
}

export function isDescriptorValid (d: RelayDescriptor, now: number): boolean {
  return now >= d.validFrom && now < d.validUntil
}

/** The key a sender uses now: the one of the current epoch, or undefined (stale descriptor). */
export function usableKey (d: RelayDescriptor, now: number): RelayKey | undefined {
  if (!isDescriptorValid(d, now)) return undefined
  const e = Math.floor(now / d.epochMs)
  return d.keys.find(k => k.epoch === e)
}

/**
 * A signed descriptor as bytes, for stores that carry opaque values (the relay list):
 *   version (1) | identity (32) | seq (u64) | ttl ms (u64) | signature (64) | value length (u16) | value
 */
export function encodeSignedDescriptor (record: MutableRecord): Uint8Array {
  const out = new Uint8Array(1 + 32 + 8 + 8 + 64 + 2 + record.value.byteLength)
  const v = new DataView(out.buffer)
  out[0] = DESCRIPTOR_VERSION
  out.set(record.publicKey, 1)
  v.setBigUint64(33, BigInt(record.seq))
  v.setBigUint64(41, BigInt(record.ttlMs))
  out.set(record.signature, 49)
  v.setUint16(113, record.value.byteLength)
  out.set(record.value, 115)
  return out
}

/** Decodes (does not verify) a signed descriptor; throws SCRAMBLE_BAD_DESCRIPTOR. */
export function decodeSignedDescriptor (bytes: Uint8Array): MutableRecord {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 115 || bytes.byteLength > 115 + MAX_DESCRIPTOR_BYTES) throw bad('signed descriptor of a wrong size')
  if (bytes[0] !== DESCRIPTOR_VERSION) throw bad(`unknown signed-descriptor version ${bytes[0]}`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const seq = v.getBigUint64(33)
  const ttl = v.getBigUint64(41)
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || ttl > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('seq or ttl out of range')
  const len = v.getUint16(113)
  if (115 + len !== bytes.byteLength) throw bad('value length does not match')
  return { kind: 'mutable', publicKey: bytes.slice(1, 33), salt: RELAY_SALT, seq: Number(seq), ttlMs: Number(ttl), signature: bytes.slice(49, 113), value: bytes.slice(115) }
}
