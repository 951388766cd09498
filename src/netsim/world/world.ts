/**
 * The world: N real OHT nodes on simulated hosts, built from one seed, each with its engine
 * (`oht`), its PeerNet (`peers`) and its identity; membership and churn, ground truth (the
 * true closest nodes by global knowledge), adversaries, a measured put/get workload and a
 * report. See index.ts for the contract and an example.
 */
import { EventEmitter } from 'node:events'
import { bytesEqual, logger, type AbortOptions } from '../../core/index.ts'
import {
  createOhtNode, createSignatureVerifier, decodeRequest, decodeResponse, idPrefix, immutableKey, mutableKey, OHT_DEFAULTS,
  type DhtNet, type DhtRequestOptions, type OhtNode, type OhtNodeInit, type OhtStats, type PeerContact, type WireContact, createStats
} from '../../oht/index.ts'
import { wireIdBytes, wireIdOffset } from '../../oht/codec.ts'
import { idPrefixAt } from '../../oht/id-map.ts'
import { SimError } from '../errors.ts'
import { churnPerHour, createSimulation, summarize, torLatency, type Churn, type HostPeerNet, type LatencyModel, type NetworkStats, type SimHost, type Simulation, type Summary } from '../index.ts'
import { adversaryInterceptor, type AdversaryKind } from './adversaries.ts'
import { simIdentityFromSeed, type SimIdentity } from './sim-identity.ts'

export interface WorldInit {
  /** Every random draw of the world derives from it (replay a run with the same seed). */
  seed: string | number
  /** Nodes at the start (adversaries included). */
  size: number
  /** @default torLatency() */
  latency?: LatencyModel
  /** Per-message loss probability. @default 0 */
  loss?: number
  /** Scheduler batching quantum (see SchedulerInit.quantumMs). @default 0 */
  quantumMs?: number
  /** Engine config for every node (addrs are set by the world). @default {} */
  node?: Partial<OhtNodeInit>
  /** Fraction of the honest nodes replaced per simulated hour. @default 0 (no churn) */
  churnPerHour?: number
  /** Fraction of the initial nodes that are adversarial, split evenly over `kinds` (default: all three). @default none */
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

/**
 * One node of the world: a simulated host running a real OHT engine. Its PeerNet (`peers`) is
 * the host's, made on first use (a world that never uses it draws nothing for it).
 */
export class WorldNode {
  /** Virtual time it left (crashed for good), if it did. */
  leftAt?: number

  constructor (
    readonly host: SimHost,
    readonly identity: SimIdentity,
    readonly oht: OhtNode,
    readonly id: Uint8Array,
    /** First 32 bits of `id`, for fast distance ranking. */
    readonly prefix: number,
    readonly joinedAt: number,
    readonly adversary?: AdversaryKind
  ) {}

  /** Direct protocols to other nodes (the shape of src/oht's PeerNet). */
  get peers (): HostPeerNet { return this.host.peers }
  /** How other nodes reach this one. */
  get contact (): PeerContact { return this.oht.contact }
  get online (): boolean { return this.host.online }
  /** Index of its host: stable for the node's life, never reused. */
  get index (): number { return this.host.index }
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
export interface WorldMetrics {
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

type EngineCounters = WorldMetrics['deterministic']['engine']
type TrafficCounters = WorldMetrics['deterministic']['traffic']

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

export class World {
  readonly sim: Simulation
  /**
   * The nodes: departed ones are dropped from here now and then (their counters are kept in
   * `departed`), so a long churning run does not keep every node it ever had alive. Filter
   * by `online`.
   */
  nodes: WorldNode[] = []
  private readonly byIndex = new Map<number, WorldNode>()
  private departedInNodes = 0
  private everCount = 0
  /** Counters of departed nodes, summed when they leave. */
  private readonly departed = { engine: emptyEngineCounters(), traffic: { lookupsBy: createStats().lookupsBy, requestsOut: createStats().requestsOut } }
  readonly churn: Churn | undefined
  readonly k: number
  private readonly init: WorldInit
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

  constructor (init: WorldInit) {
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

  private makeNode (adversary?: AdversaryKind): WorldNode {
    const identity = simIdentityFromSeed(this.idRng.bytes(32))
    const host = this.sim.addHost({ publicKey: identity.publicKey })
    const net = this.trackedNet(host)
    // Per-node log namespace: OHT_DEBUG=oht:node:sim:42 follows one node.
    const log = logger(`oht:node:${host.address}`)
    const oht = createOhtNode({ ...this.nodeInit, addrs: [host.address] }, { identity, net, clock: host.clock, rng: host.rng, verifier: this.verifier, log })
    const peer = new WorldNode(host, identity, oht, oht.id, prefixOf(oht.id), this.sim.now, adversary)
    if (adversary !== undefined) host.interceptor = adversaryInterceptor(peer, adversary, this)
    this.nodes.push(peer)
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
    for (let i = 0; i < size; i++) this.makeNode(advSlots.has(i) ? kinds[a++ % kinds.length] : undefined)
    for (const p of this.nodes) await p.oht.start()
    if (this.init.warmStart ?? true) {
      this.warmStart()
    } else {
      const contacts = this.nodes.slice(0, Math.min(size, 8)).map(p => p.oht.contact)
      await this.sim.settle(Promise.all(this.nodes.map(async (p) => { try { await p.oht.bootstrap(contacts) } catch {} })))
    }
    if (this.churn !== undefined) for (const p of this.nodes) if (p.adversary === undefined) this.churn.track(p.host.index)
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
    const order = this.nodes.map((_, i) => i).sort((a, b) => this.nodes[a].prefix - this.nodes[b].prefix || compareFull(this.nodes[a].id, this.nodes[b].id, new Uint8Array(32)))
    const prefixes = Float64Array.from(order, i => this.nodes[i].prefix)
    const lowerBound = (v: number): number => {
      let lo = 0; let hi = prefixes.length
      while (lo < hi) { const mid = (lo + hi) >> 1; if (prefixes[mid] < v) lo = mid + 1; else hi = mid }
      return lo
    }
    const scratch: number[] = []
    for (const self of this.nodes) {
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
          const other = this.nodes[j]
          if (other !== self) self.oht.routingTable.add(other.id, other.oht.contact, now, true) // a node's own id and contact: shared, not copied
        }
      }
      // A network in its steady state has refreshed its buckets at scattered times; without
      // this, every node would refresh every bucket in the same minute one interval later.
      // One phase per node, not per bucket: the neighbourhood's buckets are refreshed together
      // (one self-lookup), so per-bucket phases would bunch every node's first refresh early.
      const table = self.oht.routingTable
      const phase = now - rng.int(refreshMs)
      for (let b = 0; b <= table.deepestBucket + 1 && b < 256; b++) table.markRefreshed(b, phase)
    }
  }

  /** A node leaves abruptly: its host crashes and its engine is stopped (store wiped). */
  leave (peer: WorldNode): void {
    if (!peer.host.online) return
    peer.leftAt = this.sim.now
    this.sim.network.remove(peer.host)
    this.churn?.untrack(peer.host.index)
    void peer.oht.stop()
    addCounters(this.departed, peer.oht.stats)
    this.byIndex.delete(peer.host.index)
    // Compact now and then: O(1) per departure on average.
    if (++this.departedInNodes > 64 && this.departedInNodes * 4 > this.nodes.length) {
      this.nodes = this.nodes.filter(p => p.host.online)
      this.departedInNodes = 0
    }
  }

  /** A new honest node joins and bootstraps from a few random online honest nodes. */
  join (): WorldNode {
    const peer = this.makeNode()
    const contacts: PeerContact[] = []
    const want = this.init.joinContacts ?? 3
    for (let tries = 0; contacts.length < want && tries < 100; tries++) {
      const p = this.randomNode()
      if (p !== peer && !contacts.includes(p.oht.contact)) contacts.push(p.oht.contact)
    }
    void peer.oht.start().then(async () => await peer.oht.bootstrap(contacts)).catch((err: unknown) => {
      this.failures.push(`join: ${(err as { code?: string }).code ?? String(err)}`)
    })
    return peer
  }

  /**
   * The node on host `index` (the initial ones are 0 … size-1). Throws SIM_UNKNOWN_HOST for
   * an index that never was or whose node left (departed nodes are forgotten).
   */
  node (index: number): WorldNode {
    const n = this.byIndex.get(index)
    if (n === undefined) throw new SimError('SIM_UNKNOWN_HOST', `no node on host ${index} in this world (it never joined, or it left)`)
    return n
  }

  get online (): WorldNode[] { return this.nodes.filter(p => p.host.online) }
  get honestOnline (): WorldNode[] { return this.nodes.filter(p => p.host.online && p.adversary === undefined) }

  /** A random online honest peer (scenario Rng). */
  randomNode (): WorldNode {
    for (;;) {
      const p = this.nodes[this.sim.rng.int(this.nodes.length)]
      if (p.host.online && p.adversary === undefined) return p
    }
  }

  /** The true `n` closest online honest peers to `key` (global knowledge). */
  trueClosest (key: Uint8Array, n = this.k): WorldNode[] {
    // One pass keeping the n best in order (insertion into a short sorted array): the same
    // answer as sorting every online peer, for a fraction of the cost at 10,000 nodes, where
    // the full sort was ~6 % of the benchmark's time (it runs after every put). The pass reads
    // packed id prefixes and looks at a peer itself only when it could enter the n best.
    const kp = prefixOf(key)
    const dist = (p: WorldNode): number => (p.prefix ^ kp) >>> 0
    const closer = (a: WorldNode, b: WorldNode): boolean => dist(a) < dist(b) || (dist(a) === dist(b) && compareFull(a.id, b.id, key) < 0)
    const best: WorldNode[] = []
    if (n <= 0) return best
    const prefixes = this.nodePrefixes()
    let worst = Infinity // distance of best[n - 1] once best is full
    for (let i = 0; i < this.nodes.length; i++) {
      if (((prefixes[i] ^ kp) >>> 0) > worst) continue
      const p = this.nodes[i]
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
  private prefixCacheFor: WorldNode[] | undefined
  private prefixCacheLength = 0

  /** `prefix` of every entry of `peers`, packed (kept in step as peers join and the list is compacted). */
  private nodePrefixes (): Uint32Array {
    const peers = this.nodes
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
  holders (key: Uint8Array, seq?: number): WorldNode[] {
    return this.nodes.filter(p => p.host.online && holds(p, key, seq))
  }

  /** Records and value bytes held over all online nodes. */
  storeUsage (): { records: number, bytes: number } {
    let records = 0
    let bytes = 0
    for (const p of this.nodes) {
      if (!p.host.online) continue
      records += p.oht.store.size
      bytes += p.oht.store.bytes
    }
    return { records, bytes }
  }

  // ---------------------------------------------------------------- measured operations

  /** Puts a record from `peer` and measures reach, messages and virtual latency. */
  async put (peer: WorldNode, spec: PutSpec, options: AbortOptions = {}): Promise<PutOutcome> {
    this.puts.attempted++
    const key = spec.kind === 'immutable' ? immutableKey(spec.value) : mutableKey(peer.identity.publicKey, spec.salt)
    const op = this.track(peer, key)
    const t0 = this.sim.now
    let out: PutOutcome
    try {
      const r = spec.kind === 'immutable'
        ? await peer.oht.putImmutable(spec.value, { ttlMs: spec.ttlMs, signal: options.signal })
        : await peer.oht.putMutable({ value: spec.value, salt: spec.salt, seq: spec.seq, ttlMs: spec.ttlMs, signal: options.signal })
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
  async get (peer: WorldNode, key: Uint8Array, expected: { value: Uint8Array, seq?: number }, options: AbortOptions = {}): Promise<GetOutcome> {
    this.gets.attempted++
    const op = this.track(peer, key)
    const t0 = this.sim.now
    let out: GetOutcome
    try {
      const r = await peer.oht.get(key, options)
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

  private track (peer: WorldNode, key: Uint8Array): TrackedOp {
    const op: TrackedOp = { target: key.slice(), messages: 0, depth: new Map() }
    const list = this.trackers.get(peer.host.index)
    if (list === undefined) this.trackers.set(peer.host.index, [op])
    else list.push(op)
    return op
  }

  private untrack (peer: WorldNode, op: TrackedOp): void {
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

  /** The `n` online wrong-closer adversaries closest to `target`, other than `self` (what they lie with). */
  closestAdversaries (target: Uint8Array, n: number, self: WorldNode): WireContact[] {
    const tp = prefixOf(target)
    const advs = this.nodes.filter(p => p.adversary === 'wrong-closer' && p !== self && p.host.online)
    advs.sort((a, b) => ((a.prefix ^ tp) >>> 0) - ((b.prefix ^ tp) >>> 0))
    return advs.slice(0, n).map(p => ({ id: p.id, contact: p.oht.contact }))
  }

  // ---------------------------------------------------------------- metrics and teardown

  metrics (): WorldMetrics {
    const sum = { engine: { ...this.departed.engine }, traffic: structuredClone(this.departed.traffic) }
    for (const p of this.nodes) if (p.host.online || p.leftAt === undefined) addCounters(sum, p.oht.stats)
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
    for (const p of this.nodes) { void p.oht.stop(); p.identity.destroy() }
    this.sim.scheduler.clear()
  }
}

function holds (p: WorldNode, key: Uint8Array, seq?: number): boolean {
  const e = p.oht.store.get(key)
  if (e === undefined) return false
  return seq === undefined || (e.record.kind === 'mutable' && e.record.seq === seq)
}

/**
 * Builds and populates a world. A simulation process with thousands of nodes keeps many
 * requests on a few long-lived AbortSignals, so this turns off Node's listener-leak warning
 * (EventEmitter.defaultMaxListeners = 0), which would otherwise flood the output.
 */
export async function createWorld (init: WorldInit): Promise<World> {
  EventEmitter.defaultMaxListeners = 0
  const world = new World(init)
  await world.populate()
  return world
}
