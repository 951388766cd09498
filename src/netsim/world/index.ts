/**
 * The OHT-on-simulator world: N real OHT nodes on simulated hosts, built from one seed, for
 * the scenarios of the OHT itself and of the layers above it (wormhole, scramble routing,
 * DOA). Each node has its engine (`oht`), its PeerNet (`peers`, direct protocols between
 * nodes with the network's latency, loss, partitions and crashes), its identity and contact.
 * The world adds what a scenario measures against:
 *
 * - membership: a warm-started population (routing tables from global knowledge, as a
 *   long-running network looks) or a real bootstrap; churn (a share of the honest nodes
 *   replaced per simulated hour, joiners bootstrapping for real); `leave()` and `join()`.
 * - ground truth: `trueClosest(key)`, the k closest online honest nodes by global knowledge,
 *   and `holders(key)`.
 * - adversaries: droppers, wrong-closer (eclipse) nodes and forgers (see adversaries.ts).
 * - measured operations and a workload: `put()`/`get()` count messages, lookup hops, virtual
 *   latency and write reach; `runWorkload()` drives a steady put/get mix.
 * - metrics (`metrics().deterministic` is equal for equal seeds) and `formatReport()`.
 *
 * This is the one part of src/netsim that may import src/oht (scripts/lint.ts allows exactly
 * that); the rest of the simulator knows nothing of the OHT. A world that never touches
 * `peers` draws no random number for it, so OHT figures are the same with or without it.
 *
 * @example
 * import { createWorld, runWorkload, formatReport } from '../netsim/world/index.ts'
 * const world = await createWorld({ seed: 1, size: 1000, churnPerHour: 0.2 })
 * const a = world.node(3)
 * const b = world.node(7)
 * b.peers.handle('/hello/1', async (from, body) => body)            // a PeerNet protocol
 * await world.sim.settle((async () => {
 *   const { key } = await a.oht.putImmutable(new TextEncoder().encode('hi'))
 *   const got = await world.randomNode().oht.get(key)                // got?.value
 *   const echo = await a.peers.request(b.contact, '/hello/1', Uint8Array.of(1), { timeoutMs: 10_000 })
 * })())
 * await world.sim.settle(runWorkload(world, { minutes: 30, putEveryMs: 20_000, getEveryMs: 6_000 }))
 * console.log(formatReport('my scenario', world.metrics()))
 * world.stop()
 */
export { World, WorldNode, createWorld, type WorldInit, type WorldMetrics, type PutSpec, type PutOutcome, type GetOutcome } from './world.ts'
export { runWorkload, type WorkloadInit } from './workload.ts'
export { formatReport } from './report.ts'
export { adversaryInterceptor, type AdversaryKind, type AdversaryWorld } from './adversaries.ts'
export { simIdentityFromSeed, type SimIdentity } from './sim-identity.ts'
