/**
 * Errors of scramble routing (code prefix SCRAMBLE_). Callers branch on `code`.
 *
 * @example
 * try { await scramble.send(msg, { recipient, hops: 2 }) } catch (err) {
 *   if (isScrambleError(err, 'SCRAMBLE_NOT_ENOUGH_RELAYS')) { ... fall back to anonymous mode ... }
 * }
 */
import { OhtStackError } from '../core/index.ts'

export type ScrambleErrorCode =
  /** A packet is not of the one packet size, or of an unknown version. */
  | 'SCRAMBLE_BAD_PACKET'
  /** No key of this node makes the header MAC verify (tampered, or for another key/epoch). */
  | 'SCRAMBLE_BAD_MAC'
  /** The group element is not a usable X25519 point (low order). */
  | 'SCRAMBLE_BAD_POINT'
  /** The packet was seen before under this key epoch (replay, or a second use of a SURB). */
  | 'SCRAMBLE_REPLAY'
  /** The replay filter of the key epoch is full: the relay takes no more packets on that key. */
  | 'SCRAMBLE_REPLAY_FILTER_FULL'
  /** The routing command of this hop is unknown or malformed. */
  | 'SCRAMBLE_BAD_COMMAND'
  /** The payload failed its check at the recipient (tampered anywhere on the way). */
  | 'SCRAMBLE_BAD_PAYLOAD'
  /** A hop response, SURB, descriptor or other encoding is malformed. */
  | 'SCRAMBLE_BAD_ENCODING'
  /** A relay descriptor is malformed, unsigned, expired or signed by another key. */
  | 'SCRAMBLE_BAD_DESCRIPTOR'
  /** An API argument is out of range (hops, message size, …). */
  | 'SCRAMBLE_BAD_ARGUMENT'
  /** Too few usable relays for the path asked for. */
  | 'SCRAMBLE_NOT_ENOUGH_RELAYS'
  /** The recipient has no published descriptor with a key valid now. */
  | 'SCRAMBLE_NO_RECIPIENT_KEY'
  /** The recipient could not be reached (the last hop reported it). */
  | 'SCRAMBLE_RECIPIENT_UNREACHABLE'
  /** Every attempt failed; `cause` is the last failure. */
  | 'SCRAMBLE_DELIVERY_FAILED'
  /** A SURB was used twice, or its reply arrived after its keys were dropped. */
  | 'SCRAMBLE_SURB_USED'
  /** No reply came through the SURB before it expired. */
  | 'SCRAMBLE_REPLY_TIMEOUT'
  /** The node was used before start() or after stop(). */
  | 'SCRAMBLE_NOT_STARTED'

export class ScrambleError extends OhtStackError {
  override name = 'ScrambleError'
  declare readonly code: ScrambleErrorCode

  constructor (code: ScrambleErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

export function isScrambleError (err: unknown, code?: ScrambleErrorCode): err is ScrambleError {
  return err instanceof ScrambleError && (code === undefined || err.code === code)
}
