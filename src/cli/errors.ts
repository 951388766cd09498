/**
 * CLI errors and exit codes. Every failure the user can cause or meet maps to one documented
 * exit code (shown by `oht --help`), so scripts can branch on the code, never on the text.
 */
import { OhtStackError } from '../core/index.ts'

/** Exit codes of every `oht` command (documented in `oht --help`). */
export const EXIT = {
  OK: 0,
  /** The operation ran and failed (network, tor, daemon-side error). */
  FAILURE: 1,
  /** Bad usage: unknown flag, missing or malformed argument, oversized value. Nothing changed. */
  USAGE: 2,
  /** The configuration file is missing, unreadable or invalid. */
  CONFIG: 3,
  /** No daemon answers on the API socket. */
  UNAVAILABLE: 4,
  /** Permission denied: socket or token file not accessible, or the daemon refused the token. */
  AUTH: 5,
  /** `oht get`: no record under that key. */
  NOT_FOUND: 6,
  /** tor is missing or could not bootstrap. */
  TOR: 7,
  /** `oht put --cas N`: the record's current seq is not N; nothing was written. */
  CONFLICT: 8,
  /** Interrupted by SIGINT/SIGTERM. */
  INTERRUPTED: 130
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]

export type CliErrorCode =
  | 'CLI_USAGE'
  | 'CLI_UNKNOWN_COMMAND'
  | 'CLI_UNKNOWN_FLAG'
  | 'CLI_BAD_ARGUMENT'
  | 'CLI_VALUE_TOO_LARGE'
  | 'CLI_DAEMON_UNAVAILABLE'
  | 'CLI_PERMISSION'
  | 'CLI_UNAUTHORIZED'
  | 'CLI_NOT_FOUND'
  | 'CLI_CAS_MISMATCH'
  | 'CLI_API'
  | 'CLI_FAILED'

const EXIT_FOR: Record<CliErrorCode, ExitCode> = {
  CLI_USAGE: EXIT.USAGE,
  CLI_UNKNOWN_COMMAND: EXIT.USAGE,
  CLI_UNKNOWN_FLAG: EXIT.USAGE,
  CLI_BAD_ARGUMENT: EXIT.USAGE,
  CLI_VALUE_TOO_LARGE: EXIT.USAGE,
  CLI_DAEMON_UNAVAILABLE: EXIT.UNAVAILABLE,
  CLI_PERMISSION: EXIT.AUTH,
  CLI_UNAUTHORIZED: EXIT.AUTH,
  CLI_NOT_FOUND: EXIT.NOT_FOUND,
  CLI_CAS_MISMATCH: EXIT.CONFLICT,
  CLI_API: EXIT.FAILURE,
  CLI_FAILED: EXIT.FAILURE
}

export class CliError extends OhtStackError {
  override name = 'CliError'
  readonly exitCode: ExitCode

  constructor (code: CliErrorCode, message: string, options?: { cause?: unknown, exitCode?: ExitCode }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.exitCode = options?.exitCode ?? EXIT_FOR[code]
  }
}
