/**
 * One sentence for a put's outcome, shared by the SDK, the daemon's API and the CLI, so a put
 * that reached fewer holders than asked says so instead of printing a bare count:
 *
 *   stored 20 of 20
 *   stored 7 of 20: fewer holders than asked (6 peers and this node)
 *   stored 1 of 20: only this node holds it
 *   stored 0 of 20: no node holds it
 */

/** What the sentence needs of a PutResult (the engine's, or the API's JSON of it). */
export interface PutOutcome {
  stored: number
  wanted: number
  storedHere: boolean
}

/** Only this node holds the record: no peer took it (no peers, or all refused). */
export function onlyHere (r: PutOutcome): boolean {
  return r.storedHere && r.stored === 1
}

export function describePut (r: PutOutcome): string {
  const head = `stored ${r.stored} of ${r.wanted}`
  if (r.stored === 0) return `${head}: no node holds it`
  if (onlyHere(r)) return `${head}: only this node holds it`
  if (r.stored >= r.wanted) return head
  const peers = r.stored - (r.storedHere ? 1 : 0)
  return `${head}: fewer holders than asked (${peers} peer${peers === 1 ? '' : 's'}${r.storedHere ? ' and this node' : ''})`
}
