/**
 * The daemon: config → state dir → identity → API socket → tor → OHT node → ONI (endpoints,
 * and SOCKS egress when [oni] enables it), and the reverse on stop. It implements the local
 * API's backend. Onion endpoints have one manager, ONI's, whatever [oni] says.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbortOptions, Clock, Logger, TimerHandle } from '../core/index.ts'
import { cryptoRng, errorMessage, isCodedError, toHex } from '../core/index.ts'
import { sha256, type Identity } from '../crypto/index.ts'
import { createOni, isOniError, type EndpointStatus, type Oni } from '../oni/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import { startApiServer, type ApiBackend, type ApiServer, type PutRequest } from './api-server.ts'
import type { DaemonConfig } from './config.ts'
import type { EndpointRequest } from './endpoint-request.ts'
import { migrateDaemonEndpoints } from './endpoints-migration.ts'
import { DaemonError } from './errors.ts'
import { loadIdentity, readPassphrase } from './identity-source.ts'
import type { JsonLog } from './json-log.ts'
import { family, Histogram } from './metrics.ts'
import type { NodeFactory } from './node.ts'
import { countersOf, peersOf, torAttachOf } from './node-view.ts'
import { GatewayLink, type GatewayLinkComponents } from './gateway-link.ts'
import { ensureToken } from './token.ts'
import type { OhtSdkNode } from '../sdk/index.ts'
import { describePut } from '../sdk/put-summary.ts'
import { attachAuthOptions, TorLink, type TorLinkComponents } from './tor-link.ts'
import { DoaService, type DoaApiRequest } from './doa-service.ts'

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
  private node: OhtSdkNode | undefined
  private oniInstance: Oni | undefined
  private doaService: DoaService | undefined
  private gatewayLink: GatewayLink | undefined
  private startedAt = 0
  private rejoinTimer: TimerHandle | undefined
  /** The routing table was found empty and no join has refilled it since. */
  private cutOff = false
  private rebuilding = false
  /** Aborted by stop(): ends waits of background work. */
  private readonly stopping = new AbortController()
  private nextJoinAt = 0
  private joinBackoffMs = REJOIN_FIRST_MS
  private readonly putLatency = new Histogram()
  private readonly getLatency = new Histogram()
  /** Failed joins through node.bootstrap in a row (0 once one succeeds), and the last error. */
  private joinFailures = 0
  private joinError: string | undefined
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
            return r === undefined ? undefined : { kind: r.record.kind, value: r.value, ...(r.record.kind === 'mutable' ? { publicKey: r.record.publicKey } : {}) }
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
          throw new DaemonError('DAEMON_TOR', `tor is not usable: ${errorMessage(err)}${stallHint(err, this.config)}`, { cause: err })
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
      log.info('node started', { transport: this.config.node.transport, addrs: this.node.multiaddrs, ownRecords: this.node.stats().journalEntries ?? 0 })
      if (this.config.node.bootstrap.length > 0) {
        try {
          const r = await this.node.join(this.config.node.bootstrap, options)
          log.info('bootstrapped', { peers: r.peers })
        } catch (err) {
          this.joinFailed(err)
          log.warn('bootstrap failed; retrying in the background', { err: errorMessage(err) })
        }
      }
      if (this.config.node.transport !== 'local') {
        this.cutOff = this.node.stats().peers === 0
        this.nextJoinAt = clock.now() + REJOIN_FIRST_MS
        this.scheduleRejoin(REJOIN_FIRST_MS)
      }

      if (session !== undefined) await this.gatewayLink?.torSession(session.control, options)
      this.tor?.onLost(() => {
        this.gatewayLink?.torLost()
        if (this.phase === 'running') this.phase = 'recovering'
      })
      this.tor?.onReconnect(async (s) => {
        await this.gatewayLink?.torSession(s.control)
        await this.rebuildNode()
      })
      if (this.tor !== undefined) await this.startOni(options)
      if (this.config.doa.enabled) await this.startDoa(options)
      this.phase = 'running'
      log.info('ready', { onion: this.identity.onion, socket: this.config.api.socket, endpoints: this.oniInstance?.endpoints.list().length ?? 0 })
    } catch (err) {
      // Ctrl-C while starting is a stop the user asked for, not a failure.
      if (options.signal?.aborted === true) log.info('start interrupted', { phase: this.phase })
      else log.error('start failed', { err: errorMessage(err) })
      await this.stop()
      throw err
    }
  }

  /**
   * ONI gets its own control connection to the daemon's tor (it closes it on stop and
   * reconnects after a drop, re-publishing every endpoint) and tor's SOCKS port for its
   * egress. Its keys and endpoint list live under <state dir>/oni; a pre-ONI endpoints.json is
   * moved there first (same keys, same addresses). Key-tree endpoint keys derive from the
   * node's identity.
   */
  private async startOni (options: AbortOptions): Promise<void> {
    const session = this.tor?.current
    const attachTor = this.components.attachTor
    const identity = this.identity as Identity
    if (session === undefined) throw new DaemonError('DAEMON_TOR', 'onion endpoints need a running tor (node.transport = "tor")')
    if (attachTor === undefined) throw new DaemonError('DAEMON_TOR', 'ONI needs to attach to tor, which this build cannot do')
    const cfg = this.config
    const connectTor = async (opts: AbortOptions): Promise<TorControl> => {
      const current = this.tor?.current ?? session
      const target = cfg.tor.control ?? (current.controlPort !== undefined ? { host: current.controlHost ?? '127.0.0.1', port: current.controlPort } : undefined)
      if (target === undefined) throw new DaemonError('DAEMON_TOR', 'tor has no control port ONI can attach to')
      const password = cfg.tor.controlPasswordFile !== undefined ? (await readFile(cfg.tor.controlPasswordFile, 'utf8')).trim() : undefined
      return await attachTor(target, { clock: this.components.clock, ...(password !== undefined ? { password } : {}), ...attachAuthOptions(cfg.tor), ...(current.cookiePath !== undefined ? { cookiePath: current.cookiePath } : {}), ...opts })
    }
    const oniDir = join(this.stateDir, 'oni')
    await migrateDaemonEndpoints(this.stateDir, oniDir, identity, this.components.log)
    const oni = createOni({
      stateDir: oniDir,
      masterSeed: identity.seed,
      torSocksPort: session.socksPort,
      probeIntervalMs: cfg.oni.probeIntervalMs,
      socks: !cfg.oni.enabled || cfg.oni.socksPort === 0 ? false : { port: cfg.oni.socksPort },
      onet: false
    }, {
      connectTor,
      clock: this.components.clock,
      log: nodeLogger(this.components.log).extend('oni'),
      // chess.alice.onet: DOA names, when onet runs.
      names: async (name, opts) => await this.onionOfName(name, opts).catch(() => undefined)
    })
    oni.endpoints.onEvent((e) => {
      if (e.type === 'endpoint-ready') this.components.log.info('endpoint published', { name: e.name, address: e.address, ms: e.ms })
      else if (e.type === 'endpoint-error') this.components.log.error('endpoint not published', { name: e.name, err: e.error })
      else if (e.type === 'endpoint-republished') this.components.log.info('endpoint republished', { name: e.name, address: e.address, reason: e.reason })
      else if (e.type === 'endpoint-adopted') this.components.log.info('endpoint adopted', { name: e.name, address: e.address })
    })
    try {
      await oni.start(options)
    } catch (err) {
      await oni.stop().catch(() => {})
      throw new DaemonError('DAEMON_ONI', `ONI did not start: ${errorMessage(err)}`, { cause: err })
    }
    this.oniInstance = oni
    this.components.log.info('oni started', { endpoints: oni.endpoints.list().length, socksPort: oni.status().socks?.port ?? null })
  }

  /**
   * The DOA service on the node's engine and PeerNet (stable across tor restarts), with ONI's
   * endpoints for hosted apps when the node runs over tor. It hosts again what it hosted.
   */
  private async startDoa (options: AbortOptions): Promise<void> {
    const node = this.node as OhtSdkNode
    const svc = new DoaService({
      stateDir: this.stateDir,
      httpPort: this.config.doa.httpPort,
      maxHostBytes: this.config.doa.hostMaxBytes,
      maxHostOps: this.config.doa.hostMaxOps
    }, {
      node,
      identity: this.identity as Identity,
      clock: this.components.clock,
      rng: cryptoRng,
      log: this.components.log,
      ...(this.tor !== undefined ? { oni: () => this.oniInstance } : {})
    })
    try {
      await svc.start(options)
    } catch (err) {
      await svc.stop().catch(() => {})
      throw new DaemonError('DAEMON_NODE', `the DOA service did not start: ${errorMessage(err)}`, { cause: err })
    }
    this.doaService = svc
  }

  private ending (): boolean { return this.phase === 'stopping' || this.phase === 'stopped' }

  /**
   * A daemon must not stay cut off because its peers were unreachable when it started (or all
   * went away later). While its routing table is empty it joins again (saved table, then the
   * bootstrap list), backing off from REJOIN_FIRST_MS to REJOIN_MAX_MS; and when peers come back
   * on their own (they contacted us), it joins once more at once: joining is what republishes
   * this node's own records to them, instead of at the next hourly republish.
   */
  private scheduleRejoin (delayMs: number): void {
    this.rejoinTimer?.cancel()
    this.rejoinTimer = this.components.clock.setTimeout(() => {
      void (async () => {
        const node = this.node
        if (node === undefined || this.ending()) return
        const { clock, log } = this.components
        const peers = node.stats().peers
        if (this.phase === 'running') {
          if (peers === 0 && !this.cutOff) { this.cutOff = true; this.nextJoinAt = clock.now() }
          if (this.cutOff && (peers > 0 || clock.now() >= this.nextJoinAt)) {
            try {
              const r = await node.join(this.config.node.bootstrap)
              if (r.peers === 0) {
                if (r.via === 'none' && this.config.node.bootstrap.length === 0) log.debug('no peers and nothing to join through: waiting for peers to contact us')
                else throw new DaemonError('DAEMON_NODE', 'no peer answered')
              } else {
                this.cutOff = false
                this.joinBackoffMs = REJOIN_FIRST_MS
                this.joinFailures = 0
                this.joinError = undefined
                log.info('bootstrapped', { peers: r.peers, retry: true })
              }
            } catch (err) {
              this.joinFailed(err)
              log.warn('bootstrap failed; retrying in the background', { err: errorMessage(err), inMs: this.joinBackoffMs })
            }
            if (this.cutOff) {
              this.nextJoinAt = clock.now() + this.joinBackoffMs
              this.joinBackoffMs = Math.min(REJOIN_MAX_MS, this.joinBackoffMs * 2)
            }
          }
        }
        // While cut off, look often (a peer contacting us is cheap to notice); else once a minute.
        if (!this.ending()) this.scheduleRejoin(this.cutOff ? REJOIN_FIRST_MS : REJOIN_CHECK_MS)
      })()
    }, delayMs)
    this.rejoinTimer.unref()
  }

  /**
   * tor came back: one path, the SDK rebuilds the node on the new tor session, and its journal
   * brings back (and republishes) what this node wrote. A rebuild that fails (a tor just
   * restarted may refuse the onion service for a while) is tried again, backing off, on the
   * session current at each try, until it works or the daemon stops; the phase stays
   * `recovering` (API 503) meanwhile.
   */
  private async rebuildNode (): Promise<void> {
    if (this.rebuilding) return
    this.rebuilding = true
    const { clock, log } = this.components
    try {
      for (let attempt = 1, delay = NODE_START_RETRY_MS; !this.ending(); attempt++, delay = Math.min(REJOIN_MAX_MS, delay * 2)) {
        const session = this.tor?.current
        if (session === undefined || this.node === undefined) return
        try {
          const r = await this.node.reconnectTor(torAttachOf(session))
          log.info('node rebuilt on the new tor session', { peers: r.peers, ownRecords: this.node.stats().journalEntries ?? 0, ...(r.error !== undefined ? { joinError: r.error } : {}) })
          log.info('recovered after tor restart', { onion: this.identity?.onion })
          if (this.phase === 'recovering') this.phase = 'running'
          return
        } catch (err) {
          log.error('node not rebuilt on the new tor session; retrying', { attempt, err: errorMessage(err).split('\n')[0], inMs: delay })
          await clock.sleep(delay, { signal: this.stopping.signal }).catch(() => {})
        }
      }
    } finally {
      this.rebuilding = false
    }
  }

  private joinFailed (err: unknown): void {
    this.joinFailures++
    this.joinError = errorMessage(err).split('\n')[0]
  }

  /** Withdraws endpoints (unless kept), stops the node (wiping its store), tor, the API socket. */
  async stop (): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return
    const { log } = this.components
    this.phase = 'stopping'
    this.rejoinTimer?.cancel()
    this.stopping.abort()
    log.info('stopping')
    if (this.oniInstance !== undefined && !this.config.endpoints.keepOnShutdown) {
      await this.oniInstance.endpoints.withdrawAll().catch((err: unknown) => { log.error('withdrawing endpoints failed', { err: errorMessage(err) }) })
    }
    // Apps first: their endpoints and announcements go while the node and ONI still run.
    await this.doaService?.stop().catch((err: unknown) => { log.error('doa stop failed', { err: errorMessage(err) }) })
    // Before tor: an attached tor gets its options back; the VMs stay cut off (lockdown).
    await this.gatewayLink?.stop()
    await this.oniInstance?.stop().catch((err: unknown) => { log.error('oni stop failed', { err: errorMessage(err) }) })
    await this.node?.stop().catch((err: unknown) => { log.error('node stop failed', { err: errorMessage(err) }) })
    await this.tor?.stop().catch(() => {})
    await this.api?.close().catch(() => {})
    this.identity?.destroy()
    this.phase = 'stopped'
    log.info('stopped')
  }

  private ready (): OhtSdkNode {
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
      addrs: this.node?.multiaddrs ?? [],
      tor: this.tor?.state ?? null,
      node: this.node !== undefined ? countersOf(this.node) : null,
      join: { bootstrap: this.config.node.bootstrap.length, failures: this.joinFailures, ...(this.joinError !== undefined ? { lastError: this.joinError } : {}) },
      endpoints: this.oniInstance?.endpoints.list() ?? [],
      doa: this.doaService?.status() ?? null
    }
  }

  /** The DOA routes (/v1/apps, /v1/names, /v1/petnames, /v1/hosting): doa-service.ts. */
  async doa (req: DoaApiRequest, options: AbortOptions): Promise<{ status: number, body: unknown } | undefined> {
    if (!this.config.doa.enabled) throw new DaemonError('DAEMON_NOT_FOUND', 'DOA is disabled in this daemon ([doa] enabled = false)')
    this.ready()
    if (this.doaService === undefined) throw new DaemonError('DAEMON_NOT_READY', `DOA is not running yet (phase: ${this.phase}): try again shortly`)
    return await this.doaService.handle(req, options)
  }

  /** Onion address of a DOA name (the proposal-279 plugin and .onet use it). */
  async onionOfName (name: string, options: AbortOptions): Promise<string> {
    if (this.doaService === undefined) throw new DaemonError('DAEMON_NOT_READY', 'DOA is not running')
    return await this.doaService.onionOf(name, options)
  }

  identityInfo (): unknown { return this.identityView() }

  peers (): unknown { return { peers: this.node !== undefined ? peersOf(this.node) : [] } }

  async put (req: PutRequest, options: AbortOptions): Promise<unknown> {
    const node = this.ready()
    const t0 = this.components.clock.monotonic()
    const ttl = req.ttlMs !== undefined ? { ttlMs: req.ttlMs } : {}
    let r
    try {
      r = req.mutable
        ? await node.putMutable({ salt: req.salt ?? new Uint8Array(0), value: req.value, ...ttl, ...(req.cas !== undefined ? { cas: req.cas } : {}), ...options })
        : await node.put(req.value, { ...ttl, ...options })
    } catch (err) {
      if (isCodedError(err, 'OHT_CAS_MISMATCH')) throw new DaemonError('DAEMON_CAS_MISMATCH', errorMessage(err), { cause: err })
      throw err
    } finally {
      req.value.fill(0)
    }
    this.putLatency.observe((this.components.clock.monotonic() - t0) / 1000)
    this.puts++
    return {
      key: toHex(r.key),
      kind: req.mutable ? 'mutable' : 'immutable',
      stored: r.stored,
      wanted: r.wanted,
      storedHere: r.storedHere,
      onlyHere: r.onlyHere,
      attempted: r.attempted,
      summary: describePut(r),
      ...(r.seq !== undefined ? { seq: r.seq } : {})
    }
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
      kind: r.record.kind,
      value: Buffer.from(r.value).toString('base64'),
      responses: r.responses,
      ...(r.seq !== undefined ? { seq: r.seq } : {}),
      ...(r.record.kind === 'mutable' ? { publicKey: toHex(r.record.publicKey) } : {})
    }
    r.value.fill(0)
    return out
  }

  /** ONI's /proc/net/onion: `{ enabled: false, message }` when the node does not run over tor. */
  oni (): unknown {
    if (this.config.node.transport !== 'tor') return { enabled: false, message: `ONI needs node.transport = "tor" (this daemon's is "${this.config.node.transport}"): onion endpoints are published through tor` }
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

  listEndpoints (): unknown { return { endpoints: this.oniInstance?.endpoints.list() ?? [] } }

  private endpointManager (): Oni['endpoints'] {
    this.ready()
    if (this.tor === undefined) throw new DaemonError('DAEMON_BAD_REQUEST', 'onion endpoints need node.transport = "tor"')
    if (this.oniInstance === undefined) throw new DaemonError('DAEMON_NOT_READY', `endpoints are not ready yet (phase: ${this.phase}): try again shortly`)
    return this.oniInstance.endpoints
  }

  async addEndpoint (req: EndpointRequest, options: AbortOptions): Promise<unknown> {
    const manager = this.endpointManager()
    let key = req.key
    if (key?.type === 'file') {
      const passphrase = await readPassphrase(this.config.identity.passphraseFile)
      key = { ...key, ...(passphrase !== undefined ? { passphrase } : {}) }
    }
    try {
      const status = await manager.create({ name: req.name, routes: req.routes, ...(key !== undefined ? { key } : {}) }, options)
      this.components.log.info('endpoint added', { name: status.name, address: status.address })
      return status
    } catch (err) {
      throw daemonErrorOf(err)
    }
  }

  async removeEndpoint (name: string, options: AbortOptions): Promise<void> {
    const manager = this.endpointManager()
    try {
      await manager.delete(name, options)
    } catch (err) {
      throw daemonErrorOf(err)
    }
    this.components.log.info('endpoint removed', { name })
  }

  metrics (): string {
    const c = this.node !== undefined ? countersOf(this.node) : undefined
    const tor = this.tor?.state
    const eps: EndpointStatus[] = this.oniInstance?.endpoints.list() ?? []
    const parts = [
      family('oht_up', 'gauge', '1 when the daemon is running and ready', this.phase === 'running' ? 1 : 0),
      family('oht_uptime_seconds', 'gauge', 'seconds since the daemon started', (this.components.clock.now() - this.startedAt) / 1000),
      family('oht_peers', 'gauge', 'peers in the routing table', c?.peers ?? 0),
      family('oht_records_stored', 'gauge', 'records held in the local store', c?.recordsStored ?? 0),
      family('oht_record_bytes_stored', 'gauge', 'bytes of record values held in the local store', c?.bytesStored ?? 0),
      family('oht_own_records', 'gauge', 'entries of the own-record journal (records this node wrote, and kept seqs)', c?.ownRecords ?? 0),
      family('oht_republished_total', 'counter', 'republishes of this node\'s own records', c?.republished ?? 0),
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
      family('oht_endpoints', 'gauge', 'onion endpoints by state', (['ready', 'publishing', 'unreachable', 'down'] as const).map(state => ({ labels: { state }, value: eps.filter(e => e.state === state).length })))
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

/** ONI's errors as the API answers them (ONI_* codes mean nothing to HTTP statuses). */
function daemonErrorOf (err: unknown): unknown {
  if (!isOniError(err)) return err
  const status: Record<string, string> = {
    ONI_ENDPOINT_EXISTS: 'DAEMON_CONFLICT',
    ONI_ENDPOINT_UNKNOWN: 'DAEMON_NOT_FOUND',
    ONI_BAD_ARGUMENT: 'DAEMON_BAD_REQUEST',
    ONI_ROUTE: 'DAEMON_BAD_REQUEST',
    ONI_KEY_STORE: 'DAEMON_BAD_REQUEST',
    ONI_CLOSED: 'DAEMON_NOT_READY'
  }
  return new DaemonError(status[err.code] ?? 'DAEMON_TOR', err.message, { cause: err })
}

/**
 * A launched tor that stalls on the public network most often means this machine has no way
 * to it: say how to run on a private network instead.
 */
function stallHint (err: unknown, config: DaemonConfig): string {
  if (!isCodedError(err, 'TOR_BOOTSTRAP_STALLED') || config.tor.mode !== 'launch') return ''
  if (Object.keys(config.tor.torrc).some(k => /^(DirAuthority|UseBridges|Bridge)$/i.test(k))) return ''
  return ' No public Tor network here? Run a private one and attach to it: eval "$(oht testnet up --dir ~/oht-net)", then oht daemon --testnet ~/oht-net'
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
