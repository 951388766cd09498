/**
 * Onion endpoints with real readiness. ADD_ONION returning is not readiness: tor builds
 * introduction circuits and uploads the descriptor (two of them, current and next time period,
 * each to several HSDirs) about a second later. publishOnion resolves only once every upload
 * tor started for the service has been confirmed (HS_DESC UPLOADED, or FAILED with at least
 * one UPLOADED), and, with `probe`, once a connection through a separate tor client's SOCKS
 * port has succeeded.
 *
 *   ADD_ONION ──▶ HS_DESC CREATED ×2 ──▶ UPLOAD ×N (desc id, hsdir) ──▶ UPLOADED/FAILED ×N ──▶ ready
 */
import type { Clock, AbortOptions } from '../core/index.ts'
import { abortReason, AbortError, errorMessage, logger, scopedSignal, systemClock, TimeoutError } from '../core/index.ts'
import type { AddOnionOptions, AddOnionPort, HsDescEvent, TorControl } from './control/index.ts'
import { TorError } from './errors.ts'
import { socksConnect } from './socks.ts'

const log = logger('tor:endpoint')

/** After the last confirmation, how long to wait for a late UPLOAD of the other descriptor. */
const SETTLE_MS = 150
/**
 * An upload with no answer this long after the last HS_DESC event counts as lost: tor does
 * not always report uploads it superseded (a new consensus moves the HSDir ring), and it
 * re-uploads on its own.
 */
const STALL_MS = 5_000

export interface OnionProbe {
  /** SocksPort of a tor client OTHER than the one hosting the service. */
  socksPort: number
  /** @default '127.0.0.1' */
  socksHost?: string
  /** Virtual port to connect to; something must listen on its target. @default the first port */
  port?: number
}

export interface PublishOnionOptions extends Omit<AddOnionOptions, 'key'>, AbortOptions {
  /** Our own key (`{ type: 'ED25519-V3', blob: torKeyBlob(identity) }`) or a new one. @default { type: 'NEW' } */
  key?: AddOnionOptions['key']
  /** Also wait until a connection through this other client succeeds. @default undefined */
  probe?: OnionProbe
  /** Deadline for descriptor upload and probe (TOR_ONION_UNREACHABLE). @default 60_000 */
  timeoutMs?: number
  /** @default systemClock */
  clock?: Clock
}

export interface OnionEndpoint {
  /** 56 characters, no ".onion". */
  readonly serviceId: string
  /** `<serviceId>.onion` */
  readonly address: string
  readonly ports: AddOnionPort[]
  /** Only when tor generated the key and it was not discarded: `ED25519-V3:<base64>`. */
  readonly privateKey?: string
  /** Milliseconds from ADD_ONION to every upload confirmed, and to the probe's success. */
  readonly timings: { uploadedMs: number, reachableMs?: number }
  /** DEL_ONION; harmless if the service is already gone. */
  remove(opts?: AbortOptions): Promise<void>
}

/** Counts uploads per descriptor for one service. */
class UploadTracker {
  readonly serviceId: string
  created = 0
  readonly descriptors = new Set<string>()
  uploads = 0
  uploaded = 0
  failed = 0
  lastChange = 0

  constructor (serviceId: string) { this.serviceId = serviceId }

  add (e: HsDescEvent, now: number): void {
    if (e.address !== this.serviceId) return
    switch (e.action) {
      case 'CREATED': this.created++; break
      case 'UPLOAD':
        this.uploads++
        if (e.descriptorId !== undefined) this.descriptors.add(e.descriptorId)
        break
      case 'UPLOADED': this.uploaded++; break
      case 'FAILED': this.failed++; break
      default: return
    }
    this.lastChange = now
  }

  /**
   * Every upload started is answered (or silent for STALL_MS), at least one succeeded, and
   * every created descriptor went out.
   */
  done (now: number): boolean {
    const expectedDescriptors = Math.max(1, this.created)
    // Without descriptor ids in the events (older tor), fall back to counting only.
    const allDescriptors = this.descriptors.size === 0 || this.descriptors.size >= Math.min(expectedDescriptors, 2)
    const answered = this.uploaded + this.failed >= this.uploads || now - this.lastChange >= STALL_MS
    return this.uploaded > 0 && answered && allDescriptors
  }

  describe (): string {
    const silent = Math.max(0, this.uploads - this.uploaded - this.failed)
    return `${this.created} descriptors created, ${this.uploads} uploads started, ${this.uploaded} confirmed, ${this.failed} failed, ${silent} unanswered`
  }
}

/** Back-off between probe connects that tor refused (0xF0 not found yet, 0xF2 intro failed...). */
const PROBE_RETRY_MS = 250

/**
 * Connects through another client until one connect succeeds; any SOCKS refusal from tor is
 * retried until `signal` ends it.
 */
async function probeUntilReachable (serviceId: string, port: number, probe: OnionProbe, clock: Clock, signal: AbortSignal): Promise<void> {
  for (;;) {
    try {
      const socket = await socksConnect({
        socksPort: probe.socksPort,
        socksHost: probe.socksHost,
        host: `${serviceId}.onion`,
        port,
        isolation: `oht-probe-${serviceId}`,
        retries: 0,
        clock,
        signal
      })
      socket.destroy()
      return
    } catch (err) {
      if (!(err instanceof TorError && err.socksReply !== undefined)) throw err
      log(`probe of ${serviceId}: ${err.message}; retrying`)
      await clock.sleep(PROBE_RETRY_MS, { signal })
    }
  }
}

/**
 * Adds an onion service and waits until it is really published (and reachable, with `probe`).
 * On failure the service is removed again.
 *
 * @example
 * const ep = await publishOnion(control, {
 *   key: { type: 'ED25519-V3', blob: torKeyBlob(identity) },
 *   ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }],
 *   probe: { socksPort: otherClient.socksPort },
 *   signal
 * })
 * // ep.address is reachable from other clients now
 * await ep.remove()
 */
export async function publishOnion (control: TorControl, opts: PublishOnionOptions): Promise<OnionEndpoint> {
  const clock = opts.clock ?? systemClock
  const timeoutMs = opts.timeoutMs ?? 60_000
  const { probe, key, timeoutMs: _t, clock: _c, signal, ...addOpts } = opts
  if (opts.ports.length === 0) throw new TorError('TOR_BAD_ARGUMENT', 'publishOnion needs at least one port')
  const t0 = clock.monotonic()
  // Subscribe before ADD_ONION: the service's events start right away and carry no request id.
  const buffered: HsDescEvent[] = []
  let tracker: UploadTracker | undefined
  let wake: (() => void) | undefined
  const unsubscribe = control.onEvent((e) => {
    if (e.type !== 'HS_DESC') return
    if (tracker === undefined) buffered.push(e)
    else tracker.add(e, clock.monotonic())
    wake?.()
  })
  // A dead control connection ends the wait at once instead of at the deadline.
  const offClose = control.onClose(() => { wake?.() })
  const scoped = scopedSignal(clock, timeoutMs, signal)
  let serviceId: string | undefined
  try {
    // addEvents keeps whatever else the caller subscribed to on this connection.
    await control.addEvents(['HS_DESC'], { signal: scoped.signal })
    const result = await control.addOnion({ ...addOpts, key: key ?? { type: 'NEW' }, signal: scoped.signal })
    serviceId = result.serviceId
    const t = new UploadTracker(serviceId)
    for (const e of buffered) t.add(e, clock.monotonic())
    buffered.length = 0
    tracker = t
    log(`ADD_ONION ${serviceId} in ${Math.round(clock.monotonic() - t0)} ms`)

    // Wait for all uploads confirmed, then a short quiet period for a late second descriptor.
    for (;;) {
      if (control.closed) throw new TorError('TOR_CONTROL_CLOSED', `the control connection closed before onion service ${serviceId} was published (${t.describe()}): is tor still running?`)
      if (t.done(clock.monotonic()) && clock.monotonic() - t.lastChange >= SETTLE_MS) break
      await new Promise<void>((resolve, reject) => {
        const finish = (): void => {
          timer.cancel()
          wake = undefined
          scoped.signal.removeEventListener('abort', onAbort)
        }
        const onAbort = (): void => { finish(); reject(abortReason(scoped.signal)) }
        const timer = clock.setTimeout(() => { finish(); resolve() }, t.done(clock.monotonic()) ? SETTLE_MS : 500)
        wake = () => { finish(); resolve() }
        if (scoped.signal.aborted) { onAbort(); return }
        scoped.signal.addEventListener('abort', onAbort, { once: true })
      })
    }
    const uploadedMs = Math.round(clock.monotonic() - t0)
    log(`${serviceId} uploaded in ${uploadedMs} ms (${t.describe()})`)

    let reachableMs: number | undefined
    if (probe !== undefined) {
      await probeUntilReachable(serviceId, probe.port ?? opts.ports[0].virtualPort, probe, clock, scoped.signal)
      reachableMs = Math.round(clock.monotonic() - t0)
      log(`${serviceId} reachable in ${reachableMs} ms`)
    }

    const id = serviceId
    return {
      serviceId: id,
      address: `${id}.onion`,
      ports: opts.ports,
      ...(result.privateKey !== undefined ? { privateKey: result.privateKey } : {}),
      timings: { uploadedMs, ...(reachableMs !== undefined ? { reachableMs } : {}) },
      remove: async (o?: AbortOptions) => {
        try {
          await control.delOnion(id, { signal: o?.signal })
        } catch (err) {
          if (err instanceof TorError && (err.status === 552 || err.code === 'TOR_CONTROL_CLOSED')) return
          throw err
        }
      }
    }
  } catch (err) {
    if (serviceId !== undefined && !control.closed) await control.delOnion(serviceId).catch(() => {})
    if (scoped.signal.aborted) {
      const reason = abortReason(scoped.signal)
      if (reason instanceof TimeoutError) {
        const state = tracker?.describe() ?? 'ADD_ONION did not answer'
        throw new TorError('TOR_ONION_UNREACHABLE', `onion service ${serviceId ?? '(not created)'} was not ${probe !== undefined && tracker?.done(clock.monotonic()) === true ? 'reachable' : 'published'} within ${timeoutMs} ms (${state}; last error: ${errorMessage(err)}). Check that the tor network is bootstrapped and has enough HSDirs.`, { cause: err })
      }
      throw reason instanceof AbortError ? reason : new AbortError(undefined, { cause: err })
    }
    throw err
  } finally {
    unsubscribe()
    offClose()
    scoped.clear()
  }
}
