/**
 * A person's messaging identity, derived from the key tree so one master key restores it:
 *
 *   seed     = deriveChildSeed(master, "wormhole.identity")          (src/crypto key tree)
 *   ed25519  = HKDF-SHA256(ikm = seed, salt = "multiverse/oht wormhole identity v1", info = "ed25519")
 *   x25519   = HKDF-SHA256(ikm = seed, salt = same, info = "x25519")
 *   intro    = HKDF-SHA256(ikm = seed, salt = same, info = "intro-mailbox")
 *
 * Two keys, not one: Ed25519 signs (cards, prekeys, receipts, OHT records) and X25519 agrees
 * keys (X3DH, sealed sender). Signal uses one XEdDSA key for both; node:crypto has no XEdDSA,
 * and converting one key between the two curves would use a single secret in two algorithms.
 * Independent keys from their own HKDF labels avoid that, and the contact card (signed by the
 * Ed25519 key) binds the X25519 key to it. The intro secret is published only in the card: who
 * holds the card can compute where to leave a first message (mailbox.ts).
 *
 * Prekeys and ratchet keys are random, never derived from the master: restoring from the master
 * key gives back the identity and the card, not past sessions (that is forward secrecy).
 */
import { deriveChildSeed, identityFromSeed, type Identity } from '../crypto/index.ts'
import { wormholeError } from './errors.ts'
import { hkdf, X25519KeyPair } from './primitives.ts'
import { label } from './wire.ts'

/** The key-tree path of the messaging identity. */
export const WORMHOLE_IDENTITY_PATH = 'wormhole.identity'
const SALT = label('multiverse/oht wormhole identity v1')

export interface WormholeIdentity {
  /** Ed25519 public key: who this person is. */
  readonly publicKey: Uint8Array
  /** X25519 public key for key agreement. */
  readonly dhPublicKey: Uint8Array
  /** The 32-byte secret that locates first messages to this person (published in the card). */
  readonly introSecret: Uint8Array
  /** Ed25519 signature of `message`. */
  sign(message: Uint8Array): Uint8Array
  /** X25519(identity private key, `theirPublic`); the caller wipes the result. */
  dh(theirPublic: Uint8Array): Uint8Array
  /** The Ed25519 signer, for APIs that take `{ publicKey, sign }` (OHT mutable records). */
  readonly signer: Pick<Identity, 'publicKey' | 'sign'>
  /** Wipes every secret; the identity can no longer sign or agree keys. */
  destroy(): void
}

class Keys implements WormholeIdentity {
  readonly publicKey: Uint8Array
  readonly dhPublicKey: Uint8Array
  readonly introSecret: Uint8Array
  private readonly ed: Identity
  private readonly x: X25519KeyPair

  constructor (seed: Uint8Array) {
    const edSeed = hkdf(seed, SALT, label('ed25519'), 32)
    const xPriv = hkdf(seed, SALT, label('x25519'), 32)
    try {
      this.ed = identityFromSeed(edSeed)
      this.x = X25519KeyPair.fromPrivate(xPriv)
    } finally {
      edSeed.fill(0)
      xPriv.fill(0)
    }
    this.introSecret = hkdf(seed, SALT, label('intro-mailbox'), 32)
    this.publicKey = this.ed.publicKey
    this.dhPublicKey = this.x.publicKey
  }

  get signer (): Pick<Identity, 'publicKey' | 'sign'> { return this.ed }
  sign (message: Uint8Array): Uint8Array { return this.ed.sign(message) }
  dh (theirPublic: Uint8Array): Uint8Array { return this.x.dh(theirPublic) }

  destroy (): void {
    this.ed.destroy()
    this.x.destroy()
    this.introSecret.fill(0)
  }
}

/** The identity of a 32-byte wormhole seed (the key-tree child at WORMHOLE_IDENTITY_PATH). */
export function wormholeIdentityFromSeed (seed: Uint8Array): WormholeIdentity {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== 32) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a wormhole identity seed has 32 bytes')
  return new Keys(seed)
}

/**
 * The identity of a master seed at `path` (default "wormhole.identity").
 *
 * @example
 * const me = wormholeIdentityFromMaster(masterSeed)   // the same keys every time
 */
export function wormholeIdentityFromMaster (masterSeed: Uint8Array, path: string = WORMHOLE_IDENTITY_PATH): WormholeIdentity {
  const seed = deriveChildSeed(masterSeed, path)
  try { return new Keys(seed) } finally { seed.fill(0) }
}
