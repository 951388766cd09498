/**
 * Errors of the ONI layer (onion network interface). Callers branch on `code`.
 *
 * @example
 * try { await openTun({ name: 'onet0' }) } catch (err) {
 *   if (isOniError(err, 'ONI_TUN_UNAVAILABLE')) { ... run without TUN mode ... }
 * }
 */
import { OhtStackError } from '../core/index.ts'

export type OniErrorCode =
  | 'ONI_TUN_UNAVAILABLE'
  | 'ONI_TUN_IO'
  | 'ONI_COMMAND_FAILED'
  | 'ONI_PACKET_MALFORMED'
  | 'ONI_BAD_ARGUMENT'
  | 'ONI_SOCKS_PROTOCOL'
  | 'ONI_SOCKS_LISTEN'
  | 'ONI_ENDPOINT_EXISTS'
  | 'ONI_ENDPOINT_UNKNOWN'
  | 'ONI_ENDPOINT_UNREACHABLE'
  | 'ONI_KEY_STORE'
  | 'ONI_ROUTE'
  | 'ONI_FRAME_MALFORMED'
  | 'ONI_LINK_AUTH'
  | 'ONI_LINK_CLOSED'
  | 'ONI_MAPPING_INVALID'
  | 'ONI_MAPPING_NOT_FOUND'
  | 'ONI_DNS_MALFORMED'
  | 'ONI_CLOSED'
  | 'ONI_GATEWAY_CONFIG'
  | 'ONI_GATEWAY_INTERFACE'
  | 'ONI_GATEWAY_NFT_MISSING'
  | 'ONI_GATEWAY_PERMISSION'
  | 'ONI_GATEWAY_RULES'
  | 'ONI_GATEWAY_LISTEN'
  | 'ONI_GATEWAY_BLOCKLIST'
  | 'ONI_GATEWAY_TOR'

export class OniError extends OhtStackError {
  override name = 'OniError'
  declare readonly code: OniErrorCode

  constructor (code: OniErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

export function isOniError (err: unknown, code?: OniErrorCode): err is OniError {
  return err instanceof OniError && (code === undefined || err.code === code)
}
