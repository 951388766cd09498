/** One simulation: a scheduler, a network on it, and the seed every random draw comes from. */
import { SeededRng, type Rng } from '../core/rng.ts'
import { Churn, type ChurnComponents, type ChurnInit } from './churn.ts'
import { ResourceMeter } from './metrics.ts'
import { SimNetwork, type AddHostOptions, type SimHost, type SimNetworkInit } from './network.ts'
import { Scheduler, type RunOptions, type RunResult } from './scheduler.ts'
import { VirtualClock } from './virtual-clock.ts'

export interface SimulationInit {
  /** Every random draw derives from this seed. @default 1 */
  seed?: string | number
  /** Virtual epoch at start. @default 1_700_000_000_000 */
  startTime?: number
  /** See SchedulerInit.quantumMs. @default 0 */
  quantumMs?: number
  /** Latency, loss, unreachable behaviour. @default {} */
  network?: SimNetworkInit
}

export class Simulation {
  readonly seed: string
  readonly scheduler: Scheduler
  /** A clock outside every host (scenario timing); not voided by crashes. */
  readonly clock: VirtualClock
  readonly network: SimNetwork
  /** Randomness for the scenario itself (workload, choice of victims). */
  readonly rng: Rng
  /** Wall time and peak RSS of the process since the simulation was made. */
  readonly meter = new ResourceMeter()
  private readonly root: SeededRng

  constructor (init: SimulationInit = {}) {
    this.seed = String(init.seed ?? 1)
    this.root = new SeededRng(this.seed)
    this.scheduler = new Scheduler({ startTime: init.startTime, quantumMs: init.quantumMs })
    this.clock = new VirtualClock(this.scheduler)
    this.network = new SimNetwork(init.network ?? {}, { scheduler: this.scheduler, rng: this.root.fork('net') })
    this.rng = this.root.fork('scenario')
  }

  /** Current virtual time. */
  get now (): number { return this.scheduler.now }

  /** Virtual ms since the start. */
  get elapsed (): number { return this.scheduler.now - this.scheduler.startTime }

  /** How to replay this run. */
  get reproduce (): string { return `OHT_SIM_SEED=${this.seed}` }

  /** An independent Rng for `label`, derived from the seed. */
  fork (label: string): Rng { return this.root.fork(label) }

  addHost (options: AddHostOptions): SimHost { return this.network.addHost(options) }

  /** Runs events; samples peak memory every `probeEvery` events unless a probe is given. */
  async run (options: RunOptions = {}): Promise<RunResult> {
    return await this.scheduler.run({ probe: () => { this.meter.sample() }, ...options })
  }

  /** Runs until `promise` settles and returns its value (see Scheduler.settle). */
  async settle<T> (promise: Promise<T>, options: Parameters<Scheduler['settle']>[1] = {}): Promise<T> {
    return await this.scheduler.settle(promise, { probe: () => { this.meter.sample() }, ...options })
  }

  /** A churn process on this simulation's scheduler with its own Rng. */
  churn (init: ChurnInit, callbacks: Pick<ChurnComponents, 'leave' | 'join'>): Churn {
    return new Churn(init, { scheduler: this.scheduler, rng: this.root.fork('churn'), ...callbacks })
  }
}

/**
 * The seed for a scenario: OHT_SIM_SEED from the environment when set (to replay a failing
 * run), else `fallback`.
 */
export function seedFromEnv (fallback: string | number): string {
  const env = process.env.OHT_SIM_SEED
  return env !== undefined && env !== '' ? env : String(fallback)
}
