/**
 * X3DH (Marlinspike & Perrin, "The X3DH Key Agreement Protocol", 2016), both sides.
 *
 *   DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
 *   SK  = HKDF-SHA256(ikm = 0xFF * 32 || DH1 || DH2 || DH3 [|| DH4], salt = 0x00 * 32,
 *                     info = "OHT wormhole X3DH v1", 32 bytes)                      (§2.2, §3.3)
 *   AD  = Encode(IK_A) || Encode(IK_B),  Encode(IK) = Ed25519 key || X25519 key      (§3.3)
 *
 * IK is a pair here: DH uses the X25519 key, signatures the Ed25519 key (identity.ts says why),
 * and the contact card binds the two. The bundle's signature is checked when it is decoded
 * (prekeys.ts), before any DH. The initiator deletes its ephemeral private key and the DH
 * outputs once SK is derived (§3.3); the responder deletes DH outputs likewise.
 *
 * The initial message (§3.3) is the "prekey message" below; it wraps the first ratchet message,
 * and the initiator keeps sending it until the responder's first reply arrives (so any one of
 * them, arriving first, starts the session):
 * ```
 *  0       1            3                   3+c        35+c     39+c      40+c
 *  | ver=1 | cardLen u16 | initiator card  | EK [32]  | spkId  | flags u8 | [opkId u32 if flags&1] | ratchet message |
 * ```
 * The initiator's whole card travels so the responder learns how to answer (and can show who
 * wrote); its signature proves the X25519 key belongs to the Ed25519 key in AD.
 */
import type { Rng } from '../core/rng.ts'
import { concatBytes, wipe } from '../core/bytes.ts'
import { decodeCardBytes, MAX_CARD_BYTES, type ContactCard } from './contact-card.ts'
import { wormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import type { PrekeyBundle } from './prekeys.ts'
import { hkdf, X25519KeyPair } from './primitives.ts'
import { label, Reader, Writer } from './wire.ts'

const F = new Uint8Array(32).fill(0xff)
const ZERO_SALT = new Uint8Array(32)
const INFO = label('OHT wormhole X3DH v1')
export const PREKEY_MESSAGE_VERSION = 1

export interface IdentityKeys { readonly publicKey: Uint8Array, readonly dhPublicKey: Uint8Array }

/** AD = Encode(IK_A) || Encode(IK_B). */
export function x3dhAssociatedData (initiator: IdentityKeys, responder: IdentityKeys): Uint8Array {
  return concatBytes(initiator.publicKey, initiator.dhPublicKey, responder.publicKey, responder.dhPublicKey)
}

function kdf (dhs: Uint8Array[]): Uint8Array {
  const ikm = concatBytes(F, ...dhs)
  try { return hkdf(ikm, ZERO_SALT, INFO, 32) } finally { ikm.fill(0); wipe(...dhs) }
}

export interface X3dhInitiation {
  /** SK: the root key the double ratchet starts from. The caller wipes it. */
  sharedKey: Uint8Array
  associatedData: Uint8Array
  ephemeralPublicKey: Uint8Array
  signedPrekeyId: number
  oneTimePrekeyId?: number
  /** SPK_B: the responder's first ratchet public key. */
  signedPrekey: Uint8Array
}

/**
 * The initiator's side against a verified bundle (decodePrekeyBundle). A one-time prekey is
 * picked at random among those listed, so concurrent senders rarely pick the same one.
 */
export function x3dhInitiate (me: WormholeIdentity, them: IdentityKeys, bundle: PrekeyBundle, rng: Rng): X3dhInitiation {
  const ek = X25519KeyPair.generate(rng)
  try {
    const spk = bundle.signedPrekey.publicKey
    const opk = bundle.oneTimePrekeys.length > 0 ? bundle.oneTimePrekeys[rng.int(bundle.oneTimePrekeys.length)] : undefined
    const dhs = [me.dh(spk), ek.dh(them.dhPublicKey), ek.dh(spk)]
    if (opk !== undefined) dhs.push(ek.dh(opk.publicKey))
    return {
      sharedKey: kdf(dhs),
      associatedData: x3dhAssociatedData(me, them),
      ephemeralPublicKey: Uint8Array.from(ek.publicKey),
      signedPrekeyId: bundle.signedPrekey.id,
      ...(opk === undefined ? {} : { oneTimePrekeyId: opk.id }),
      signedPrekey: Uint8Array.from(spk)
    }
  } finally {
    ek.destroy()
  }
}

/** The responder's side: SK and AD from its prekeys and the initiator's keys. */
export function x3dhRespond (me: WormholeIdentity, prekeys: { signedPrekey: X25519KeyPair, oneTimePrekey?: X25519KeyPair }, initiator: IdentityKeys, ephemeralPublicKey: Uint8Array): { sharedKey: Uint8Array, associatedData: Uint8Array } {
  const dhs = [prekeys.signedPrekey.dh(initiator.dhPublicKey), me.dh(ephemeralPublicKey), prekeys.signedPrekey.dh(ephemeralPublicKey)]
  if (prekeys.oneTimePrekey !== undefined) dhs.push(prekeys.oneTimePrekey.dh(ephemeralPublicKey))
  return { sharedKey: kdf(dhs), associatedData: x3dhAssociatedData(initiator, me) }
}

export interface PrekeyMessage {
  card: ContactCard
  ephemeralPublicKey: Uint8Array
  signedPrekeyId: number
  oneTimePrekeyId?: number
  /** The wrapped ratchet message. */
  message: Uint8Array
}

export function encodePrekeyMessage (m: Omit<PrekeyMessage, 'card'> & { card: Pick<ContactCard, 'bytes'> }): Uint8Array {
  const w = new Writer(64 + m.card.bytes.byteLength + m.message.byteLength)
    .u8(PREKEY_MESSAGE_VERSION).u16(m.card.bytes.byteLength).bytes(m.card.bytes).bytes(m.ephemeralPublicKey).u32(m.signedPrekeyId)
  if (m.oneTimePrekeyId === undefined) w.u8(0)
  else w.u8(1).u32(m.oneTimePrekeyId)
  return w.bytes(m.message).finish()
}

/** Parses a prekey message and verifies the card inside it. */
export function decodePrekeyMessage (bytes: Uint8Array): PrekeyMessage {
  const r = new Reader(bytes, 'prekey message')
  const v = r.u8()
  if (v !== PREKEY_MESSAGE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `prekey message version ${v} is not supported`)
  const card = decodeCardBytes(r.lenBytes16(MAX_CARD_BYTES, 'card'))
  const ephemeralPublicKey = r.bytes(32)
  const signedPrekeyId = r.u32()
  const flags = r.u8()
  if ((flags & ~1) !== 0) throw wormholeError('WORMHOLE_MALFORMED', 'prekey message has unknown flags')
  const oneTimePrekeyId = (flags & 1) !== 0 ? r.u32() : undefined
  const message = r.rest()
  return { card, ephemeralPublicKey, signedPrekeyId, ...(oneTimePrekeyId === undefined ? {} : { oneTimePrekeyId }), message }
}
