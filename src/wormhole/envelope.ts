/**
 * Sealed-sender envelopes: what leaves a node and what mailbox holders store. Outside there is
 * only what the recipient needs to open it; who sent it, to whom, and what kind of message it
 * is are inside the ciphertext. Every envelope is padded to one of four sizes.
 *
 * Envelope, version 1 (length = a bucket: 1, 4, 16 or 64 KiB):
 * ```
 *  0       1                        33                                    L-16       L
 *  | ver=1 | ephemeral X25519 [32] | sealed content (L - 49)             | tag [16] |
 * ```
 * - To a person: key [32] || nonce [12] = HKDF-SHA256(ikm = X25519(ephemeral, recipient's
 *   X25519 identity key), salt = ephemeral || recipient key, info = "OHT wormhole sealed sender v1").
 * - To a group: the same 32 bytes are a random salt, and the key is HKDF-SHA256(ikm = the group
 *   epoch's envelope secret, salt, info = "OHT wormhole group envelope v1"). Both look alike.
 * - AEAD: ChaCha20-Poly1305, associated data = bytes 0..33.
 *
 * Sealed content:
 * ```
 *  0        1              33                 49              53
 *  | type u8 | sender [32] | message id [16]  | payLen u32    | payload | zero padding |
 * ```
 * type: 1 = prekey message (x3dh.ts), 2 = ratchet message (ratchet.ts), 3 = group message
 * (sender-keys.ts). sender: the sender's Ed25519 identity key. The ratchet (or the sender key)
 * authenticates sender and message id as associated data, so the outer layer, which anyone can
 * make, cannot change them. The outer layer alone is not forward secret (Signal's sealed sender
 * is not either): who later steals the recipient's identity key learns senders and message ids
 * of envelopes they kept, never the content (that needs the ratchet's deleted keys).
 *
 * Buckets. Most chat messages are a few hundred bytes: with the ratchet header, a first
 * message's X3DH header and card, they fit 1 KiB. Steps of 4x leak at most two bits of size
 * and cost at most 4x (about 2x on average) in padding; 64 KiB is the largest OHT value, and
 * with k = 4 an erasure-coded envelope's fragments are 256 B .. 16 KiB.
 */
import type { Rng } from '../core/rng.ts'
import { concatBytes } from '../core/bytes.ts'
import { wormholeError, WormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import { AEAD_TAG_BYTES, aeadKeyFrom, aeadOpen, aeadSeal, X25519KeyPair } from './primitives.ts'
import { label, Reader } from './wire.ts'

export const ENVELOPE_VERSION = 1
export const ENVELOPE_BUCKETS = [1024, 4096, 16384, 65536] as const
export const MAX_ENVELOPE_BYTES = 65536
export const ENVELOPE_HEADER_BYTES = 33
export const ENVELOPE_OVERHEAD_BYTES = ENVELOPE_HEADER_BYTES + AEAD_TAG_BYTES
export const CONTENT_HEADER_BYTES = 53
export const MESSAGE_ID_BYTES = 16
/** Largest payload an envelope carries. */
export const MAX_PAYLOAD_BYTES = MAX_ENVELOPE_BYTES - ENVELOPE_OVERHEAD_BYTES - CONTENT_HEADER_BYTES
const SEALED_SENDER_INFO = label('OHT wormhole sealed sender v1')
const GROUP_INFO = label('OHT wormhole group envelope v1')

export const CONTENT_TYPES = { prekey: 1, ratchet: 2, group: 3 } as const
export type ContentType = keyof typeof CONTENT_TYPES
const TYPE_BY_NUMBER = new Map<number, ContentType>([[1, 'prekey'], [2, 'ratchet'], [3, 'group']])

export interface SealedContent {
  type: ContentType
  /** The sender's Ed25519 identity key. */
  sender: Uint8Array
  messageId: Uint8Array
  payload: Uint8Array
}

/** The bucket an envelope of `payloadBytes` takes. */
export function bucketFor (payloadBytes: number): number {
  const need = payloadBytes + CONTENT_HEADER_BYTES + ENVELOPE_OVERHEAD_BYTES
  for (const b of ENVELOPE_BUCKETS) if (need <= b) return b
  throw wormholeError('WORMHOLE_MESSAGE_TOO_LARGE', `a payload of ${payloadBytes} bytes does not fit the largest envelope (${MAX_PAYLOAD_BYTES} bytes)`)
}

/** Sealed content, padded with zeros to `size` bytes. */
export function encodeContent (c: SealedContent, size: number): Uint8Array {
  if (c.sender.byteLength !== 32 || c.messageId.byteLength !== MESSAGE_ID_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'sender key has 32 bytes and message id 16')
  if (CONTENT_HEADER_BYTES + c.payload.byteLength > size) throw wormholeError('WORMHOLE_MESSAGE_TOO_LARGE', 'payload larger than its envelope')
  const out = new Uint8Array(size)
  out[0] = CONTENT_TYPES[c.type]
  out.set(c.sender, 1)
  out.set(c.messageId, 33)
  const n = c.payload.byteLength
  out[49] = n >>> 24; out[50] = (n >>> 16) & 0xff; out[51] = (n >>> 8) & 0xff; out[52] = n & 0xff
  out.set(c.payload, CONTENT_HEADER_BYTES)
  return out
}

/** Parses sealed content: type, lengths and the zero padding are all checked. */
export function decodeContent (bytes: Uint8Array): SealedContent {
  const r = new Reader(bytes, 'sealed content')
  const t = r.u8()
  const type = TYPE_BY_NUMBER.get(t)
  if (type === undefined) throw wormholeError('WORMHOLE_MALFORMED', `unknown sealed content type ${t}`)
  const sender = r.bytes(32)
  const messageId = r.bytes(MESSAGE_ID_BYTES)
  const payload = r.lenBytes32(bytes.byteLength - CONTENT_HEADER_BYTES, 'payload')
  for (let i = r.offset; i < bytes.byteLength; i++) if (bytes[i] !== 0) throw wormholeError('WORMHOLE_MALFORMED', 'sealed content padding is not zero')
  return { type, sender, messageId, payload }
}

function checkEnvelope (envelope: Uint8Array): void {
  if (!(envelope instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'an envelope is a Uint8Array')
  if (envelope.byteLength > MAX_ENVELOPE_BYTES) throw wormholeError('WORMHOLE_TOO_LARGE', `an envelope has at most ${MAX_ENVELOPE_BYTES} bytes, got ${envelope.byteLength}`)
  if (!(ENVELOPE_BUCKETS as readonly number[]).includes(envelope.byteLength)) throw wormholeError('WORMHOLE_MALFORMED', `an envelope is 1, 4, 16 or 64 KiB long, not ${envelope.byteLength} bytes`)
  if (envelope[0] !== ENVELOPE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `envelope version ${envelope[0]} is not supported`)
}

function sealWith (key: Uint8Array, nonce: Uint8Array, head: Uint8Array, c: SealedContent): Uint8Array {
  const size = bucketFor(c.payload.byteLength)
  const content = encodeContent(c, size - ENVELOPE_OVERHEAD_BYTES)
  try {
    return concatBytes(head, aeadSeal(key, nonce, content, head))
  } finally {
    content.fill(0)
    key.fill(0)
    nonce.fill(0)
  }
}

function openWith (key: Uint8Array, nonce: Uint8Array, envelope: Uint8Array): SealedContent {
  try {
    const content = aeadOpen(key, nonce, envelope.subarray(ENVELOPE_HEADER_BYTES), envelope.subarray(0, ENVELOPE_HEADER_BYTES))
    try { return decodeContent(content) } finally { content.fill(0) }
  } finally {
    key.fill(0)
    nonce.fill(0)
  }
}

/** Seals `content` to the holder of `recipientDhKey` (their card's X25519 key). */
export function sealEnvelope (recipientDhKey: Uint8Array, content: SealedContent, rng: Rng): Uint8Array {
  const eph = X25519KeyPair.generate(rng)
  try {
    const shared = eph.dh(recipientDhKey)
    const head = concatBytes(Uint8Array.of(ENVELOPE_VERSION), eph.publicKey)
    const { key, nonce } = aeadKeyFrom(shared, concatBytes(eph.publicKey, recipientDhKey), SEALED_SENDER_INFO)
    shared.fill(0)
    return sealWith(key, nonce, head, content)
  } finally {
    eph.destroy()
  }
}

/**
 * Opens an envelope sealed to `me`. Errors: WORMHOLE_TOO_LARGE, WORMHOLE_MALFORMED,
 * WORMHOLE_BAD_VERSION, WORMHOLE_DECRYPT_FAILED (not for us, or modified).
 */
export function openEnvelope (envelope: Uint8Array, me: Pick<WormholeIdentity, 'dh' | 'dhPublicKey'>): SealedContent {
  checkEnvelope(envelope)
  const eph = envelope.subarray(1, ENVELOPE_HEADER_BYTES)
  let shared: Uint8Array
  try {
    shared = me.dh(eph)
  } catch (err) {
    // A low-order "ephemeral key" is just another envelope that is not for us.
    if (err instanceof WormholeError && err.code === 'WORMHOLE_BAD_KEY') throw wormholeError('WORMHOLE_DECRYPT_FAILED', 'envelope is not for this identity', err)
    throw err
  }
  const { key, nonce } = aeadKeyFrom(shared, concatBytes(eph, me.dhPublicKey), SEALED_SENDER_INFO)
  shared.fill(0)
  return openWith(key, nonce, envelope)
}

/** Seals `content` under a group epoch's envelope secret. */
export function sealGroupEnvelope (groupSecret: Uint8Array, content: SealedContent, rng: Rng): Uint8Array {
  const salt = rng.bytes(32)
  const head = concatBytes(Uint8Array.of(ENVELOPE_VERSION), salt)
  const { key, nonce } = aeadKeyFrom(groupSecret, salt, GROUP_INFO)
  return sealWith(key, nonce, head, content)
}

/** Opens a group envelope with one epoch's envelope secret. */
export function openGroupEnvelope (envelope: Uint8Array, groupSecret: Uint8Array): SealedContent {
  checkEnvelope(envelope)
  const { key, nonce } = aeadKeyFrom(groupSecret, envelope.subarray(1, ENVELOPE_HEADER_BYTES), GROUP_INFO)
  return openWith(key, nonce, envelope)
}
