/** Counters of a scramble node: what it took, forwarded, delivered, sent and dropped (and why). */

export interface ScrambleStats {
  /** Hop requests received. */
  packetsIn: number
  forwarded: number
  /** Messages handed to the local consumer. */
  delivered: number
  /** SURB replies matched to a waiting send. */
  repliesReceived: number
  /** Packets dropped at this hop, by reason. Never thrown out of the handler. */
  dropped: {
    malformed: number
    badMac: number
    badPoint: number
    replay: number
    replayFilterFull: number
    badCommand: number
    badPayload: number
    rateLimited: number
    /** Asked to forward, but this node did not opt in as a relay. */
    notRelay: number
    /** Too many packets in flight at once. */
    overloaded: number
  }
  /** Forwards that failed, by what the next hop did. */
  forwardFailures: { unreachable: number, timeout: number, refused: number, busy: number }
  /** Deliveries the consumer refused (or no consumer installed). */
  rejected: number
  /** SURB replies for ids this node holds no keys for. */
  unknownSurb: number
  /** Our own messages. */
  sent: { messages: number, attempts: number, delivered: number, failed: number, repliesSent: number, nonDiversePaths: number }
}

export function createScrambleStats (): ScrambleStats {
  return {
    packetsIn: 0,
    forwarded: 0,
    delivered: 0,
    repliesReceived: 0,
    dropped: { malformed: 0, badMac: 0, badPoint: 0, replay: 0, replayFilterFull: 0, badCommand: 0, badPayload: 0, rateLimited: 0, notRelay: 0, overloaded: 0 },
    forwardFailures: { unreachable: 0, timeout: 0, refused: 0, busy: 0 },
    rejected: 0,
    unknownSurb: 0,
    sent: { messages: 0, attempts: 0, delivered: 0, failed: 0, repliesSent: 0, nonDiversePaths: 0 }
  }
}
