/**
 * The sessions held with one contact, as stored (state name `session.<hex of their key>`).
 * Several states can exist at once: both sides may start a session at the same time while the
 * other is offline, and a peer who restored from their master key starts a new one. Messages are
 * decrypted with whichever state they belong to, and a state that decrypts moves to the front;
 * we send with the front state that can send. At most `maxSessionsPerContact` are kept.
 *
 * Record, version 1:
 * ```
 *  | ver=1 | flags u8 (bit0: card) | [cardLen u16 | card] | nStates u8 | state * nStates |
 *  state = flags u8 (bit0 initiator, bit1 pending, bit2 pending one-time prekey) | adLen u16 | ad |
 *          peer Ed25519 [32] | peer X25519 [32] | mailbox root [32] | base key [32] |
 *          createdAt u64 | usedAt u64 | [spkId u32 if pending] | [opkId u32 if bit2] | ratchetLen u32 | ratchet state
 * ```
 * "pending": we started the session and no reply came yet, so every message we send carries the
 * X3DH header (a prekey message) and goes to the intro mailbox. "base key": the ephemeral key of
 * the X3DH that made the state (it names the session in repeated prekey messages).
 */
import type { Rng } from '../core/rng.ts'
import { decodeCardBytes, MAX_CARD_BYTES, type ContactCard } from './contact-card.ts'
import { wormholeError } from './errors.ts'
import { Ratchet, type RatchetLimits } from './ratchet.ts'
import { checkSize, Reader, Writer } from './wire.ts'

const VERSION = 1
export const MAX_SESSION_RECORD_BYTES = 8 * 1024 * 1024
const MAX_STATES = 16

export interface SessionState {
  ratchet: Ratchet
  /** X3DH associated data. */
  ad: Uint8Array
  peer: { publicKey: Uint8Array, dhPublicKey: Uint8Array }
  /** Pairwise mailbox root (mailbox.ts). */
  root: Uint8Array
  initiator: boolean
  baseKey: Uint8Array
  /** Set while we started the session and no reply came. */
  pending?: { signedPrekeyId: number, oneTimePrekeyId?: number }
  createdAt: number
  usedAt: number
}

export interface SessionRecord {
  /** The newest card we hold for the contact. */
  card?: ContactCard
  /** Most recently used first. */
  states: SessionState[]
}

export function destroyState (s: SessionState): void {
  s.ratchet.destroy()
  s.root.fill(0)
}

export function encodeSessionRecord (rec: SessionRecord): Uint8Array {
  const w = new Writer(1024).u8(VERSION).u8(rec.card === undefined ? 0 : 1)
  if (rec.card !== undefined) w.u16(rec.card.bytes.byteLength).bytes(rec.card.bytes)
  w.u8(rec.states.length)
  for (const s of rec.states) {
    const flags = (s.initiator ? 1 : 0) | (s.pending !== undefined ? 2 : 0) | (s.pending?.oneTimePrekeyId !== undefined ? 4 : 0)
    w.u8(flags).u16(s.ad.byteLength).bytes(s.ad).bytes(s.peer.publicKey).bytes(s.peer.dhPublicKey).bytes(s.root).bytes(s.baseKey)
      .u64(s.createdAt).u64(s.usedAt)
    if (s.pending !== undefined) {
      w.u32(s.pending.signedPrekeyId)
      if (s.pending.oneTimePrekeyId !== undefined) w.u32(s.pending.oneTimePrekeyId)
    }
    const r = s.ratchet.encode()
    w.u32(r.byteLength).bytes(r)
    r.fill(0)
  }
  return w.finish()
}

export function decodeSessionRecord (bytes: Uint8Array, rng: Rng, limits: RatchetLimits): SessionRecord {
  checkSize(bytes, MAX_SESSION_RECORD_BYTES, 'session record')
  const r = new Reader(bytes, 'session record')
  const v = r.u8()
  if (v !== VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `session record version ${v} is not supported`)
  const flags = r.u8()
  const rec: SessionRecord = { states: [] }
  if ((flags & 1) !== 0) rec.card = decodeCardBytes(r.lenBytes16(MAX_CARD_BYTES, 'card'))
  const n = r.u8()
  if (n > MAX_STATES) throw wormholeError('WORMHOLE_MALFORMED', 'session record holds too many states')
  for (let i = 0; i < n; i++) {
    const f = r.u8()
    const ad = r.lenBytes16(1024, 'associated data')
    const peer = { publicKey: r.bytes(32), dhPublicKey: r.bytes(32) }
    const root = r.bytes(32)
    const baseKey = r.bytes(32)
    const createdAt = r.u64()
    const usedAt = r.u64()
    let pending: SessionState['pending']
    if ((f & 2) !== 0) {
      const signedPrekeyId = r.u32()
      pending = (f & 4) !== 0 ? { signedPrekeyId, oneTimePrekeyId: r.u32() } : { signedPrekeyId }
    }
    const ratchetBytes = r.lenBytes32(MAX_SESSION_RECORD_BYTES, 'ratchet state')
    const rr = new Reader(ratchetBytes, 'ratchet state')
    const ratchet = Ratchet.decodeFrom(rr, rng, limits)
    rr.end()
    ratchetBytes.fill(0)
    rec.states.push({ ratchet, ad, peer, root, initiator: (f & 1) !== 0, baseKey, ...(pending === undefined ? {} : { pending }), createdAt, usedAt })
  }
  r.end()
  return rec
}
