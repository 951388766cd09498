/**
 * Glue between the OHT engine and the simulator: `testnet()` builds a network of real OHT
 * nodes on simulated hosts (one seed for everything), with optional churn and adversaries, and
 * measures what the scenarios and the benchmark assert on: GET success, hops, messages per
 * lookup, virtual latencies, PUT write reach against the TRUE k closest online nodes (global
 * knowledge), stored bytes, events, wall time and peak memory.
 *
 * src/netsim stays generic; everything that understands OHT frames (adversaries, the per-op
 * message/hop tracker) lives here.
 *
 * @example
 * const net = await testnet({ seed: 1, size: 200 })
 * const writer = net.randomPeer()
 * const put = await net.sim.settle(net.put(writer, { kind: 'immutable', value }))
 * const got = await net.sim.settle(net.get(net.randomPeer(), put.key, { value }))
 * net.stop()
 */
import { EventEmitter } from 'node:events'
import { bytesEqual, logger, type AbortOptions } from '../../src/core/index.ts'
import {
  createOhtNode, createSignatureVerifier, decodeRequest, decodeResponse, encodeResponse, idPrefix, immutableKey, mutableKey, OHT_DEFAULTS,
  type DhtNet, type DhtRequestOptions, type OhtNode, type OhtNodeInit, type OhtRecord, type OhtResponse, type OhtStats, type PeerContact, createStats
} from '../../src/oht/index.ts'
import {
  churnPerHour, createSimulation, dropAllRequests, summarize, torLatency,
  type Churn, type Interceptor, type LatencyModel, type NetworkStats, type SimHost, type Simulation, type Summary
} from '../../src/netsim/index.ts'
import { simIdentityFromSeed, type SimIdentity } from './sim-identity.ts'
import { wireIdBytes, wireIdOffset } from '../../src/oht/codec.ts'
import { idPrefixAt } from '../../src/oht/id-map.ts'

// Thousands of nodes each keep more than ten requests in flight on one long-lived AbortSignal;
// Node's leak warning (11 listeners) would flood the output. Test processes only.
EventEmitter.defaultMaxListeners = 0

/** A contact as a NODES/VALUE frame carries it (the engine's wire type, not exported). */
type WireContact = Extract<OhtResponse, { type: 'nodes' }>['contacts'][number]

export type AdversaryKind = 'dropper' | 'wrong-closer' | 'forger'

export interface TestnetInit {
  seed: string | number
  /** Nodes at the start (adversaries included). */
  size: number
  /** @default torLatency() */
  latency?: LatencyModel
  /** Per-message loss probability. @default 0 */
  loss?: number
  /** Scheduler batching quantum (see SchedulerInit.quantumMs). @default 0 */
  quantumMs?: number
  /** Engine config for every node (addrs are set by the harness). */
  node?: Partial<OhtNodeInit>
  /** Fraction of the honest nodes replaced per simulated hour. @default 0 (no churn) */
  churnPerHour?: number
  /** Fraction of the initial nodes that are adversarial, split evenly over `kinds`. */
  adversaries?: { fraction: number, kinds?: AdversaryKind[] }
  /**
   * Fill the initial routing tables from global knowledge (k random contacts per bucket)
   * instead of running every node's bootstrap: the network starts converged, which is what
   * a long-running deployment looks like, at a fraction of the CPU. Joining nodes always
   * bootstrap for real. @default true
   */
  warmStart?: boolean
  /** Bootstrap contacts a joining node is given (random online honest nodes). @default 3 */
  joinContacts?: number
  /** Replication factor the write reach is measured against. @default 20 */
  k?: number
}

export interface SimPeer {
  readonly host: SimHost
  readonly identity: SimIdentity
  readonly node: OhtNode
  readonly id: Uint8Array
  /** First 32 bits of `id`, for fast distance ranking. */
  readonly prefix: number
  readonly adversary?: AdversaryKind
  readonly joinedAt: number
  leftAt?: number
}

export interface PutSpec {
  kind: 'immutable' | 'mutable'
  value: Uint8Array
  salt?: Uint8Array
  seq?: number
  ttlMs?: number
}

export interface PutOutcome {
  key: Uint8Array
  ok: boolean
  code?: string
  stored: number
  /** How many of the true k closest online honest nodes hold this write right after the put. */
  reach: number
  seq?: number
  latencyMs: number
  messages: number
}

export interface GetOutcome {
  ok: boolean
  found: boolean
  code?: string
  seq?: number
  latencyMs: number
  messages: number
  /** Lookup depth at which the first copy of the value was found (1 = a routing-table peer). */
  hops?: number
}

/** Figures of a run; `deterministic` must be equal for equal seeds. */
export interface TestnetMetrics {
  deterministic: {
    seed: string
    adversaries: { lies: number, forgeries: number, fakePuts: number }
    virtualMs: number
    events: number
    nodesOnline: number
    nodesEver: number
    churn: { left: number, joined: number, failures: number }
    gets: { attempted: number, succeeded: number, successRate: number, notFound: number, wrongValue: number, failed: number }
    getHops: Summary
    getMessages: Summary
    getLatencyMs: Summary
    puts: { attempted: number, succeeded: number, reachAtLeast18Rate: number }
    putReach: Summary
    putMessages: Summary
    putLatencyMs: Summary
    store: { records: number, bytes: number }
    network: NetworkStats
    engine: { lookups: number, lookupQueries: number, timeouts: number, requestFailures: number, recordsStored: number, recordsRejected: number, recordsExpired: number, republished: number, replicated: number, rateLimited: number, badFrames: number, probes: number, probesFailed: number }
    /** Lookups and their requests by purpose, and requests sent by type, summed over every node. */
    traffic: { lookupsBy: OhtStats['lookupsBy'], requestsOut: OhtStats['requestsOut'] }
  }
  wallMs: number
  peakRssMiB: number
}

interface TrackedOp {
  target: Uint8Array
  messages: number
  depth: Map<number, number>
  hops?: number
}

/** Distance rank helper: the first 32 bits of an id (ties broken by the full id). */
function prefixOf (id: Uint8Array): number {
  return ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) >>> 0
}

type EngineCounters = TestnetMetrics['deterministic']['engine']
type TrafficCounters = TestnetMetrics['deterministic']['traffic']

function emptyEngineCounters (): EngineCounters {
  return { lookups: 0, lookupQueries: 0, timeouts: 0, requestFailures: 0, recordsStored: 0, recordsRejected: 0, recordsExpired: 0, republished: 0, replicated: 0, rateLimited: 0, badFrames: 0, probes: 0, probesFailed: 0 }
}

/** Adds one node's counters to a running total. */
function addCounters (into: { engine: EngineCounters, traffic: TrafficCounters }, s: OhtStats): void {
  for (const key of Object.keys(into.engine) as Array<keyof EngineCounters>) into.engine[key] += s[key]
  for (const [why, n] of Object.entries(s.lookupsBy) as Array<[keyof OhtStats['lookupsBy'], OhtStats['lookupsBy']['user']]>) {
    into.traffic.lookupsBy[why].lookups += n.lookups
    into.traffic.lookupsBy[why].queries += n.queries
    into.traffic.lookupsBy[why].failed += n.failed
  }
  for (const key of Object.keys(into.traffic.requestsOut) as Array<keyof OhtStats['requestsOut']>) into.traffic.requestsOut[key] += s.requestsOut[key]
}

function compareFull (a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[i] ^ target[i]) - (b[i] ^ target[i])
    if (d !== 0) return d
  }
  return 0
}

export class Testnet {
  readonly sim: Simulation
  /**
   * Peers, online first of all: departed ones are dropped from here now and then (their
   * counters are kept in `departed`), so a long churning run does not keep every node it ever
   * had alive. Filter by `host.online`.
   */
  peers: SimPeer[] = []
  private readonly byIndex = new Map<number, SimPeer>()
  private departedInPeers = 0
  private everCount = 0
  /** Counters of departed nodes, summed when they leave. */
  private readonly departed = { engine: emptyEngineCounters(), traffic: { lookupsBy: createStats().lookupsBy, requestsOut: createStats().requestsOut } }
  readonly churn: Churn | undefined
  readonly k: number
  private readonly init: TestnetInit
  /** The engine defaults the workload needs. */
  readonly nodeDefaults: { ttlDefault: number }
  private readonly nodeInit: Partial<OhtNodeInit>
  private readonly verifier = createSignatureVerifier({ cacheSize: 65_536 })
  private readonly idRng
  private readonly trackers = new Map<number, TrackedOp[]>()
  private stopped = false
  // Metric samples (virtual time, deterministic).
  private readonly getHops: number[] = []
  private readonly getMessages: number[] = []
  private readonly getLatency: number[] = []
  private readonly putReach: number[] = []
  private readonly putMessages: number[] = []
  private readonly putLatency: number[] = []
  private readonly gets = { attempted: 0, succeeded: 0, notFound: 0, wrongValue: 0, failed: 0 }
  private readonly puts = { attempted: 0, succeeded: 0 }
  /** Last error codes seen by failing operations (diagnostics). */
  readonly failures: string[] = []
  /** What the adversaries did: lying NODES/VALUE answers, forged records served, PUTs swallowed. */
  readonly adversaryStats = { lies: 0, forgeries: 0, fakePuts: 0 }

  constructor (init: TestnetInit) {
    this.init = init
    this.k = init.k ?? init.node?.k ?? OHT_DEFAULTS.k
    this.nodeInit = init.node ?? {}
    this.nodeDefaults = { ttlDefault: init.node?.ttl?.defaultMs ?? OHT_DEFAULTS.ttlDefaultMs }
    this.sim = createSimulation({ seed: init.seed, quantumMs: init.quantumMs, network: { latency: init.latency ?? torLatency(), loss: init.loss } })
    this.idRng = this.sim.fork('identities')
    if ((init.churnPerHour ?? 0) > 0) {
      this.churn = this.sim.churn({ sessionLifetime: churnPerHour(init.churnPerHour as number) }, {
        leave: (i) => { const p = this.byIndex.get(i); if (p !== undefined) this.leave(p) },
        join: () => this.join().host.index
      })
    }
  }

  // ---------------------------------------------------------------- membership

  private makePeer (adversary?: AdversaryKind): SimPeer {
    const identity = simIdentityFromSeed(this.idRng.bytes(32))
    const host = this.sim.addHost({ publicKey: identity.publicKey })
    const net = this.trackedNet(host)
    // Per-node log namespace: OHT_DEBUG=oht:node:sim:42 follows one node.
    const log = logger(`oht:node:${host.address}`)
    const node = createOhtNode({ ...this.nodeInit, addrs: [host.address] }, { identity, net, clock: host.clock, rng: host.rng, verifier: this.verifier, log })
    const peer: SimPeer = { host, identity, node, id: node.id, prefix: prefixOf(node.id), adversary, joinedAt: this.sim.now }
    if (adversary !== undefined) host.interceptor = this.interceptorFor(peer, adversary)
    this.peers.push(peer)
    this.byIndex.set(host.index, peer)
    this.everCount++
    return peer
  }

  /** Creates the initial population; routing tables warm-started or bootstrapped. */
  async populate (): Promise<void> {
    const { size } = this.init
    const advFraction = this.init.adversaries?.fraction ?? 0
    const kinds = this.init.adversaries?.kinds ?? ['dropper', 'wrong-closer', 'forger']
    const nAdv = Math.round(size * advFraction)
    // Adversaries get random positions in the id space like everyone else.
    const advSlots = new Set<number>()
    const pick = this.sim.fork('adversary-slots')
    while (advSlots.size < nAdv) advSlots.add(pick.int(size))
    let a = 0
    for (let i = 0; i < size; i++) this.makePeer(advSlots.has(i) ? kinds[a++ % kinds.length] : undefined)
    for (const p of this.peers) await p.node.start()
    if (this.init.warmStart ?? true) {
      this.warmStart()
    } else {
      const contacts = this.peers.slice(0, Math.min(size, 8)).map(p => p.node.contact)
      await this.sim.settle(Promise.all(this.peers.map(async (p) => { try { await p.node.bootstrap(contacts) } catch {} })))
    }
    if (this.churn !== undefined) for (const p of this.peers) if (p.adversary === undefined) this.churn.track(p.host.index)
  }

  /**
   * Global-knowledge routing tables: for every node, up to k random contacts in each bucket
   * (bucket = common prefix length with the node's id).
   */
  private warmStart (): void {
    const rng = this.sim.fork('warm-start')
    const k = this.nodeInit.k ?? OHT_DEFAULTS.k
    const refreshMs = this.nodeInit.refreshIntervalMs ?? OHT_DEFAULTS.refreshIntervalMs
    const now = this.sim.now
    // Peers sorted by id prefix: bucket b of a node is one contiguous range of this order
    // (same first b bits, bit b flipped), found by binary search: O(n log n) per node.
    const order = this.peers.map((_, i) => i).sort((a, b) => this.peers[a].prefix - this.peers[b].prefix || compareFull(this.peers[a].id, this.peers[b].id, new Uint8Array(32)))
    const prefixes = Float64Array.from(order, i => this.peers[i].prefix)
    const lowerBound = (v: number): number => {
      let lo = 0; let hi = prefixes.length
      while (lo < hi) { const mid = (lo + hi) >> 1; if (prefixes[mid] < v) lo = mid + 1; else hi = mid }
      return lo
    }
    const scratch: number[] = []
    for (const self of this.peers) {
      for (let b = 0; b < 32; b++) {
        const span = 2 ** (31 - b)
        const base = Math.floor(self.prefix / (2 * span)) * 2 * span + (Math.floor(self.prefix / span) % 2 === 0 ? span : 0)
        const lo = lowerBound(base)
        const hi = lowerBound(base + span)
        const size = hi - lo
        if (size === 0) continue
        scratch.length = 0
        if (size <= k) {
          for (let i = lo; i < hi; i++) scratch.push(order[i])
        } else {
          // k distinct random members of the range (rejection: k is small next to size).
          const picked = new Set<number>()
          while (picked.size < k) picked.add(lo + rng.int(size))
          for (const i of picked) scratch.push(order[i])
        }
        for (const j of scratch) {
          const other = this.peers[j]
          if (other !== self) self.node.routingTable.add(other.id, other.node.contact, now, true) // a node's own id and contact: shared, not copied
        }
      }
      // A network in its steady state has refreshed its buckets at scattered times; without
      // this, every node would refresh every bucket in the same minute one interval later.
      // One phase per node, not per bucket: the neighbourhood's buckets are refreshed together
      // (one self-lookup), so per-bucket phases would bunch every node's first refresh early.
      const table = self.node.routingTable
      const phase = now - rng.int(refreshMs)
      for (let b = 0; b <= table.deepestBucket + 1 && b < 256; b++) table.markRefreshed(b, phase)
    }
  }

  /** A node leaves abruptly: its host crashes and its engine is stopped (store wiped). */
  leave (peer: SimPeer): void {
    if (!peer.host.online) return
    peer.leftAt = this.sim.now
    this.sim.network.remove(peer.host)
    this.churn?.untrack(peer.host.index)
    void peer.node.stop()
    addCounters(this.departed, peer.node.stats)
    this.byIndex.delete(peer.host.index)
    // Compact now and then: O(1) per departure on average.
    if (++this.departedInPeers > 64 && this.departedInPeers * 4 > this.peers.length) {
      this.peers = this.peers.filter(p => p.host.online)
      this.departedInPeers = 0
    }
  }

  /** A new honest node joins and bootstraps from a few random online honest nodes. */
  join (): SimPeer {
    const peer = this.makePeer()
    const contacts: PeerContact[] = []
    const want = this.init.joinContacts ?? 3
    for (let tries = 0; contacts.length < want && tries < 100; tries++) {
      const p = this.randomPeer()
      if (p !== peer && !contacts.includes(p.node.contact)) contacts.push(p.node.contact)
    }
    void peer.node.start().then(async () => await peer.node.bootstrap(contacts)).catch((err: unknown) => {
      this.failures.push(`join: ${(err as { code?: string }).code ?? String(err)}`)
    })
    return peer
  }

  get online (): SimPeer[] { return this.peers.filter(p => p.host.online) }
  get honestOnline (): SimPeer[] { return this.peers.filter(p => p.host.online && p.adversary === undefined) }

  /** A random online honest peer (scenario Rng). */
  randomPeer (): SimPeer {
    for (;;) {
      const p = this.peers[this.sim.rng.int(this.peers.length)]
      if (p.host.online && p.adversary === undefined) return p
    }
  }

  /** The true `n` closest online honest peers to `key` (global knowledge). */
  trueClosest (key: Uint8Array, n = this.k): SimPeer[] {
    // One pass keeping the n best in order (insertion into a short sorted array): the same
    // answer as sorting every online peer, for a fraction of the cost at 10,000 nodes, where
    // the full sort was ~6 % of the benchmark's time (it runs after every put). The pass reads
    // packed id prefixes and looks at a peer itself only when it could enter the n best.
    const kp = prefixOf(key)
    const dist = (p: SimPeer): number => (p.prefix ^ kp) >>> 0
    const closer = (a: SimPeer, b: SimPeer): boolean => dist(a) < dist(b) || (dist(a) === dist(b) && compareFull(a.id, b.id, key) < 0)
    const best: SimPeer[] = []
    if (n <= 0) return best
    const prefixes = this.peerPrefixes()
    let worst = Infinity // distance of best[n - 1] once best is full
    for (let i = 0; i < this.peers.length; i++) {
      if (((prefixes[i] ^ kp) >>> 0) > worst) continue
      const p = this.peers[i]
      if (!p.host.online || p.adversary !== undefined) continue
      if (best.length === n && !closer(p, best[n - 1])) continue
      let j = best.length
      while (j > 0 && closer(p, best[j - 1])) j--
      best.splice(j, 0, p)
      if (best.length > n) best.pop()
      if (best.length === n) worst = dist(best[n - 1])
    }
    return best
  }

  private prefixCache = new Uint32Array(0)
  private prefixCacheFor: SimPeer[] | undefined
  private prefixCacheLength = 0

  /** `prefix` of every entry of `peers`, packed (kept in step as peers join and the list is compacted). */
  private peerPrefixes (): Uint32Array {
    const peers = this.peers
    if (this.prefixCacheFor !== peers) { this.prefixCacheFor = peers; this.prefixCacheLength = 0 }
    if (this.prefixCache.length < peers.length) {
      const grown = new Uint32Array(Math.max(1024, peers.length * 2))
      grown.set(this.prefixCache.subarray(0, this.prefixCacheLength))
      this.prefixCache = grown
    }
    for (let i = this.prefixCacheLength; i < peers.length; i++) this.prefixCache[i] = peers[i].prefix
    this.prefixCacheLength = peers.length
    return this.prefixCache
  }

  /** Online peers whose store holds `key` (optionally exactly seq `seq`). */
  holders (key: Uint8Array, seq?: number): SimPeer[] {
    return this.peers.filter(p => p.host.online && holds(p, key, seq))
  }

  /** Records and value bytes held over all online nodes. */
  storeUsage (): { records: number, bytes: number } {
    let records = 0
    let bytes = 0
    for (const p of this.peers) {
      if (!p.host.online) continue
      records += p.node.store.size
      bytes += p.node.store.bytes
    }
    return { records, bytes }
  }

  // ---------------------------------------------------------------- measured operations

  /** Puts a record from `peer` and measures reach, messages and virtual latency. */
  async put (peer: SimPeer, spec: PutSpec, options: AbortOptions = {}): Promise<PutOutcome> {
    this.puts.attempted++
    const key = spec.kind === 'immutable' ? immutableKey(spec.value) : mutableKey(peer.identity.publicKey, spec.salt)
    const op = this.track(peer, key)
    const t0 = this.sim.now
    let out: PutOutcome
    try {
      const r = spec.kind === 'immutable'
        ? await peer.node.putImmutable(spec.value, { ttlMs: spec.ttlMs, signal: options.signal })
        : await peer.node.putMutable({ value: spec.value, salt: spec.salt, seq: spec.seq, ttlMs: spec.ttlMs, signal: options.signal })
      const closest = this.trueClosest(key)
      const reach = closest.filter(p => holds(p, key, r.seq)).length
      out = { key, ok: r.stored > 0, stored: r.stored, reach, seq: r.seq, latencyMs: this.sim.now - t0, messages: op.messages }
      if (out.ok) {
        this.puts.succeeded++
      } else {
        const codes = [...new Set(r.errors.map(e => e.code))].join(',')
        out.code = codes === '' ? 'NO_TARGETS' : codes
        this.failures.push(`put: stored 0 (${out.code})`)
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERROR'
      this.failures.push(`put: ${code}`)
      out = { key, ok: false, code, stored: 0, reach: 0, latencyMs: this.sim.now - t0, messages: op.messages }
    } finally {
      this.untrack(peer, op)
    }
    this.putReach.push(out.reach)
    this.putMessages.push(out.messages)
    this.putLatency.push(out.latencyMs)
    return out
  }

  /**
   * Gets `key` from `peer`; success means the value (and seq, for mutable records) equals
   * `expected`.
   */
  async get (peer: SimPeer, key: Uint8Array, expected: { value: Uint8Array, seq?: number }, options: AbortOptions = {}): Promise<GetOutcome> {
    this.gets.attempted++
    const op = this.track(peer, key)
    const t0 = this.sim.now
    let out: GetOutcome
    try {
      const r = await peer.node.get(key, options)
      const found = r !== undefined
      const ok = found && bytesEqual(r.value, expected.value) && (expected.seq === undefined || r.seq === expected.seq)
      out = { ok, found, seq: r?.seq, latencyMs: this.sim.now - t0, messages: op.messages, hops: op.hops ?? (found ? 0 : undefined) }
      if (ok) this.gets.succeeded++
      else if (!found) { this.gets.notFound++; this.failures.push('get: not found') } else { this.gets.wrongValue++; this.failures.push(`get: wrong value (seq ${String(r.seq)}, expected ${String(expected.seq)})`) }
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERROR'
      this.gets.failed++
      this.failures.push(`get: ${code}`)
      out = { ok: false, found: false, code, latencyMs: this.sim.now - t0, messages: op.messages }
    } finally {
      this.untrack(peer, op)
    }
    this.getMessages.push(out.messages)
    this.getLatency.push(out.latencyMs)
    if (out.ok && out.hops !== undefined) this.getHops.push(out.hops)
    return out
  }

  // ---------------------------------------------------------------- per-operation tracking

  private track (peer: SimPeer, key: Uint8Array): TrackedOp {
    const op: TrackedOp = { target: key.slice(), messages: 0, depth: new Map() }
    const list = this.trackers.get(peer.host.index)
    if (list === undefined) this.trackers.set(peer.host.index, [op])
    else list.push(op)
    return op
  }

  private untrack (peer: SimPeer, op: TrackedOp): void {
    const list = this.trackers.get(peer.host.index)
    if (list === undefined) return
    const i = list.indexOf(op)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.trackers.delete(peer.host.index)
  }

  /**
   * The node's DhtNet: the host's, plus (only while a measured operation runs on this node)
   * a look at each request's target and each response's contacts to count messages and hops.
   */
  private trackedNet (host: SimHost): DhtNet {
    return {
      handle: (handler) => { host.net.handle(handler) },
      // Untracked requests go straight through (no extra async frame per request).
      request: (to, frame, options) => {
        const ops = this.trackers.get(host.index)
        return ops === undefined ? host.net.request(to, frame, options) : this.trackedRequest(host, ops, to, frame, options)
      }
    }
  }

  /**
   * A request by a node running a tracked operation: counts its messages and lookup depth.
   * Peers are keyed by the first 48 bits of their node id (a number, no strings): the contacts
   * in an answer carry their ids, and the asked peer's comes from its host.
   */
  private async trackedRequest (host: SimHost, ops: TrackedOp[], to: PeerContact, frame: Uint8Array, options?: DhtRequestOptions): Promise<Uint8Array> {
    let op: TrackedOp | undefined
    try {
      const req = decodeRequest(frame)
      const target = req.type === 'find-node' ? req.target : req.type === 'get' || req.type === 'put' ? req.key : undefined
      if (target !== undefined) op = ops.find(o => bytesEqual(o.target, target))
    } catch {}
    if (op === undefined) return await host.net.request(to, frame, options)
    op.messages++
    const asked = this.byIndex.get(this.sim.network.resolve(to)?.index ?? -1)
    const depth = (asked !== undefined ? op.depth.get(idPrefix(asked.id)) : undefined) ?? 1
    const answer = await host.net.request(to, frame, options)
    try {
      const res = decodeResponse(answer)
      if (res.type === 'nodes' || res.type === 'value') {
        for (const c of res.contacts) {
          const p = idPrefixAt(wireIdBytes(c), wireIdOffset(c)) // in place: no id array per contact
          if (!op.depth.has(p)) op.depth.set(p, depth + 1)
        }
        if (res.type === 'value' && res.record !== undefined && op.hops === undefined) op.hops = depth
      }
    } catch {}
    return answer
  }

  // ---------------------------------------------------------------- adversaries

  private interceptorFor (self: SimPeer, kind: AdversaryKind): Interceptor {
    if (kind === 'dropper') return dropAllRequests
    if (kind === 'wrong-closer') {
      // Answers every lookup with the adversaries closest to the target (an eclipse attempt)
      // and never returns a value; accepts PUTs without storing them.
      return async (ctx) => {
        const req = safeDecodeRequest(ctx.frame)
        const real = await ctx.forward()
        if (req === undefined) return real
        const res = safeDecodeResponse(real)
        if (res === undefined) return real
        if (req.type === 'put') { this.adversaryStats.fakePuts++; return encodeResponse({ type: 'stored', grantedMs: req.remainingMs }) }
        if (res.type !== 'nodes' && res.type !== 'value') return real
        const target = req.type === 'find-node' ? req.target : req.type === 'get' ? req.key : undefined
        if (target === undefined) return real
        const liars = this.closestAdversaries(target, this.k, self)
        this.adversaryStats.lies++
        const forged: OhtResponse = res.type === 'value'
          ? { type: 'value', token: res.token, contacts: liars }
          : { type: 'nodes', token: res.token, contacts: liars }
        return encodeResponse(forged)
      }
    }
    // Forger: answers GETs with a forged record: a higher seq with a bad signature when it
    // holds the mutable record, a value that does not hash to the key otherwise.
    return async (ctx) => {
      const req = safeDecodeRequest(ctx.frame)
      const real = await ctx.forward()
      if (req?.type !== 'get') return real
      const res = safeDecodeResponse(real)
      if (res?.type !== 'value') return real
      const held = self.node.store.get(req.key)?.record
      let record: OhtRecord
      if (held?.kind === 'mutable') {
        const value = held.value.slice()
        value[0] ^= 0xff
        record = { ...held, seq: held.seq + 1000, value, signature: held.signature.slice().fill(7) }
      } else {
        record = { kind: 'immutable', ttlMs: 3_600_000, value: self.host.rng.bytes(16) }
      }
      if (!req.metadataOnly) this.adversaryStats.forgeries++
      return encodeResponse({ type: 'value', token: res.token, contacts: res.contacts, seq: record.kind === 'mutable' ? record.seq : 0, record: req.metadataOnly ? undefined : record })
    }
  }

  private closestAdversaries (target: Uint8Array, n: number, self: SimPeer): WireContact[] {
    const tp = prefixOf(target)
    const advs = this.peers.filter(p => p.adversary === 'wrong-closer' && p !== self && p.host.online)
    advs.sort((a, b) => ((a.prefix ^ tp) >>> 0) - ((b.prefix ^ tp) >>> 0))
    return advs.slice(0, n).map(p => ({ id: p.id, contact: p.node.contact }))
  }

  // ---------------------------------------------------------------- metrics and teardown

  metrics (): TestnetMetrics {
    const sum = { engine: { ...this.departed.engine }, traffic: structuredClone(this.departed.traffic) }
    for (const p of this.peers) if (p.host.online || p.leftAt === undefined) addCounters(sum, p.node.stats)
    const { engine, traffic } = sum
    const reach = this.putReach
    const g = this.gets
    return {
      deterministic: {
        seed: this.sim.seed,
        adversaries: { ...this.adversaryStats },
        virtualMs: this.sim.elapsed,
        events: this.sim.scheduler.eventsProcessed,
        nodesOnline: this.online.length,
        nodesEver: this.everCount,
        churn: { ...(this.churn?.stats ?? { left: 0, joined: 0, failures: 0 }) },
        gets: { ...g, successRate: g.attempted === 0 ? 0 : g.succeeded / g.attempted },
        getHops: summarize(this.getHops),
        getMessages: summarize(this.getMessages),
        getLatencyMs: summarize(this.getLatency),
        puts: { ...this.puts, reachAtLeast18Rate: reach.length === 0 ? 0 : reach.filter(r => r >= Math.min(18, this.k)).length / reach.length },
        putReach: summarize(reach),
        putMessages: summarize(this.putMessages),
        putLatencyMs: summarize(this.putLatency),
        store: this.storeUsage(),
        network: { ...this.sim.network.stats },
        engine,
        traffic
      },
      wallMs: Math.round(this.sim.meter.wallMs),
      peakRssMiB: this.sim.meter.peakRssMiB
    }
  }

  /** Stops every node and the churn, and drops queued events. */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.churn?.stop()
    for (const p of this.peers) { void p.node.stop(); p.identity.destroy() }
    this.sim.scheduler.clear()
  }
}

function holds (p: SimPeer, key: Uint8Array, seq?: number): boolean {
  const e = p.node.store.get(key)
  if (e === undefined) return false
  return seq === undefined || (e.record.kind === 'mutable' && e.record.seq === seq)
}

function safeDecodeRequest (frame: Uint8Array): ReturnType<typeof decodeRequest> | undefined {
  try { return decodeRequest(frame) } catch { return undefined }
}

function safeDecodeResponse (frame: Uint8Array): OhtResponse | undefined {
  try { return decodeResponse(frame) } catch { return undefined }
}

export interface WorkloadInit {
  /** Virtual minutes during which operations start. */
  minutes: number
  /** One PUT every this many virtual ms. */
  putEveryMs: number
  /** One GET every this many virtual ms (of a record whose latest write completed). */
  getEveryMs: number
  /** Share of PUTs that are mutable. @default 0.5 */
  mutableFraction?: number
  /** Share of mutable PUTs that update an existing record of an online writer. @default 0.3 */
  updateFraction?: number
  /** @default 128 */
  valueBytes?: number
  /** Record TTL asked by the writer. Default: the engine's default. */
  ttlMs?: number
  /** GETs pick records with at least this much TTL left. @default 5 minutes */
  ttlMarginMs?: number
}

interface LiveRecord {
  key: Uint8Array
  writer: SimPeer
  salt?: Uint8Array
  value: Uint8Array
  seq?: number
  expiresAt: number
  busy: boolean
}

/**
 * A steady put/get workload on virtual time: PUTs (immutable, new mutable, mutable updates)
 * and GETs of records whose latest write completed. Resolves when every started operation
 * has finished (run the simulation meanwhile: `await net.sim.settle(runWorkload(...))`).
 */
export async function runWorkload (net: Testnet, init: WorkloadInit): Promise<void> {
  const rng = net.sim.fork('workload')
  const clock = net.sim.clock
  let live: LiveRecord[] = []
  // Operations in flight (settled ones leave, so a day-long run holds only the current ones).
  const pending = new Set<Promise<unknown>>()
  const track = (p: Promise<unknown>): void => { pending.add(p); void p.finally(() => { pending.delete(p) }) }
  const end = net.sim.now + init.minutes * 60_000
  const valueBytes = init.valueBytes ?? 128
  const ttlMs = init.ttlMs ?? net.nodeDefaults.ttlDefault
  const margin = init.ttlMarginMs ?? 5 * 60_000
  let n = 0
  const doPut = (): void => {
    const value = rng.bytes(valueBytes)
    const mutable = rng.next() < (init.mutableFraction ?? 0.5)
    const candidates = live.filter(r => r.salt !== undefined && !r.busy && r.writer.host.online && r.expiresAt - net.sim.now > margin)
    if (mutable && candidates.length > 0 && rng.next() < (init.updateFraction ?? 0.3)) {
      const rec = candidates[rng.int(candidates.length)]
      rec.busy = true
      track(net.put(rec.writer, { kind: 'mutable', value, salt: rec.salt, ttlMs }).then((r) => {
        rec.busy = false
        if (r.ok) { rec.value = value; rec.seq = r.seq; rec.expiresAt = net.sim.now + ttlMs }
      }))
      return
    }
    const writer = net.randomPeer()
    const salt = mutable ? Uint8Array.of(0x77, n >> 16, (n >> 8) & 0xff, n & 0xff) : undefined
    n++
    // Expired records are of no use to reads or updates any more: let them (and their writers) go.
    if (n % 64 === 0) live = live.filter(r => r.busy || r.expiresAt > net.sim.now)
    track(net.put(writer, { kind: mutable ? 'mutable' : 'immutable', value, salt, ttlMs }).then((r) => {
      if (r.ok) live.push({ key: r.key, writer, salt, value, seq: r.seq, expiresAt: net.sim.now + ttlMs, busy: false })
    }))
  }
  const doGet = (): void => {
    const now = net.sim.now
    const candidates = live.filter(r => !r.busy && r.expiresAt - now > margin)
    if (candidates.length === 0) return
    const rec = candidates[rng.int(candidates.length)]
    track(net.get(net.randomPeer(), rec.key, { value: rec.value, seq: rec.seq }))
  }
  const putTimer = clock.setInterval(() => { if (net.sim.now <= end) doPut() }, init.putEveryMs)
  const getTimer = clock.setInterval(() => { if (net.sim.now <= end) doGet() }, init.getEveryMs)
  await clock.sleep(init.minutes * 60_000)
  putTimer.cancel()
  getTimer.cancel()
  await Promise.all([...pending])
}

/** Builds and populates a testnet. */
export async function testnet (init: TestnetInit): Promise<Testnet> {
  const net = new Testnet(init)
  await net.populate()
  return net
}

/** Prints a metrics block the way every scenario reports it. */
export function report (title: string, m: TestnetMetrics): void {
  const d = m.deterministic
  const s = (x: Summary, unit = ''): string => `p50 ${fmt(x.p50)}${unit} p95 ${fmt(x.p95)}${unit} p99 ${fmt(x.p99)}${unit} (n=${x.count})`
  const lines = [
    `── ${title} (seed ${d.seed}; replay with OHT_SIM_SEED=${d.seed})`,
    `   nodes online ${d.nodesOnline} (ever ${d.nodesEver}), churn left ${d.churn.left} joined ${d.churn.joined}; virtual ${(d.virtualMs / 60000).toFixed(1)} min; events ${d.events}`,
    `   GET success ${(100 * d.gets.successRate).toFixed(2)}% (${d.gets.succeeded}/${d.gets.attempted}; not found ${d.gets.notFound}, wrong ${d.gets.wrongValue}, failed ${d.gets.failed})`,
    `   GET hops ${s(d.getHops)}; messages ${s(d.getMessages)}; latency ${s(d.getLatencyMs, ' ms')}`,
    `   PUT ok ${d.puts.succeeded}/${d.puts.attempted}; reach (of true ${20}) ${s(d.putReach)}; >=18 in ${(100 * d.puts.reachAtLeast18Rate).toFixed(2)}%`,
    `   PUT messages ${s(d.putMessages)}; latency ${s(d.putLatencyMs, ' ms')}`,
    `   stored ${d.store.records} records / ${d.store.bytes} bytes; network requests ${d.network.requests}, timeouts ${d.engine.timeouts}, lookups ${d.engine.lookups}`,
    `   traffic: ${Object.entries(d.traffic.lookupsBy).filter(([, n]) => n.lookups > 0).map(([why, n]) => `${why} ${n.lookups} lookups/${n.queries} req (${n.failed} failed)`).join(', ')}; probes ${d.engine.probes} (${d.engine.probesFailed} failed); out ping ${d.traffic.requestsOut.ping} find ${d.traffic.requestsOut.findNode} get ${d.traffic.requestsOut.get} put ${d.traffic.requestsOut.put}`,
    `   wall ${(m.wallMs / 1000).toFixed(1)} s, peak RSS ${m.peakRssMiB} MiB`
  ]
  console.log(lines.join('\n'))
}

function fmt (v: number): string { return Number.isInteger(v) ? String(v) : v.toFixed(1) }
