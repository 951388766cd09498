/**
 * The Double Ratchet (Perrin & Marlinspike, "The Double Ratchet Algorithm", 2016), §3 with the
 * recommended functions of §5.2:
 *
 *   GENERATE_DH   X25519 key pair from the injected Rng
 *   DH            X25519 (a low-order point is WORMHOLE_BAD_KEY)
 *   KDF_RK(rk, dh_out) = HKDF-SHA256(salt = rk, ikm = dh_out, info = "OHT wormhole ratchet v1 root") → rk' [32] || ck [32]
 *   KDF_CK(ck)    mk = HMAC-SHA256(ck, 0x01), ck' = HMAC-SHA256(ck, 0x02)
 *   ENCRYPT(mk, pt, ad)  key [32] || nonce [12] = HKDF-SHA256(ikm = mk, salt = 0x00 * 32,
 *                 info = "OHT wormhole ratchet v1 message"); ChaCha20-Poly1305(key, nonce, pt, ad)
 *   HEADER        the ratchet public key, PN and N (below)
 *   CONCAT(ad, header) = u16 len(ad) || ad || header
 *
 * §5.2 recommends AES-256-CBC + HMAC-SHA256 with key, MAC key and IV from HKDF, or an SIV mode,
 * because the same message key must never encrypt twice. Every message key here is used exactly
 * once (it is deleted as it is used, and a send persists the advanced chain before the ciphertext
 * leaves, see sessions.ts), so an AEAD whose nonce comes from the same HKDF output is safe, and
 * ChaCha20-Poly1305 in one OpenSSL call is simpler and faster than CBC + HMAC.
 *
 * Message, version 1:
 * ```
 *  0       1                  33        37       41
 *  | ver=1 | ratchet key [32] | PN u32 | N u32  | ciphertext | tag [16] |
 *  '---------------- header (authenticated) ---'
 * ```
 * Skipped message keys (§3.5) are kept at most `maxSkip` per chain step and `maxSkippedKeys` in
 * all (the oldest dropped first). Decryption works on a draft and commits only when the tag
 * verifies (§3.5: "changes to the state object are discarded"), so a forged message costs at most
 * maxSkip HMACs and changes nothing. An already decrypted message is refused as WORMHOLE_REPLAY:
 * its key was deleted, and the ratchet keys of older chains are remembered to tell.
 */
import type { Rng } from '../core/rng.ts'
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import { wormholeError } from './errors.ts'
import { aeadKeyFrom, aeadOpen, aeadSeal, hkdf, hmacSha256, X25519KeyPair } from './primitives.ts'
import { label, Reader, Writer } from './wire.ts'

export const RATCHET_MESSAGE_VERSION = 1
export const RATCHET_HEADER_BYTES = 41
export const RATCHET_OVERHEAD_BYTES = RATCHET_HEADER_BYTES + 16
const STATE_VERSION = 1
const ROOT_INFO = label('OHT wormhole ratchet v1 root')
const MESSAGE_INFO = label('OHT wormhole ratchet v1 message')
const ZERO_SALT = new Uint8Array(32)
const CK_MESSAGE = Uint8Array.of(0x01)
const CK_NEXT = Uint8Array.of(0x02)
const MAX_U32 = 0xffffffff

export interface RatchetLimits {
  /** Message keys skipped in one chain at most (a message further ahead is refused). @default 1000 */
  maxSkip?: number
  /** Skipped message keys stored in all; the oldest go first. @default 2000 */
  maxSkippedKeys?: number
  /** Older remote ratchet keys remembered to recognise replays. @default 32 */
  maxPreviousChains?: number
}

export const RATCHET_DEFAULTS = { maxSkip: 1000, maxSkippedKeys: 2000, maxPreviousChains: 32 } as const

function resolve (l: RatchetLimits): Required<RatchetLimits> {
  const o = {
    maxSkip: l.maxSkip ?? RATCHET_DEFAULTS.maxSkip,
    maxSkippedKeys: l.maxSkippedKeys ?? RATCHET_DEFAULTS.maxSkippedKeys,
    maxPreviousChains: l.maxPreviousChains ?? RATCHET_DEFAULTS.maxPreviousChains
  }
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isInteger(v) || v < 0 || v > 100_000) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `${k} must be an integer in 0..100000`)
  }
  return o
}

function kdfRk (rk: Uint8Array, dhOut: Uint8Array): [Uint8Array, Uint8Array] {
  const okm = hkdf(dhOut, rk, ROOT_INFO, 64)
  const out: [Uint8Array, Uint8Array] = [okm.slice(0, 32), okm.slice(32)]
  okm.fill(0)
  dhOut.fill(0)
  return out
}

function kdfCk (ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(ck, CK_NEXT), hmacSha256(ck, CK_MESSAGE)]
}

function concatAd (ad: Uint8Array, header: Uint8Array): Uint8Array {
  if (ad.byteLength > 0xffff) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'associated data over 65535 bytes')
  const out = new Uint8Array(2 + ad.byteLength + header.byteLength)
  out[0] = ad.byteLength >>> 8
  out[1] = ad.byteLength & 0xff
  out.set(ad, 2)
  out.set(header, 2 + ad.byteLength)
  return out
}

function seal (mk: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const { key, nonce } = aeadKeyFrom(mk, ZERO_SALT, MESSAGE_INFO)
  try { return aeadSeal(key, nonce, plaintext, ad) } finally { key.fill(0); nonce.fill(0) }
}

function open (mk: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array {
  const { key, nonce } = aeadKeyFrom(mk, ZERO_SALT, MESSAGE_INFO)
  try { return aeadOpen(key, nonce, sealed, ad) } finally { key.fill(0); nonce.fill(0) }
}

const skipId = (dhHex: string, n: number): string => `${dhHex}:${n}`

export interface RatchetHeader { dh: Uint8Array, pn: number, n: number }

/** Parses a ratchet message's header (WORMHOLE_TRUNCATED / WORMHOLE_BAD_VERSION). */
export function parseRatchetHeader (message: Uint8Array): RatchetHeader {
  if (message.byteLength < RATCHET_OVERHEAD_BYTES) throw wormholeError('WORMHOLE_TRUNCATED', `ratchet message of ${message.byteLength} bytes is shorter than its header and tag`)
  const r = new Reader(message.subarray(0, RATCHET_HEADER_BYTES), 'ratchet message')
  const v = r.u8()
  if (v !== RATCHET_MESSAGE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `ratchet message version ${v} is not supported`)
  return { dh: r.bytes(32), pn: r.u32(), n: r.u32() }
}

/** One double-ratchet session state. */
export class Ratchet {
  private readonly limits: Required<RatchetLimits>
  private dhs: X25519KeyPair
  private dhr: Uint8Array | undefined
  private rk: Uint8Array
  private cks: Uint8Array | undefined
  private ckr: Uint8Array | undefined
  private ns = 0
  private nr = 0
  private pn = 0
  /** `hex(dh):n` → message key, oldest first. */
  private skipped = new Map<string, Uint8Array>()
  /** Hex of remote ratchet keys of finished receiving chains, oldest first. */
  private previous: string[] = []

  private constructor (private readonly rng: Rng, limits: RatchetLimits, dhs: X25519KeyPair, rk: Uint8Array) {
    this.limits = resolve(limits)
    this.dhs = dhs
    this.rk = rk
  }

  /** The initiator (Alice, §3.3): SK from X3DH and the responder's signed prekey. Copies `sk`. */
  static initAlice (sk: Uint8Array, bobRatchetKey: Uint8Array, rng: Rng, limits: RatchetLimits = {}): Ratchet {
    const dhs = X25519KeyPair.generate(rng)
    const r = new Ratchet(rng, limits, dhs, new Uint8Array(32))
    const [rk, cks] = kdfRk(sk, dhs.dh(bobRatchetKey))
    r.rk = rk
    r.cks = cks
    r.dhr = Uint8Array.from(bobRatchetKey)
    return r
  }

  /** The responder (Bob, §3.3): SK and the signed prekey pair (its private bytes are copied). */
  static initBob (sk: Uint8Array, bobRatchetPair: X25519KeyPair, rng: Rng, limits: RatchetLimits = {}): Ratchet {
    return new Ratchet(rng, limits, X25519KeyPair.fromPrivate(bobRatchetPair.privateKey), Uint8Array.from(sk))
  }

  /** Whether this side can send (the responder can once the first message arrived). */
  get canSend (): boolean { return this.cks !== undefined }
  /** Our current ratchet public key. */
  get ratchetPublicKey (): Uint8Array { return this.dhs.publicKey }
  /** Skipped message keys held. */
  get skippedKeys (): number { return this.skipped.size }
  /** Messages sent in the current sending chain. */
  get sendCount (): number { return this.ns }

  /** RatchetEncrypt (§3.4): the message bytes; the chain key advances (the old one is wiped). */
  encrypt (plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
    if (this.cks === undefined) throw wormholeError('WORMHOLE_NO_SESSION', 'this session cannot send before the peer\'s first message arrived')
    if (this.ns >= MAX_U32) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'sending chain exhausted')
    const [ck, mk] = kdfCk(this.cks)
    this.cks.fill(0)
    this.cks = ck
    const header = new Writer(RATCHET_HEADER_BYTES).u8(RATCHET_MESSAGE_VERSION).bytes(this.dhs.publicKey).u32(this.pn).u32(this.ns).finish()
    this.ns++
    try {
      const sealed = seal(mk, plaintext, concatAd(ad, header))
      const out = new Uint8Array(header.byteLength + sealed.byteLength)
      out.set(header, 0)
      out.set(sealed, header.byteLength)
      return out
    } finally {
      mk.fill(0)
    }
  }

  /**
   * RatchetDecrypt (§3.5). Throws WORMHOLE_DECRYPT_FAILED, WORMHOLE_REPLAY,
   * WORMHOLE_TOO_MANY_SKIPPED, WORMHOLE_BAD_KEY or a decode error; the state is then unchanged.
   */
  decrypt (message: Uint8Array, ad: Uint8Array): Uint8Array {
    const h = parseRatchetHeader(message)
    const header = message.subarray(0, RATCHET_HEADER_BYTES)
    const body = message.subarray(RATCHET_HEADER_BYTES)
    const fullAd = concatAd(ad, header)
    const dhHex = toHex(h.dh)

    // TrySkippedMessageKeys
    const sid = skipId(dhHex, h.n)
    const stored = this.skipped.get(sid)
    if (stored !== undefined) {
      const pt = open(stored, body, fullAd)
      this.skipped.delete(sid)
      stored.fill(0)
      return pt
    }
    if (this.dhr !== undefined && bytesEqual(h.dh, this.dhr) && h.n < this.nr) {
      throw wormholeError('WORMHOLE_REPLAY', `message ${h.n} of this chain was already received (or its key was dropped)`)
    }
    if (this.previous.includes(dhHex)) throw wormholeError('WORMHOLE_REPLAY', 'message of an older chain was already received (or its key was dropped)')

    // Draft: every new secret is tracked, so a failure wipes it and a success wipes what it replaced.
    const fresh: Uint8Array[] = []
    const newSkipped: Array<[string, Uint8Array]> = []
    let dhs = this.dhs
    let dhr = this.dhr
    let rk = this.rk
    let cks = this.cks
    let ckr = this.ckr
    let ns = this.ns
    let nr = this.nr
    let pn = this.pn
    let newDhs: X25519KeyPair | undefined
    let mk: Uint8Array | undefined
    const skip = (until: number): void => {
      if (ckr === undefined || dhr === undefined) return
      if (until - nr > this.limits.maxSkip) throw wormholeError('WORMHOLE_TOO_MANY_SKIPPED', `message is ${until - nr} ahead of its chain; at most ${this.limits.maxSkip} are skipped`)
      const hex = toHex(dhr)
      while (nr < until) {
        const [ck, key] = kdfCk(ckr)
        fresh.push(ck)
        ckr = ck
        newSkipped.push([skipId(hex, nr), key])
        nr++
      }
    }
    let ratchetStep = false
    try {
      if (dhr === undefined || !bytesEqual(h.dh, dhr)) {
        skip(h.pn)
        // DHRatchet, first half: the receiving chain. The second half (our new key pair and
        // sending chain) waits until the message authenticates: a forged header costs no keygen.
        pn = ns
        ns = 0
        nr = 0
        dhr = h.dh
        const [rk1, ck1] = kdfRk(rk, dhs.dh(dhr))
        fresh.push(rk1, ck1)
        rk = rk1
        ckr = ck1
        ratchetStep = true
      }
      skip(h.n)
      const [ck, key] = kdfCk(ckr as Uint8Array)
      fresh.push(ck)
      ckr = ck
      mk = key
      nr++
      const pt = open(mk, body, fullAd)
      if (ratchetStep) {
        newDhs = X25519KeyPair.generate(this.rng)
        const [rk2, ck2] = kdfRk(rk, newDhs.dh(dhr))
        fresh.push(rk2, ck2)
        rk = rk2
        cks = ck2
        dhs = newDhs
      }

      // Commit.
      const keep = new Set([rk, cks, ckr])
      for (const b of fresh) if (!keep.has(b)) b.fill(0)
      for (const old of [this.rk, this.cks, this.ckr]) if (old !== undefined && !keep.has(old)) old.fill(0)
      if (dhs !== this.dhs) this.dhs.destroy()
      if (this.dhr !== undefined && dhr !== this.dhr) {
        this.previous.push(toHex(this.dhr))
        while (this.previous.length > this.limits.maxPreviousChains) this.previous.shift()
      }
      this.dhs = dhs
      this.dhr = dhr === h.dh ? Uint8Array.from(h.dh) : dhr
      this.rk = rk
      this.cks = cks
      this.ckr = ckr
      this.ns = ns
      this.nr = nr
      this.pn = pn
      for (const [id, key2] of newSkipped) this.skipped.set(id, key2)
      this.evict()
      return pt
    } catch (err) {
      for (const b of fresh) b.fill(0)
      for (const [, key2] of newSkipped) key2.fill(0)
      newDhs?.destroy()
      throw err
    } finally {
      mk?.fill(0)
    }
  }

  private evict (): void {
    while (this.skipped.size > this.limits.maxSkippedKeys) {
      const first = this.skipped.keys().next().value as string
      this.skipped.get(first)?.fill(0)
      this.skipped.delete(first)
    }
  }

  /** Serialised state (secret: the caller stores it sealed and wipes the bytes). */
  encode (): Uint8Array {
    const w = new Writer(256 + this.skipped.size * 68 + this.previous.length * 32)
    w.u8(STATE_VERSION).bytes(this.dhs.privateKey)
    w.u8((this.dhr !== undefined ? 1 : 0) | (this.cks !== undefined ? 2 : 0) | (this.ckr !== undefined ? 4 : 0))
    if (this.dhr !== undefined) w.bytes(this.dhr)
    w.bytes(this.rk)
    if (this.cks !== undefined) w.bytes(this.cks)
    if (this.ckr !== undefined) w.bytes(this.ckr)
    w.u32(this.ns).u32(this.nr).u32(this.pn)
    w.u16(this.skipped.size)
    for (const [id, key] of this.skipped) {
      const [hex, n] = id.split(':')
      w.bytes(fromHex(hex)).u32(Number(n)).bytes(key)
    }
    w.u8(this.previous.length)
    for (const hex of this.previous) w.bytes(fromHex(hex))
    return w.finish()
  }

  /** Restores what encode() wrote, read from `r`. */
  static decodeFrom (r: Reader, rng: Rng, limits: RatchetLimits = {}): Ratchet {
    const v = r.u8()
    if (v !== STATE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `ratchet state version ${v} is not supported`)
    const priv = r.bytes(32)
    const flags = r.u8()
    if ((flags & ~7) !== 0) throw wormholeError('WORMHOLE_MALFORMED', 'ratchet state has unknown flags')
    const dhr = (flags & 1) !== 0 ? r.bytes(32) : undefined
    const rk = r.bytes(32)
    const s = new Ratchet(rng, limits, X25519KeyPair.fromPrivate(priv), rk)
    priv.fill(0)
    s.dhr = dhr
    if ((flags & 2) !== 0) s.cks = r.bytes(32)
    if ((flags & 4) !== 0) s.ckr = r.bytes(32)
    s.ns = r.u32()
    s.nr = r.u32()
    s.pn = r.u32()
    const nSkipped = r.u16()
    if (nSkipped > Math.max(s.limits.maxSkippedKeys, RATCHET_DEFAULTS.maxSkippedKeys)) throw wormholeError('WORMHOLE_MALFORMED', 'ratchet state holds more skipped keys than allowed')
    for (let i = 0; i < nSkipped; i++) {
      const dh = r.bytes(32)
      const n = r.u32()
      s.skipped.set(skipId(toHex(dh), n), r.bytes(32))
    }
    const nPrev = r.u8()
    for (let i = 0; i < nPrev; i++) s.previous.push(toHex(r.bytes(32)))
    s.evict()
    return s
  }

  /** A copy with secrets of its own (for trial decryption against several states). */
  clone (): Ratchet {
    const bytes = this.encode()
    try { return Ratchet.decodeFrom(new Reader(bytes, 'ratchet state'), this.rng, this.limits) } finally { bytes.fill(0) }
  }

  /** Wipes every key. */
  destroy (): void {
    this.dhs.destroy()
    this.rk.fill(0)
    this.cks?.fill(0)
    this.ckr?.fill(0)
    for (const k of this.skipped.values()) k.fill(0)
    this.skipped.clear()
    this.cks = undefined
    this.ckr = undefined
  }
}
