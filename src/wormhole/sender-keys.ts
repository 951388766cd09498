/**
 * Sender keys for groups (the construction of Signal's group messaging): every member has, per
 * group, a chain key and an Ed25519 signing key of its own, and hands both to the other members
 * over the pairwise sessions (a distribution message). A group message is then encrypted once,
 * with the next key of the sender's chain, and signed:
 *
 *   KDF_CK(ck)  mk = HMAC-SHA256(ck, 0x01), ck' = HMAC-SHA256(ck, 0x02)         (as the ratchet)
 *   key [32] || nonce [12] = HKDF-SHA256(ikm = mk, salt = 0x00*32, info = "OHT wormhole sender key v1 message")
 *
 * Group message, version 1:
 * ```
 *  0       1               17          21            25               29
 *  | ver=1 | group id [16] | epoch u32 | chainId u32 | iteration u32  | ciphertext | tag [16] | sig [64] |
 * ```
 * AEAD associated data = bytes 0..29 || sender's identity key || message id;
 * sig = Ed25519(chain's signing key, "oht/wormhole/group-message/v1\0" || sender || message id ||
 * every byte before sig). Members check the signature first: a member holding the chain key can
 * decrypt but cannot forge another member's messages.
 *
 * Distribution, version 1:
 * ```
 *  | ver=1 | group id [16] | chainId u32 | iteration u32 | chain key [32] | signing public key [32] |
 * ```
 * Chains move forward only; keys skipped by out-of-order messages are kept (bounded like the
 * ratchet's), a message whose key is gone is WORMHOLE_REPLAY. When a member leaves, everyone
 * makes a new chain and distributes it to the remaining members only (groups.ts).
 */
import type { Rng } from '../core/rng.ts'
import { concatBytes } from '../core/bytes.ts'
import { identityFromSeed, verifySignature, type Identity } from '../crypto/index.ts'
import { wormholeError } from './errors.ts'
import { aeadKeyFrom, aeadOpen, aeadSeal, hmacSha256 } from './primitives.ts'
import { checkSize, label, Reader, Writer } from './wire.ts'

export const SENDER_KEY_VERSION = 1
export const GROUP_ID_BYTES = 16
export const GROUP_MESSAGE_HEADER_BYTES = 29
export const GROUP_MESSAGE_OVERHEAD_BYTES = GROUP_MESSAGE_HEADER_BYTES + 16 + 64
export const DISTRIBUTION_BYTES = 1 + 16 + 4 + 4 + 32 + 32
const MESSAGE_INFO = label('OHT wormhole sender key v1 message')
const SIG_TAG = label('oht/wormhole/group-message/v1\0')
const ZERO_SALT = new Uint8Array(32)
const CK_MESSAGE = Uint8Array.of(0x01)
const CK_NEXT = Uint8Array.of(0x02)
const STATE_VERSION = 1

export interface SenderKeyLimits {
  /** Keys skipped in one step at most. @default 1000 */
  maxSkip?: number
  /** Skipped keys kept per chain. @default 2000 */
  maxSkippedKeys?: number
}

export interface SenderKeyDistribution {
  groupId: Uint8Array
  chainId: number
  iteration: number
  chainKey: Uint8Array
  signingPublicKey: Uint8Array
}

export function encodeDistribution (d: SenderKeyDistribution): Uint8Array {
  return new Writer(DISTRIBUTION_BYTES).u8(SENDER_KEY_VERSION).bytes(d.groupId).u32(d.chainId).u32(d.iteration).bytes(d.chainKey).bytes(d.signingPublicKey).finish()
}

export function decodeDistribution (bytes: Uint8Array): SenderKeyDistribution {
  checkSize(bytes, DISTRIBUTION_BYTES, 'sender-key distribution')
  const r = new Reader(bytes, 'sender-key distribution')
  const v = r.u8()
  if (v !== SENDER_KEY_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `sender-key distribution version ${v} is not supported`)
  const d = { groupId: r.bytes(16), chainId: r.u32(), iteration: r.u32(), chainKey: r.bytes(32), signingPublicKey: r.bytes(32) }
  r.end()
  return d
}

export interface GroupMessageHeader {
  groupId: Uint8Array
  epoch: number
  chainId: number
  iteration: number
}

export function parseGroupMessage (bytes: Uint8Array): GroupMessageHeader {
  if (bytes.byteLength < GROUP_MESSAGE_OVERHEAD_BYTES) throw wormholeError('WORMHOLE_TRUNCATED', 'group message shorter than its header, tag and signature')
  const r = new Reader(bytes.subarray(0, GROUP_MESSAGE_HEADER_BYTES), 'group message')
  const v = r.u8()
  if (v !== SENDER_KEY_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `group message version ${v} is not supported`)
  return { groupId: r.bytes(16), epoch: r.u32(), chainId: r.u32(), iteration: r.u32() }
}

function kdfCk (ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(ck, CK_NEXT), hmacSha256(ck, CK_MESSAGE)]
}

/** One member's sender-key chain: our own (can sign) or another member's (verifies). */
export class SenderKeyChain {
  readonly chainId: number
  private iteration: number
  private chainKey: Uint8Array
  readonly signingPublicKey: Uint8Array
  private readonly signer: Identity | undefined
  private readonly skipped = new Map<number, Uint8Array>()
  private readonly maxSkip: number
  private readonly maxSkippedKeys: number

  private constructor (chainId: number, iteration: number, chainKey: Uint8Array, signingPublicKey: Uint8Array, signer: Identity | undefined, limits: SenderKeyLimits) {
    this.chainId = chainId
    this.iteration = iteration
    this.chainKey = chainKey
    this.signingPublicKey = signingPublicKey
    this.signer = signer
    this.maxSkip = limits.maxSkip ?? 1000
    this.maxSkippedKeys = limits.maxSkippedKeys ?? 2000
  }

  /** A new chain of our own. */
  static create (rng: Rng, limits: SenderKeyLimits = {}): SenderKeyChain {
    const seed = rng.bytes(32)
    try {
      const signer = identityFromSeed(seed)
      return new SenderKeyChain(rng.int(2 ** 32), 0, rng.bytes(32), signer.publicKey, signer, limits)
    } finally {
      seed.fill(0)
    }
  }

  /** Another member's chain from their distribution (copied). */
  static fromDistribution (d: SenderKeyDistribution, limits: SenderKeyLimits = {}): SenderKeyChain {
    return new SenderKeyChain(d.chainId, d.iteration, Uint8Array.from(d.chainKey), Uint8Array.from(d.signingPublicKey), undefined, limits)
  }

  get own (): boolean { return this.signer !== undefined }
  get nextIteration (): number { return this.iteration }

  /** What the other members need to read our next messages. */
  distribution (groupId: Uint8Array): SenderKeyDistribution {
    return { groupId: Uint8Array.from(groupId), chainId: this.chainId, iteration: this.iteration, chainKey: Uint8Array.from(this.chainKey), signingPublicKey: this.signingPublicKey }
  }

  /** Encrypts and signs one group message with our chain's next key (the chain advances). */
  encrypt (header: { groupId: Uint8Array, epoch: number }, sender: Uint8Array, messageId: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.signer === undefined) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'only our own chain encrypts')
    if (this.iteration >= 0xffffffff) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'sender-key chain exhausted')
    const head = new Writer(GROUP_MESSAGE_HEADER_BYTES).u8(SENDER_KEY_VERSION).bytes(header.groupId).u32(header.epoch).u32(this.chainId).u32(this.iteration).finish()
    const [ck, mk] = kdfCk(this.chainKey)
    this.chainKey.fill(0)
    this.chainKey = ck
    this.iteration++
    const { key, nonce } = aeadKeyFrom(mk, ZERO_SALT, MESSAGE_INFO)
    mk.fill(0)
    try {
      const body = concatBytes(head, aeadSeal(key, nonce, plaintext, concatBytes(head, sender, messageId)))
      return concatBytes(body, this.signer.sign(concatBytes(SIG_TAG, sender, messageId, body)))
    } finally {
      key.fill(0)
      nonce.fill(0)
    }
  }

  /**
   * Verifies and decrypts a group message of this chain. WORMHOLE_BAD_SIGNATURE,
   * WORMHOLE_DECRYPT_FAILED, WORMHOLE_REPLAY, WORMHOLE_TOO_MANY_SKIPPED; the chain is unchanged
   * on any error.
   */
  decrypt (bytes: Uint8Array, sender: Uint8Array, messageId: Uint8Array): Uint8Array {
    const h = parseGroupMessage(bytes)
    if (h.chainId !== this.chainId) throw wormholeError('WORMHOLE_NO_SENDER_KEY', 'group message of another chain')
    const body = bytes.subarray(0, bytes.byteLength - 64)
    if (!verifySignature(this.signingPublicKey, concatBytes(SIG_TAG, sender, messageId, body), bytes.subarray(bytes.byteLength - 64))) {
      throw wormholeError('WORMHOLE_BAD_SIGNATURE', 'group message signature does not verify for this member')
    }
    const head = body.subarray(0, GROUP_MESSAGE_HEADER_BYTES)
    const sealed = body.subarray(GROUP_MESSAGE_HEADER_BYTES)
    const ad = concatBytes(head, sender, messageId)
    const openWith = (mk: Uint8Array): Uint8Array => {
      const { key, nonce } = aeadKeyFrom(mk, ZERO_SALT, MESSAGE_INFO)
      try { return aeadOpen(key, nonce, sealed, ad) } finally { key.fill(0); nonce.fill(0) }
    }
    if (h.iteration < this.iteration) {
      const mk = this.skipped.get(h.iteration)
      if (mk === undefined) throw wormholeError('WORMHOLE_REPLAY', `group message ${h.iteration} was already received (or its key was dropped)`)
      const pt = openWith(mk)
      mk.fill(0)
      this.skipped.delete(h.iteration)
      return pt
    }
    if (h.iteration - this.iteration > this.maxSkip) throw wormholeError('WORMHOLE_TOO_MANY_SKIPPED', `group message is ${h.iteration - this.iteration} ahead of its chain`)
    const fresh: Uint8Array[] = []
    const newSkipped: Array<[number, Uint8Array]> = []
    let ck = this.chainKey
    let it = this.iteration
    while (it < h.iteration) {
      const [next, mk] = kdfCk(ck)
      fresh.push(next)
      newSkipped.push([it, mk])
      ck = next
      it++
    }
    const [next, mk] = kdfCk(ck)
    fresh.push(next)
    try {
      const pt = openWith(mk)
      for (const b of fresh) if (b !== next) b.fill(0)
      this.chainKey.fill(0)
      this.chainKey = next
      this.iteration = h.iteration + 1
      for (const [i, k] of newSkipped) this.skipped.set(i, k)
      while (this.skipped.size > this.maxSkippedKeys) {
        const first = this.skipped.keys().next().value as number
        this.skipped.get(first)?.fill(0)
        this.skipped.delete(first)
      }
      return pt
    } catch (err) {
      for (const b of fresh) b.fill(0)
      for (const [, k] of newSkipped) k.fill(0)
      throw err
    } finally {
      mk.fill(0)
    }
  }

  encode (): Uint8Array {
    const w = new Writer(128 + this.skipped.size * 36).u8(STATE_VERSION).u32(this.chainId).u32(this.iteration).bytes(this.chainKey).bytes(this.signingPublicKey)
    if (this.signer !== undefined) w.u8(1).bytes(this.signer.seed)
    else w.u8(0)
    w.u16(this.skipped.size)
    for (const [i, k] of this.skipped) w.u32(i).bytes(k)
    return w.finish()
  }

  static decodeFrom (r: Reader, limits: SenderKeyLimits = {}): SenderKeyChain {
    const v = r.u8()
    if (v !== STATE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `sender-key state version ${v} is not supported`)
    const chainId = r.u32()
    const iteration = r.u32()
    const chainKey = r.bytes(32)
    const signingPublicKey = r.bytes(32)
    const own = r.u8()
    let signer: Identity | undefined
    if (own === 1) {
      const seed = r.bytes(32)
      signer = identityFromSeed(seed)
      seed.fill(0)
    } else if (own !== 0) {
      throw wormholeError('WORMHOLE_MALFORMED', 'sender-key state has a bad flag')
    }
    const c = new SenderKeyChain(chainId, iteration, chainKey, signingPublicKey, signer, limits)
    const n = r.u16()
    if (n > Math.max(c.maxSkippedKeys, 2000)) throw wormholeError('WORMHOLE_MALFORMED', 'sender-key state holds too many skipped keys')
    for (let i = 0; i < n; i++) c.skipped.set(r.u32(), r.bytes(32))
    return c
  }

  destroy (): void {
    this.chainKey.fill(0)
    for (const k of this.skipped.values()) k.fill(0)
    this.skipped.clear()
    this.signer?.destroy()
  }
}
