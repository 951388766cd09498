/**
 * Onion endpoints and their inbound routes, kept alive.
 *
 * - Keys: a new key (generated here, stored 0600 under `<stateDir>/keys/`), or a key-tree
 *   child of the master seed (`deriveChildSeed(master, 'universe.router.multiverse')`), so a
 *   VM's address is reproducible. Every service is added with our own key and `Detach`, so it
 *   outlives this process's control connection; a restarted ONI adopts it again from
 *   `onions/detached` (same address, nothing re-published when its route listeners could be
 *   re-bound to the same ports).
 * - Routes: onion port → `host:port` (local or remote) or `unix:/path`. By default through a
 *   forwarder that counts connections and bytes (status table); `mode: 'direct'` gives tor the
 *   target itself.
 * - Readiness: descriptors uploaded and, with `probeSocksPort` (a SEPARATE tor client), one
 *   connect through it succeeded.
 * - Self-healing: a probe every `probeIntervalMs` checks that tor still lists each service and
 *   (with a probe client) that it is reachable; a missing service is re-published, one that
 *   failed `probeFailuresBeforeRepublish` probes in a row is removed and re-added. When the
 *   control connection drops (tor restarted), the manager reconnects with back-off through
 *   `connectTor` and re-publishes everything. All of it is reported as events.
 *
 * State file `<stateDir>/endpoints.json` (0600) holds names, key kinds, key paths, routes and
 * the route listeners' ports; never a key.
 */
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbortOptions, Clock, Logger, TimerHandle } from '../core/index.ts'
import { errorMessage, isCodedError, logger as makeLogger, scopedSignal, systemClock, writeFileAtomic } from '../core/index.ts'
import type { Identity } from '../crypto/index.ts'
import { deriveChildSeed, generateIdentity, identityFromSeed, readKeyFile, torKeyBlob, writeKeyFile } from '../crypto/index.ts'
import type { PowDefenses, TorControl } from '../tor/control/index.ts'
import { publishOnion } from '../tor/endpoint.ts'
import { socksConnect } from '../tor/socks.ts'
import { OniError } from './errors.ts'
import { formatRouteTarget, parseRouteTarget, startForwarder, type Forwarder, type ForwarderStats } from './forwarder.ts'

/**
 * Where an endpoint's key comes from: generated here (`new`), a key-tree child of the master
 * seed (`derived`), or an existing key file (`file`, e.g. from `oht init` or another host;
 * sealed files need `passphrase`). A `file` key is copied into `<stateDir>/keys/` (0600) and
 * is `imported` from then on; the original file is never changed.
 */
export type EndpointKeySpec = { type: 'new' } | { type: 'derived', path: string } | { type: 'file', path: string, passphrase?: string }

/** How the state file remembers a key: file keys are kept under keys/ as `imported`. */
type StoredKey = { type: 'new' } | { type: 'derived', path: string } | { type: 'imported' }

export interface RouteSpec {
  /** Port on the onion address. */
  virtualPort: number
  /** `host:port`, `[ipv6]:port`, a bare local port, or `unix:/path`. */
  target: string
  /** 'forward' counts connections and bytes; 'direct' hands the target to tor. @default 'forward' */
  mode?: 'forward' | 'direct'
}

export interface EndpointSpec {
  /** Local name, unique per manager: [a-z0-9][a-z0-9._-]{0,62}. */
  name: string
  /** @default { type: 'new' } */
  key?: EndpointKeySpec
  routes: RouteSpec[]
  /** Authorized clients (base32 x25519 public keys); only they can reach the service. */
  clientAuthV3?: string[]
  /** Ask for tor's proof-of-work DoS defence; dropped (status 'unsupported') if tor refuses. @default false */
  pow?: boolean | PowDefenses
}

export type EndpointState = 'publishing' | 'ready' | 'unreachable' | 'down'

export interface RouteStatus extends ForwarderStats { virtualPort: number, target: string, mode: 'forward' | 'direct', listenPort?: number }

export interface EndpointStatus {
  name: string
  address: string
  key: 'new' | 'derived' | 'imported'
  keyPath?: string
  state: EndpointState
  pow: 'off' | 'on' | 'unsupported'
  clientAuth: number
  routes: RouteStatus[]
  publishedAt?: number
  lastProbe?: { at: number, ok: boolean, error?: string }
  republished: number
}

export type OniEndpointEvent =
  | { type: 'endpoint-ready', name: string, address: string, ms: number }
  | { type: 'endpoint-adopted', name: string, address: string }
  | { type: 'endpoint-republished', name: string, address: string, reason: 'missing' | 'unreachable' | 'tor-restarted' | 'target-moved' }
  | { type: 'endpoint-probe-failed', name: string, address: string, failures: number, error: string }
  | { type: 'endpoint-error', name: string, error: string }
  | { type: 'tor-disconnected', error?: string }
  | { type: 'tor-reconnected' }

export interface EndpointManagerInit {
  /** Directory for endpoints.json and keys/ (created 0700). */
  stateDir: string
  /** Master seed of the key tree; needed for `{ type: 'derived' }` keys. */
  masterSeed?: Uint8Array
  /** SocksPort of a tor client other than the hosting one: readiness and probes connect through it. @default undefined */
  probeSocksPort?: number
  /** @default 60_000 */
  probeIntervalMs?: number
  /** @default 2 */
  probeFailuresBeforeRepublish?: number
  /** Deadline of one probe connect. @default 30_000 */
  probeTimeoutMs?: number
  /** Deadline for publishing (uploads, and the probe when configured). @default 60_000 */
  publishTimeoutMs?: number
  /** Reconnect back-off after the control connection drops. @default { initialMs: 500, maxMs: 10_000 } */
  reconnect?: { initialMs: number, maxMs: number }
  /**
   * Back-off for re-publishing an endpoint whose restore failed (a freshly restarted tor may
   * not have its HSDirs yet). @default { initialMs: 2_000, maxMs: 60_000 }
   */
  retry?: { initialMs: number, maxMs: number }
}

export interface EndpointManagerComponents {
  /** Opens an authenticated control connection to the hosting tor (called again after a drop). */
  connectTor: (options: AbortOptions) => Promise<TorControl>
  /** @default systemClock */
  clock?: Clock
  log?: Logger
}

interface StoredRoute { virtualPort: number, target: string, mode: 'forward' | 'direct', listenPort?: number }
interface StoredEndpoint { name: string, key: StoredKey, onion: string, routes: StoredRoute[], clientAuthV3?: string[], pow?: boolean | PowDefenses }
interface StateFile { version: 1, endpoints: StoredEndpoint[] }

interface Live {
  stored: StoredEndpoint
  identity: Identity
  forwarders: Map<number, Forwarder>
  state: EndpointState
  pow: 'off' | 'on' | 'unsupported'
  publishedAt?: number
  lastProbe?: { at: number, ok: boolean, error?: string }
  probeFailures: number
  republished: number
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/
const STATE_VERSION = 1
const MAX_STATE_BYTES = 4 * 1024 * 1024

/** An endpoint to import with a key it already has (see importEndpoints). */
export interface ImportedEndpoint {
  name: string
  identity: Identity
  routes: RouteSpec[]
}

export interface ImportResult {
  /** Imported: the name it has now (a taken name gets a suffix) and its address. */
  imported: Array<{ name: string, requested: string, address: string }>
  /** Already in the state file with the same key (an import run twice). */
  present: Array<{ name: string, address: string }>
}

/**
 * Adds endpoints with keys they already have to the state in `stateDir`, before a manager
 * starts on it (which then publishes them): each key is written to `keys/<name>.key` (0600),
 * then the state file is rewritten atomically. Running it again adds nothing twice (an
 * endpoint with the same address is `present`), so a crash half-way is repaired by a rerun.
 * Names that do not fit the manager's rule are cleaned up (leading "-"/"_" dropped), a name
 * taken by another address gets "-2", "-3"…
 */
export async function importEndpoints (stateDir: string, entries: ImportedEndpoint[]): Promise<ImportResult> {
  await mkdir(join(stateDir, 'keys'), { recursive: true, mode: 0o700 })
  const statePath = join(stateDir, 'endpoints.json')
  const state = await readStateFile(statePath)
  const out: ImportResult = { imported: [], present: [] }
  const names = new Set(state.endpoints.map(e => e.name))
  for (const entry of entries) {
    const onion = entry.identity.onion
    const same = state.endpoints.find(e => e.onion === onion)
    if (same !== undefined) { out.present.push({ name: same.name, address: `${onion}.onion` }); continue }
    const base = entry.name.toLowerCase().replace(/^[^a-z0-9]+/, '').slice(0, 60) || 'endpoint'
    let name = NAME_RE.test(base) ? base : 'endpoint'
    for (let i = 2; names.has(name); i++) name = `${base.slice(0, 58)}-${i}`
    if (entry.routes.length === 0) throw new OniError('ONI_BAD_ARGUMENT', `endpoint ${entry.name} has no route`)
    const routes: StoredRoute[] = entry.routes.map(r => {
      if (!Number.isInteger(r.virtualPort) || r.virtualPort < 1 || r.virtualPort > 65535) throw new OniError('ONI_BAD_ARGUMENT', `virtual port ${r.virtualPort} of endpoint ${entry.name} must be 1-65535`)
      return { virtualPort: r.virtualPort, target: formatRouteTarget(parseRouteTarget(r.target)), mode: r.mode ?? 'forward' }
    })
    await writeKeyFile(join(stateDir, 'keys', `${name}.key`), entry.identity)
    state.endpoints.push({ name, key: { type: 'imported' }, onion, routes })
    names.add(name)
    out.imported.push({ name, requested: entry.name, address: `${onion}.onion` })
  }
  if (out.imported.length > 0) {
    await writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  }
  return out
}

/** Reads a state file (missing = empty); a malformed one is ONI_KEY_STORE naming the file. */
async function readStateFile (path: string): Promise<StateFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: STATE_VERSION, endpoints: [] }
    throw new OniError('ONI_KEY_STORE', `cannot read ${path}: ${errorMessage(err)}`, { cause: err })
  }
  try {
    if (text.length > MAX_STATE_BYTES) throw new Error(`it is over ${MAX_STATE_BYTES} bytes`)
    const json = JSON.parse(text) as StateFile
    if (json.version !== STATE_VERSION || !Array.isArray(json.endpoints)) throw new Error(`unknown state version ${String(json.version)}`)
    for (const e of json.endpoints) {
      if (typeof e.name !== 'string' || !NAME_RE.test(e.name) || typeof e.onion !== 'string' || !Array.isArray(e.routes)) throw new Error('bad endpoint entry')
    }
    return json
  } catch (err) {
    throw new OniError('ONI_KEY_STORE', `cannot read ${path}: ${errorMessage(err)}; fix or remove it`, { cause: err })
  }
}

export function createEndpointManager (init: EndpointManagerInit, components: EndpointManagerComponents): EndpointManager {
  return new EndpointManager(init, components)
}

export class EndpointManager {
  private readonly init: EndpointManagerInit
  private readonly connectTor: EndpointManagerComponents['connectTor']
  private readonly clock: Clock
  private readonly log: Logger
  private readonly live = new Map<string, Live>()
  private readonly listeners = new Set<(e: OniEndpointEvent) => void>()
  private control: TorControl | undefined
  private unsubscribeClose: (() => void) | undefined
  private probeTimer: TimerHandle | undefined
  private readonly stopping = new AbortController()
  private chain: Promise<unknown> = Promise.resolve()
  private probing = false
  private reconnecting = false
  private readonly retryTimers = new Map<string, TimerHandle>()
  private started = false

  constructor (init: EndpointManagerInit, components: EndpointManagerComponents) {
    this.init = init
    this.connectTor = components.connectTor
    this.clock = components.clock ?? systemClock
    this.log = components.log ?? makeLogger('oni:endpoints')
  }

  onEvent (listener: (e: OniEndpointEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private emit (e: OniEndpointEvent): void {
    this.log('%s %s', e.type, 'name' in e ? e.name : '')
    for (const l of this.listeners) {
      try { l(e) } catch { /* a listener's failure is its own */ }
    }
  }

  /** Connects to tor, restores every stored endpoint (adopting detached ones) and starts probing. */
  async start (options: AbortOptions = {}): Promise<void> {
    if (this.started) return
    this.started = true
    await mkdir(join(this.init.stateDir, 'keys'), { recursive: true, mode: 0o700 })
    const state = await this.readState()
    await this.attach(await this.connectTor(options))
    for (const stored of state.endpoints) {
      try {
        const l = await this.load(stored)
        this.live.set(stored.name, l)
      } catch (err) {
        this.emit({ type: 'endpoint-error', name: stored.name, error: errorMessage(err) })
      }
    }
    await this.serial(async () => { await this.restoreAll('missing', options) })
    const every = this.init.probeIntervalMs ?? 60_000
    this.probeTimer = this.clock.setInterval(() => { void this.probeAll() }, every)
  }

  /** Stops probing, closes route listeners and the control connection. Detached services stay in tor. */
  async stop (): Promise<void> {
    this.stopping.abort()
    this.probeTimer?.cancel()
    for (const t of this.retryTimers.values()) t.cancel()
    this.retryTimers.clear()
    this.unsubscribeClose?.()
    await this.chain.catch(() => {})
    for (const l of this.live.values()) await this.closeForwarders(l)
    await this.control?.close().catch(() => {})
    this.control = undefined
  }

  /** Creates, stores and publishes an endpoint; resolves once it is ready. */
  async create (spec: EndpointSpec, options: AbortOptions = {}): Promise<EndpointStatus> {
    if (!NAME_RE.test(spec.name)) throw new OniError('ONI_BAD_ARGUMENT', `endpoint name ${JSON.stringify(spec.name)} must match ${NAME_RE.source}`)
    if (this.live.has(spec.name)) throw new OniError('ONI_ENDPOINT_EXISTS', `an endpoint named ${spec.name} exists already: delete it first or pick another name`)
    if (spec.routes.length === 0) throw new OniError('ONI_BAD_ARGUMENT', 'an endpoint needs at least one route')
    const ports = new Set<number>()
    const routes: StoredRoute[] = spec.routes.map(r => {
      if (!Number.isInteger(r.virtualPort) || r.virtualPort < 1 || r.virtualPort > 65535) throw new OniError('ONI_BAD_ARGUMENT', `virtual port ${r.virtualPort} must be 1-65535`)
      if (ports.has(r.virtualPort)) throw new OniError('ONI_BAD_ARGUMENT', `virtual port ${r.virtualPort} is routed twice`)
      ports.add(r.virtualPort)
      return { virtualPort: r.virtualPort, target: formatRouteTarget(parseRouteTarget(r.target)), mode: r.mode ?? 'forward' }
    })
    const key = spec.key ?? { type: 'new' }
    const identity = await this.identityFor(spec.name, key, true)
    const storedKey: StoredKey = key.type === 'file' ? { type: 'imported' } : key
    if ([...this.live.values()].some(l => l.stored.onion === identity.onion)) {
      identity.destroy()
      if (storedKey.type !== 'derived') await rm(this.keyPath(spec.name), { force: true })
      throw new OniError('ONI_ENDPOINT_EXISTS', `another endpoint already uses ${identity.onion}.onion`)
    }
    const stored: StoredEndpoint = { name: spec.name, key: storedKey, onion: identity.onion, routes }
    if (spec.clientAuthV3 !== undefined) stored.clientAuthV3 = [...spec.clientAuthV3]
    if (spec.pow !== undefined && spec.pow !== false) stored.pow = spec.pow
    const l: Live = { stored, identity, forwarders: new Map(), state: 'publishing', pow: 'off', probeFailures: 0, republished: 0 }
    this.live.set(spec.name, l)
    try {
      await this.serial(async () => { await this.publish(l, options) })
      await this.writeState()
    } catch (err) {
      this.live.delete(spec.name)
      await this.closeForwarders(l)
      if (storedKey.type !== 'derived') await rm(this.keyPath(spec.name), { force: true })
      throw err
    }
    return this.statusOf(l)
  }

  /** Removes the service from tor, closes its routes and forgets it (a new key file is deleted). */
  async delete (name: string, options: AbortOptions = {}): Promise<void> {
    const l = this.live.get(name)
    if (l === undefined) throw new OniError('ONI_ENDPOINT_UNKNOWN', `no endpoint named ${name}: see list()`)
    this.live.delete(name)
    await this.serial(async () => { await this.unpublish(l, options) })
    await this.closeForwarders(l)
    l.identity.destroy()
    if (l.stored.key.type !== 'derived') await rm(this.keyPath(name), { force: true })
    await this.writeState()
  }

  /**
   * Takes every endpoint out of tor (DEL_ONION) and stops probing, keeping them stored: for a
   * shutdown that must not leave services published; the next start() publishes them again.
   */
  async withdrawAll (options: AbortOptions = {}): Promise<void> {
    this.probeTimer?.cancel()
    for (const t of this.retryTimers.values()) t.cancel()
    this.retryTimers.clear()
    await this.serial(async () => {
      for (const l of this.live.values()) {
        try {
          await this.unpublish(l, options)
        } catch (err) {
          this.emit({ type: 'endpoint-error', name: l.stored.name, error: errorMessage(err) })
        }
        l.state = 'down'
      }
    })
  }

  list (): EndpointStatus[] {
    return [...this.live.values()].map(l => this.statusOf(l))
  }

  get (name: string): EndpointStatus | undefined {
    const l = this.live.get(name)
    return l === undefined ? undefined : this.statusOf(l)
  }

  /** Runs one probe round now (the timer does the same every `probeIntervalMs`). */
  async probeNow (): Promise<void> { await this.probeAll() }

  get connected (): boolean { return this.control !== undefined && !this.control.closed }

  // ---- internals ----

  private statusOf (l: Live): EndpointStatus {
    const s: EndpointStatus = {
      name: l.stored.name,
      address: `${l.stored.onion}.onion`,
      key: l.stored.key.type,
      state: l.state,
      pow: l.pow,
      clientAuth: l.stored.clientAuthV3?.length ?? 0,
      republished: l.republished,
      routes: l.stored.routes.map(r => {
        const f = l.forwarders.get(r.virtualPort)
        const base = f?.stats ?? { open: 0, total: 0, failed: 0, bytesIn: 0, bytesOut: 0 }
        const rs: RouteStatus = { virtualPort: r.virtualPort, target: r.target, mode: r.mode, ...base }
        if (f !== undefined) rs.listenPort = f.port
        return rs
      })
    }
    if (l.stored.key.type === 'derived') s.keyPath = l.stored.key.path
    if (l.publishedAt !== undefined) s.publishedAt = l.publishedAt
    if (l.lastProbe !== undefined) s.lastProbe = { ...l.lastProbe }
    return s
  }

  /** Runs `fn` after every earlier control operation (SETEVENTS/ADD_ONION must not interleave). */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    return await run
  }

  private keyPath (name: string): string { return join(this.init.stateDir, 'keys', `${name}.key`) }

  private async identityFor (name: string, key: EndpointKeySpec | StoredKey, create: boolean): Promise<Identity> {
    if (key.type === 'file') {
      let id: Identity
      try {
        id = await readKeyFile(key.path, key.passphrase !== undefined ? { passphrase: key.passphrase } : {})
      } catch (err) {
        throw new OniError('ONI_KEY_STORE', `cannot use the key file ${key.path} for endpoint ${name}: ${errorMessage(err)}`, { cause: err })
      }
      await writeKeyFile(this.keyPath(name), id)
      return id
    }
    if (key.type === 'derived') {
      if (this.init.masterSeed === undefined) throw new OniError('ONI_KEY_STORE', `endpoint ${name} uses a key-tree key (${key.path}) but no master seed was given`)
      const seed = deriveChildSeed(this.init.masterSeed, key.path)
      try { return identityFromSeed(seed) } finally { seed.fill(0) }
    }
    if (create) {
      const id = generateIdentity()
      await writeKeyFile(this.keyPath(name), id)
      return id
    }
    try {
      return await readKeyFile(this.keyPath(name))
    } catch (err) {
      throw new OniError('ONI_KEY_STORE', `cannot read the key of endpoint ${name} at ${this.keyPath(name)}: ${errorMessage(err)}`, { cause: err })
    }
  }

  private async load (stored: StoredEndpoint): Promise<Live> {
    const identity = await this.identityFor(stored.name, stored.key, false)
    if (identity.onion !== stored.onion) {
      identity.destroy()
      throw new OniError('ONI_KEY_STORE', `endpoint ${stored.name}: its key gives ${identity.onion}.onion, the state file says ${stored.onion}.onion (wrong master seed?)`)
    }
    return { stored, identity, forwarders: new Map(), state: 'down', pow: 'off', probeFailures: 0, republished: 0 }
  }

  private async attach (control: TorControl): Promise<void> {
    this.control = control
    this.unsubscribeClose?.()
    this.unsubscribeClose = control.onClose((err) => {
      if (this.control !== control || this.stopping.signal.aborted) return
      this.control = undefined
      for (const l of this.live.values()) l.state = 'down'
      this.emit({ type: 'tor-disconnected', ...(err !== undefined ? { error: err.message } : {}) })
      void this.reconnectLoop()
    })
  }

  private async reconnectLoop (): Promise<void> {
    if (this.reconnecting) return
    this.reconnecting = true
    const { initialMs, maxMs } = this.init.reconnect ?? { initialMs: 500, maxMs: 10_000 }
    let delay = initialMs
    try {
      while (!this.stopping.signal.aborted) {
        try {
          await this.clock.sleep(delay, { signal: this.stopping.signal })
          const control = await this.connectTor({ signal: this.stopping.signal })
          await this.attach(control)
          this.emit({ type: 'tor-reconnected' })
          await this.serial(async () => { await this.restoreAll('tor-restarted', { signal: this.stopping.signal }) })
          return
        } catch (err) {
          if (this.stopping.signal.aborted) return
          this.log('reconnect failed: %s', errorMessage(err))
          delay = Math.min(maxMs, delay * 2)
        }
      }
    } finally {
      this.reconnecting = false
    }
  }

  /** Adopts services tor still has (detached), re-publishes the rest. */
  private async restoreAll (reason: 'missing' | 'tor-restarted', options: AbortOptions): Promise<void> {
    const control = this.requireControl()
    const detached = new Set(await control.listOnions('detached', options))
    for (const l of this.live.values()) {
      try {
        if (detached.has(l.stored.onion)) {
          // tor sends a forward route to its stored listener port; without one (an endpoint
          // imported from elsewhere) tor's target is unknown, so it is published afresh.
          const known = l.stored.routes.every(r => r.mode !== 'forward' || r.listenPort !== undefined)
          if (known && await this.openForwarders(l, true)) {
            l.state = 'ready'
            l.publishedAt ??= this.clock.now()
            this.emit({ type: 'endpoint-adopted', name: l.stored.name, address: `${l.stored.onion}.onion` })
            continue
          }
          // The old route listeners' ports are taken: point tor at the new ones.
          await control.delOnion(l.stored.onion, options).catch(() => {})
          await this.publish(l, options)
          this.noteRepublished(l, 'target-moved')
          continue
        }
        await this.publish(l, options)
        if (reason === 'tor-restarted') this.noteRepublished(l, reason)
      } catch (err) {
        l.state = 'down'
        this.emit({ type: 'endpoint-error', name: l.stored.name, error: errorMessage(err) })
        this.scheduleRetry(l, reason, 0)
      }
    }
    await this.writeState()
  }

  /** Re-publishes a 'down' endpoint after a back-off, again and again until it is up. */
  private scheduleRetry (l: Live, reason: 'missing' | 'unreachable' | 'tor-restarted', attempt: number): void {
    if (this.stopping.signal.aborted) return
    const { initialMs, maxMs } = this.init.retry ?? { initialMs: 2_000, maxMs: 60_000 }
    const name = l.stored.name
    this.retryTimers.get(name)?.cancel()
    this.retryTimers.set(name, this.clock.setTimeout(() => {
      this.retryTimers.delete(name)
      void this.serial(async () => {
        if (this.live.get(name) !== l || l.state === 'ready' || this.control === undefined || this.control.closed) return
        try {
          await this.publish(l, { signal: this.stopping.signal })
          this.noteRepublished(l, reason)
        } catch (err) {
          this.emit({ type: 'endpoint-error', name, error: errorMessage(err) })
          this.scheduleRetry(l, reason, attempt + 1)
        }
      }).catch(() => {})
    }, Math.min(maxMs, initialMs * 2 ** attempt)))
  }

  private noteRepublished (l: Live, reason: 'missing' | 'unreachable' | 'tor-restarted' | 'target-moved'): void {
    l.republished++
    this.emit({ type: 'endpoint-republished', name: l.stored.name, address: `${l.stored.onion}.onion`, reason })
  }

  private requireControl (): TorControl {
    if (this.control === undefined || this.control.closed) throw new OniError('ONI_CLOSED', 'not connected to tor: the control connection is down (reconnecting)')
    return this.control
  }

  /**
   * Opens a forwarder per 'forward' route. With `samePorts`, re-binds the stored ports and
   * returns false if one is taken (tor's targets would then be stale).
   */
  private async openForwarders (l: Live, samePorts: boolean): Promise<boolean> {
    for (const r of l.stored.routes) {
      if (r.mode !== 'forward' || l.forwarders.has(r.virtualPort)) continue
      try {
        const f = await startForwarder({ target: parseRouteTarget(r.target), port: samePorts ? r.listenPort : 0 })
        l.forwarders.set(r.virtualPort, f)
        r.listenPort = f.port
      } catch (err) {
        if (!samePorts) throw err
        await this.closeForwarders(l)
        return false
      }
    }
    return true
  }

  private async closeForwarders (l: Live): Promise<void> {
    for (const f of l.forwarders.values()) await f.close()
    l.forwarders.clear()
  }

  private async publish (l: Live, options: AbortOptions): Promise<void> {
    const control = this.requireControl()
    l.state = 'publishing'
    if (!await this.openForwarders(l, l.stored.routes.some(r => r.listenPort !== undefined))) await this.openForwarders(l, false)
    const ports = l.stored.routes.map(r => ({
      virtualPort: r.virtualPort,
      target: r.mode === 'direct' ? r.target : `127.0.0.1:${l.forwarders.get(r.virtualPort)?.port ?? 0}`
    }))
    const base = {
      key: { type: 'ED25519-V3' as const, blob: torKeyBlob(l.identity) },
      ports,
      detach: true,
      ...(l.stored.clientAuthV3 !== undefined ? { clientAuthV3: l.stored.clientAuthV3 } : {}),
      ...(this.init.probeSocksPort !== undefined && l.stored.clientAuthV3 === undefined ? { probe: { socksPort: this.init.probeSocksPort } } : {}),
      timeoutMs: this.init.publishTimeoutMs ?? 60_000,
      clock: this.clock,
      signal: options.signal
    }
    const t0 = this.clock.monotonic()
    const pow = l.stored.pow === undefined || l.stored.pow === false ? undefined : (l.stored.pow === true ? { enabled: true } : l.stored.pow)
    try {
      if (pow !== undefined) {
        try {
          await publishOnion(control, { ...base, powDefenses: pow })
          l.pow = 'on'
        } catch (err) {
          // Tors built without PoW (or older than 0.4.8) refuse the option: serve without it.
          if (!isCodedError(err, 'TOR_COMMAND_FAILED')) throw err
          this.log('tor refused PoW defences for %s: %s', l.stored.name, errorMessage(err))
          await publishOnion(control, base)
          l.pow = 'unsupported'
        }
      } else {
        await publishOnion(control, base)
      }
    } catch (err) {
      l.state = 'down'
      throw new OniError('ONI_ENDPOINT_UNREACHABLE', `endpoint ${l.stored.name} (${l.stored.onion}.onion) could not be published: ${errorMessage(err)}`, { cause: err })
    }
    l.state = 'ready'
    l.probeFailures = 0
    l.publishedAt = this.clock.now()
    this.emit({ type: 'endpoint-ready', name: l.stored.name, address: `${l.stored.onion}.onion`, ms: Math.round(this.clock.monotonic() - t0) })
  }

  private async unpublish (l: Live, options: AbortOptions): Promise<void> {
    const control = this.control
    if (control === undefined || control.closed) return
    try {
      await control.delOnion(l.stored.onion, options)
    } catch (err) {
      if (!(isCodedError(err, 'TOR_COMMAND_FAILED') && (err as { status?: number }).status === 552)) throw err
    }
  }

  private async probeAll (): Promise<void> {
    if (this.probing || this.control === undefined || this.control.closed || this.stopping.signal.aborted) return
    this.probing = true
    try {
      const control = this.control
      let detached: Set<string>
      try {
        detached = new Set(await this.serial(async () => await control.listOnions('detached', { signal: this.stopping.signal })))
      } catch {
        return
      }
      for (const l of [...this.live.values()]) {
        if (this.stopping.signal.aborted) return
        if (l.state === 'publishing') continue
        if (!detached.has(l.stored.onion)) {
          await this.republish(l, 'missing')
          continue
        }
        if (this.init.probeSocksPort === undefined || l.stored.clientAuthV3 !== undefined) continue
        const error = await this.probeOnce(l)
        l.lastProbe = { at: this.clock.now(), ok: error === undefined, ...(error !== undefined ? { error } : {}) }
        if (error === undefined) { l.probeFailures = 0; l.state = 'ready'; continue }
        l.probeFailures++
        l.state = 'unreachable'
        this.emit({ type: 'endpoint-probe-failed', name: l.stored.name, address: `${l.stored.onion}.onion`, failures: l.probeFailures, error })
        if (l.probeFailures >= (this.init.probeFailuresBeforeRepublish ?? 2)) {
          // A stale descriptor or dead intro points: take the service down and publish afresh.
          await this.serial(async () => { await this.unpublish(l, { signal: this.stopping.signal }).catch(() => {}) })
          await this.republish(l, 'unreachable')
        }
      }
    } finally {
      this.probing = false
    }
  }

  private async republish (l: Live, reason: 'missing' | 'unreachable'): Promise<void> {
    try {
      await this.serial(async () => { await this.publish(l, { signal: this.stopping.signal }) })
      this.noteRepublished(l, reason)
    } catch (err) {
      this.emit({ type: 'endpoint-error', name: l.stored.name, error: errorMessage(err) })
      this.scheduleRetry(l, reason, 0)
    }
  }

  private probeCounter = 0

  private async probeOnce (l: Live): Promise<string | undefined> {
    const port = this.init.probeSocksPort
    if (port === undefined) return undefined
    const scoped = scopedSignal(this.clock, this.init.probeTimeoutMs ?? 30_000, this.stopping.signal)
    try {
      const socket = await socksConnect({
        socksPort: port,
        host: `${l.stored.onion}.onion`,
        port: l.stored.routes[0].virtualPort,
        // A fresh isolation group per probe: a new circuit, so intro and rendezvous are tested.
        isolation: `oni-probe-${l.stored.name}-${++this.probeCounter}`,
        retries: 1,
        clock: this.clock,
        signal: scoped.signal
      })
      socket.destroy()
      return undefined
    } catch (err) {
      return errorMessage(err)
    } finally {
      scoped.clear()
    }
  }

  private statePath (): string { return join(this.init.stateDir, 'endpoints.json') }

  private async readState (): Promise<StateFile> {
    return await readStateFile(this.statePath())
  }

  private async writeState (): Promise<void> {
    const state: StateFile = { version: STATE_VERSION, endpoints: [...this.live.values()].map(l => l.stored) }
    // A unique temp name (two writes in flight must not interleave in one file), fsynced and
    // renamed, then the directory fsynced.
    await writeFileAtomic(this.statePath(), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  }
}
