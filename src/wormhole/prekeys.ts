/**
 * Prekey bundles (X3DH §3.2) and the private prekeys behind them.
 *
 * A bundle is what a person publishes so others can start a session while they are offline:
 * a signed prekey (X25519, rotated weekly) and a bounded list of one-time prekeys. It travels as
 * a signed mutable OHT record under key SHA-256(identity key || "wormhole/prekeys/v1"), so
 * whoever holds the person's card can find it (prekeyBundleRecord / prekeyBundleKey).
 *
 * Bundle bytes, version 1:
 * ```
 *  0       1              9        13                21         53
 *  | ver=1 | issuedAt u64 | spkId  | spkCreatedAt u64 | spk [32] | nOpk u8 (<= 100) | (opkId u32 | opk [32]) * nOpk | sig [64] |
 * ```
 * sig = Ed25519(identity, "oht/wormhole/prekey-bundle/v1\0" || every byte before sig): one
 * signature covers the signed prekey (X3DH's Sig(IK, Encode(SPK))) and the one-time prekeys, so a
 * bundle verifies on its own, whatever carried it.
 *
 * The private side (PrekeyStore) keeps every signed prekey until `signedPrekeyKeepMs` after it
 * was retired (messages wait up to 30 days in mailboxes, so the default keeps 31 days), and tops
 * the one-time prekeys up to `oneTimePrekeys`.
 *
 * One-time prekey reuse. No server hands each sender a different one-time prekey: two senders
 * who fetched the same bundle may pick the same one (each picks at random among those listed).
 * The first initial message that uses it marks it used; the key is kept `oneTimePrekeyGraceMs`
 * longer (3 days by default) so a second sender's message still decrypts, and the next bundle
 * no longer lists it. The cost: for that window, whoever takes the device's state learns the
 * one-time key of both sessions, and those first messages are protected as X3DH without a
 * one-time prekey (DH1-DH3: the signed prekey, still forward secret once it is deleted). A first
 * message naming a one-time prekey deleted after its grace fails with WORMHOLE_UNKNOWN_PREKEY
 * (the sender's retries then fetch a fresh bundle). Replays of a first message are refused:
 * every accepted ephemeral key is remembered while its signed prekey exists.
 */
import type { Rng } from '../core/rng.ts'
import { concatBytes, toHex } from '../core/bytes.ts'
import { DAY } from '../core/clock.ts'
import { verifySignature } from '../crypto/index.ts'
import { mutableKey, signMutable, type MutableRecord } from '../oht/index.ts'
import { wormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import { X25519KeyPair } from './primitives.ts'
import { checkSize, label, Reader, Writer } from './wire.ts'

export const BUNDLE_VERSION = 1
export const MAX_ONE_TIME_PREKEYS = 100
export const MAX_BUNDLE_BYTES = 1 + 8 + 4 + 8 + 32 + 1 + MAX_ONE_TIME_PREKEYS * 36 + 64
/** Salt of the bundle's mutable OHT record. */
export const PREKEY_RECORD_SALT = label('wormhole/prekeys/v1')
const BUNDLE_SIG_TAG = label('oht/wormhole/prekey-bundle/v1\0')
/** First messages remembered per signed prekey (replay refusal); a full one is retired at once. */
export const MAX_SEEN_BASE_KEYS = 16384
const SEEN_ID_BYTES = 16
const MAX_SIGNED_PREKEYS = 64
const MAX_STORED_ONE_TIME = 1024
const STATE_VERSION = 1
export const MAX_PREKEY_STATE_BYTES = 16 * 1024 * 1024

export interface PrekeyBundle {
  readonly version: number
  readonly issuedAt: number
  readonly signedPrekey: { readonly id: number, readonly createdAt: number, readonly publicKey: Uint8Array }
  readonly oneTimePrekeys: ReadonlyArray<{ readonly id: number, readonly publicKey: Uint8Array }>
  readonly signature: Uint8Array
  readonly bytes: Uint8Array
}

/**
 * Parses a bundle and verifies it was signed by `identityPublicKey` (from the contact card).
 * Errors: WORMHOLE_TOO_LARGE, WORMHOLE_TRUNCATED, WORMHOLE_BAD_VERSION, WORMHOLE_MALFORMED,
 * WORMHOLE_BAD_SIGNATURE.
 */
export function decodePrekeyBundle (bytes: Uint8Array, identityPublicKey: Uint8Array): PrekeyBundle {
  checkSize(bytes, MAX_BUNDLE_BYTES, 'prekey bundle')
  const r = new Reader(bytes, 'prekey bundle')
  const version = r.u8()
  if (version !== BUNDLE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `prekey bundle version ${version} is not supported`)
  const issuedAt = r.u64()
  const spkId = r.u32()
  const createdAt = r.u64()
  const spk = r.bytes(32)
  const n = r.u8()
  if (n > MAX_ONE_TIME_PREKEYS) throw wormholeError('WORMHOLE_MALFORMED', `prekey bundle lists ${n} one-time prekeys, over ${MAX_ONE_TIME_PREKEYS}`)
  const oneTimePrekeys: Array<{ id: number, publicKey: Uint8Array }> = []
  const ids = new Set<number>()
  for (let i = 0; i < n; i++) {
    const id = r.u32()
    if (ids.has(id)) throw wormholeError('WORMHOLE_MALFORMED', `prekey bundle lists one-time prekey ${id} twice`)
    ids.add(id)
    oneTimePrekeys.push({ id, publicKey: r.bytes(32) })
  }
  const signed = r.offset
  const signature = r.bytes(64)
  r.end()
  if (!verifySignature(identityPublicKey, concatBytes(BUNDLE_SIG_TAG, bytes.subarray(0, signed)), signature)) {
    throw wormholeError('WORMHOLE_BAD_SIGNATURE', 'prekey bundle signature does not verify against the contact\'s identity key')
  }
  return { version, issuedAt, signedPrekey: { id: spkId, createdAt, publicKey: spk }, oneTimePrekeys, signature, bytes: Uint8Array.from(bytes) }
}

/** The OHT key under which `identityPublicKey` publishes its bundle. */
export function prekeyBundleKey (identityPublicKey: Uint8Array): Uint8Array {
  return mutableKey(identityPublicKey, PREKEY_RECORD_SALT)
}

/**
 * The signed mutable OHT record that publishes `bundle`. `seq` defaults to the bundle's issuedAt
 * (strictly increasing, and it survives a restore from the master key where a counter would not).
 */
export function prekeyBundleRecord (identity: WormholeIdentity, bundle: PrekeyBundle, options: { ttlMs: number, seq?: number }): MutableRecord {
  return signMutable(identity.signer, { salt: PREKEY_RECORD_SALT, seq: options.seq ?? bundle.issuedAt, ttlMs: options.ttlMs, value: bundle.bytes })
}

export interface PrekeyInit {
  /** A new signed prekey replaces the current one after this long. @default 604800000 (7 days) */
  signedPrekeyRotateMs?: number
  /** A retired signed prekey is deleted this long after it was replaced. @default 2678400000 (31 days) */
  signedPrekeyKeepMs?: number
  /** One-time prekeys listed in the bundle (at most 100). @default 32 */
  oneTimePrekeys?: number
  /** A used one-time prekey is deleted this long after its first use. @default 259200000 (3 days) */
  oneTimePrekeyGraceMs?: number
}

export const PREKEY_DEFAULTS = {
  signedPrekeyRotateMs: 7 * DAY,
  signedPrekeyKeepMs: 31 * DAY,
  oneTimePrekeys: 32,
  oneTimePrekeyGraceMs: 3 * DAY
} as const

interface SignedPrekey { id: number, pair: X25519KeyPair, createdAt: number, retiredAt?: number, seen: Set<string> }
interface OneTimePrekey { id: number, pair: X25519KeyPair, usedAt?: number }

function resolveInit (init: PrekeyInit): Required<PrekeyInit> {
  const o = { ...PREKEY_DEFAULTS, ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) } as Required<PrekeyInit>
  if (!Number.isInteger(o.oneTimePrekeys) || o.oneTimePrekeys < 0 || o.oneTimePrekeys > MAX_ONE_TIME_PREKEYS) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `oneTimePrekeys must be 0..${MAX_ONE_TIME_PREKEYS}`)
  for (const k of ['signedPrekeyRotateMs', 'signedPrekeyKeepMs', 'oneTimePrekeyGraceMs'] as const) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 0) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `${k} must be a non-negative integer of ms`)
  }
  return o
}

function seenId (baseKey: Uint8Array): string { return toHex(baseKey.subarray(0, SEEN_ID_BYTES)) }

/**
 * The private prekeys of one identity. Not thread-safe on its own: the session manager calls it
 * under its lock and persists `encode()` after every change.
 */
export class PrekeyStore {
  private readonly init: Required<PrekeyInit>
  private spks: SignedPrekey[] = []
  private opks: OneTimePrekey[] = []
  private nextId = 0
  private issuedAt = 0
  private cached: PrekeyBundle | undefined

  private constructor (private readonly identity: WormholeIdentity, private readonly rng: Rng, init: PrekeyInit) {
    this.init = resolveInit(init)
  }

  /** Fresh prekeys: one signed prekey and the one-time prekeys. */
  static create (identity: WormholeIdentity, init: PrekeyInit, now: number, rng: Rng): PrekeyStore {
    const s = new PrekeyStore(identity, rng, init)
    // A random start: a restore from the master key on another device never reuses old ids.
    s.nextId = rng.int(2 ** 31)
    s.maintain(now)
    return s
  }

  private newId (): number {
    const id = this.nextId
    this.nextId = (this.nextId + 1) % 2 ** 32
    return id
  }

  private get current (): SignedPrekey | undefined {
    for (let i = this.spks.length - 1; i >= 0; i--) if (this.spks[i].retiredAt === undefined) return this.spks[i]
    return undefined
  }

  /**
   * Rotates the signed prekey when due, deletes expired keys and tops up one-time prekeys.
   * Returns true when the published bundle changed (publish it again).
   */
  maintain (now: number): boolean {
    let changed = false
    const cur = this.current
    if (cur === undefined || now - cur.createdAt >= this.init.signedPrekeyRotateMs || cur.seen.size >= MAX_SEEN_BASE_KEYS) {
      if (cur !== undefined) cur.retiredAt = now
      this.spks.push({ id: this.newId(), pair: X25519KeyPair.generate(this.rng), createdAt: now, seen: new Set() })
      changed = true
    }
    for (const s of this.spks) {
      if (s.retiredAt !== undefined && now - s.retiredAt >= this.init.signedPrekeyKeepMs) { s.pair.destroy(); s.seen.clear() }
    }
    this.spks = this.spks.filter(s => !(s.retiredAt !== undefined && now - s.retiredAt >= this.init.signedPrekeyKeepMs))
    // Bound the list even under a clock that jumps: the oldest retired go first.
    while (this.spks.length > MAX_SIGNED_PREKEYS) { this.spks[0].pair.destroy(); this.spks.shift() }
    const before = this.opks.length
    for (const o of this.opks) if (o.usedAt !== undefined && now - o.usedAt >= this.init.oneTimePrekeyGraceMs) o.pair.destroy()
    this.opks = this.opks.filter(o => !(o.usedAt !== undefined && now - o.usedAt >= this.init.oneTimePrekeyGraceMs))
    if (this.opks.length !== before) changed = true
    let unused = this.opks.filter(o => o.usedAt === undefined).length
    while (unused < this.init.oneTimePrekeys && this.opks.length < MAX_STORED_ONE_TIME) {
      this.opks.push({ id: this.newId(), pair: X25519KeyPair.generate(this.rng) })
      unused++
      changed = true
    }
    if (changed || this.cached === undefined) {
      this.issuedAt = Math.max(Math.floor(now), this.issuedAt + 1)
      this.cached = undefined
      changed = true
    }
    return changed
  }

  /** The bundle to publish: the current signed prekey and the unused one-time prekeys. */
  bundle (): PrekeyBundle {
    if (this.cached !== undefined) return this.cached
    const spk = this.current
    if (spk === undefined) throw wormholeError('WORMHOLE_CLOSED', 'no signed prekey: call maintain() first')
    const opks = this.opks.filter(o => o.usedAt === undefined).slice(0, MAX_ONE_TIME_PREKEYS)
    const w = new Writer(MAX_BUNDLE_BYTES).u8(BUNDLE_VERSION).u64(this.issuedAt).u32(spk.id).u64(spk.createdAt).bytes(spk.pair.publicKey).u8(opks.length)
    for (const o of opks) w.u32(o.id).bytes(o.pair.publicKey)
    const body = w.finish()
    const signature = this.identity.sign(concatBytes(BUNDLE_SIG_TAG, body))
    this.cached = decodePrekeyBundle(concatBytes(body, signature), this.identity.publicKey)
    return this.cached
  }

  /** The signed prekey `id`, current or retired but kept. */
  signedPrekey (id: number): X25519KeyPair | undefined {
    return this.spks.find(s => s.id === id)?.pair
  }

  /** The one-time prekey `id`, unused or within its grace after first use. */
  oneTimePrekey (id: number): X25519KeyPair | undefined {
    return this.opks.find(o => o.id === id)?.pair
  }

  /** True when a first message with this ephemeral key was already accepted under `spkId`. */
  seen (spkId: number, baseKey: Uint8Array): boolean {
    return this.spks.find(s => s.id === spkId)?.seen.has(seenId(baseKey)) ?? false
  }

  /** Whether `spkId` can take one more first message (false once its replay memory is full). */
  accepts (spkId: number): boolean {
    const s = this.spks.find(x => x.id === spkId)
    return s !== undefined && s.seen.size < MAX_SEEN_BASE_KEYS
  }

  /** Records an accepted first message: its ephemeral key, and the first use of its one-time prekey. */
  accepted (spkId: number, baseKey: Uint8Array, opkId: number | undefined, now: number): void {
    const s = this.spks.find(x => x.id === spkId)
    if (s === undefined) throw wormholeError('WORMHOLE_UNKNOWN_PREKEY', `signed prekey ${spkId} is gone`)
    s.seen.add(seenId(baseKey))
    if (opkId !== undefined) {
      const o = this.opks.find(x => x.id === opkId)
      if (o !== undefined && o.usedAt === undefined) {
        o.usedAt = now
        // The next bundle lists it no more: a new issuedAt, so its record's seq goes up.
        this.issuedAt = Math.max(Math.floor(now), this.issuedAt + 1)
        this.cached = undefined
      }
    }
  }

  /** Serialised private state (secret: the store seals it). */
  encode (): Uint8Array {
    const w = new Writer(4096).u8(STATE_VERSION).u32(this.nextId).u64(this.issuedAt).u8(this.spks.length)
    for (const s of this.spks) {
      w.u32(s.id).bytes(s.pair.privateKey).u64(s.createdAt).u8(s.retiredAt === undefined ? 0 : 1)
      if (s.retiredAt !== undefined) w.u64(s.retiredAt)
      w.u32(s.seen.size)
      for (const hex of s.seen) w.bytes(Buffer.from(hex, 'hex'))
    }
    w.u16(this.opks.length)
    for (const o of this.opks) {
      w.u32(o.id).bytes(o.pair.privateKey).u8(o.usedAt === undefined ? 0 : 1)
      if (o.usedAt !== undefined) w.u64(o.usedAt)
    }
    return w.finish()
  }

  /** Restores what encode() wrote. */
  static decode (bytes: Uint8Array, identity: WormholeIdentity, init: PrekeyInit, rng: Rng): PrekeyStore {
    checkSize(bytes, MAX_PREKEY_STATE_BYTES, 'prekey state')
    const r = new Reader(bytes, 'prekey state')
    const v = r.u8()
    if (v !== STATE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `prekey state version ${v} is not supported`)
    const s = new PrekeyStore(identity, rng, init)
    s.nextId = r.u32()
    s.issuedAt = r.u64()
    const nSpk = r.u8()
    if (nSpk > MAX_SIGNED_PREKEYS) throw wormholeError('WORMHOLE_MALFORMED', 'prekey state holds too many signed prekeys')
    for (let i = 0; i < nSpk; i++) {
      const id = r.u32()
      const priv = r.bytes(32)
      const createdAt = r.u64()
      const flags = r.u8()
      const retiredAt = (flags & 1) !== 0 ? r.u64() : undefined
      const nSeen = r.u32()
      if (nSeen > MAX_SEEN_BASE_KEYS) throw wormholeError('WORMHOLE_MALFORMED', 'prekey state remembers too many first messages')
      const seen = new Set<string>()
      for (let j = 0; j < nSeen; j++) seen.add(toHex(r.bytes(SEEN_ID_BYTES)))
      s.spks.push({ id, pair: X25519KeyPair.fromPrivate(priv), createdAt, ...(retiredAt === undefined ? {} : { retiredAt }), seen })
      priv.fill(0)
    }
    const nOpk = r.u16()
    if (nOpk > MAX_STORED_ONE_TIME) throw wormholeError('WORMHOLE_MALFORMED', 'prekey state holds too many one-time prekeys')
    for (let i = 0; i < nOpk; i++) {
      const id = r.u32()
      const priv = r.bytes(32)
      const flags = r.u8()
      const usedAt = (flags & 1) !== 0 ? r.u64() : undefined
      s.opks.push({ id, pair: X25519KeyPair.fromPrivate(priv), ...(usedAt === undefined ? {} : { usedAt }) })
      priv.fill(0)
    }
    r.end()
    return s
  }

  /** Wipes every private prekey. */
  destroy (): void {
    for (const s of this.spks) s.pair.destroy()
    for (const o of this.opks) o.pair.destroy()
    this.spks = []
    this.opks = []
    this.cached = undefined
  }
}
