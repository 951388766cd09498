/**
 * Mailbox keys: where erasure-coded fragments of envelopes wait in the OHT for an offline
 * recipient. Only the two ends can compute them; holders see random keys and random writer keys,
 * different for every epoch and fragment index, unlinkable without the secret.
 *
 * Integers big-endian; HKDF is HKDF-SHA256; every salt is a distinct UTF-8 label.
 * ```
 * pairwise  root   = HKDF(ikm = SK from X3DH, salt = 0x00*32, info = "OHT wormhole mailbox root v1")  (sessions.ts)
 *           dir    = HKDF(ikm = root, salt = "oht/wormhole/mailbox/v1", info = sender Ed25519 || recipient Ed25519)
 * intro     dir    = HKDF(ikm = card's intro secret, salt = "oht/wormhole/intro/v1", info = recipient Ed25519)
 * group     dir    = HKDF(ikm = group epoch secret, salt = "oht/wormhole/group-mailbox/v1", info = group id || u32 group epoch)
 *
 * slot(dir, e, i)  = HKDF(ikm = dir, salt = "oht/wormhole/mailbox-slot/v1", info = u64 e || u8 i, 64 bytes)
 *   key    = slot[0..32]    the 32-byte OHT key fragment i of epoch e is stored under
 *   writer = Ed25519 key pair from the seed slot[32..64]: signs the fragment's store and delete
 *   e      = floor(clock.now() / epochMs)                (epochMs: 1 day by default)
 * ```
 * Both ends can sign a delete for a pairwise or group slot (both hold `dir`). Intro slots are
 * shared by everyone who holds the card, so their writer key comes from the sender's session
 * instead: writer seed = HKDF(ikm = intro dir || pairwise root, salt = "oht/wormhole/intro-writer/v1",
 * info = u64 e || u8 i); the recipient learns it when it opens the first message, and one card
 * holder cannot delete another's fragments.
 */
import { concatBytes } from '../core/bytes.ts'
import { identityFromSeed, type Identity } from '../crypto/index.ts'
import { wormholeError } from './errors.ts'
import { hkdf } from './primitives.ts'
import { label, Writer } from './wire.ts'

const MAILBOX_SALT = label('oht/wormhole/mailbox/v1')
const INTRO_SALT = label('oht/wormhole/intro/v1')
const GROUP_SALT = label('oht/wormhole/group-mailbox/v1')
const SLOT_SALT = label('oht/wormhole/mailbox-slot/v1')
const INTRO_WRITER_SALT = label('oht/wormhole/intro-writer/v1')
const ROOT_INFO = label('OHT wormhole mailbox root v1')
const ZERO_SALT = new Uint8Array(32)

export interface MailboxSlot {
  /** The OHT key fragment `index` of `epoch` goes under. */
  readonly key: Uint8Array
  readonly epoch: number
  readonly index: number
  /** The slot's Ed25519 writer (holders see it as the fragment's writer): made on demand, destroy it after use. */
  writer(): Identity
  /** Wipes the writer seed. */
  destroy(): void
}

function slot (key: Uint8Array, seed: Uint8Array, epoch: number, index: number): MailboxSlot {
  const s = Uint8Array.from(seed)
  return {
    key,
    epoch,
    index,
    writer: () => identityFromSeed(s),
    destroy: () => { s.fill(0) }
  }
}

/** The epoch number of time `now` for epochs of `epochMs`. */
export function mailboxEpoch (now: number, epochMs: number): number {
  if (!Number.isSafeInteger(epochMs) || epochMs < 1000) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'epochMs must be an integer of at least 1000')
  return Math.floor(now / epochMs)
}

/** The pairwise mailbox root both ends derive from X3DH's SK. */
export function mailboxRoot (sharedKey: Uint8Array): Uint8Array {
  return hkdf(sharedKey, ZERO_SALT, ROOT_INFO, 32)
}

/** The secret of one direction (sender → recipient) of a pairwise mailbox. */
export function pairwiseMailbox (root: Uint8Array, sender: Uint8Array, recipient: Uint8Array): Uint8Array {
  return hkdf(root, MAILBOX_SALT, concatBytes(sender, recipient), 32)
}

/** The intro mailbox secret of a card holder (first messages). */
export function introMailbox (introSecret: Uint8Array, recipient: Uint8Array): Uint8Array {
  return hkdf(introSecret, INTRO_SALT, recipient, 32)
}

/** The mailbox secret of a group epoch. */
export function groupMailbox (groupSecret: Uint8Array, groupId: Uint8Array, groupEpoch: number): Uint8Array {
  return hkdf(groupSecret, GROUP_SALT, concatBytes(groupId, new Writer(4).u32(groupEpoch).finish()), 32)
}

function slotInfo (epoch: number, index: number): Uint8Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'epoch must be a non-negative integer')
  if (!Number.isInteger(index) || index < 0 || index > 255) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'fragment index must be 0..255')
  return new Writer(9).u64(epoch).u8(index).finish()
}

/** Key and writer of fragment `index` in `epoch` for a mailbox secret `dir`. */
export function mailboxSlot (dir: Uint8Array, epoch: number, index: number): MailboxSlot {
  const okm = hkdf(dir, SLOT_SALT, slotInfo(epoch, index), 64)
  try {
    return slot(okm.slice(0, 32), okm.subarray(32), epoch, index)
  } finally {
    okm.fill(0)
  }
}

/**
 * An intro slot: its key from the intro secret (the recipient can find it knowing nothing of the
 * sender), its writer from the sender's session root.
 */
export function introSlot (introDir: Uint8Array, sessionRoot: Uint8Array, epoch: number, index: number): MailboxSlot {
  const info = slotInfo(epoch, index)
  const okm = hkdf(introDir, SLOT_SALT, info, 64)
  const ikm = concatBytes(introDir, sessionRoot)
  const seed = hkdf(ikm, INTRO_WRITER_SALT, info, 32)
  try {
    return slot(okm.slice(0, 32), seed, epoch, index)
  } finally {
    okm.fill(0)
    ikm.fill(0)
    seed.fill(0)
  }
}
