/**
 * The ONI composition: endpoint manager + SOCKS5 egress + onet (TUN mode), one status table.
 */
import type { AbortOptions, Clock, Logger, Rng } from '../core/index.ts'
import { cryptoRng, errorMessage, isCodedError, logger as makeLogger, systemClock } from '../core/index.ts'
import { deriveChildSeed, identityFromSeed, type Identity } from '../crypto/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import { socksConnect } from '../tor/socks.ts'
import { createEndpointManager, type EndpointManager, type EndpointManagerInit, type EndpointStatus } from './endpoints.ts'
import { OniError } from './errors.ts'
import type { MappingDirectory } from './mapping.ts'
import { createOnet, type Onet, type OnetInit, type OnetNameSource } from './onet.ts'
import { createSocksServer, type SocksServer, type SocksServerInit, type SocksServerStats, type TorDialer } from './socks-server.ts'

/** The endpoint that carries onet links. */
export const ONET_ENDPOINT_NAME = 'onet'
/** Key-tree path of the onet key (the onion address peers dial and the onet address derive from it). @default */
export const DEFAULT_ONET_KEY_PATH = 'oni.onet'

export interface OniInit extends Omit<EndpointManagerInit, 'stateDir' | 'masterSeed' | 'probeSocksPort'> {
  /** Directory for endpoint state and keys (0700/0600). */
  stateDir: string
  /** Master seed of the key tree (derived endpoint keys, the onet key). */
  masterSeed?: Uint8Array
  /** SocksPort of the tor that hosts our endpoints: egress and onet links go through it. */
  torSocksPort: number
  /** @default '127.0.0.1' */
  torSocksHost?: string
  /** A SEPARATE tor client's SocksPort for readiness and probes. @default undefined */
  probeSocksPort?: number
  /** SOCKS5 egress, or false for none. @default {} (127.0.0.1, OS-chosen port, clearnet refused) */
  socks?: false | Omit<SocksServerInit, 'torSocksPort' | 'torSocksHost'>
  /** TUN mode, or false for none. @default false */
  onet?: false | (Omit<OnetInit, 'torSocksPort' | 'torSocksHost'> & { keyPath?: string })
}

export interface OniComponents {
  /** Opens an authenticated control connection to the hosting tor (again after a drop). */
  connectTor: (options: AbortOptions) => Promise<TorControl>
  /** @default systemClock */
  clock?: Clock
  /** @default cryptoRng */
  rng?: Rng
  /** Where onet mappings are published and resolved (an OHT node through createOhtMappingDirectory). */
  directory?: MappingDirectory
  /** @default socksConnect */
  dial?: TorDialer
  log?: Logger
  /** onet: names beyond onion addresses and aliases (the daemon passes DOA's resolver). */
  names?: OnetNameSource
}

/** What `oht oni ls` prints: the /proc/net/onion of this stack. */
export interface OniStatus {
  tor: { connected: boolean }
  endpoints: EndpointStatus[]
  socks: { host: string, port: number, stats: SocksServerStats } | null
  onet: ReturnType<Onet['status']> | { unavailable: string } | null
}

export interface Oni {
  readonly endpoints: EndpointManager
  readonly socks: SocksServer | undefined
  /** Undefined when TUN mode is off or unavailable (see status().onet). */
  readonly onet: Onet | undefined
  start(options?: AbortOptions): Promise<void>
  stop(): Promise<void>
  status(): OniStatus
}

export function createOni (init: OniInit, components: OniComponents): Oni {
  return new OniImpl(init, components)
}

class OniImpl implements Oni {
  readonly endpoints: EndpointManager
  readonly socks: SocksServer | undefined
  private onetInstance: Onet | undefined
  private onetUnavailable: string | undefined
  private onetIdentity: Identity | undefined
  private readonly init: OniInit
  private readonly components: OniComponents
  private readonly log: Logger

  constructor (init: OniInit, components: OniComponents) {
    this.init = init
    this.components = components
    this.log = components.log ?? makeLogger('oni')
    const { stateDir, masterSeed, probeSocksPort, torSocksPort: _t, torSocksHost: _h, socks: _s, onet: _o, ...rest } = init
    this.endpoints = createEndpointManager({
      ...rest,
      stateDir,
      ...(masterSeed !== undefined ? { masterSeed } : {}),
      ...(probeSocksPort !== undefined ? { probeSocksPort } : {})
    }, { connectTor: components.connectTor, clock: components.clock ?? systemClock })
    if (init.socks !== false) {
      this.socks = createSocksServer({ ...(init.socks ?? {}), torSocksPort: init.torSocksPort, ...(init.torSocksHost !== undefined ? { torSocksHost: init.torSocksHost } : {}) }, {
        dial: components.dial ?? socksConnect,
        clock: components.clock ?? systemClock
      })
    }
  }

  get onet (): Onet | undefined { return this.onetInstance }

  async start (options: AbortOptions = {}): Promise<void> {
    await this.endpoints.start(options)
    await this.socks?.listen(options)
    if (this.init.onet !== undefined && this.init.onet !== false) await this.startOnet(this.init.onet, options)
  }

  private async startOnet (cfg: Omit<OnetInit, 'torSocksPort' | 'torSocksHost'> & { keyPath?: string }, options: AbortOptions): Promise<void> {
    if (this.init.masterSeed === undefined) throw new OniError('ONI_KEY_STORE', 'TUN mode needs a master seed: the onet key derives from it')
    const keyPath = cfg.keyPath ?? DEFAULT_ONET_KEY_PATH
    const seed = deriveChildSeed(this.init.masterSeed, keyPath)
    this.onetIdentity = identityFromSeed(seed)
    seed.fill(0)
    const { keyPath: _k, ...onetInit } = cfg
    const onet = createOnet({ ...onetInit, torSocksPort: this.init.torSocksPort, ...(this.init.torSocksHost !== undefined ? { torSocksHost: this.init.torSocksHost } : {}) }, {
      identity: this.onetIdentity,
      rng: this.components.rng ?? cryptoRng,
      clock: this.components.clock ?? systemClock,
      ...(this.components.directory !== undefined ? { directory: this.components.directory } : {}),
      ...(this.components.dial !== undefined ? { dial: this.components.dial } : {}),
      ...(this.components.names !== undefined ? { names: this.components.names } : {})
    })
    try {
      await onet.start(options)
    } catch (err) {
      if (!isCodedError(err, 'ONI_TUN_UNAVAILABLE')) throw err
      // The rest of ONI works without TUN mode.
      this.onetUnavailable = errorMessage(err)
      this.log.warn('TUN mode unavailable: %s', this.onetUnavailable)
      return
    }
    this.onetInstance = onet
    const target = `127.0.0.1:${onet.listenPort}`
    const existing = this.endpoints.get(ONET_ENDPOINT_NAME)
    if (existing !== undefined && existing.routes.some(r => r.virtualPort === onet.linkPort && r.target === target)) return
    // The link listener moved (new process): point the same derived address at it.
    if (existing !== undefined) await this.endpoints.delete(ONET_ENDPOINT_NAME, options)
    await this.endpoints.create({ name: ONET_ENDPOINT_NAME, key: { type: 'derived', path: keyPath }, routes: [{ virtualPort: onet.linkPort, target, mode: 'direct' }] }, options)
  }

  async stop (): Promise<void> {
    await this.onetInstance?.stop()
    await this.socks?.close()
    await this.endpoints.stop()
    this.onetIdentity?.destroy()
  }

  status (): OniStatus {
    return {
      tor: { connected: this.endpoints.connected },
      endpoints: this.endpoints.list(),
      socks: this.socks?.status() ?? null,
      onet: this.onetInstance?.status() ?? (this.onetUnavailable !== undefined ? { unavailable: this.onetUnavailable } : null)
    }
  }
}
