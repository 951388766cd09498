/**
 * netsim: a discrete-event network simulator for the OHT and anything else that talks through
 * a request/response seam. It knows nothing of the OHT (or Tor): a host is an address, a
 * public key, a request endpoint shaped like src/oht's `DhtNet`, a virtual `Clock` and a
 * seeded `Rng`. Code under test runs unchanged on it.
 *
 * - Events are totally ordered by (virtual time, sequence); time never moves backwards
 *   (SIM_TIME_BACKWARDS otherwise); promise continuations are drained between events so async
 *   code runs to quiescence at the right virtual time.
 * - One seed: the network, every host and the scenario fork their Rng from it, so the same
 *   seed replays the same run bit for bit. A failing scenario prints `sim.reproduce`.
 * - Faults: latency models (constant, uniform, lognormal, Tor-like 0.3–3 s round trips),
 *   loss, partitions, crashes (requests go unanswered, timers die), churn sessions and
 *   interceptors for adversarial hosts.
 *
 * PeerNet: `host.peers` (peer-net.ts) has the shape of src/oht's PeerNet, so code written for
 * direct protocols between peers runs here unchanged. Requests follow the DhtNet rules above;
 * streams are ordered, reliable message channels on the virtual clock (a loss costs a resend
 * delay, never a message) with a bounded window (`network.peerNet.streamWindow` messages,
 * default 16: send() waits until the reader consumed), half-close and reset; a crash or a
 * partition breaks them and the other end sees OHT_STREAM_CLOSED, not a hang. It is made on
 * first use and draws nothing until used, so DhtNet figures are the same with or without it.
 *
 * The OHT-on-simulator world (real OHT nodes with their PeerNet, churn, adversaries, ground
 * truth, workload, report) is the separate entry `./world/index.ts` (createWorld): the one
 * part of the simulator that imports src/oht.
 *
 * @example
 * import { createSimulation, torLatency } from '../netsim/index.ts'
 * const sim = createSimulation({ seed: 42, network: { latency: torLatency() } })
 * const a = sim.addHost({ publicKey: keyA })
 * const b = sim.addHost({ publicKey: keyB })
 * b.net.handle(async (_from, frame) => frame) // echo
 * const answer = await sim.settle(a.net.request(b.contact, Uint8Array.of(1)))
 * sim.elapsed // one round trip of virtual time, 300..3000 ms
 *
 * @example
 * // PeerNet between simulated hosts
 * b.peers.handleStream('/chat/1', async (s) => { for await (const m of s) await s.send(m); await s.close() })
 * const s = await sim.settle(a.peers.openStream(b.contact, '/chat/1'))
 */
import { Simulation, type SimulationInit } from './simulation.ts'

export { Simulation, seedFromEnv, type SimulationInit } from './simulation.ts'
export { Scheduler, type SchedulerInit, type RunOptions, type RunResult } from './scheduler.ts'
export { SimEvent, TimerGroup, EventHeap } from './event-heap.ts'
export { VirtualClock } from './virtual-clock.ts'
export {
  SimNetwork, SimHost, dropAllRequests,
  type SimContact, type SimNet, type SimRequestHandler, type Interceptor, type InterceptContext,
  type SimNetworkInit, type SimNetworkComponents, type NetworkStats, type HostStats, type AddHostOptions
} from './network.ts'
export {
  SimPeerError, PeerFabric, HostPeerNet, SIM_PEER_MESSAGE_MAX_DEFAULT, SIM_PEER_MESSAGE_MAX_LIMIT,
  type SimPeerNet, type SimPeerNetInit, type SimPeerStream, type SimPeerRequestHandler, type SimPeerStreamHandler,
  type SimPeerRequestOptions, type SimPeerStreamOptions, type SimPeerProtocolOptions, type PeerNetStats
} from './peer-net.ts'
export { constant, uniform, exponential, lognormal, weibull, standardNormal, type Distribution, type LognormalInit } from './distributions.ts'
export { latencyFrom, constantLatency, uniformLatency, lognormalLatency, torLatency, type LatencyModel, type TorLatencyInit } from './latency.ts'
export { Churn, churnPerHour, type ChurnInit, type ChurnComponents, type ChurnStats } from './churn.ts'
export { summarize, ResourceMeter, type Summary } from './metrics.ts'
export { SimError } from './errors.ts'

/** Makes a simulation (scheduler + network + seed). */
export function createSimulation (init: SimulationInit = {}): Simulation {
  return new Simulation(init)
}
