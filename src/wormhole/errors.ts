/** Errors of the wormhole layer (code prefix WORMHOLE_). */
import { OhtStackError } from '../core/errors.ts'

/**
 * Codes (callers branch on these, never on message text).
 *
 * Decoding (every wire format and stored state of this layer):
 * - WORMHOLE_TOO_LARGE: the input is over the format's size limit (nothing was parsed).
 * - WORMHOLE_TRUNCATED: the input ends before a field it announced.
 * - WORMHOLE_BAD_VERSION: an unknown format version or type byte.
 * - WORMHOLE_MALFORMED: a field is out of range, a count over its bound, bytes left over.
 * - WORMHOLE_CARD_PREFIX: the text is not a contact card (no `oht-contact:` prefix).
 * - WORMHOLE_CARD_ENCODING: the card has characters outside base32.
 * - WORMHOLE_CARD_CHECKSUM: the card's checksum does not match (mistyped or cut).
 * - WORMHOLE_BAD_SIGNATURE: a card, prekey, receipt or group message signature does not verify.
 *
 * Sessions and messages:
 * - WORMHOLE_DECRYPT_FAILED: authentication failed (tampered, wrong key, not for us).
 * - WORMHOLE_REPLAY: a message already decrypted (or one whose key was already dropped).
 * - WORMHOLE_TOO_MANY_SKIPPED: a message more than MAX_SKIP ahead of its chain.
 * - WORMHOLE_NO_SESSION: no session with that contact, and no prekey bundle to start one.
 * - WORMHOLE_UNKNOWN_PREKEY: a first message names a signed or one-time prekey we no longer hold.
 * - WORMHOLE_IDENTITY_MISMATCH: a sender's keys differ from the contact we hold for them.
 * - WORMHOLE_BAD_KEY: a public key is malformed or of low order (all-zero shared secret).
 * - WORMHOLE_MESSAGE_TOO_LARGE: the body does not fit the largest envelope.
 *
 * Groups:
 * - WORMHOLE_UNKNOWN_GROUP, WORMHOLE_NOT_MEMBER, WORMHOLE_GROUP_FULL (over 100 members),
 *   WORMHOLE_NOT_ADMIN (a membership change by, or an update from, someone not the group's admin),
 *   WORMHOLE_STALE_EPOCH (a group update or message of an epoch we dropped),
 *   WORMHOLE_NO_SENDER_KEY (a group message from a member whose sender key we lack).
 *
 * Erasure code:
 * - WORMHOLE_ERASURE_TOO_FEW: fewer than k distinct fragments of one message.
 * - WORMHOLE_ERASURE_CORRUPT: no k of the fragments rebuild data matching the digest.
 *
 * State store:
 * - WORMHOLE_STORE_IO, WORMHOLE_STORE_CORRUPT, WORMHOLE_STORE_PERMISSIONS,
 *   WORMHOLE_PASSPHRASE_REQUIRED, WORMHOLE_WRONG_PASSPHRASE.
 *
 * Other:
 * - WORMHOLE_BAD_ARGUMENT: an API argument out of range.
 * - WORMHOLE_CLOSED: used after close().
 */
export class WormholeError extends OhtStackError {
  override name = 'WormholeError'
}

export type WormholeErrorCode =
  | 'WORMHOLE_TOO_LARGE' | 'WORMHOLE_TRUNCATED' | 'WORMHOLE_BAD_VERSION' | 'WORMHOLE_MALFORMED'
  | 'WORMHOLE_CARD_PREFIX' | 'WORMHOLE_CARD_ENCODING' | 'WORMHOLE_CARD_CHECKSUM' | 'WORMHOLE_BAD_SIGNATURE'
  | 'WORMHOLE_DECRYPT_FAILED' | 'WORMHOLE_REPLAY' | 'WORMHOLE_TOO_MANY_SKIPPED' | 'WORMHOLE_NO_SESSION'
  | 'WORMHOLE_UNKNOWN_PREKEY' | 'WORMHOLE_IDENTITY_MISMATCH' | 'WORMHOLE_BAD_KEY' | 'WORMHOLE_MESSAGE_TOO_LARGE'
  | 'WORMHOLE_UNKNOWN_GROUP' | 'WORMHOLE_NOT_MEMBER' | 'WORMHOLE_GROUP_FULL' | 'WORMHOLE_NOT_ADMIN' | 'WORMHOLE_STALE_EPOCH'
  | 'WORMHOLE_NO_SENDER_KEY'
  | 'WORMHOLE_ERASURE_TOO_FEW' | 'WORMHOLE_ERASURE_CORRUPT'
  | 'WORMHOLE_STORE_IO' | 'WORMHOLE_STORE_CORRUPT' | 'WORMHOLE_STORE_PERMISSIONS'
  | 'WORMHOLE_PASSPHRASE_REQUIRED' | 'WORMHOLE_WRONG_PASSPHRASE'
  | 'WORMHOLE_BAD_ARGUMENT' | 'WORMHOLE_CLOSED'

/** Builds a WormholeError; `cause` is kept when given. */
export function wormholeError (code: WormholeErrorCode, message: string, cause?: unknown): WormholeError {
  return new WormholeError(code, message, cause === undefined ? undefined : { cause })
}
