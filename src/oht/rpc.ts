/**
 * The node's RPC: outbound requests (adaptive timeout, routing-table upkeep, decoding) and the
 * inbound handler (rate limit, decode, dispatch, answer). What a storing node accepts is the
 * storage policy's business (storage-policy.ts); watches are watch.ts's.
 */
import { throwIfAborted, type AbortOptions } from '../core/abort.ts'
import { toHex } from '../core/bytes.ts'
import { isCodedError, OhtStackError } from '../core/errors.ts'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, VALUES_PAGE_BYTES, type OhtRequest, type OhtResponse, type WireContact } from './codec.ts'
import { OhtError, OhtRemoteError } from './errors.ts'
import { idPrefix } from './id-map.ts'
import type { QueryResult } from './lookup.ts'
import type { PeerContact } from './network.ts'
import type { OhtNodeImpl } from './node.ts'
import { copyRecord, type ValueRecord } from './records.ts'
import type { RoutingEntry } from './routing-table.ts'

const MINUTE = 60_000

/** What a lookup asks each peer: its closer contacts, a record, a page of a value set. */
export type QueryKind = 'find-node' | 'get' | 'get-meta' | 'values' | 'values-meta'

export class Rpc {
  private hoodAt = -Infinity
  private hood = 0

  constructor (private readonly n: OhtNodeImpl) {}

  // ---------------------------------------------------------------- outbound

  /**
   * One request/response with adaptive timeout and routing-table upkeep. `signal` must follow
   * the node's lifetime (an opSignal, a lookup's signal or the node's own). `key` is the key a
   * VALUES answer is about (its values are decoded under it).
   */
  async request (peer: { id: Uint8Array, contact: PeerContact }, req: OhtRequest, signal: AbortSignal, key?: Uint8Array): Promise<OhtResponse> {
    const n = this.n
    const prefix = idPrefix(peer.id)
    const counters = n.stats.requestsOut
    if (req.type === 'ping') counters.ping++
    else if (req.type === 'find-node') counters.findNode++
    else if (req.type === 'get') counters.get++
    else if (req.type === 'put' || req.type === 'put-many') counters.put++
    else counters.watch++
    // Encoded outside the try below: a request we cannot encode is our fault, not the peer's.
    let frame: Uint8Array | undefined = encodeRequest(req, n.cfg.kinds)
    n.stats.bytesOut += frame.byteLength
    // The transport enforces the timeout: no signal, listener and timer of our own per request.
    const timeoutMs = n.rtt.timeout(prefix)
    const started = n.clock.monotonic()
    let answer: Uint8Array
    try {
      throwIfAborted(signal)
      const pending = n.net.request(peer.contact, frame, { signal, timeoutMs })
      // Not held while we wait (a suspended call keeps its locals): the frame shares a slab
      // with other frames (allocFrame), and would keep it alive until the answer.
      frame = undefined
      answer = await pending
    } catch (err) {
      n.stats.requestFailures++
      const timedOut = isCodedError(err, 'CORE_TIMEOUT')
      const callerAborted = !timedOut && signal.aborted
      if (timedOut) { n.stats.timeouts++; n.rtt.timedOut(prefix) }
      if (!callerAborted && n.running) {
        n.routingTable.markFailed(peer.id)
        n.noteUnreachable(prefix)
      }
      throw err
    }
    n.rtt.sample(prefix, n.clock.monotonic() - started)
    n.clearUnreachable(prefix)
    n.stats.bytesIn += answer.byteLength
    let res: OhtResponse
    try {
      res = decodeResponse(answer, { maxValueBytes: n.cfg.maxValueBytes, kinds: n.cfg.kinds }, key)
    } catch (err) {
      // A peer that answers garbage is dropped, not just counted as slow.
      n.stats.badFrames++
      n.stats.requestFailures++
      n.routingTable.remove(peer.id)
      throw err
    }
    if (n.running) n.routingTable.add(peer.id, peer.contact, n.clock.now())
    if (res.type === 'error') {
      n.stats.remoteErrors++
      throw new OhtRemoteError(res.code, `peer ${toHex(peer.id.subarray(0, 6))} refused: ${res.message}`)
    }
    return res
  }

  /** A lookup's question to one peer; what it keeps is copied out of the answer's frame. */
  async query (peer: { id: Uint8Array, contact: PeerContact }, kind: QueryKind, target: Uint8Array, signal: AbortSignal, valueKind = 0, cursor = 0): Promise<QueryResult> {
    const addrs = this.n.contact.addrs
    const req: OhtRequest = kind === 'find-node'
      ? { type: 'find-node', addrs, target }
      : kind === 'get' || kind === 'get-meta'
        ? { type: 'get', addrs, key: target, metadataOnly: kind === 'get-meta' }
        : { type: 'get', addrs, key: target, metadataOnly: kind === 'values-meta', values: { kind: valueKind, cursor } }
    const res = await this.request(peer, req, signal, target)
    // What a lookup keeps past this answer is copied out of its frame (the contacts it keeps
    // are copied by the lookup): a view would keep the frame's whole slab alive (allocFrame).
    if (res.type === 'nodes') return res.token === undefined ? { closer: res.contacts } : { closer: res.contacts, token: res.token.slice() }
    if (res.type === 'value' && (kind === 'get' || kind === 'get-meta')) {
      return { closer: res.contacts, token: res.token.slice(), record: res.record === undefined ? undefined : copyRecord(res.record), seq: res.seq }
    }
    if (res.type === 'values' && (kind === 'values' || kind === 'values-meta') && res.kind === valueKind) {
      return {
        closer: res.contacts,
        token: res.token.slice(),
        values: res.records.map(r => copyRecord(r)),
        total: res.total,
        next: res.next,
        digest: res.digest.slice()
      }
    }
    throw new OhtError('OHT_BAD_RESPONSE', `peer answered ${kind} with a ${res.type} frame`)
  }

  // ---------------------------------------------------------------- inbound

  async handle (from: PeerContact, frame: Uint8Array, _options: AbortOptions): Promise<Uint8Array> {
    const n = this.n
    try {
      return this.handleFrame(from, frame)
    } catch (err) {
      n.stats.errorsSent++
      if (isCodedError(err, 'OHT_BAD_FRAME')) n.stats.badFrames++
      const code = err instanceof OhtStackError ? err.code : 'OHT_INTERNAL'
      const message = err instanceof OhtStackError ? err.message : 'internal error'
      if (!(err instanceof OhtStackError)) n.log.warn('handler failed: %s', String(err))
      return encodeResponse({ type: 'error', code, message })
    }
  }

  private handleFrame (from: PeerContact, frame: Uint8Array): Uint8Array {
    const n = this.n
    if (!n.running) throw new OhtError('OHT_NOT_STARTED', 'node is stopped')
    n.stats.bytesIn += frame.byteLength
    const fromId = n.idOf(from.publicKey)
    const fromKey = idPrefix(fromId)
    // A peer that talks to us is back (a restarted onion service): lookups may ask it again.
    n.clearUnreachable(fromKey)
    if (!n.rateLimiter.take(fromKey)) {
      n.stats.rateLimited++
      throw new OhtError('OHT_RATE_LIMITED', 'too many requests: slow down and retry later')
    }
    const req = decodeRequest(frame, { maxValueBytes: n.cfg.maxValueBytes, kinds: n.cfg.kinds })
    // A sender that declares no dial addresses is a client: it is answered, never routed to.
    // Declared addresses can only be for the sender's own, transport-authenticated key. The
    // key and our hash of it are not frame views, and decoded address strings are fresh: no copy.
    if (req.addrs.length > 0) n.routingTable.add(fromId, { publicKey: from.publicKey, addrs: req.addrs }, n.clock.now(), true)
    let res: OhtResponse
    const counters = n.stats.requestsIn
    switch (req.type) {
      case 'ping':
        counters.ping++
        res = { type: 'pong' }
        break
      case 'find-node':
        counters.findNode++
        // No write token here: every PUT path looks up with GET, and an HMAC per FIND_NODE adds up.
        res = { type: 'nodes', contacts: this.closerContacts(req.target, fromId) }
        break
      case 'get': {
        counters.get++
        const token = n.tokens.issue(from.publicKey, req.key)
        const contacts = this.closerContacts(req.key, fromId, true)
        if (req.values !== undefined) {
          res = this.valuesPage(req.key, req.values.kind, req.values.cursor, req.metadataOnly, token, contacts)
          break
        }
        const held = n.store.get(req.key)
        const v: OhtResponse = { type: 'value', token, contacts }
        if (held !== undefined) {
          const record = held.record
          v.seq = record.kind === 'mutable' ? record.seq : 0
          if (!req.metadataOnly) v.record = record
        }
        res = v
        break
      }
      case 'put':
        counters.put++
        res = { type: 'stored', grantedMs: n.policy.acceptPut(from.publicKey, toHex(fromId), req) }
        break
      case 'put-many':
        counters.put++
        res = { type: 'stored-many', results: n.policy.acceptPutMany(from.publicKey, toHex(fromId), req) }
        break
      case 'watch':
        counters.watch++
        res = { type: 'watching', grantedMs: n.watches.subscribe({ publicKey: from.publicKey, addrs: req.addrs }, fromId, req) }
        break
      case 'notify':
        counters.watch++
        n.watches.notified(req.key, req.record)
        res = { type: 'pong' }
        break
    }
    const out = encodeResponse(res, n.cfg.kinds)
    n.stats.bytesOut += out.byteLength
    return out
  }

  /** One page of a value set, from `cursor` (its index in slot order), at most VALUES_PAGE_BYTES of values. */
  private valuesPage (key: Uint8Array, kind: number, cursor: number, metadataOnly: boolean, token: Uint8Array, contacts: WireContact[]): OhtResponse {
    const store = this.n.store
    const list = store.values(key, kind)
    const records: ValueRecord[] = []
    let next = 0
    if (!metadataOnly) {
      let bytes = 0
      for (let i = cursor; i < list.length; i++) {
        const r = list[i].record as ValueRecord
        if (records.length > 0 && bytes + r.value.byteLength + 200 > VALUES_PAGE_BYTES) { next = i; break }
        bytes += r.value.byteLength + 200
        records.push(r)
      }
    }
    return { type: 'values', token, contacts, kind, total: list.length, next, digest: store.digest(key, kind), records }
  }

  /**
   * The k closest contacts we would vouch for: not the requester, and not contacts whose last
   * request failed (under churn, dead entries would otherwise crowd live peers out of every
   * answer; they return to answers as soon as they answer again). Contacts silent for
   * `staleAfterMs` only fill what fresh ones leave, up to `silentInAnswers` contacts in all:
   * few for a far target (that answer only has to move the asker one hop closer, which fresh
   * contacts do without timeouts), more for a target in our own neighbourhood, and all k for a
   * record's key there (`forRecord`: a writer must find every live one of the k closest, and we
   * are who knows them). The asker sorts by distance itself.
   */
  closerContacts (target: Uint8Array, exclude: Uint8Array, forRecord = false): WireContact[] {
    const n = this.n
    const out: WireContact[] = []
    const k = n.cfg.k
    const freshSince = n.clock.now() - n.cfg.staleAfterMs
    let silent: RoutingEntry[] | undefined
    // The requester was just added to the table (if routable): skip its entry by identity.
    const requester = n.routingTable.get(exclude)
    for (const e of n.routingTable.closest(target, k + Math.ceil(k / 2))) {
      if (e.failures > 0 || e === requester) continue
      if (e.lastSeen < freshSince) { (silent ??= []).push(e); continue }
      out.push(e)
      if (out.length >= k) return out
    }
    const fillTo = n.routingTable.bucketIndex(target) < this.hoodBucket() ? n.cfg.silentFar : forRecord ? k : n.cfg.silentNear
    if (silent !== undefined) for (let i = 0; i < silent.length && out.length < fillTo; i++) out.push(silent[i])
    return out
  }

  /** neighbourhoodBucket(), recomputed at most once a minute (answers ask for it on every request). */
  hoodBucket (): number {
    const now = this.n.clock.now()
    if (now - this.hoodAt >= MINUTE) {
      this.hoodAt = now
      this.hood = this.neighbourhoodBucket()
    }
    return this.hood
  }

  /** The bucket holding our k-th closest contact (0 while we know fewer than k): where our neighbourhood starts. */
  neighbourhoodBucket (): number {
    // Every contact of a deeper bucket is closer to us than any of a shallower one: counting
    // bucket sizes from the deepest finds the k-th closest's bucket without ranking anyone.
    const table = this.n.routingTable
    let seen = 0
    for (let i = table.deepestBucket; i >= 0; i--) {
      seen += table.bucketSize(i)
      if (seen >= this.n.cfg.k) return i
    }
    return 0
  }
}
