/**
 * The private Tor network: 3 directory authorities (keys from tor-gencert, cached), relays and
 * client tors on 127.0.0.1, brought up in the order that makes the first consensus list every
 * relay, and waited on until "usable": every client at bootstrap 100 % and its consensus
 * listing every relay with the HSDir flag (before that, onion descriptors land on a partial
 * HSDir ring and get re-uploaded seconds later).
 */
import { Socket } from 'node:net'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Clock } from '../../core/index.ts'
import { abortReason, AbortError, errorMessage, logger, scopedSignal, systemClock, TimeoutError } from '../../core/index.ts'
import { attachTor } from '../attach.ts'
import type { TorControl } from '../control/index.ts'
import { TorError } from '../errors.ts'
import { launchTor, parseBootstrapPhase, pidAlive, stopTorByPid } from '../launcher.ts'
import type { TorProcess, Torrc } from '../launcher.ts'
import { defaultKeyCacheDir, prepareAuthorityKeys } from './authority-keys.ts'
import { allocatePorts } from './ports.ts'
import { networkTorrc, nodeTorrc, votingSchedule } from './torrc.ts'
import type { AuthorityLine, NodeRole } from './torrc.ts'

const log = logger('tor:testnet')

const STATE_FILE = 'state.json'
const POLL_MS = 500
/** Poll rounds between SOCKS "kicks" of a client stuck below 100 %. */
const KICK_EVERY = 4
const CONSENSUS_TRIES = 16
/** Bring-up attempts when a pre-allocated port was taken before tor bound it. */
const BIND_ATTEMPTS = 2

function isBindRace (err: unknown): boolean {
  return err instanceof TorError && err.code === 'TOR_LAUNCH_FAILED' && /Address already in use|Could not bind/i.test(err.message)
}

export interface TestnetInit {
  /** Directory authorities (3 is what tor's tiny-network settings are tuned for). @default 3 */
  authorities?: number
  /** Relays besides the authorities (onion services need 4+ relays in all). @default 2 */
  relays?: number
  /** Client tors (SocksPort + ControlPort) that host and reach onion services. @default 2 */
  clients?: number
  /** Work dir (must be empty or absent). @default a new temp dir, removed by stop() */
  dir?: string
  /** Authority key cache, or false for none. @default $XDG_CACHE_HOME/oht/testnet-authority-keys (or ~/.cache/...) */
  keyCache?: string | false
  /** Give up (TOR_BOOTSTRAP_FAILED) if not usable by then. @default 180_000 */
  timeoutMs?: number
  /**
   * Run the tors detached from this process (no owner pid, outlive it); stop them with
   * `stopTestnetDir(dir)`. @default false
   */
  detached?: boolean
  /** @default 'tor' */
  torPath?: string
  /** @default 'tor-gencert' */
  gencertPath?: string
  /** Extra torrc options for every node (experiments, e.g. { Schedulers: 'Vanilla' }). @default {} */
  extraTorrc?: Torrc
  /** @default systemClock */
  clock?: Clock
  /** Progress of the bring-up, for people watching. @default undefined */
  onProgress?: (event: TestnetProgress) => void
}

export interface TestnetProgress {
  stage: 'keys' | 'launch' | 'consensus' | 'clients' | 'bootstrap' | 'ready'
  message: string
  elapsedMs: number
}

export interface TestnetNodeInfo {
  name: string
  role: NodeRole
  nickname: string
  pid: number
  controlPort: number
  cookiePath: string
  dataDir: string
  torrcPath: string
  socksPort?: number
  orPort?: number
  dirPort?: number
}

export interface TestnetClient extends TestnetNodeInfo {
  socksPort: number
  /** A new authenticated control connection to this client (close it when done). */
  control(opts?: { signal?: AbortSignal }): Promise<TorControl>
}

/** What `state.json` holds: enough for `testnet env` and `testnet down` in another process. */
export interface TestnetState {
  dir: string
  createdDir: boolean
  torVersion: string
  detached: boolean
  ownerPid?: number
  authorities: AuthorityLine[]
  nodes: TestnetNodeInfo[]
  timings: TestnetTimings
}

export interface TestnetTimings {
  /** Authority keys ready (gencert or cache). */
  keysMs: number
  /** Every client at 100 %. */
  bootstrappedMs: number
  /** Usable: every client also sees every relay with HSDir. */
  readyMs: number
  keysCached: boolean
}

export interface Testnet {
  readonly dir: string
  readonly torVersion: string
  readonly clients: TestnetClient[]
  /** Authorities and relays. */
  readonly relays: TestnetNodeInfo[]
  readonly timings: TestnetTimings
  /** torrc options for an extra tor joining this network as a client (pass to launchTor). */
  clientTorrc(): Torrc
  /** Shell environment: OHT_TESTNET_DIR, OHT_TESTNET_CLIENT<i>_SOCKS_PORT / _CONTROL_PORT / _COOKIE ... */
  env(): Record<string, string>
  toJSON(): TestnetState
  /** Stops every tor of the network (by PID) and removes a temp dir it created. */
  stop(): Promise<void>
}

interface PlannedNode {
  name: string
  role: NodeRole
  nickname: string
  dataDir: string
  orPort?: number
  dirPort?: number
  process?: TorProcess
  info?: TestnetNodeInfo
}

/** Version line of the tor binary; TOR_NOT_INSTALLED when it is missing. */
export function torVersion (torPath = 'tor'): string {
  const r = spawnSync(torPath, ['--version'], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new TorError('TOR_NOT_INSTALLED', `the tor binary "${torPath}" was not found or does not run: install it (Debian/Ubuntu: apt-get install -y tor)`, { cause: r.error })
  }
  return r.stdout.split('\n')[0].trim()
}

export async function startTestnet (init: TestnetInit & { signal?: AbortSignal } = {}): Promise<Testnet> {
  const net = new TorTestnet(init)
  await net.start(init.signal)
  return net
}

class TorTestnet implements Testnet {
  dir = ''
  torVersion = ''
  clients: TestnetClient[] = []
  relays: TestnetNodeInfo[] = []
  timings: TestnetTimings = { keysMs: 0, bootstrappedMs: 0, readyMs: 0, keysCached: false }
  private readonly init: TestnetInit
  private readonly clock: Clock
  private readonly nodes: PlannedNode[] = []
  private authorities: AuthorityLine[] = []
  private createdDir = false
  private t0 = 0
  private stopping?: Promise<void>

  constructor (init: TestnetInit) {
    this.init = init
    this.clock = init.clock ?? systemClock
  }

  async start (signal?: AbortSignal): Promise<void> {
    const init = this.init
    const nAuth = init.authorities ?? 3
    const nRelay = init.relays ?? 2
    const nClient = init.clients ?? 2
    if (!Number.isInteger(nAuth) || nAuth < 1 || !Number.isInteger(nRelay) || nRelay < 0 || !Number.isInteger(nClient) || nClient < 0) {
      throw new TorError('TOR_BAD_ARGUMENT', 'testnet needs authorities >= 1, relays >= 0, clients >= 0 (defaults 3, 2, 2)')
    }
    const torPath = init.torPath ?? 'tor'
    this.torVersion = torVersion(torPath)
    this.t0 = this.clock.monotonic()
    await this.makeDir()
    const scoped = scopedSignal(this.clock, init.timeoutMs ?? 180_000, signal)
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.bringUp(nAuth, nRelay, nClient, torPath, scoped.signal)
          return
        } catch (err) {
          // ORPort/DirPort are picked before tor binds them: another process may win the race.
          if (attempt >= BIND_ATTEMPTS || scoped.signal.aborted || !isBindRace(err)) throw err
          log(`port taken before tor could bind it; retrying with new ports (${errorMessage(err)})`)
          await this.reset()
        }
      }
    } catch (err) {
      await this.stop().catch(() => {})
      if (scoped.signal.aborted) {
        const reason = abortReason(scoped.signal)
        if (reason instanceof TimeoutError) {
          throw new TorError('TOR_BOOTSTRAP_FAILED', `the private Tor network was not usable after ${init.timeoutMs ?? 180_000} ms (${errorMessage(err)})`, { cause: err })
        }
        throw reason instanceof AbortError ? reason : new AbortError(undefined, { cause: err })
      }
      throw err
    } finally {
      scoped.clear()
    }
  }

  private async makeDir (): Promise<void> {
    if (this.init.dir === undefined) {
      this.dir = await mkdtemp(join(tmpdir(), 'oht-testnet-'))
      this.createdDir = true
    } else {
      this.dir = resolve(this.init.dir)
      await mkdir(this.dir, { recursive: true, mode: 0o700 })
      const existing = await readdir(this.dir)
      if (existing.length > 0) throw new TorError('TOR_BAD_ARGUMENT', `testnet dir ${this.dir} is not empty: pass an empty or new directory`)
    }
    await mkdir(join(this.dir, 'nodes'), { mode: 0o700 })
  }

  private progress (stage: TestnetProgress['stage'], message: string): void {
    const elapsedMs = Math.round(this.clock.monotonic() - this.t0)
    log(`${stage}: ${message} (${elapsedMs} ms)`)
    this.init.onProgress?.({ stage, message, elapsedMs })
  }

  private async bringUp (nAuth: number, nRelay: number, nClient: number, torPath: string, signal: AbortSignal): Promise<void> {
    const init = this.init
    const ports = await allocatePorts(2 * nAuth + nRelay)
    for (let i = 0; i < nAuth; i++) this.plan('authority', `auth${i}`, ports.shift(), ports.shift())
    for (let i = 0; i < nRelay; i++) this.plan('relay', `relay${i}`, ports.shift())
    for (let i = 0; i < nClient; i++) this.plan('client', `client${i}`)
    for (const n of this.nodes) await mkdir(n.dataDir, { mode: 0o700 })

    const auths = this.nodes.filter(n => n.role === 'authority')
    const keyCache = init.keyCache ?? defaultKeyCacheDir()
    const ids = await prepareAuthorityKeys(auths.map((n, index) => ({ index, nickname: n.nickname, dataDir: n.dataDir, dirPort: n.dirPort as number })),
      { torPath, gencertPath: init.gencertPath ?? 'tor-gencert', cacheDir: keyCache, signal })
    this.authorities = auths.map((n, i) => ({ nickname: n.nickname, orPort: n.orPort as number, dirPort: n.dirPort as number, v3ident: ids[i].v3ident, fingerprint: ids[i].fingerprint }))
    this.timings.keysMs = Math.round(this.clock.monotonic() - this.t0)
    this.timings.keysCached = ids.every(i => i.cached)
    this.progress('keys', `authority keys ready (${this.timings.keysCached ? 'cached' : 'generated'})`)

    // Launch authorities and relays together, then wait for the first consensus to reach
    // every relay before starting clients: a client started earlier gets 404s and backs off.
    const { offsetS, firstValidAfterMs } = votingSchedule(this.clock.now())
    const servers = this.nodes.filter(n => n.role !== 'client')
    await this.launch(servers, torPath, offsetS, signal)
    this.progress('launch', `${servers.length} authorities and relays running; first consensus at +${Math.round((firstValidAfterMs - this.clock.now()) / 1000)} s`)
    await this.waitRelaysHaveConsensus(servers, firstValidAfterMs, signal)
    this.progress('consensus', 'every relay holds the first consensus')

    const clients = this.nodes.filter(n => n.role === 'client')
    await this.launch(clients, torPath, offsetS, signal)
    this.progress('clients', `${clients.length} clients running`)
    await this.waitUsable(clients, servers.length, signal)
    this.timings.readyMs = Math.round(this.clock.monotonic() - this.t0)
    this.progress('ready', `usable after ${this.timings.readyMs} ms`)

    if (init.detached === true) {
      // Detached tors outlive us; our control connections are not their owners.
      for (const n of this.nodes) await n.process?.control.close().catch(() => {})
    }
    await this.writeState()
  }

  private plan (role: NodeRole, name: string, orPort?: number, dirPort?: number): void {
    const nickname = `oht${name}`
    this.nodes.push({ name, role, nickname, dataDir: join(this.dir, 'nodes', name), orPort, dirPort })
  }

  private async launch (nodes: PlannedNode[], torPath: string, offsetS: number, signal: AbortSignal): Promise<void> {
    const results = await Promise.allSettled(nodes.map(async n => {
      const torrc = {
        ...nodeTorrc({ role: n.role, nickname: n.nickname, dataDir: n.dataDir, orPort: n.orPort, dirPort: n.dirPort, votingOffsetS: offsetS, authorities: this.authorities }),
        ...this.init.extraTorrc
      }
      const p = await launchTor({
        torPath,
        dataDir: n.dataDir,
        torrc,
        socksPort: n.role === 'client' ? 'auto' : false,
        waitForBootstrap: false,
        detached: this.init.detached === true,
        clock: this.clock,
        signal
      })
      n.process = p
      n.info = {
        name: n.name,
        role: n.role,
        nickname: n.nickname,
        pid: p.pid,
        controlPort: p.controlPort,
        cookiePath: p.cookiePath,
        dataDir: n.dataDir,
        torrcPath: p.torrcPath,
        ...(p.socksPort !== undefined ? { socksPort: p.socksPort } : {}),
        ...(n.orPort !== undefined ? { orPort: n.orPort } : {}),
        ...(n.dirPort !== undefined ? { dirPort: n.dirPort } : {})
      }
    }))
    await this.writeState()
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) {
      const i = results.indexOf(failed)
      const err: unknown = failed.reason
      if (err instanceof AbortError || err instanceof TimeoutError) throw err
      throw new TorError(err instanceof TorError ? err.code : 'TOR_LAUNCH_FAILED', `testnet node ${nodes[i].name}: ${errorMessage(err)}`, { cause: err })
    }
    for (const n of nodes) {
      const info = n.info as TestnetNodeInfo
      if (n.role === 'client') this.clients.push(this.makeClient(info))
      else this.relays.push(info)
    }
  }

  private makeClient (info: TestnetNodeInfo): TestnetClient {
    const clock = this.clock
    return {
      ...info,
      socksPort: info.socksPort as number,
      control: async (opts) => await attachTor({ host: '127.0.0.1', port: info.controlPort }, { cookiePath: info.cookiePath, clock, signal: opts?.signal })
    }
  }

  /**
   * Sleeps to the first valid-after time, then until every relay holds the microdescriptors
   * of all relays (what clients will ask it for), kicking lagging relays with SIGNAL RELOAD
   * (resets their download back-off). Authorities are never kicked: a reload near the
   * valid-after time makes one drop the consensus it is about to publish.
   */
  private async waitRelaysHaveConsensus (servers: PlannedNode[], firstValidAfterMs: number, signal: AbortSignal): Promise<void> {
    const wait = firstValidAfterMs + 500 - this.clock.now()
    if (wait > 0) await this.clock.sleep(wait, { signal })
    const want = servers.length
    for (let tries = 0; tries < CONSENSUS_TRIES; tries++) {
      let missing = 0
      await Promise.all(servers.map(async n => {
        const control = n.process?.control
        if (control === undefined) return
        const mds = await control.getInfoOne('md/all', { signal }).then(countMicrodescs, () => 0)
        if (mds >= want) return
        missing++
        if (n.role === 'relay' && tries >= 1) await control.signal('RELOAD', { signal }).catch(() => {})
      }))
      if (missing === 0) return
      await this.clock.sleep(POLL_MS, { signal })
    }
    // Not fatal: clients still get there, only slower.
    log('some relays still lack the first consensus; starting clients anyway')
  }

  private async waitUsable (clients: PlannedNode[], relays: number, signal: AbortSignal): Promise<void> {
    let bootstrappedLogged = false
    for (let round = 0; ; round++) {
      const states = await Promise.all(clients.map(async n => {
        const control = n.process?.control as TorControl
        if (!pidAlive(n.info?.pid ?? -1)) throw new TorError('TOR_BOOTSTRAP_FAILED', `testnet ${n.name} (pid ${String(n.info?.pid)}) exited during bootstrap; tor said: ${n.process?.problems().slice(-2).join(' / ') ?? ''}`)
        const phase = parseBootstrapPhase(await control.getInfoOne('status/bootstrap-phase', { signal }))
        if (phase?.percent !== 100) {
          if (round % KICK_EVERY === KICK_EVERY - 1 && n.info?.socksPort !== undefined) kickClient(n.info.socksPort, this.clock)
          return { booted: false, hsdirs: 0 }
        }
        const hsdirs = countHsDirs(await control.getInfoOne('ns/all', { signal }))
        return { booted: true, hsdirs }
      }))
      if (!bootstrappedLogged && states.every(s => s.booted)) {
        bootstrappedLogged = true
        this.timings.bootstrappedMs = Math.round(this.clock.monotonic() - this.t0)
        this.progress('bootstrap', 'every client bootstrapped 100 %')
      }
      if (states.every(s => s.booted && s.hsdirs >= relays)) return
      await this.clock.sleep(POLL_MS, { signal })
    }
  }

  clientTorrc (): Torrc {
    return networkTorrc(this.authorities)
  }

  env (): Record<string, string> {
    return stateEnv(this.toJSON())
  }

  toJSON (): TestnetState {
    return {
      dir: this.dir,
      createdDir: this.createdDir,
      torVersion: this.torVersion,
      detached: this.init.detached === true,
      ...(this.init.detached === true ? {} : { ownerPid: process.pid }),
      authorities: this.authorities,
      nodes: this.nodes.flatMap(n => n.info === undefined ? [] : [n.info]),
      timings: this.timings
    }
  }

  private async writeState (): Promise<void> {
    await writeFile(join(this.dir, STATE_FILE), JSON.stringify(this.toJSON(), null, 2) + '\n', { mode: 0o600 })
  }

  /** Stops every tor started so far and empties the work dir, for another attempt. */
  private async reset (): Promise<void> {
    await this.stopNodes()
    this.nodes.length = 0
    this.clients = []
    this.relays = []
    await rm(join(this.dir, 'nodes'), { recursive: true, force: true })
    await rm(join(this.dir, STATE_FILE), { force: true })
    await mkdir(join(this.dir, 'nodes'), { mode: 0o700 })
  }

  private async stopNodes (): Promise<void> {
    await Promise.all(this.nodes.map(async n => {
      if (n.process !== undefined && this.init.detached !== true) await n.process.stop()
      else if (n.info !== undefined) await stopTorByPid(n.info.pid, n.info.torrcPath, this.clock)
    }))
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      await this.stopNodes()
      if (this.createdDir) await rm(this.dir, { recursive: true, force: true })
    })()
    await this.stopping
  }
}

function countMicrodescs (text: string): number {
  return text.split('\n').filter(l => l.startsWith('onion-key')).length
}

/** Relays in a consensus (`ns/all`) that carry the HSDir flag. */
export function countHsDirs (text: string): number {
  return text.split('\n').filter(l => /^s .*\bHSDir\b/.test(l)).length
}

/**
 * A SOCKS request to a tor that lacks directory info makes it retry all directory fetches at
 * once instead of after its 10 s retry interval. The request (to 127.0.0.1:9) is dropped.
 */
function kickClient (socksPort: number, clock: Clock): void {
  const s = new Socket()
  s.on('error', () => {})
  s.connect(socksPort, '127.0.0.1', () => {
    s.write(Uint8Array.of(0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x09))
    clock.setTimeout(() => { s.destroy() }, 100)
  })
}

/** Reads `state.json` of a network started (maybe by another process) in `dir`. */
export async function readTestnetState (dir: string): Promise<TestnetState> {
  const path = join(resolve(dir), STATE_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new TorError('TOR_TESTNET_STATE', `no testnet in ${dir} (${path} is missing): start one with "testnet up --dir ${dir}"`, { cause: err })
  }
  if (text.length > 1_000_000) throw new TorError('TOR_TESTNET_STATE', `${path} is too large to be a testnet state file`)
  try {
    const state = JSON.parse(text) as TestnetState
    if (!Array.isArray(state.nodes) || typeof state.dir !== 'string') throw new Error('missing nodes/dir')
    return state
  } catch (err) {
    throw new TorError('TOR_TESTNET_STATE', `${path} is not a testnet state file: ${errorMessage(err)}`, { cause: err })
  }
}

/**
 * Stops exactly the tors recorded in `<dir>/state.json` (by PID, each checked against its
 * torrc path) and removes the dir if the network created it. Returns how many were stopped.
 */
export async function stopTestnetDir (dir: string, clock: Clock = systemClock): Promise<number> {
  const state = await readTestnetState(dir)
  const stopped = await Promise.all(state.nodes.map(async n => await stopTorByPid(n.pid, n.torrcPath, clock)))
  if (state.createdDir) await rm(state.dir, { recursive: true, force: true })
  return stopped.filter(Boolean).length
}

/**
 * Makes a stopped network's dir empty again for a new `startTestnet({ dir })`: stops any of
 * its recorded tors still running (by PID, checked against their torrc) and removes exactly
 * what a network writes there (nodes/ and state.json). Anything else in the dir stays, so
 * startTestnet still refuses a dir that holds other files.
 */
export async function clearTestnetDir (dir: string, clock: Clock = systemClock): Promise<number> {
  const state = await readTestnetState(dir)
  const stopped = await Promise.all(state.nodes.map(async n => await stopTorByPid(n.pid, n.torrcPath, clock)))
  await rm(join(resolve(dir), 'nodes'), { recursive: true, force: true })
  await rm(join(resolve(dir), STATE_FILE), { force: true })
  return stopped.filter(Boolean).length
}

/** Shell environment for a network state (see Testnet.env()). */
export function stateEnv (state: TestnetState): Record<string, string> {
  const env: Record<string, string> = { OHT_TESTNET_DIR: state.dir }
  const clients = state.nodes.filter(n => n.role === 'client')
  env.OHT_TESTNET_CLIENTS = String(clients.length)
  for (const n of state.nodes) {
    const p = `OHT_TESTNET_${n.name.toUpperCase()}`
    env[`${p}_CONTROL_PORT`] = String(n.controlPort)
    env[`${p}_COOKIE`] = n.cookiePath
    env[`${p}_PID`] = String(n.pid)
    if (n.socksPort !== undefined) env[`${p}_SOCKS_PORT`] = String(n.socksPort)
  }
  return env
}
