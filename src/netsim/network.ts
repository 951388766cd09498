/**
 * The simulated network: hosts with addresses `sim:<index>`, each with a request/response
 * endpoint shaped like src/oht's DhtNet seam (structurally; netsim does not import oht), a
 * virtual clock, its own seeded Rng, and faults: latency, loss, partitions, crashes and
 * per-host interceptors for adversarial behaviour.
 *
 * A request's life:
 *
 *   caller ──oneWay(from,to)──▶ target handler ──oneWay(to,from)──▶ caller
 *      │ lost / partitioned / target offline: nothing comes back; the caller's signal ends it
 *      │ (with unreachable: 'refuse', an offline or unknown target fails after one round trip)
 *
 * Frames are copied on delivery (into slab memory, see core's allocFrame), so no host ever
 * shares a frame with another.
 *
 * Each host also has a PeerNet (`host.peers`, see peer-net.ts) on the same latency, loss,
 * partitions and crashes; its counters are `peerStats`, apart from `stats`.
 */
import { abortReason, type AbortOptions } from '../core/abort.ts'
import { copyFrame } from '../core/bytes.ts'
import { TimeoutError } from '../core/errors.ts'
import type { Rng } from '../core/rng.ts'
import { SimError } from './errors.ts'
import { constantLatency, type LatencyModel } from './latency.ts'
import { PeerFabric, type HostPeerNet, type PeerNetStats, type SimPeerNetInit } from './peer-net.ts'
import type { Scheduler } from './scheduler.ts'
import { VirtualClock } from './virtual-clock.ts'

/** How to reach a host; the same shape as src/oht's PeerContact. */
export interface SimContact {
  publicKey: Uint8Array
  addrs: string[]
}

/** `timeoutMs`: reject with a TimeoutError (CORE_TIMEOUT) when no answer came in time. */
export interface SimRequestOptions extends AbortOptions { timeoutMs?: number }

/** Inbound request handler; the same shape as src/oht's DhtRequestHandler. */
export type SimRequestHandler = (from: SimContact, frame: Uint8Array, options: AbortOptions) => Promise<Uint8Array>

/** A host's endpoint; the same shape as src/oht's DhtNet. */
export interface SimNet {
  request(to: SimContact, frame: Uint8Array, options?: SimRequestOptions): Promise<Uint8Array>
  handle(handler: SimRequestHandler): void
}

export interface InterceptContext {
  /** The authenticated caller. */
  from: SimContact
  fromIndex: number
  /** The host the request was sent to (the one intercepting). */
  to: SimHost
  frame: Uint8Array
  /** Aborts when the intercepting host crashes. */
  signal: AbortSignal
  /** Passes a (possibly rewritten) frame to the host's own handler and returns its answer. */
  forward(frame?: Uint8Array): Promise<Uint8Array>
}

/**
 * Sits in front of a host's handler. Return a response frame to answer, or undefined to never
 * answer (the caller's timeout fires).
 */
export type Interceptor = (ctx: InterceptContext) => Promise<Uint8Array | undefined> | Uint8Array | undefined

/** An interceptor that swallows every request: a host that accepts connections but never answers. */
export const dropAllRequests: Interceptor = () => undefined

export interface SimNetworkInit {
  /** @default constantLatency(50) */
  latency?: LatencyModel
  /** Probability that any one message (request or response) is lost. @default 0 */
  loss?: number
  /**
   * What a request to an offline or unknown host does: 'timeout' never answers (onion
   * services that left), 'refuse' fails with SIM_UNREACHABLE after one round trip.
   * @default 'timeout'
   */
  unreachable?: 'timeout' | 'refuse'
  /** Frames above this size are refused at once with SIM_FRAME_TOO_LARGE. @default 1_048_576 */
  maxFrameBytes?: number
  /** Every host's PeerNet (`host.peers`): stream window, default deadline, break detection. @default {} */
  peerNet?: SimPeerNetInit
}

export interface SimNetworkComponents {
  scheduler: Scheduler
  /** Network randomness (latency, loss). Hosts get `rng.fork('host:<index>')`. */
  rng: Rng
}

export interface HostStats {
  requestsSent: number
  requestsReceived: number
  responsesSent: number
  bytesSent: number
  bytesReceived: number
}

export interface NetworkStats {
  /** Requests issued by any host. */
  requests: number
  /** Requests that reached a handler (or interceptor). */
  delivered: number
  /** Responses that reached a waiting caller. */
  responses: number
  /** Messages lost to the loss rate (requests + responses). */
  lost: number
  /** Requests to unknown or offline hosts. */
  unreachable: number
  /** Messages dropped by a partition. */
  partitioned: number
  /** Requests an interceptor chose not to answer. */
  swallowed: number
  /** Handler failures turned into SIM_REMOTE_ERROR. */
  remoteErrors: number
  /** Responses that arrived after the caller gave up (aborted). */
  late: number
  /** Bytes of request and response frames put on the wire. */
  bytes: number
}

export interface AddHostOptions {
  /** The host's identity key (its contact's publicKey). */
  publicKey: Uint8Array
  /** Start offline. @default true (online) */
  online?: boolean
}

export class SimHost {
  readonly index: number
  readonly address: string
  readonly contact: SimContact
  readonly clock: VirtualClock
  readonly rng: Rng
  readonly net: SimNet
  readonly stats: HostStats = { requestsSent: 0, requestsReceived: 0, responsesSent: 0, bytesSent: 0, bytesReceived: 0 }
  /** Optional adversarial (or diagnostic) hook in front of the handler. */
  interceptor: Interceptor | undefined
  /** @internal */ handler: SimRequestHandler | undefined
  /** @internal bumped on every crash, so in-flight work of the old life is dropped */ epoch = 0
  /** @internal */ life = new AbortController()
  /** @internal */ isOnline: boolean
  private readonly network: SimNetwork

  constructor (network: SimNetwork, index: number, publicKey: Uint8Array, clock: VirtualClock, rng: Rng, online: boolean) {
    this.network = network
    this.index = index
    this.address = `sim:${index}`
    this.contact = { publicKey, addrs: [this.address] }
    this.clock = clock
    this.rng = rng
    this.isOnline = online
    this.net = {
      request: (to, frame, options) => network.send(this, to, frame, options),
      handle: (handler) => { this.handler = handler }
    }
  }

  get online (): boolean { return this.isOnline }

  /**
   * The host's PeerNet (direct protocols, see peer-net.ts), made on first use: hosts that
   * never touch it cost nothing and draw no random number.
   */
  get peers (): HostPeerNet { return this.network.peerFabric.of(this) }
}

export class SimNetwork {
  private readonly scheduler: Scheduler
  private readonly rng: Rng
  private readonly latency: LatencyModel
  private readonly loss: number
  private readonly refuse: boolean
  private readonly maxFrameBytes: number
  private readonly all: Array<SimHost | undefined> = []
  private readonly byAddress = new Map<string, SimHost>()
  private groupOf: ((index: number) => number) | undefined
  private readonly peerNetInit: SimPeerNetInit
  private fabric: PeerFabric | undefined
  readonly stats: NetworkStats = { requests: 0, delivered: 0, responses: 0, lost: 0, unreachable: 0, partitioned: 0, swallowed: 0, remoteErrors: 0, late: 0, bytes: 0 }

  constructor (init: SimNetworkInit, components: SimNetworkComponents) {
    this.scheduler = components.scheduler
    this.rng = components.rng
    this.latency = init.latency ?? constantLatency(50)
    this.loss = init.loss ?? 0
    this.refuse = (init.unreachable ?? 'timeout') === 'refuse'
    this.maxFrameBytes = init.maxFrameBytes ?? 1_048_576
    this.peerNetInit = init.peerNet ?? {}
    if (!(this.loss >= 0 && this.loss <= 1)) throw new SimError('SIM_BAD_CONFIG', `loss must be a probability in [0, 1], got ${this.loss}`)
  }

  /** Every host added and not removed (offline ones included), in index order. */
  get hosts (): readonly SimHost[] { return this.all.filter((h): h is SimHost => h !== undefined) }

  get latencyModel (): LatencyModel { return this.latency }

  /** @internal the PeerNet side of the network (made on first use). */
  get peerFabric (): PeerFabric {
    this.fabric ??= new PeerFabric(this, this.scheduler, this.peerNetInit)
    return this.fabric
  }

  /** PeerNet counters (kept apart from `stats`, which describes the DhtNet traffic). */
  get peerStats (): PeerNetStats | undefined { return this.fabric?.stats }

  /** @internal whether requests to offline or unknown hosts are refused (else unanswered). */
  get refuses (): boolean { return this.refuse }

  /** @internal one one-way delay from host `a` to host `b`, drawn from the latency model. */
  oneWayDelay (a: number, b: number): number { return this.latency.oneWay(this.rng, a, b) }

  /** @internal one loss draw (true: this message is lost); draws nothing without loss. */
  lossDraw (): boolean { return this.loss > 0 && this.rng.next() < this.loss }

  /** Adds a host with the next index; its Rng is forked from the network's seed by index. */
  addHost (options: AddHostOptions): SimHost {
    const index = this.all.length
    const host = new SimHost(this, index, options.publicKey, new VirtualClock(this.scheduler), this.rng.fork(`host:${index}`), options.online ?? true)
    this.all.push(host)
    this.byAddress.set(host.address, host)
    return host
  }

  host (index: number): SimHost {
    const h = this.all[index]
    if (h === undefined) throw new SimError('SIM_UNKNOWN_HOST', `no host with index ${index} (the network has ${this.all.length})`)
    return h
  }

  /** The host a contact points at, if any of its addresses is one of ours. */
  resolve (contact: SimContact): SimHost | undefined {
    for (const a of contact.addrs) {
      const h = this.byAddress.get(a)
      if (h !== undefined) return h
    }
    return undefined
  }

  /**
   * Takes a host off the network abruptly: requests to it go unanswered, its pending timers
   * never fire, its in-flight handlers' answers are dropped and its own pending requests never
   * settle (as in a killed process).
   */
  crash (host: SimHost): void {
    if (!host.isOnline) return
    host.isOnline = false
    host.epoch++
    host.clock.cancelAll()
    host.life.abort(stackless(() => new SimError('SIM_HOST_CRASHED', `host ${host.address} crashed`)))
    this.fabric?.hostDown(host)
  }

  /**
   * A crash for good: the host is forgotten (its address resolves to nothing, its handler and
   * interceptor are dropped), so a long churning run does not keep every departed node alive.
   */
  remove (host: SimHost): void {
    this.crash(host)
    if (this.all[host.index] === host) this.all[host.index] = undefined
    if (this.byAddress.get(host.address) === host) this.byAddress.delete(host.address)
    host.handler = undefined
    host.interceptor = undefined
    this.fabric?.hostRemoved(host)
  }

  /** Brings a crashed host back (same address and key, fresh life; its old timers stay void). */
  restart (host: SimHost): void {
    if (host.isOnline) return
    host.isOnline = true
    host.life = new AbortController()
  }

  /**
   * Splits the network: messages between hosts in different groups are dropped silently.
   * `groupOf` maps a host index to a group id and must be deterministic.
   */
  partition (groupOf: (index: number) => number): void {
    this.groupOf = groupOf
    this.fabric?.partitioned()
  }

  /** Removes the partition. */
  heal (): void { this.groupOf = undefined }

  /** Whether a partition separates hosts `a` and `b`. */
  isBlocked (a: number, b: number): boolean { return this.blocked(a, b) }

  private blocked (a: number, b: number): boolean {
    return this.groupOf !== undefined && this.groupOf(a) !== this.groupOf(b)
  }

  private dropped (from: number, to: number): boolean {
    if (this.blocked(from, to)) { this.stats.partitioned++; return true }
    if (this.loss > 0 && this.rng.next() < this.loss) { this.stats.lost++; return true }
    return false
  }

  /** @internal SimHost.net.request */
  send (from: SimHost, to: SimContact, frame: Uint8Array, options?: SimRequestOptions): Promise<Uint8Array> {
    const signal = options?.signal
    if (signal?.aborted === true) return Promise.reject(abortReason(signal))
    if (frame.byteLength > this.maxFrameBytes) {
      return Promise.reject(new SimError('SIM_FRAME_TOO_LARGE', `request frame of ${frame.byteLength} bytes exceeds the network limit of ${this.maxFrameBytes}`))
    }
    this.stats.requests++
    this.stats.bytes += frame.byteLength
    from.stats.requestsSent++
    from.stats.bytesSent += frame.byteLength
    const call = this.open(from, to, signal, options?.timeoutMs)
    if (!from.isOnline) return call.promise
    const target = this.resolve(to)
    if (target === undefined || !target.isOnline) {
      this.stats.unreachable++
      if (this.refuse) {
        const idx = target?.index ?? from.index
        const rtt = this.latency.oneWay(this.rng, from.index, idx) + this.latency.oneWay(this.rng, idx, from.index)
        const finish = call.finish
        this.scheduler.schedule(rtt, () => { finish(new SimError('SIM_UNREACHABLE', `${to.addrs.join(',') || '(no address)'} is not reachable (offline or unknown)`)) })
      }
      return call.promise
    }
    if (this.dropped(from.index, target.index)) return call.promise
    const delay = this.latency.oneWay(this.rng, from.index, target.index)
    // The frame's copy travels only in this event, which ends on arrival.
    const copy = copyFrame(frame)
    const finish = call.finish
    this.scheduler.schedule(delay, () => { this.deliver(from, target, copy, finish) })
    return call.promise
  }

  /**
   * The caller's side of a request: its promise, deadline and abort hook, and `finish`, which
   * settles it once. Made apart from `send` so that nothing here refers to the frame: these
   * closures live until the answer or the deadline, and a frame they kept would keep its whole
   * slab (see core's allocFrame) past the young generation.
   */
  private open (from: SimHost, to: SimContact, signal: AbortSignal | undefined, timeoutMs: number | undefined): { promise: Promise<Uint8Array>, finish: Finish } {
    let finish!: Finish
    const promise = new Promise<Uint8Array>((resolve, reject) => {
      const callerEpoch = from.epoch
      let settled = false
      const onAbort = (): void => {
        if (settled) return
        settled = true
        timer?.cancel()
        reject(abortReason(signal as AbortSignal))
      }
      if (signal !== undefined) onAbortOf(signal).add(onAbort)
      // The caller's deadline: a timer on its own clock (voided if it crashes).
      const timer = timeoutMs !== undefined && Number.isFinite(timeoutMs)
        ? from.clock.setTimeout(() => {
          if (settled) return
          settled = true
          if (signal !== undefined) abortWaiters.get(signal)?.delete(onAbort)
          reject(timeoutError(to, timeoutMs))
        }, timeoutMs)
        : undefined
      // A crashed caller never learns the outcome, like a killed process.
      finish = (err, value) => {
        if (settled) { if (err === undefined) this.stats.late++; return }
        if (!from.isOnline || from.epoch !== callerEpoch) return
        settled = true
        timer?.cancel()
        if (signal !== undefined) abortWaiters.get(signal)?.delete(onAbort)
        if (err !== undefined) { reject(err); return }
        this.stats.responses++
        resolve(value as Uint8Array)
      }
    })
    return { promise, finish }
  }

  private deliver (from: SimHost, target: SimHost, frame: Uint8Array, finish: Finish): void {
    if (!target.isOnline) { this.stats.unreachable++; if (this.refuse) this.reply(target, from, new SimError('SIM_UNREACHABLE', `${target.address} went offline`), undefined, finish); return }
    this.stats.delivered++
    target.stats.requestsReceived++
    target.stats.bytesReceived += frame.byteLength
    const epoch = target.epoch
    const signal = target.life.signal
    const handler = target.handler
    const callHandler = (f: Uint8Array): Promise<Uint8Array> => {
      if (handler === undefined) return Promise.reject(new SimError('SIM_NO_HANDLER', `${target.address} has no request handler installed`))
      return handler(from.contact, f, { signal })
    }
    let answer: Promise<Uint8Array | undefined>
    try {
      answer = target.interceptor !== undefined
        ? Promise.resolve(target.interceptor({ from: from.contact, fromIndex: from.index, to: target, frame, signal, forward: (f) => callHandler(f ?? frame) }))
        : callHandler(frame)
    } catch (err) {
      answer = Promise.reject(err)
    }
    answer.then((response) => {
      if (!target.isOnline || target.epoch !== epoch) return
      if (response === undefined) { this.stats.swallowed++; return }
      this.reply(target, from, undefined, response, finish)
    }, (err: unknown) => {
      if (!target.isOnline || target.epoch !== epoch) return
      this.stats.remoteErrors++
      this.reply(target, from, new SimError('SIM_REMOTE_ERROR', `${target.address} failed to answer: ${(err as Error)?.message ?? String(err)}`, { cause: err }), undefined, finish)
    })
  }

  private reply (target: SimHost, from: SimHost, err: Error | undefined, response: Uint8Array | undefined, finish: Finish): void {
    if (response !== undefined) {
      if (response.byteLength > this.maxFrameBytes) {
        err = new SimError('SIM_FRAME_TOO_LARGE', `response frame of ${response.byteLength} bytes exceeds the network limit of ${this.maxFrameBytes}`)
        response = undefined
      } else {
        this.stats.bytes += response.byteLength
        target.stats.responsesSent++
        target.stats.bytesSent += response.byteLength
      }
    }
    if (this.dropped(target.index, from.index)) return
    const delay = this.latency.oneWay(this.rng, target.index, from.index)
    const copy = response !== undefined ? copyFrame(response) : undefined
    this.scheduler.schedule(delay, () => { finish(err, copy) })
  }
}

/** Settles a request once: an error, or the answer's frame. */
type Finish = (err: Error | undefined, value?: Uint8Array) => void

/**
 * Requests waiting on each caller signal: one 'abort' listener per signal instead of one per
 * request (thousands of simulated nodes keep many requests in flight on a few long-lived
 * signals; adding and removing an EventTarget listener per request was a visible share).
 * Callbacks run in the order their requests were sent, as the listeners did.
 */
const abortWaiters = new WeakMap<AbortSignal, Set<() => void>>()

function onAbortOf (signal: AbortSignal): Set<() => void> {
  let waiters = abortWaiters.get(signal)
  if (waiters === undefined) {
    const set = new Set<() => void>()
    waiters = set
    abortWaiters.set(signal, set)
    signal.addEventListener('abort', () => {
      abortWaiters.delete(signal)
      for (const fn of set) fn()
      set.clear()
    }, { once: true })
  }
  return waiters
}

/**
 * A TimeoutError without a stack trace: a quarter of all simulated requests may time out, and
 * capturing a stack for each is a measurable share of a large run. The message says enough.
 */
function timeoutError (to: SimContact, timeoutMs: number): TimeoutError {
  return stackless(() => new TimeoutError(`no answer from ${to.addrs[0] ?? '(no address)'} within ${Math.round(timeoutMs)} ms`))
}

/** An error made without capturing a stack (also used for host crashes: a churning day has ~50,000). */
function stackless<E extends Error> (make: () => E): E {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}
