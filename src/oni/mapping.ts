/**
 * Signed mapping records: "the onet address A belongs to the onion key K, whose link listens on
 * onion port P". Published in the OHT as a mutable record of K (key = SHA-256(K || salt)), so
 * the record is signed twice by K: by the OHT's mutable-record signature and by the mapping's
 * own signature, which keeps it verifiable whatever store carried it.
 *
 *   version:1 (=1) | publicKey:32 | address:16 | linkPort:2 | issuedAt:8 (ms, BE) |
 *   nameLength:1 | name (0..63, [a-z0-9-]) | signature:64
 *   signature = Ed25519(K, "oni/mapping/v1\0" | every byte before the signature)
 *
 * A mapping is accepted only when its signature verifies under the key it names, its address
 * is the one derived from that key (virtual-address.ts), and, when resolving a given key, it
 * names that key. Anything else is ONI_MAPPING_INVALID.
 */
import type { AbortOptions } from '../core/index.ts'
import { bytesEqual, toHex } from '../core/index.ts'
import { onionAddressFromPublicKey, verifySignature } from '../crypto/index.ts'
import { mutableKey } from '../oht/index.ts'
import { OniError } from './errors.ts'
import { virtualAddressFromPublicKey } from './virtual-address.ts'

export const MAPPING_VERSION = 1
export const MAPPING_SALT = new TextEncoder().encode('oni/mapping/v1')
const TAG = new TextEncoder().encode('oni/mapping/v1\0')
const FIXED_BYTES = 1 + 32 + 16 + 2 + 8 + 1
const SIGNATURE_BYTES = 64
const MAX_NAME_BYTES = 63
export const MAX_MAPPING_BYTES = FIXED_BYTES + MAX_NAME_BYTES + SIGNATURE_BYTES
const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

export interface Mapping {
  publicKey: Uint8Array
  /** 56 characters, no ".onion". */
  onion: string
  /** The onet IPv6 address (16 bytes). */
  address: Uint8Array
  /** Onion port of the peer's onet link. */
  linkPort: number
  issuedAt: number
  /** Optional short name (`<name>.onet` is resolved locally only). */
  name?: string
}

export interface MappingSigner { publicKey: Uint8Array, sign(message: Uint8Array): Uint8Array }

function invalid (message: string): OniError {
  return new OniError('ONI_MAPPING_INVALID', `mapping record rejected: ${message}`)
}

/** Builds and signs the mapping of `signer`'s key. */
export function signMapping (signer: MappingSigner, opts: { linkPort: number, issuedAt: number, name?: string }): Uint8Array {
  const name = new TextEncoder().encode(opts.name ?? '')
  if (opts.name !== undefined && !NAME_RE.test(opts.name)) throw new OniError('ONI_BAD_ARGUMENT', `mapping name ${JSON.stringify(opts.name)} must be 1-63 of [a-z0-9-]`)
  if (!Number.isInteger(opts.linkPort) || opts.linkPort < 1 || opts.linkPort > 65535) throw new OniError('ONI_BAD_ARGUMENT', `link port ${opts.linkPort} must be 1-65535`)
  const body = new Uint8Array(FIXED_BYTES + name.byteLength)
  const v = new DataView(body.buffer)
  body[0] = MAPPING_VERSION
  body.set(signer.publicKey, 1)
  body.set(virtualAddressFromPublicKey(signer.publicKey), 33)
  v.setUint16(49, opts.linkPort)
  v.setBigUint64(51, BigInt(Math.max(0, Math.floor(opts.issuedAt))))
  body[59] = name.byteLength
  body.set(name, 60)
  const signed = new Uint8Array(TAG.byteLength + body.byteLength)
  signed.set(TAG, 0)
  signed.set(body, TAG.byteLength)
  const out = new Uint8Array(body.byteLength + SIGNATURE_BYTES)
  out.set(body, 0)
  out.set(signer.sign(signed), body.byteLength)
  return out
}

/** The key a mapping claims, without verifying anything (for indexing only). */
export function claimedKey (bytes: Uint8Array): Uint8Array | undefined {
  return bytes.byteLength >= FIXED_BYTES ? bytes.slice(1, 33) : undefined
}

/**
 * Decodes and verifies a mapping; with `expectedPublicKey`, it must name that key.
 * Throws ONI_MAPPING_INVALID.
 */
export function decodeMapping (bytes: Uint8Array, expectedPublicKey?: Uint8Array): Mapping {
  if (bytes.byteLength < FIXED_BYTES + SIGNATURE_BYTES || bytes.byteLength > MAX_MAPPING_BYTES) throw invalid(`${bytes.byteLength} bytes is not a mapping's size`)
  if (bytes[0] !== MAPPING_VERSION) throw invalid(`version ${bytes[0]}`)
  const nameLen = bytes[59]
  if (nameLen > MAX_NAME_BYTES || bytes.byteLength !== FIXED_BYTES + nameLen + SIGNATURE_BYTES) throw invalid('length does not match its name length')
  const publicKey = bytes.slice(1, 33)
  const address = bytes.slice(33, 49)
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const linkPort = v.getUint16(49)
  const issuedAt = Number(v.getBigUint64(51))
  const body = bytes.subarray(0, FIXED_BYTES + nameLen)
  const signature = bytes.subarray(FIXED_BYTES + nameLen)
  if (expectedPublicKey !== undefined && !bytesEqual(publicKey, expectedPublicKey)) throw invalid('it names another key than the one asked for')
  const signed = new Uint8Array(TAG.byteLength + body.byteLength)
  signed.set(TAG, 0)
  signed.set(body, TAG.byteLength)
  if (!verifySignature(publicKey, signed, signature)) throw invalid('its signature is not by the key it names')
  if (!bytesEqual(address, virtualAddressFromPublicKey(publicKey))) throw invalid('its address is not the one derived from its key')
  if (linkPort === 0) throw invalid('link port 0')
  let name: string | undefined
  if (nameLen > 0) {
    name = new TextDecoder().decode(bytes.subarray(60, 60 + nameLen))
    if (!NAME_RE.test(name)) throw invalid('bad name')
  }
  return { publicKey, onion: onionAddressFromPublicKey(publicKey), address, linkPort, issuedAt, ...(name !== undefined ? { name } : {}) }
}

/** Where mappings are published and found. */
export interface MappingDirectory {
  publish(mapping: Uint8Array, options?: AbortOptions): Promise<void>
  /** The verified mapping of `publicKey`, or undefined when none is published. */
  resolve(publicKey: Uint8Array, options?: AbortOptions): Promise<Mapping | undefined>
}

/** The part of an OhtNode the directory uses (src/oht createOhtNode satisfies it). */
export interface MappingDht {
  readonly contact: { publicKey: Uint8Array }
  putMutable(options: { salt?: Uint8Array, value: Uint8Array, ttlMs?: number } & AbortOptions): Promise<{ stored: number }>
  get(key: Uint8Array, options?: AbortOptions): Promise<{ record: { kind: string, publicKey?: Uint8Array }, value: Uint8Array } | undefined>
}

/** Mappings as OHT mutable records of the node's own key (the node's key must be the mapping's key). */
export function createOhtMappingDirectory (node: MappingDht, opts: { ttlMs?: number } = {}): MappingDirectory {
  return {
    publish: async (mapping, options = {}) => {
      const m = decodeMapping(mapping)
      if (!bytesEqual(m.publicKey, node.contact.publicKey)) {
        throw new OniError('ONI_BAD_ARGUMENT', 'an OHT node can publish only the mapping of its own key')
      }
      const r = await node.putMutable({ salt: MAPPING_SALT, value: mapping, ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}), signal: options.signal })
      if (r.stored === 0) throw new OniError('ONI_MAPPING_NOT_FOUND', 'no OHT node stored our mapping: is the node bootstrapped?')
    },
    resolve: async (publicKey, options = {}) => {
      const hit = await node.get(mutableKey(publicKey, MAPPING_SALT), options)
      if (hit === undefined) return undefined
      if (hit.record.kind !== 'mutable' || hit.record.publicKey === undefined || !bytesEqual(hit.record.publicKey, publicKey)) {
        throw invalid('the OHT record is not a mutable record of that key')
      }
      return decodeMapping(hit.value, publicKey)
    }
  }
}

/**
 * An in-process directory (tests, single-host setups). It stores whatever it is given under the
 * key the record claims and verifies on resolve, exactly like a store it cannot trust.
 */
export function createMemoryMappingDirectory (): MappingDirectory & { readonly size: number, putRaw(claimed: Uint8Array, bytes: Uint8Array): void } {
  const records = new Map<string, Uint8Array>()
  return {
    get size () { return records.size },
    putRaw: (claimed, bytes) => { records.set(toHex(claimed), bytes.slice()) },
    publish: async (mapping) => {
      const k = claimedKey(mapping)
      if (k === undefined) throw invalid('too short')
      records.set(toHex(k), mapping.slice())
    },
    resolve: async (publicKey) => {
      const bytes = records.get(toHex(publicKey))
      return bytes === undefined ? undefined : decodeMapping(bytes, publicKey)
    }
  }
}
