/** Errors of the OHT engine (code prefix OHT_). */
import { OhtStackError } from '../core/errors.ts'

/**
 * Codes (callers branch on these, never on message text). The ones marked "wire" travel back
 * to the requester inside an ERROR frame and are re-raised there with the same code.
 * - OHT_BAD_FRAME (wire): a frame was truncated, oversized, of an unknown version/type or
 *   otherwise malformed.
 * - OHT_VALUE_TOO_LARGE (wire): a record value is over the configured size limit.
 * - OHT_KEY_MISMATCH (wire): the record does not hash to the key it was sent under.
 * - OHT_BAD_SIGNATURE (wire): a mutable record's Ed25519 signature does not verify.
 * - OHT_SEQ_STALE (wire): a mutable record's seq is not above the stored one.
 * - OHT_CAS_MISMATCH (wire): the compare-and-swap seq differs from the stored seq.
 * - OHT_EXPIRED (wire): the record's remaining lifetime is zero.
 * - OHT_BAD_TOKEN (wire): a PUT carried no, a wrong or an expired write token.
 * - OHT_RATE_LIMITED (wire): the peer sent requests faster than the per-peer rate allows.
 * - OHT_QUOTA (wire): the peer (or the whole store) is over its storage quota.
 * - OHT_INTERNAL (wire): the handler failed unexpectedly.
 * - OHT_BAD_RESPONSE: a peer answered with the wrong frame type.
 * - OHT_NOT_STARTED (wire): the node was used before start() or after stop().
 * - OHT_BAD_ARGUMENT: an API argument is out of range (e.g. a key that is not 32 bytes).
 * - OHT_NO_PEERS: the routing table is empty: bootstrap first.
 * PeerNet (direct protocols, src/oht/peer-net.ts):
 * - OHT_PEER_UNREACHABLE: no connection could be made to the peer.
 * - OHT_PROTOCOL_UNSUPPORTED: the peer has no handler for the protocol.
 * - OHT_MESSAGE_TOO_LARGE: a message over the protocol's size limit.
 * - OHT_PEER_FAILED: the peer's handler failed without a code of its own.
 * - OHT_STREAM_CLOSED: a send after close/abort, or the stream broke.
 */
export class OhtError extends OhtStackError {
  override name = 'OhtError'
}

export type OhtErrorCode =
  | 'OHT_BAD_FRAME' | 'OHT_VALUE_TOO_LARGE' | 'OHT_KEY_MISMATCH' | 'OHT_BAD_SIGNATURE'
  | 'OHT_SEQ_STALE' | 'OHT_CAS_MISMATCH' | 'OHT_EXPIRED' | 'OHT_BAD_TOKEN' | 'OHT_RATE_LIMITED'
  | 'OHT_QUOTA' | 'OHT_INTERNAL' | 'OHT_BAD_RESPONSE' | 'OHT_NOT_STARTED' | 'OHT_BAD_ARGUMENT'
  | 'OHT_NO_PEERS'
  | 'OHT_PEER_UNREACHABLE' | 'OHT_PROTOCOL_UNSUPPORTED' | 'OHT_MESSAGE_TOO_LARGE' | 'OHT_PEER_FAILED' | 'OHT_STREAM_CLOSED'

/** Wire numbers of the codes an ERROR frame can carry (stable: never renumber). */
export const WIRE_ERROR_CODES: readonly OhtErrorCode[] = [
  'OHT_INTERNAL', // 0
  'OHT_BAD_FRAME', // 1
  'OHT_VALUE_TOO_LARGE', // 2
  'OHT_KEY_MISMATCH', // 3
  'OHT_BAD_SIGNATURE', // 4
  'OHT_SEQ_STALE', // 5
  'OHT_CAS_MISMATCH', // 6
  'OHT_EXPIRED', // 7
  'OHT_BAD_TOKEN', // 8
  'OHT_RATE_LIMITED', // 9
  'OHT_QUOTA', // 10
  'OHT_NOT_STARTED' // 11
]

export function wireErrorNumber (code: string): number {
  const i = WIRE_ERROR_CODES.indexOf(code as OhtErrorCode)
  return i < 0 ? 0 : i
}

export function wireErrorCode (n: number): OhtErrorCode {
  return WIRE_ERROR_CODES[n] ?? 'OHT_INTERNAL'
}

/** An error a remote peer answered with; `code` is the peer's code, `remote` marks its origin. */
export class OhtRemoteError extends OhtError {
  override name = 'OhtRemoteError'
  readonly remote = true
}
