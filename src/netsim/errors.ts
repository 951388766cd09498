/** Errors of the simulator layer (code prefix SIM_). */
import { OhtStackError } from '../core/errors.ts'

/**
 * Codes:
 * - SIM_TIME_BACKWARDS: an event was due before the current virtual time (a scheduler bug).
 * - SIM_BAD_CONFIG: a distribution, rate or option is out of range.
 * - SIM_UNKNOWN_HOST: a host index or address does not exist in this network.
 * - SIM_EVENT_FAILED: an event callback threw; the run stops so the seed can be replayed.
 * - SIM_EVENT_LIMIT: the run hit its `maxEvents` budget (a livelock guard).
 * - SIM_NO_HANDLER: a request reached a host that installed no handler.
 * - SIM_STALLED: settle() ran out of events (or virtual time) while the awaited promise was pending.
 * - SIM_REMOTE_ERROR: the remote handler failed; the caller sees the stream reset as this error.
 * - SIM_UNREACHABLE: the target is unknown or offline and the network refuses (unreachable: 'refuse').
 * - SIM_FRAME_TOO_LARGE: a frame exceeded the network's maxFrameBytes.
 * - SIM_HOST_CRASHED: the reason of a crashed host's life signal (its handlers see it abort).
 */
export class SimError extends OhtStackError {
  override name = 'SimError'
}
