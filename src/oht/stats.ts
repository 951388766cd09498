/** Counters a node keeps about itself (plain numbers, cheap to bump, easy to sum in the simulator). */
export interface OhtStats {
  requestsOut: { ping: number, findNode: number, get: number, put: number }
  requestsIn: { ping: number, findNode: number, get: number, put: number }
  /** Requests that failed (unreachable, aborted, bad answer), timeouts included. */
  requestFailures: number
  timeouts: number
  /** Error frames received from peers. */
  remoteErrors: number
  /** Error frames sent to peers (rejections included). */
  errorsSent: number
  badFrames: number
  rateLimited: number
  lookups: number
  /** Requests sent by lookups (messages per lookup = lookupQueries / lookups). */
  lookupQueries: number
  puts: number
  gets: number
  recordsStored: number
  recordsRejected: number
  recordsExpired: number
  republished: number
  replicated: number
  bytesIn: number
  bytesOut: number
}

export function createStats (): OhtStats {
  return {
    requestsOut: { ping: 0, findNode: 0, get: 0, put: 0 },
    requestsIn: { ping: 0, findNode: 0, get: 0, put: 0 },
    requestFailures: 0,
    timeouts: 0,
    remoteErrors: 0,
    errorsSent: 0,
    badFrames: 0,
    rateLimited: 0,
    lookups: 0,
    lookupQueries: 0,
    puts: 0,
    gets: 0,
    recordsStored: 0,
    recordsRejected: 0,
    recordsExpired: 0,
    republished: 0,
    replicated: 0,
    bytesIn: 0,
    bytesOut: 0
  }
}
