/** What started a lookup: an API get/lookup, an API put, or the node's own upkeep. */
export type LookupPurpose = 'user' | 'put' | 'bootstrap' | 'refresh' | 'republish' | 'replicate'

/** Counters a node keeps about itself (plain numbers, cheap to bump, easy to sum in the simulator). */
export interface OhtStats {
  requestsOut: { ping: number, findNode: number, get: number, put: number, watch: number }
  requestsIn: { ping: number, findNode: number, get: number, put: number, watch: number }
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
  /** Lookups, their requests and the requests that failed, by what started them (where the traffic goes). */
  lookupsBy: Record<LookupPurpose, { lookups: number, queries: number, failed: number }>
  /** PINGs sent by liveness probes and by bootstrap. */
  probes: number
  /** Probes that went unanswered (the contact was dead, or slow past its timeout). */
  probesFailed: number
  puts: number
  gets: number
  /** GETs that found nothing among the k closest and asked the 2k closest. */
  widenedGets: number
  recordsStored: number
  recordsRejected: number
  recordsExpired: number
  republished: number
  replicated: number
  /** Replication passes skipped because this node is no longer among the record's k closest. */
  replicationsSkipped: number
  /** NOTIFY frames sent to watchers, and verified ones received for our own watches. */
  notificationsSent: number
  notificationsReceived: number
  bytesIn: number
  bytesOut: number
}

export function createStats (): OhtStats {
  return {
    requestsOut: { ping: 0, findNode: 0, get: 0, put: 0, watch: 0 },
    requestsIn: { ping: 0, findNode: 0, get: 0, put: 0, watch: 0 },
    requestFailures: 0,
    timeouts: 0,
    remoteErrors: 0,
    errorsSent: 0,
    badFrames: 0,
    rateLimited: 0,
    lookups: 0,
    lookupQueries: 0,
    lookupsBy: {
      user: { lookups: 0, queries: 0, failed: 0 },
      put: { lookups: 0, queries: 0, failed: 0 },
      bootstrap: { lookups: 0, queries: 0, failed: 0 },
      refresh: { lookups: 0, queries: 0, failed: 0 },
      republish: { lookups: 0, queries: 0, failed: 0 },
      replicate: { lookups: 0, queries: 0, failed: 0 }
    },
    probes: 0,
    probesFailed: 0,
    puts: 0,
    gets: 0,
    widenedGets: 0,
    recordsStored: 0,
    recordsRejected: 0,
    recordsExpired: 0,
    republished: 0,
    replicated: 0,
    replicationsSkipped: 0,
    notificationsSent: 0,
    notificationsReceived: 0,
    bytesIn: 0,
    bytesOut: 0
  }
}
