/**
 * Errors of the net layer (libp2p node, onion3 transport, DhtNet adapter). Callers branch on
 * `code`:
 *  - NET_BAD_MULTIADDR    a multiaddr is malformed (bad onion checksum, port out of range …)
 *  - NET_ONION_MISMATCH   a peer's onion address does not match the key it proved
 *  - NET_DIAL_DENIED      a dial was refused by policy (e.g. non-onion address in onion-only mode)
 *  - NET_DIAL_FAILED      the peer could not be reached
 *  - NET_FRAME_TOO_LARGE  a request/response frame exceeded the size limit
 *  - NET_PROTOCOL         the remote broke the /oht/kad/1.0.0 protocol (empty stream, no reply …)
 *  - NET_REMOTE_ERROR     the remote handler failed to answer the request
 *  - NET_NOT_STARTED      the node is not running
 *  - NET_BAD_CONFIG       the configuration cannot work (what to change is in the message)
 *  - NET_TABLE_FILE       the saved routing table could not be read or written
 */
import { OhtStackError } from '../core/index.ts'

export type NetErrorCode =
  | 'NET_BAD_MULTIADDR'
  | 'NET_ONION_MISMATCH'
  | 'NET_DIAL_DENIED'
  | 'NET_DIAL_FAILED'
  | 'NET_FRAME_TOO_LARGE'
  | 'NET_PROTOCOL'
  | 'NET_REMOTE_ERROR'
  | 'NET_NOT_STARTED'
  | 'NET_BAD_CONFIG'
  | 'NET_TABLE_FILE'

export class NetError extends OhtStackError {
  override name = 'NetError'
  declare readonly code: NetErrorCode

  constructor (code: NetErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
