/**
 * Error base for the whole stack. Every error has a fixed `name`, a stable `code` that callers
 * branch on (never on message text) and keeps its `cause`. Each layer declares its own subclass
 * with a code prefix: TOR_, ONI_, OHT_, NET_, WORMHOLE_, SCRAMBLE_, DOA_, SIM_, CRYPTO_, CORE_.
 *
 * @example
 * try { await control.delOnion(id) } catch (err) {
 *   if (isCodedError(err, 'TOR_UNKNOWN_ONION')) { ... }
 * }
 */
export class OhtStackError extends Error {
  override name = 'OhtStackError'
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}

/** Errors of the core layer itself (bad arguments, aborts, timeouts). */
export class CoreError extends OhtStackError {
  override name = 'CoreError'
}

/** Raised when an operation was aborted through its AbortSignal. */
export class AbortError extends CoreError {
  override name = 'AbortError'
  constructor (message = 'The operation was aborted', options?: { cause?: unknown }) {
    super('CORE_ABORTED', message, options)
  }
}

/** Raised when an operation ran past its deadline. */
export class TimeoutError extends CoreError {
  override name = 'TimeoutError'
  constructor (message = 'The operation timed out', options?: { cause?: unknown }) {
    super('CORE_TIMEOUT', message, options)
  }
}

/** Raised by decoders: input too large, truncated or malformed. */
export class DecodeError extends CoreError {
  override name = 'DecodeError'
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

export function isCodedError (err: unknown, code?: string): err is OhtStackError {
  if (err == null || typeof err !== 'object') return false
  const c = (err as { code?: unknown }).code
  if (typeof c !== 'string') return false
  return code === undefined || c === code
}

/** Turns anything thrown into a one-line message fit for a user. */
export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
