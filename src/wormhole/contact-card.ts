/**
 * Contact cards: what one person gives another to be reachable. One copyable string,
 *
 *   oht-contact:<base32 of (card bytes || checksum[4])>     checksum = SHA-256("oht-contact" || card)[0..4]
 *
 * lower case for copying, upper case for a QR code (QR alphanumeric mode holds A-Z, 0-9 and ':',
 * about 40 % denser than byte mode). The decoder takes either case and ignores whitespace.
 *
 * Card bytes, version 1 (integers big-endian):
 * ```
 *  0        1              33              65                 97               129            137       138
 *  | ver=1  | ed25519 [32] | x25519 [32]   | node key [32]    | intro [32]     | issuedAt u64 | nameLen | name (<= 64, UTF-8) | sig [64] |
 * ```
 * - ed25519: the person's identity (signs everything below); x25519: their key-agreement key.
 * - node key: the Ed25519 key of the OHT node that delivers for them; its onion v3 address is
 *   derived from it (56 characters, the same key tor publishes).
 * - intro: the intro-mailbox secret, so only card holders can compute where a first message goes.
 * - issuedAt: ms since the epoch (the injected clock); a newer card of the same key supersedes.
 * - sig = Ed25519(ed25519, "oht/wormhole/card/v1\0" || every byte before sig).
 *
 * Names are at most 64 bytes and may hold no control or bidirectional-override characters (they
 * are shown to people; a right-to-left override would let a name pose as another).
 */
import type { Clock } from '../core/clock.ts'
import { base32Decode, base32Encode, bytesEqual, concatBytes } from '../core/bytes.ts'
import { onionAddressFromPublicKey, parseOnionAddress, sha256, verifySignature } from '../crypto/index.ts'
import { WormholeError, wormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import { label, Reader, Writer } from './wire.ts'

export const CARD_VERSION = 1
export const CARD_PREFIX = 'oht-contact:'
export const MAX_NAME_BYTES = 64
const CHECKSUM_BYTES = 4
const SIG_TAG = label('oht/wormhole/card/v1\0')
const CHECKSUM_TAG = label('oht-contact')
/** Largest card in bytes: fixed fields + the longest name + signature. */
export const MAX_CARD_BYTES = 1 + 32 * 4 + 8 + 1 + MAX_NAME_BYTES + 64
/** Longest card string accepted (with room for whitespace a mail program may add). */
export const MAX_CARD_TEXT = 1024

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })
// C0/C1 controls, bidi embeddings/overrides/isolates, zero-width and BOM characters.
const FORBIDDEN_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u

export interface ContactCard {
  readonly version: number
  /** Ed25519 identity key. */
  readonly publicKey: Uint8Array
  /** X25519 key-agreement key. */
  readonly dhPublicKey: Uint8Array
  /** Ed25519 key of the node that delivers for this person. */
  readonly nodePublicKey: Uint8Array
  /** That node's onion v3 address (56 characters, no ".onion"). */
  readonly onion: string
  readonly introSecret: Uint8Array
  readonly issuedAt: number
  readonly name?: string
  readonly signature: Uint8Array
  /** The canonical card bytes (what the signature and the string encode). */
  readonly bytes: Uint8Array
}

export interface CreateCardOptions {
  /** The delivering node: its onion address or its Ed25519 public key. */
  node: string | Uint8Array
  /** Display name (at most 64 bytes of UTF-8). */
  name?: string
}

function checkName (name: string | undefined): Uint8Array {
  if (name === undefined || name === '') return new Uint8Array(0)
  if (typeof name !== 'string') throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a display name must be a string')
  const b = utf8.encode(name.normalize('NFC'))
  if (b.byteLength > MAX_NAME_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `a display name has at most ${MAX_NAME_BYTES} bytes of UTF-8, got ${b.byteLength}`)
  if (FORBIDDEN_IN_NAME.test(name)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a display name may not contain control, zero-width or direction-override characters')
  return b
}

function unsignedBytes (f: { publicKey: Uint8Array, dhPublicKey: Uint8Array, nodePublicKey: Uint8Array, introSecret: Uint8Array, issuedAt: number, name: Uint8Array }): Uint8Array {
  return new Writer(MAX_CARD_BYTES)
    .u8(CARD_VERSION).bytes(f.publicKey).bytes(f.dhPublicKey).bytes(f.nodePublicKey).bytes(f.introSecret)
    .u64(f.issuedAt).u8(f.name.byteLength).bytes(f.name).finish()
}

/**
 * Makes and signs this person's card.
 *
 * @example
 * const card = createContactCard(me, { node: nodeIdentity.onion, name: 'Alice' }, systemClock)
 * const text = encodeContactCard(card)   // "oht-contact:aeb…"; decodeContactCard(text) gives it back
 */
export function createContactCard (identity: WormholeIdentity, options: CreateCardOptions, clock: Clock): ContactCard {
  let nodePublicKey: Uint8Array
  if (typeof options.node === 'string') {
    try { nodePublicKey = parseOnionAddress(options.node).publicKey } catch (err) { throw wormholeError('WORMHOLE_BAD_ARGUMENT', `not a v3 onion address: ${(err as Error).message}`, err) }
  } else if (options.node instanceof Uint8Array && options.node.byteLength === 32) {
    nodePublicKey = Uint8Array.from(options.node)
  } else {
    throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'node must be an onion address or a 32-byte Ed25519 public key')
  }
  const name = checkName(options.name)
  const fields = { publicKey: identity.publicKey, dhPublicKey: identity.dhPublicKey, nodePublicKey, introSecret: identity.introSecret, issuedAt: Math.floor(clock.now()), name }
  const body = unsignedBytes(fields)
  const signature = identity.sign(concatBytes(SIG_TAG, body))
  return decodeCardBytes(concatBytes(body, signature))
}

/** Parses and verifies card bytes (no prefix, no checksum). */
export function decodeCardBytes (bytes: Uint8Array): ContactCard {
  if (!(bytes instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'card bytes must be a Uint8Array')
  if (bytes.byteLength > MAX_CARD_BYTES) throw wormholeError('WORMHOLE_TOO_LARGE', `a contact card has at most ${MAX_CARD_BYTES} bytes, got ${bytes.byteLength}`)
  const r = new Reader(bytes, 'contact card')
  const version = r.u8()
  if (version !== CARD_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `contact card version ${version} is not supported (this program reads version ${CARD_VERSION}); update it, or ask for a new card`)
  const publicKey = r.bytes(32)
  const dhPublicKey = r.bytes(32)
  const nodePublicKey = r.bytes(32)
  const introSecret = r.bytes(32)
  const issuedAt = r.u64()
  const nameLen = r.u8()
  if (nameLen > MAX_NAME_BYTES) throw wormholeError('WORMHOLE_MALFORMED', `contact card name of ${nameLen} bytes is over ${MAX_NAME_BYTES}`)
  const nameBytes = r.bytes(nameLen)
  const bodyLen = r.offset
  const signature = r.bytes(64)
  r.end()
  let name: string | undefined
  if (nameLen > 0) {
    try { name = utf8Strict.decode(nameBytes) } catch (err) { throw wormholeError('WORMHOLE_MALFORMED', 'contact card name is not valid UTF-8', err) }
    if (FORBIDDEN_IN_NAME.test(name)) throw wormholeError('WORMHOLE_MALFORMED', 'contact card name holds control or direction-override characters')
  }
  if (!verifySignature(publicKey, concatBytes(SIG_TAG, bytes.subarray(0, bodyLen)), signature)) {
    throw wormholeError('WORMHOLE_BAD_SIGNATURE', 'contact card signature does not verify: the card was modified or forged')
  }
  let onion: string
  try { onion = onionAddressFromPublicKey(nodePublicKey) } catch (err) { throw wormholeError('WORMHOLE_MALFORMED', 'contact card node key is not an Ed25519 key', err) }
  return { version, publicKey, dhPublicKey, nodePublicKey, onion, introSecret, issuedAt, ...(name === undefined ? {} : { name }), signature, bytes: Uint8Array.from(bytes) }
}

function checksum (bytes: Uint8Array): Uint8Array {
  return sha256(CHECKSUM_TAG, bytes).subarray(0, CHECKSUM_BYTES)
}

/** The copyable string: `oht-contact:` + lower-case base32. */
export function encodeContactCard (card: ContactCard): string {
  return CARD_PREFIX + base32Encode(concatBytes(card.bytes, checksum(card.bytes)))
}

/** The same string in upper case, for a QR code's alphanumeric mode. */
export function contactCardQrText (card: ContactCard): string {
  return encodeContactCard(card).toUpperCase()
}

/**
 * Parses a card string (either case, whitespace ignored) and verifies checksum and signature.
 * Errors: WORMHOLE_TOO_LARGE, WORMHOLE_CARD_PREFIX, WORMHOLE_CARD_ENCODING, WORMHOLE_TRUNCATED,
 * WORMHOLE_CARD_CHECKSUM, WORMHOLE_BAD_VERSION, WORMHOLE_MALFORMED, WORMHOLE_BAD_SIGNATURE.
 */
export function decodeContactCard (text: string): ContactCard {
  if (typeof text !== 'string') throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a contact card is a string')
  if (text.length > MAX_CARD_TEXT) throw wormholeError('WORMHOLE_TOO_LARGE', `a contact card string has at most ${MAX_CARD_TEXT} characters, got ${text.length}`)
  const s = text.replace(/\s+/g, '').toLowerCase()
  if (!s.startsWith(CARD_PREFIX)) throw wormholeError('WORMHOLE_CARD_PREFIX', `not a contact card: it must start with "${CARD_PREFIX}"`)
  const b32 = s.slice(CARD_PREFIX.length)
  if (!/^[a-z2-7]*$/.test(b32)) throw wormholeError('WORMHOLE_CARD_ENCODING', 'the contact card has characters other than a-z and 2-7 after its prefix')
  const raw = base32Decode(b32)
  const minBytes = 1 + 32 * 4 + 8 + 1 + 64 + CHECKSUM_BYTES
  if (raw.byteLength < minBytes) throw wormholeError('WORMHOLE_TRUNCATED', `the contact card is truncated (${raw.byteLength} bytes, at least ${minBytes} expected): copy the whole string`)
  const bytes = raw.subarray(0, raw.byteLength - CHECKSUM_BYTES)
  if (!bytesEqual(raw.subarray(raw.byteLength - CHECKSUM_BYTES), checksum(bytes))) {
    throw wormholeError('WORMHOLE_CARD_CHECKSUM', 'the contact card checksum does not match: it was mistyped, cut or changed')
  }
  try {
    return decodeCardBytes(bytes)
  } catch (err) {
    if (err instanceof WormholeError && err.code === 'WORMHOLE_TRUNCATED') throw wormholeError('WORMHOLE_TRUNCATED', 'the contact card is truncated: copy the whole string', err)
    throw err
  }
}

/** True when `a` and `b` carry the same identity and key-agreement keys. */
export function sameIdentity (a: Pick<ContactCard, 'publicKey' | 'dhPublicKey'>, b: Pick<ContactCard, 'publicKey' | 'dhPublicKey'>): boolean {
  return bytesEqual(a.publicKey, b.publicKey) && bytesEqual(a.dhPublicKey, b.dhPublicKey)
}
