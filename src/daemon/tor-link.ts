/**
 * The daemon's tor: launched as our child (data dir in the state dir) or attached to a running
 * one, watched for bootstrap progress and circuit health, and re-established when it goes
 * away (tor restarted, control connection dropped). Listeners learn of each new connection so
 * they can re-publish what they had published.
 */
import { readFile } from 'node:fs/promises'
import type { AbortOptions, Clock } from '../core/index.ts'
import { abortReason, errorMessage, isCodedError } from '../core/index.ts'
import type { TorControl, TorEvent } from '../tor/control/index.ts'
import { TorError } from '../tor/errors.ts'
import type { ControlAddress, DaemonConfig } from './config.ts'
import { DaemonError } from './errors.ts'
import type { JsonLog } from './json-log.ts'
import { torDataDir } from './paths.ts'

/** A launched tor, as far as the daemon needs it (src/tor/launcher.ts TorProcess fits). */
export interface LaunchedTor {
  readonly pid: number
  readonly control: TorControl
  readonly controlPort: number
  readonly cookiePath: string
  readonly socksPort?: number
  readonly exited: Promise<unknown>
  stop(): Promise<void>
}

export interface TorLinkComponents {
  clock: Clock
  log: JsonLog
  launchTor: (init: {
    torPath: string
    dataDir: string
    torrc: Record<string, string | number | boolean | Array<string | number>>
    socksPort: 'auto'
    bootstrapTimeoutMs: number
    bootstrapStallMs: number
    onProgress: (p: { percent: number, tag: string, summary: string }) => void
    clock: Clock
  } & AbortOptions) => Promise<LaunchedTor>
  attachTor: (target: { host: string, port: number } | { path: string }, opts: { password?: string, cookiePath?: string, allowNullAuth?: boolean, clock: Clock } & AbortOptions) => Promise<TorControl>
}

export interface TorState {
  mode: 'launch' | 'attach'
  connected: boolean
  bootstrapPercent: number
  bootstrapSummary: string
  pid?: number
  socksPort?: number
  restarts: number
  circuits: { built: number, failed: number, closed: number }
  lastError?: string
  /** While tor is lost: failed tries at getting it back so far. */
  reconnectAttempts?: number
}

/** A usable tor: our control connection, its SOCKS port and how others may attach to it. */
export interface TorSession {
  control: TorControl
  socksPort: number
  /** tor's control port on loopback TCP (what the SDK attaches to), when it has one. */
  controlPort?: number
  controlHost?: string
  cookiePath?: string
  password?: string
  /** The user accepted NULL auth for this tor (tor.allow_null_auth). */
  allowNullAuth?: boolean
}

/** What an attaching component passes to attachTor from the daemon's tor config. */
export function attachAuthOptions (cfg: DaemonConfig['tor']): { cookiePath?: string, allowNullAuth?: boolean } {
  return {
    ...(cfg.controlCookieFile !== undefined ? { cookiePath: cfg.controlCookieFile } : {}),
    ...(cfg.allowNullAuth === true ? { allowNullAuth: true } : {})
  }
}

/** tor's refusal, with the config keys that would resolve it; code and status kept. */
export function withConfigHint (err: unknown): unknown {
  if (!(err instanceof TorError) || !isCodedError(err, 'TOR_AUTH_FAILED')) return err
  const hint = 'daemon config: tor.control_cookie_file = tor\'s CookieAuthFile, tor.control_password_file, or tor.allow_null_auth = true'
  return new TorError('TOR_AUTH_FAILED', `${err.message} (${hint})`, { cause: err, ...(err.status !== undefined ? { status: err.status } : {}) })
}

export class TorLink {
  readonly state: TorState
  private session: TorSession | undefined
  private launched: LaunchedTor | undefined
  private readonly listeners = new Set<(s: TorSession) => Promise<void>>()
  private readonly lostListeners = new Set<(err: Error) => void>()
  private readonly stopController = new AbortController()
  private unsubscribers: Array<() => void> = []
  private reconnecting: Promise<void> | undefined
  private stopped = false

  constructor (private readonly config: DaemonConfig, private readonly stateDir: string, private readonly components: TorLinkComponents) {
    this.state = { mode: config.tor.mode === 'attach' ? 'attach' : 'launch', connected: false, bootstrapPercent: 0, bootstrapSummary: '', restarts: 0, circuits: { built: 0, failed: 0, closed: 0 } }
  }

  get current (): TorSession | undefined { return this.session }

  /** Called with each re-established session (not the first one). */
  onReconnect (listener: (s: TorSession) => Promise<void>): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Called when tor goes away (before reconnecting starts). */
  onLost (listener: (err: Error) => void): () => void {
    this.lostListeners.add(listener)
    return () => { this.lostListeners.delete(listener) }
  }

  async start (options: AbortOptions = {}): Promise<TorSession> {
    const s = await this.connect(options)
    this.session = s
    return s
  }

  private async connect (options: AbortOptions): Promise<TorSession> {
    const { clock, log } = this.components
    const cfg = this.config.tor
    let control: TorControl
    let socksPort: number | undefined
    const extra: Omit<TorSession, 'control' | 'socksPort'> = {}
    if (cfg.mode === 'attach') {
      const target = cfg.control as ControlAddress
      const password = cfg.controlPasswordFile !== undefined ? (await readFile(cfg.controlPasswordFile, 'utf8')).trim() : undefined
      const auth = attachAuthOptions(cfg)
      try {
        control = await this.components.attachTor(target, { clock, ...(password !== undefined ? { password } : {}), ...auth, ...options })
      } catch (err) {
        throw withConfigHint(err)
      }
      if (auth.cookiePath !== undefined) extra.cookiePath = auth.cookiePath
      if (auth.allowNullAuth === true) extra.allowNullAuth = true
      socksPort = cfg.socksPort ?? await askSocksPort(control, options)
      if (password !== undefined) extra.password = password
      if ('port' in target) {
        extra.controlPort = target.port
        extra.controlHost = target.host
      } else {
        const port = await askListenerPort(control, 'control', options)
        if (port !== undefined) { extra.controlPort = port; extra.controlHost = '127.0.0.1' }
      }
      this.state.pid = Number(await control.getInfoOne('process/pid', options).catch(() => '0')) || undefined
      log.info('attached to tor', { control: 'path' in target ? target.path : `${target.host}:${target.port}`, socksPort })
    } else {
      log.info('launching tor', { torPath: cfg.torPath })
      const tor = await this.components.launchTor({
        torPath: cfg.torPath,
        dataDir: torDataDir(this.stateDir),
        torrc: cfg.torrc,
        socksPort: 'auto',
        bootstrapTimeoutMs: cfg.bootstrapTimeoutMs,
        bootstrapStallMs: cfg.bootstrapStallMs,
        onProgress: (p) => {
          this.state.bootstrapPercent = p.percent
          this.state.bootstrapSummary = p.summary
          log.info('tor bootstrap', { percent: p.percent, tag: p.tag, summary: p.summary })
        },
        clock,
        ...options
      })
      this.launched = tor
      control = tor.control
      socksPort = tor.socksPort
      extra.controlPort = tor.controlPort
      extra.controlHost = '127.0.0.1'
      extra.cookiePath = tor.cookiePath
      this.state.pid = tor.pid
      void tor.exited.then(() => { if (!this.stopped && this.launched === tor) this.lost(new DaemonError('DAEMON_TOR', 'tor exited')) })
    }
    if (socksPort === undefined) throw new DaemonError('DAEMON_TOR', 'tor has no SOCKS port: enable SocksPort in its torrc or set tor.socks_port')
    this.state.socksPort = socksPort
    await this.watch(control, options)
    this.state.connected = true
    delete this.state.lastError
    return { control, socksPort, ...extra }
  }

  private async watch (control: TorControl, options: AbortOptions): Promise<void> {
    for (const u of this.unsubscribers) u()
    this.unsubscribers = [
      control.onEvent((e: TorEvent) => {
        if (e.type === 'STATUS_CLIENT' && e.bootstrap !== undefined) {
          this.state.bootstrapPercent = e.bootstrap.progress
          this.state.bootstrapSummary = e.bootstrap.summary
        } else if (e.type === 'CIRC') {
          if (e.status === 'BUILT') this.state.circuits.built++
          else if (e.status === 'FAILED') this.state.circuits.failed++
          else if (e.status === 'CLOSED') this.state.circuits.closed++
        }
      }),
      control.onClose((err) => {
        if (this.stopped) return
        this.lost(err ?? new DaemonError('DAEMON_TOR', 'tor closed the control connection'))
      })
    ]
    const phase = await control.getInfoOne('status/bootstrap-phase', options).catch(() => '')
    const m = /PROGRESS=(\d+)/.exec(phase)
    if (m !== null) this.state.bootstrapPercent = Number(m[1])
    // Additive: endpoint publishing subscribes to HS_DESC on this same connection.
    await control.addEvents(['STATUS_CLIENT', 'CIRC'], options).catch((err: unknown) => {
      this.components.log.warn('cannot subscribe to tor events', { err: errorMessage(err) })
    })
  }

  private lost (err: Error): void {
    if (this.stopped || this.reconnecting !== undefined) return
    this.state.connected = false
    this.state.lastError = err.message
    this.session = undefined
    this.components.log.warn('lost tor; reconnecting', { err: err.message })
    for (const l of this.lostListeners) l(err)
    this.reconnecting = this.reconnectLoop().finally(() => { this.reconnecting = undefined })
  }

  private async reconnectLoop (): Promise<void> {
    const { clock, log } = this.components
    const signal = this.stopController.signal
    const old = this.launched
    this.launched = undefined
    if (old !== undefined) await old.stop().catch(() => {})
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await clock.sleep(this.config.tor.reconnectIntervalMs, { signal })
        const s = await this.connect({ signal })
        this.session = s
        this.state.restarts++
        delete this.state.reconnectAttempts
        log.info('tor is back', { attempt })
        for (const l of this.listeners) {
          await l(s).catch((e: unknown) => { log.error('re-publishing after tor restart failed', { err: errorMessage(e) }) })
        }
        return
      } catch (err) {
        if (this.stopped || signal.aborted) return
        this.state.lastError = errorMessage(err)
        this.state.reconnectAttempts = attempt
        if (attempt === 1 || attempt % 10 === 0) log.warn('tor still unavailable', { attempt, err: errorMessage(err) })
      }
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopController.abort()
    for (const u of this.unsubscribers) u()
    this.unsubscribers = []
    await this.reconnecting?.catch(() => {})
    const s = this.session
    this.session = undefined
    this.state.connected = false
    if (this.launched !== undefined) {
      await this.launched.stop().catch(() => {})
      this.launched = undefined
    } else if (s !== undefined) {
      await s.control.close().catch(() => {})
    }
  }
}

/** SOCKS port of an attached tor, from `GETINFO net/listeners/socks` ("127.0.0.1:9050" ...). */
async function askSocksPort (control: TorControl, options: AbortOptions): Promise<number | undefined> {
  return await askListenerPort(control, 'socks', options)
}

/** tor's first loopback listener of a kind (`GETINFO net/listeners/<kind>`). */
async function askListenerPort (control: TorControl, kind: 'socks' | 'control', options: AbortOptions): Promise<number | undefined> {
  if (options.signal?.aborted === true) throw abortReason(options.signal)
  const text = await control.getInfoOne(`net/listeners/${kind}`, options).catch(() => '')
  for (const part of text.split(/\s+/)) {
    const m = /^"?(127\.\d+\.\d+\.\d+|\[::1\]):(\d+)"?$/.exec(part)
    if (m !== null) return Number(m[2])
  }
  return undefined
}
