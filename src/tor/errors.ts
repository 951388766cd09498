/**
 * Errors of the Tor layer. Callers branch on `code`; `status` keeps tor's own reply code
 * (e.g. 552 unknown onion id, 512 bad argument, 550 collision) and `socksReply` the SOCKS5
 * reply byte (0xF0 descriptor not found, ...).
 *
 * @example
 * try { await control.delOnion(id) } catch (err) {
 *   if (err instanceof TorError && err.status === 552) { ... already gone ... }
 * }
 */
import { OhtStackError } from '../core/index.ts'

export type TorErrorCode =
  | 'TOR_CONTROL_CLOSED'
  | 'TOR_CONTROL_PROTOCOL'
  | 'TOR_CONTROL_TIMEOUT'
  | 'TOR_CONTROL_CONNECT'
  | 'TOR_AUTH_FAILED'
  | 'TOR_AUTH_COOKIE'
  | 'TOR_BAD_ARGUMENT'
  | 'TOR_COMMAND_FAILED'
  | 'TOR_NOT_INSTALLED'
  | 'TOR_BOOTSTRAP_FAILED'
  | 'TOR_BOOTSTRAP_STALLED'
  | 'TOR_ONION_UNREACHABLE'
  | 'TOR_SOCKS'
  | (string & {})

export interface TorErrorOptions {
  cause?: unknown
  /** Tor's numeric reply status (e.g. 552). */
  status?: number
  /** The SOCKS5 reply byte when a SOCKS connect failed. */
  socksReply?: number
}

export class TorError extends OhtStackError {
  override name = 'TorError'
  /** Tor's control-port status code, when the error comes from a reply. */
  readonly status?: number
  /** SOCKS5 reply code, when the error comes from a SOCKS handshake. */
  readonly socksReply?: number

  constructor (code: TorErrorCode, message: string, options: TorErrorOptions = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause })
    if (options.status !== undefined) this.status = options.status
    if (options.socksReply !== undefined) this.socksReply = options.socksReply
  }
}

export function isTorError (err: unknown, code?: TorErrorCode): err is TorError {
  return err instanceof TorError && (code === undefined || err.code === code)
}
