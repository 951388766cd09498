import { OhtStackError } from '../core/index.ts'

/**
 * Errors of the daemon and its local API. Codes:
 * DAEMON_CONFIG (invalid or unreadable config; the message names the field),
 * DAEMON_CONFIG_MISSING (an explicitly named config file does not exist),
 * DAEMON_STATE (state dir unusable: permissions, not a directory),
 * DAEMON_IDENTITY (no identity yet / cannot load it),
 * DAEMON_RUNNING (another daemon already serves this state dir),
 * DAEMON_TOR (tor could not be started or attached), DAEMON_ONI (ONI enabled but did not start),
 * DAEMON_NODE (the OHT node failed), DAEMON_BAD_REQUEST, DAEMON_NOT_FOUND, DAEMON_STOPPED.
 */
export class DaemonError extends OhtStackError {
  override name = 'DaemonError'
}
