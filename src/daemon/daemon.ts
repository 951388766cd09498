/**
 * The daemon: config → state dir → identity → API socket → tor → OHT node → endpoints → ONI (if enabled),
 * and the reverse on stop. It implements the local API's backend.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbortOptions, Clock, Logger, TimerHandle } from '../core/index.ts'
import { errorMessage, toHex } from '../core/index.ts'
import { sha256, type Identity } from '../crypto/index.ts'
import { createOni, type Oni } from '../oni/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import { startApiServer, type ApiBackend, type ApiServer, type EndpointRequest, type PutRequest } from './api-server.ts'
import type { DaemonConfig } from './config.ts'
import { Endpoints, type EndpointView } from './endpoints.ts'
import { DaemonError } from './errors.ts'
import { loadIdentity } from './identity-source.ts'
import type { JsonLog } from './json-log.ts'
import { family, Histogram } from './metrics.ts'
import type { DaemonNode, NodeFactory } from './node.ts'
import { GatewayLink, type GatewayLinkComponents } from './gateway-link.ts'
import { endpointsPath } from './paths.ts'
import { ensureToken } from './token.ts'
import { TorLink, type TorLinkComponents } from './tor-link.ts'

/** `recovering`: tor went away; the daemon is reconnecting and rebuilding its node. */
/** First retry of a failed bootstrap, the cap of its back-off, and how often an empty table is checked. */
const REJOIN_FIRST_MS = 5_000
const REJOIN_MAX_MS = 5 * 60_000
const REJOIN_CHECK_MS = 60_000
/** Tries at starting the node over tor, and the pause between them. */
const NODE_START_ATTEMPTS = 3
const NODE_START_RETRY_MS = 5_000

export type DaemonPhase = 'created' | 'starting' | 'tor' | 'node' | 'running' | 'recovering' | 'stopping' | 'stopped'

export interface DaemonInit {
  config: DaemonConfig
  stateDir: string
  /** Reported by /v1/status. @default '0.0.0' */
  version?: string
}

export interface DaemonComponents {
  clock: Clock
  log: JsonLog
  createNode: NodeFactory
  /** Needed when tor.mode is "launch". */
  launchTor?: TorLinkComponents['launchTor']
  /** Needed when tor.mode is "attach". */
  attachTor?: TorLinkComponents['attachTor']
  /** The gateway's system access (nft, interfaces, /proc), for tests. @default the real ones */
  gateway?: Pick<GatewayLinkComponents, 'nft' | 'networkInterfaces' | 'forwarding'>
}

export class Daemon implements ApiBackend {
  phase: DaemonPhase = 'created'
  private identity: Identity | undefined
  private api: ApiServer | undefined
  private tor: TorLink | undefined
  private node: DaemonNode | undefined
  private endpoints: Endpoints | undefined
  private oniInstance: Oni | undefined
  private gatewayLink: GatewayLink | undefined
  private startedAt = 0
  private rejoinTimer: TimerHandle | undefined
  private readonly putLatency = new Histogram()
  private readonly getLatency = new Histogram()
  private puts = 0
  private gets = 0
  private getMisses = 0
  private readonly config: DaemonConfig
  private readonly stateDir: string

  constructor (private readonly init: DaemonInit, private readonly components: DaemonComponents) {
    this.config = init.config
    this.stateDir = init.stateDir
  }

  get socketPath (): string { return this.config.api.socket }
  get onion (): string | undefined { return this.identity?.onion }

  async start (options: AbortOptions = {}): Promise<void> {
    if (this.phase !== 'created') throw new DaemonError('DAEMON_STATE', 'a daemon starts once')
    const { clock, log } = this.components
    this.phase = 'starting'
    this.startedAt = clock.now()
    try {
      await prepareStateDir(this.stateDir)
      const token = await ensureToken(this.config.api.tokenFile)
      this.identity = await loadIdentity(this.config.identity)
      log.info('identity loaded', { onion: this.identity.onion })
      this.api = await startApiServer({ socketPath: this.config.api.socket, token, clock, log, maxValueBytes: this.config.node.maxValueBytes }, this)
      log.info('api listening', { socket: this.config.api.socket })

      // The gateway's rules go in before tor starts: the VMs are never routed in the clear.
      let torConfig = this.config
      if (this.config.gateway.enabled) {
        this.gatewayLink = new GatewayLink(this.config, {
          ...this.components.gateway,
          clock,
          log,
          logger: nodeLogger(log).extend('gateway'),
          lookup: async (key, opts) => {
            const r = await this.node?.get(key, opts)
            return r === undefined ? undefined : { kind: r.kind, value: r.value, ...(r.publicKey !== undefined ? { publicKey: r.publicKey } : {}) }
          }
        })
        const torrc = await this.gatewayLink.start(options)
        if (torrc !== undefined && this.config.tor.mode === 'launch') torConfig = { ...this.config, tor: { ...this.config.tor, torrc: { ...this.config.tor.torrc, ...torrc } } }
      }

      let session
      if (this.config.node.transport === 'tor') {
        this.phase = 'tor'
        const launchTor = this.components.launchTor
        const attachTor = this.components.attachTor
        if ((this.config.tor.mode === 'launch' && launchTor === undefined) || (this.config.tor.mode === 'attach' && attachTor === undefined)) {
          throw new DaemonError('DAEMON_TOR', `tor.mode "${this.config.tor.mode}" is not available in this build`)
        }
        this.tor = new TorLink(torConfig, this.stateDir, {
          clock,
          log,
          launchTor: launchTor ?? (async () => { throw new DaemonError('DAEMON_TOR', 'no launcher') }),
          attachTor: attachTor ?? (async () => { throw new DaemonError('DAEMON_TOR', 'no attach') })
        })
        try {
          session = await this.tor.start(options)
        } catch (err) {
          throw new DaemonError('DAEMON_TOR', `tor is not usable: ${errorMessage(err)}`, { cause: err })
        }
      }

      this.phase = 'node'
      // Over tor the node's first step is publishing its onion service, which fails when tor
      // lags behind the consensus (a busy machine, a just-started tor): try a few times.
      const attempts = session !== undefined ? NODE_START_ATTEMPTS : 1
      for (let attempt = 1; ; attempt++) {
        try {
          this.node = await this.components.createNode({
            identity: this.identity,
            config: this.config,
            stateDir: this.stateDir,
            clock,
            log: nodeLogger(log),
            ...(this.tor?.current !== undefined ? { tor: this.tor.current } : {}),
            ...options
          })
          break
        } catch (err) {
          if (attempt >= attempts || options.signal?.aborted === true) throw err
          log.warn('node did not start; retrying', { attempt, err: errorMessage(err).split('\n')[0], inMs: NODE_START_RETRY_MS })
          await clock.sleep(NODE_START_RETRY_MS, options)
        }
      }
      log.info('node started', { transport: this.config.node.transport, addrs: this.node.addrs })
      if (this.config.node.bootstrap.length > 0) {
        try {
          const r = await this.node.bootstrap(this.config.node.bootstrap, options)
          log.info('bootstrapped', { peers: r.peers })
        } catch (err) {
          log.warn('bootstrap failed; retrying in the background', { err: errorMessage(err) })
        }
        this.scheduleRejoin(REJOIN_FIRST_MS)
      }

      this.endpoints = new Endpoints(endpointsPath(this.stateDir), this.identity, log, this.config.endpoints.keepOnShutdown)
      await this.endpoints.load()
      const control = this.tor?.current?.control
      if (control !== undefined) await this.endpoints.publishAll(control, options)
      if (session !== undefined) await this.gatewayLink?.torSession(session.control, options)
      this.tor?.onLost(() => {
        this.gatewayLink?.torLost()
        if (this.phase === 'running') this.phase = 'recovering'
      })
      this.tor?.onReconnect(async (s) => {
        try {
          await this.gatewayLink?.torSession(s.control)
          await this.node?.torReconnected?.(s)
          await this.endpoints?.publishAll(s.control)
          log.info('recovered after tor restart', { onion: this.identity?.onion })
        } finally {
          if (this.phase === 'recovering') this.phase = 'running'
        }
      })
      if (this.config.oni.enabled) await this.startOni(options)
      this.phase = 'running'
      log.info('ready', { onion: this.identity.onion, socket: this.config.api.socket, endpoints: this.endpoints.size })
    } catch (err) {
      log.error('start failed', { err: errorMessage(err) })
      await this.stop()
      throw err
    }
  }

  /**
   * ONI gets its own control connection to the daemon's tor (it closes it on stop and
   * reconnects after a drop) and tor's SOCKS port for its egress. Its keys live under <state dir>/oni.
   */
  private async startOni (options: AbortOptions): Promise<void> {
    const session = this.tor?.current
    const attachTor = this.components.attachTor
    if (session === undefined) throw new DaemonError('DAEMON_TOR', 'oni.enabled needs a running tor (node.transport = "tor")')
    if (attachTor === undefined) throw new DaemonError('DAEMON_TOR', 'ONI needs to attach to tor, which this build cannot do')
    const cfg = this.config
    const connectTor = async (opts: AbortOptions): Promise<TorControl> => {
      const current = this.tor?.current ?? session
      const target = cfg.tor.control ?? (current.controlPort !== undefined ? { host: current.controlHost ?? '127.0.0.1', port: current.controlPort } : undefined)
      if (target === undefined) throw new DaemonError('DAEMON_TOR', 'tor has no control port ONI can attach to')
      const password = cfg.tor.controlPasswordFile !== undefined ? (await readFile(cfg.tor.controlPasswordFile, 'utf8')).trim() : undefined
      return await attachTor(target, { clock: this.components.clock, ...(password !== undefined ? { password } : {}), ...opts })
    }
    const oni = createOni({
      stateDir: join(this.stateDir, 'oni'),
      torSocksPort: session.socksPort,
      probeIntervalMs: cfg.oni.probeIntervalMs,
      socks: cfg.oni.socksPort === 0 ? false : { port: cfg.oni.socksPort },
      onet: false
    }, { connectTor, clock: this.components.clock, log: nodeLogger(this.components.log).extend('oni') })
    try {
      await oni.start(options)
    } catch (err) {
      await oni.stop().catch(() => {})
      throw new DaemonError('DAEMON_ONI', `ONI did not start: ${errorMessage(err)}`, { cause: err })
    }
    this.oniInstance = oni
    this.components.log.info('oni started', { socksPort: oni.status().socks?.port ?? null })
  }

  private ending (): boolean { return this.phase === 'stopping' || this.phase === 'stopped' }

  /**
   * A daemon must not stay cut off because its bootstrap peers were unreachable when it started
   * (or all its peers went away later): while the routing table is empty, join again, backing
   * off from REJOIN_FIRST_MS to REJOIN_MAX_MS.
   */
  private scheduleRejoin (delayMs: number): void {
    this.rejoinTimer?.cancel()
    this.rejoinTimer = this.components.clock.setTimeout(() => {
      void (async () => {
        const node = this.node
        if (node === undefined || this.ending()) return
        let next = REJOIN_FIRST_MS
        if (this.phase === 'running' && node.counters().peers === 0) {
          try {
            const r = await node.bootstrap(this.config.node.bootstrap)
            this.components.log.info('bootstrapped', { peers: r.peers, retry: true })
          } catch (err) {
            next = Math.min(REJOIN_MAX_MS, delayMs * 2)
            this.components.log.warn('bootstrap failed; retrying in the background', { err: errorMessage(err), inMs: next })
          }
        } else if (this.phase === 'running') {
          next = REJOIN_CHECK_MS
        }
        if (!this.ending()) this.scheduleRejoin(next)
      })()
    }, delayMs)
    this.rejoinTimer.unref()
  }

  /** Withdraws endpoints (unless kept), stops the node (wiping its store), tor, the API socket. */
  async stop (): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return
    const { log } = this.components
    this.phase = 'stopping'
    this.rejoinTimer?.cancel()
    log.info('stopping')
    const control = this.tor?.current?.control
    if (this.endpoints !== undefined && !this.config.endpoints.keepOnShutdown) await this.endpoints.withdrawAll(control).catch(() => {})
    // Before tor: an attached tor gets its options back; the VMs stay cut off (lockdown).
    await this.gatewayLink?.stop()
    await this.oniInstance?.stop().catch((err: unknown) => { log.error('oni stop failed', { err: errorMessage(err) }) })
    await this.node?.stop().catch((err: unknown) => { log.error('node stop failed', { err: errorMessage(err) }) })
    await this.tor?.stop().catch(() => {})
    await this.api?.close().catch(() => {})
    this.endpoints?.destroy()
    this.identity?.destroy()
    this.phase = 'stopped'
    log.info('stopped')
  }

  private ready (): DaemonNode {
    if (this.phase !== 'running' || this.node === undefined) throw new DaemonError('DAEMON_NOT_READY', `the daemon is not ready yet (phase: ${this.phase}): try again shortly`)
    return this.node
  }

  identityView (): { onion: string, address: string, publicKey: string, nodeId: string } {
    const id = this.identity as Identity
    return { onion: id.onion, address: `${id.onion}.onion`, publicKey: toHex(id.publicKey), nodeId: toHex(sha256(id.publicKey)) }
  }

  // ---- ApiBackend ----

  status (): unknown {
    return {
      version: this.init.version ?? '0.0.0',
      phase: this.phase,
      pid: process.pid,
      uptimeMs: this.components.clock.now() - this.startedAt,
      stateDir: this.stateDir,
      socket: this.config.api.socket,
      transport: this.config.node.transport,
      identity: this.identity !== undefined ? this.identityView() : null,
      addrs: this.node?.addrs ?? [],
      tor: this.tor?.state ?? null,
      node: this.node?.counters() ?? null,
      endpoints: this.endpoints?.list() ?? []
    }
  }

  identityInfo (): unknown { return this.identityView() }

  peers (): unknown { return { peers: this.node?.peers() ?? [] } }

  async put (req: PutRequest, options: AbortOptions): Promise<unknown> {
    const node = this.ready()
    const t0 = this.components.clock.monotonic()
    const r = req.mutable
      ? await node.putMutable({ salt: req.salt ?? new Uint8Array(0), value: req.value, ...(req.ttlMs !== undefined ? { ttlMs: req.ttlMs } : {}), ...options })
      : await node.putImmutable(req.value, { ...(req.ttlMs !== undefined ? { ttlMs: req.ttlMs } : {}), ...options })
    this.putLatency.observe((this.components.clock.monotonic() - t0) / 1000)
    this.puts++
    req.value.fill(0)
    return { key: toHex(r.key), kind: req.mutable ? 'mutable' : 'immutable', stored: r.stored, attempted: r.attempted, ...(r.seq !== undefined ? { seq: r.seq } : {}) }
  }

  async get (key: Uint8Array, options: AbortOptions): Promise<unknown | undefined> {
    const node = this.ready()
    const t0 = this.components.clock.monotonic()
    const r = await node.get(key, options)
    this.getLatency.observe((this.components.clock.monotonic() - t0) / 1000)
    this.gets++
    if (r === undefined) { this.getMisses++; return undefined }
    const out = {
      key: toHex(key),
      kind: r.kind,
      value: Buffer.from(r.value).toString('base64'),
      responses: r.responses,
      ...(r.seq !== undefined ? { seq: r.seq } : {}),
      ...(r.publicKey !== undefined ? { publicKey: toHex(r.publicKey) } : {})
    }
    r.value.fill(0)
    return out
  }

  /** ONI's /proc/net/onion: `{ enabled: false, message }` when the config does not enable it. */
  oni (): unknown {
    if (!this.config.oni.enabled) return { enabled: false, message: 'ONI is not enabled in this daemon: set enabled = true under [oni] in its config (node.transport = "tor") and restart it' }
    if (this.oniInstance === undefined) throw new DaemonError('DAEMON_NOT_READY', `ONI is not running yet (phase: ${this.phase}): try again shortly`)
    return { enabled: true, ...this.oniInstance.status() }
  }

  /** Gateway status: `{ enabled: false, message }` when the config does not enable it. */
  async gateway (options: AbortOptions): Promise<unknown> {
    if (!this.config.gateway.enabled) return { enabled: false, message: 'the gateway is not enabled in this daemon: set enabled = true and interface = "<inside interface>" under [gateway] in its config and restart it' }
    if (this.gatewayLink === undefined) throw new DaemonError('DAEMON_NOT_READY', `the gateway is not set up yet (phase: ${this.phase}): try again shortly`)
    return await this.gatewayLink.status(options)
  }

  /** Re-reads the gateway blocklist (SIGHUP, POST /v1/gateway/reload). */
  async reloadGateway (options: AbortOptions = {}): Promise<unknown> {
    if (this.gatewayLink === undefined) throw new DaemonError('DAEMON_BAD_REQUEST', 'the gateway is not enabled in this daemon')
    return await this.gatewayLink.reload(options)
  }

  listEndpoints (): unknown { return { endpoints: this.endpoints?.list() ?? [] } }

  async addEndpoint (req: EndpointRequest, options: AbortOptions): Promise<unknown> {
    this.ready()
    if (this.tor === undefined) throw new DaemonError('DAEMON_BAD_REQUEST', 'onion endpoints need node.transport = "tor"')
    return await (this.endpoints as Endpoints).add(req, this.tor.current?.control, options)
  }

  async removeEndpoint (name: string, options: AbortOptions): Promise<void> {
    this.ready()
    await (this.endpoints as Endpoints).remove(name, this.tor?.current?.control, options)
  }

  metrics (): string {
    const c = this.node?.counters()
    const tor = this.tor?.state
    const eps: EndpointView[] = this.endpoints?.list() ?? []
    const parts = [
      family('oht_up', 'gauge', '1 when the daemon is running and ready', this.phase === 'running' ? 1 : 0),
      family('oht_uptime_seconds', 'gauge', 'seconds since the daemon started', (this.components.clock.now() - this.startedAt) / 1000),
      family('oht_peers', 'gauge', 'peers in the routing table', c?.peers ?? 0),
      family('oht_records_stored', 'gauge', 'records held in the local store', c?.recordsStored ?? 0),
      family('oht_record_bytes_stored', 'gauge', 'bytes of record values held in the local store', c?.bytesStored ?? 0),
      family('oht_lookups_total', 'counter', 'iterative lookups run by the node', c?.lookups ?? 0),
      family('oht_lookup_failures_total', 'counter', 'lookups that found nothing', c?.lookupFailures ?? 0),
      family('oht_requests_total', 'counter', 'DHT requests by direction', [{ labels: { direction: 'in' }, value: c?.requestsIn ?? 0 }, { labels: { direction: 'out' }, value: c?.requestsOut ?? 0 }]),
      family('oht_request_timeouts_total', 'counter', 'DHT requests that timed out', c?.timeouts ?? 0),
      family('oht_api_puts_total', 'counter', 'puts through the local API', this.puts),
      family('oht_api_gets_total', 'counter', 'gets through the local API', this.gets),
      family('oht_api_get_misses_total', 'counter', 'gets that found no record', this.getMisses),
      this.putLatency.render('oht_put_duration_seconds', 'latency of puts through the local API'),
      this.getLatency.render('oht_get_duration_seconds', 'latency of gets through the local API'),
      family('oht_api_requests_total', 'counter', 'local API requests by route and status', this.api?.requests.samples() ?? []),
      family('oht_endpoints', 'gauge', 'onion endpoints by state', [{ labels: { state: 'published' }, value: eps.filter(e => e.published).length }, { labels: { state: 'unpublished' }, value: eps.filter(e => !e.published).length }])
    ]
    if (tor !== undefined) {
      parts.push(
        family('oht_tor_connected', 'gauge', '1 while the control connection to tor is up', tor.connected ? 1 : 0),
        family('oht_tor_bootstrap_percent', 'gauge', 'tor bootstrap progress', tor.bootstrapPercent),
        family('oht_tor_reconnects_total', 'counter', 'times tor was lost and re-established', tor.restarts),
        family('oht_tor_circuits_total', 'counter', 'tor circuit events by status', [
          { labels: { status: 'built' }, value: tor.circuits.built },
          { labels: { status: 'failed' }, value: tor.circuits.failed },
          { labels: { status: 'closed' }, value: tor.circuits.closed }
        ])
      )
    }
    if (this.gatewayLink !== undefined) parts.push(...this.gatewayLink.metrics())
    return parts.join('\n') + '\n'
  }
}

/** The state dir holds secrets: create it 0700, tighten it if it is open to others. */
async function prepareStateDir (dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const st = await stat(dir)
    if (!st.isDirectory()) throw new DaemonError('DAEMON_STATE', `state dir ${dir} is not a directory`)
    if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700)
  } catch (err) {
    if (err instanceof DaemonError) throw err
    throw new DaemonError('DAEMON_STATE', `cannot use state dir ${dir}: ${errorMessage(err)}`, { cause: err })
  }
}

/** A core Logger that writes through the JSON log (for components that take a Logger). */
function nodeLogger (log: JsonLog): Logger {
  const make = (ns: string): Logger => {
    const l = ((msg: string, ...args: unknown[]) => { log.debug(msg, { ns, args: args.map(a => a instanceof Uint8Array ? `<${a.byteLength} bytes>` : a) }) }) as Logger
    Object.defineProperty(l, 'enabled', { value: false })
    Object.defineProperty(l, 'namespace', { value: ns })
    l.error = (msg: string, ...args: unknown[]) => { log.error(msg, { ns, args: args.map(String) }) }
    l.warn = (msg: string, ...args: unknown[]) => { log.warn(msg, { ns, args: args.map(String) }) }
    l.extend = (sub: string) => make(`${ns}:${sub}`)
    return l
  }
  return make('oht:node')
}
