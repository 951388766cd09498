/**
 * The DOA service of one node: publish, install, update, roll back, open (state, ops, events),
 * host, and names, over an OHT engine (`dht`) and PeerNet (`peers`). The SDK and the daemon
 * build one with their node; the simulator builds one per simulated node. See index.ts for the
 * contract and an example.
 *
 * On disk, under `dir` (0700, files 0600):
 *
 *   cache/apps/<app>/…      installed releases (cache.ts)
 *   meta/<app>.json         { v, grants, records: { <release>: the release record } }
 *   state/<app>/…           the op log and the snapshot a session started from (op-store.ts)
 *   hosting.json            { v, apps: { <app>: quota } }: hosted apps, hosted again at start
 *   petnames.json           the user's petnames (petnames.ts)
 *   names.json              { v, generation, names: { <label>: { target, seq, expires, at } } }: our zone's generation, our registrations (renewed)
 *
 * Keys derived from the node identity's seed through the key tree, so one backup of the node
 * key restores them all: app keys `doa.app.<name>`, the user's op key per app
 * `doa.user.<first 32 hex of the app key>`, the user's zone `doa.zone` (after n rotations,
 * `doa.zone.g<n>`).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbortOptions } from '../core/abort.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { errorMessage, isCodedError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import { deriveChildSeed, identityFromSeed, type Identity } from '../crypto/index.ts'
import { createSignatureVerifier, mutableKey, validateRecord, type MutableRecord, type PeerNet } from '../oht/index.ts'
import { readAppDirectory } from './app-dir.ts'
import { APP_MESSAGE_MAX, APP_PROTOCOL, decodeAppRequest, encodeAppResponse } from './app-wire.ts'
import type { ServedRelease } from './app-server.ts'
import { packFiles, type BundleFile } from './bundle.ts'
import { createAppCache, type AppCache, type InstalledApp } from './cache.ts'
import { fetchBundleFrom, type ChunkProvider, type ProviderReport } from './chunk-fetch.ts'
import { DoaError } from './errors.ts'
import { createHostClient, hostChunkProvider, ohtChunkProvider } from './host-client.ts'
import { openHostValue, type HostEntry } from './host-set.ts'
import { HostedApp, type HostedAppInit, type HostingBackend, type HostQuota, type HostStatus } from './hosting.ts'
import { parseJson } from './json.ts'
import { APP_SALT, parseAppKey, releaseRecordKey, type AppManifest, type Capability, type SignedManifest } from './manifest.ts'
import { createNameService, renewDue, type NameService, type Registration } from './name-service.ts'
import { nameRecordKey, type NameTarget, type Resolution } from './name-records.ts'
import { hostSetKey } from './net-keys.ts'
import type { DoaDht } from './op-log.ts'
import { createOpStore } from './op-store.ts'
import { openPetnames, type PetnameStore } from './petnames.ts'
import { fetchCurrentRelease, publishRelease, type PublishResult } from './publish.ts'
import { createSandboxHost, type SandboxHost } from './sandbox.ts'
import { openSession, type AppSession, type SessionInit } from './session.ts'
import { visitApp, type VisitedApp } from './visit.ts'

const HOUR = 3_600_000

export interface DoaInit {
  /** State directory (created 0700). */
  dir: string
  /** Defaults for hosted apps (quotas, renewal periods). */
  hosting?: HostedAppInit
  /** Defaults for sessions (sync period, snapshot policy). */
  session?: Pick<SessionInit, 'syncIntervalMs' | 'snapshot' | 'minAgree' | 'watch'>
  /** Hosts asked besides the OHT when fetching a bundle. @default 3 */
  hostsPerFetch?: number
  /** Chunks asked of each source at once. @default 4 */
  concurrency?: number
  /** How often owned names are checked for renewal. @default 3600000 */
  renewEveryMs?: number
}

export interface DoaComponents {
  dht: DoaDht
  /** Direct protocols: hosts serve and installers fetch over it. Without it only the OHT is used. */
  peers?: PeerNet
  /** The node identity: signs host values and snapshots; its seed derives app, user and zone keys. */
  identity: Identity
  clock: Clock
  rng: Rng
  log?: Logger
  /** Publishes hosted apps' HTTP faces at onion endpoints (the daemon's ONI). */
  backend?: HostingBackend
  /** @default one made on first use */
  sandbox?: SandboxHost
}

export interface AppTarget {
  appKey: Uint8Array
  /** Set when the target was a name. */
  resolution?: Resolution
}

export interface InstallOptions extends AbortOptions {
  /** Install this release (from the OHT if current, else from a host that keeps it). */
  release?: number
  /** Keep this release current across updates. @default false */
  pin?: boolean
  /** Capabilities granted. @default all the manifest asks for */
  grants?: Capability[]
  /** Capabilities refused (taken out of `grants`). */
  deny?: Capability[]
  onProgress?: (done: number, total: number) => void
}

export interface InstallResult {
  appKey: string
  name: string
  version: string
  release: number
  /** True when this release was already in the cache (nothing fetched). */
  cached: boolean
  current: number
  pinned: boolean
  capabilities: Capability[]
  grants: Capability[]
  /** Where the chunks came from. */
  sources: ProviderReport[]
  bytes: number
  /** A newer release seen while installing (offered, never applied by install). */
  available?: number
}

export interface AppInfo extends InstalledApp {
  version: string
  grants: Capability[]
  hosted: boolean
  /** Set by checkUpdate() and update checks. */
  available?: number
}

export interface OwnedName { label: string, target: NameTarget, seq: number, expires: number, at: number }

export interface Doa {
  readonly dir: string
  start(options?: AbortOptions): Promise<void>
  stop(): Promise<void>
  /** The app key this node publishes `name` under (derived, the same every time). */
  appKeyFor(name: string): Uint8Array
  /** This user's zone key (names registered by this node live in it). */
  zoneKey(): Uint8Array
  publish(dir: string, options?: AbortOptions & { release?: number, onProgress?: (done: number, total: number) => void }): Promise<PublishResult>
  /** "doa:<hex>", 64 hex digits, or a name "label.petname" (resolved to an app). */
  resolveApp(target: string | Uint8Array, options?: AbortOptions): Promise<AppTarget>
  install(target: string | Uint8Array, options?: InstallOptions): Promise<InstallResult>
  checkUpdate(app: string | Uint8Array, options?: AbortOptions): Promise<{ current: number, available: number | undefined }>
  /** Installs the newest release and makes it current (unless pinned: DOA_BAD_ARGUMENT). */
  update(app: string | Uint8Array, options?: InstallOptions): Promise<InstallResult>
  rollback(app: string | Uint8Array): Promise<number>
  pin(app: string | Uint8Array, release: number): Promise<void>
  unpin(app: string | Uint8Array): Promise<void>
  remove(app: string | Uint8Array): Promise<void>
  list(): Promise<AppInfo[]>
  /** The installed app's session (shared: one per app in this service). */
  open(app: string | Uint8Array, options?: AbortOptions): Promise<AppSession>
  host(app: string | Uint8Array, quota?: HostQuota, options?: AbortOptions): Promise<HostStatus>
  unhost(app: string | Uint8Array, options?: AbortOptions): Promise<void>
  hosting(): HostStatus[]
  /** The app's host set, verified entries only (ourselves excluded unless `includeSelf`). */
  hostsOf(app: string | Uint8Array, options?: AbortOptions & { includeSelf?: boolean }): Promise<HostEntry[]>
  /** The app's UI at one of its hosts over PeerNet, every byte checked against the manifest. */
  visit(app: string | Uint8Array, options?: AbortOptions & { host?: string }): Promise<VisitedApp>
  readonly names: {
    register(label: string, target: NameTarget | string, options?: AbortOptions): Promise<Registration>
    revoke(label: string, options?: AbortOptions): Promise<{ stored: number }>
    /** Resolves a name; rotations met on the way move the user's petnames (they are signed by the old zone). */
    resolve(name: string, options?: AbortOptions): Promise<Resolution>
    /**
     * Moves this user's zone to a new key (the next generation of the key tree): every owned
     * name is registered in the new zone, then the old zone's apex names the new one, so
     * resolvers follow it and users' petnames move. Final for the old zone.
     */
    rotate(options?: AbortOptions): Promise<{ from: string, to: string, names: number, stored: number }>
    owned(): OwnedName[]
    /** Renews owned names due for it; returns how many. */
    renew(options?: AbortOptions): Promise<number>
  }
  /** The user's petnames (saved by the caller with `save()`). */
  readonly petnames: PetnameStore
  /** The name service over this node's OHT (any zone). */
  readonly nameService: NameService
}

export function createDoa (init: DoaInit, components: DoaComponents): Doa {
  return new DoaImpl(init, components)
}

/**
 * What the service keeps per app beside the cache: the grants, the release records (a host
 * re-puts the author's own signed record, byte for byte) and the name records it was installed
 * by (re-put too, so a name keeps resolving while its owner is away).
 */
interface Meta { v: 1, grants: Capability[], records: Record<string, EncodedRecord>, names?: EncodedRecord[] }
interface EncodedRecord { publicKey: string, salt?: string, seq: number, ttlMs: number, value: string, signature: string }

function encodeRecord (r: MutableRecord): EncodedRecord {
  return { publicKey: toHex(r.publicKey), ...(bytesEqual(r.salt, APP_SALT) ? {} : { salt: toHex(r.salt) }), seq: r.seq, ttlMs: r.ttlMs, value: Buffer.from(r.value).toString('base64'), signature: toHex(r.signature) }
}

const verifier = createSignatureVerifier({ cacheSize: 0 })
/** A kept record, checked again (signature, and its key when `key` is given); undefined if it fails. */
function decodeRecord (e: EncodedRecord, key?: Uint8Array): MutableRecord | undefined {
  try {
    const r: MutableRecord = { kind: 'mutable', publicKey: fromHex(e.publicKey), salt: e.salt !== undefined ? fromHex(e.salt) : APP_SALT, seq: e.seq, ttlMs: e.ttlMs, value: new Uint8Array(Buffer.from(e.value, 'base64')), signature: fromHex(e.signature) }
    validateRecord(key ?? mutableKey(r.publicKey, r.salt), r, 64 * 1024, verifier)
    return r
  } catch {
    return undefined
  }
}

async function writeJson (file: string, value: unknown): Promise<void> {
  await writeFile(file + '.tmp', JSON.stringify(value, null, 2) + '\n', { mode: 0o600 })
  await rename(file + '.tmp', file)
}

async function readJson (file: string): Promise<unknown | undefined> {
  let text: string
  try { text = await readFile(file, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new DoaError('DOA_CACHE', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseJson(text, { maxLength: 16 * 1024 * 1024 })
}

class DoaImpl implements Doa {
  readonly dir: string
  private readonly cache: AppCache
  private readonly sessions = new Map<string, Promise<AppSession>>()
  private readonly hosted = new Map<string, HostedApp>()
  private readonly keys = new Map<string, Identity>()
  private sandboxHost: SandboxHost | undefined
  private ownedNames = new Map<string, OwnedName>()
  private zoneGeneration = 0
  private pets: PetnameStore | undefined
  private renewTimer: TimerHandle | undefined
  private started = false
  private stopped = false
  readonly nameService: NameService

  constructor (private readonly init: DoaInit, private readonly c: DoaComponents) {
    this.dir = init.dir
    this.cache = createAppCache(join(init.dir, 'cache'))
    this.nameService = createNameService({ dht: c.dht, clock: c.clock, rng: c.rng })
  }

  private live (): void {
    if (this.stopped) throw new DoaError('DOA_CLOSED', 'the DOA service is stopped')
  }

  get petnames (): PetnameStore {
    if (this.pets === undefined) throw new DoaError('DOA_CLOSED', 'the DOA service is not started')
    return this.pets
  }

  async start (options: AbortOptions = {}): Promise<void> {
    this.live()
    if (this.started) return
    this.started = true
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    for (const d of ['meta', 'state']) await mkdir(join(this.dir, d), { recursive: true, mode: 0o700 })
    this.pets = await openPetnames(join(this.dir, 'petnames.json'))
    const names = await readJson(join(this.dir, 'names.json')) as { v?: number, generation?: number, names?: Record<string, OwnedName> } | undefined
    if (names?.v === 1 && names.names !== undefined) for (const [k, v] of Object.entries(names.names)) this.ownedNames.set(k, v)
    if (names?.v === 1 && Number.isSafeInteger(names.generation) && (names.generation as number) >= 0) this.zoneGeneration = names.generation as number
    this.c.peers?.handle(APP_PROTOCOL, async (_from, body, opts) => await this.answer(body, opts), { maxMessageBytes: APP_MESSAGE_MAX + 64 })
    const hosting = await readJson(join(this.dir, 'hosting.json')) as { v?: number, apps?: Record<string, HostQuota> } | undefined
    for (const [app, quota] of Object.entries(hosting?.apps ?? {})) {
      try {
        await this.host(app, quota, options)
      } catch (err) {
        if (isCodedError(err, 'CORE_ABORTED')) throw err
        this.c.log?.('hosting %s again failed: %s', app.slice(0, 12), errorMessage(err))
      }
    }
    const every = this.init.renewEveryMs ?? HOUR
    this.renewTimer = this.c.clock.setInterval(() => { void this.names.renew().catch((err: unknown) => { this.c.log?.('renewing names failed: %s', errorMessage(err)) }) }, every)
    this.renewTimer.unref()
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.renewTimer?.cancel()
    this.c.peers?.unhandle(APP_PROTOCOL)
    // Hosted apps keep their announcement: it runs out by itself, and the daemon hosts again at start.
    for (const h of this.hosted.values()) await h.stop({ keepAnnouncement: true }).catch(() => {})
    this.hosted.clear()
    for (const s of this.sessions.values()) await (await s.catch(() => undefined))?.close()
    this.sessions.clear()
    this.sandboxHost?.stop()
    for (const k of this.keys.values()) k.destroy()
    this.keys.clear()
  }

  private async answer (body: Uint8Array, options: AbortOptions): Promise<Uint8Array> {
    let req
    try { req = decodeAppRequest(body) } catch (err) {
      return encodeAppResponse({ status: 'bad-request', message: errorMessage(err) })
    }
    const h = this.hosted.get(toHex(req.app))
    if (h === undefined) return encodeAppResponse({ status: 'not-hosted', message: 'this node does not host that app' })
    return await h.server.handle(req, options)
  }

  private key (path: string): Identity {
    let k = this.keys.get(path)
    if (k === undefined) {
      const seed = deriveChildSeed(this.c.identity.seed, path)
      k = identityFromSeed(seed)
      seed.fill(0)
      this.keys.set(path, k)
    }
    return k
  }

  appKeyFor (name: string): Uint8Array { return this.key(`doa.app.${name}`).publicKey }
  private zonePath (generation = this.zoneGeneration): string { return generation === 0 ? 'doa.zone' : `doa.zone.g${generation}` }
  zoneKey (): Uint8Array { return this.zone().publicKey }
  private zone (): Identity { return this.key(this.zonePath()) }
  private userKey (appKey: Uint8Array): Identity { return this.key(`doa.user.${toHex(appKey).slice(0, 32)}`) }

  private get sandbox (): Promise<SandboxHost> {
    if (this.c.sandbox !== undefined) return Promise.resolve(this.c.sandbox)
    if (this.sandboxHost !== undefined) return Promise.resolve(this.sandboxHost)
    return createSandboxHost({}, { clock: this.c.clock, ...(this.c.log !== undefined ? { log: this.c.log } : {}) }).then((h) => { this.sandboxHost ??= h; return this.sandboxHost })
  }

  // ---- meta ----

  private metaFile (appKey: Uint8Array): string { return join(this.dir, 'meta', `${toHex(appKey)}.json`) }
  private async meta (appKey: Uint8Array): Promise<Meta | undefined> {
    const m = await readJson(this.metaFile(appKey)) as Meta | undefined
    return m?.v === 1 ? m : undefined
  }

  private async saveMeta (appKey: Uint8Array, m: Meta): Promise<void> {
    await mkdir(join(this.dir, 'meta'), { recursive: true, mode: 0o700 })
    await writeJson(this.metaFile(appKey), m)
  }

  // ---- publishing ----

  async publish (dir: string, options: AbortOptions & { release?: number, onProgress?: (done: number, total: number) => void } = {}): Promise<PublishResult> {
    this.live()
    const source = await readAppDirectory(dir, options)
    const author = this.key(`doa.app.${source.spec.name}`)
    const r = await publishRelease(this.c.dht, source, author, options)
    // The author has the app: cache it (so it can run and host it) and keep the release record.
    await this.cache.install(r.signed, r.bundles)
    const found = await fetchCurrentRelease(this.c.dht, author.publicKey, options).catch(() => undefined)
    const m = await this.meta(author.publicKey) ?? { v: 1, grants: [...r.manifest.capabilities], records: {} }
    if (found !== undefined && found.signed.manifest.release === r.release) m.records[String(r.release)] = encodeRecord(found.record)
    await this.saveMeta(author.publicKey, m)
    const h = this.hosted.get(r.appKey)
    if (h !== undefined) await h.updateRelease(await this.served(author.publicKey, r.release), found?.record).catch(() => {})
    return r
  }

  // ---- installing ----

  async resolveApp (target: string | Uint8Array, options: AbortOptions = {}): Promise<AppTarget> {
    if (target instanceof Uint8Array) {
      if (target.byteLength !== 32) throw new DoaError('DOA_BAD_ARGUMENT', 'an app key has 32 bytes')
      return { appKey: target }
    }
    const t = target.trim()
    if (/^(doa:)?[0-9a-fA-F]{64}$/.test(t)) return { appKey: parseAppKey(t) }
    if (/^doa:/i.test(t)) throw new DoaError('DOA_BAD_ARGUMENT', `${JSON.stringify(t)} is not an app key: "doa:" and 64 hex digits`)
    if (!t.includes('.')) {
      // An installed app by its name.
      const mine = (await this.cache.list()).filter(a => a.name === t)
      if (mine.length === 1) return { appKey: fromHex(mine[0].appKey) }
      if (mine.length > 1) throw new DoaError('DOA_BAD_ARGUMENT', `${mine.length} installed apps are called ${t}: give its key (oht app ls)`)
      throw new DoaError('DOA_NOT_FOUND', `${JSON.stringify(t)} is neither an app key, an installed app, nor a name such as ${t}.<petname>`)
    }
    const resolution = await this.names.resolve(t, options)
    if (resolution.target.type !== 'app') throw new DoaError('DOA_BAD_NAME', `${t} names ${resolution.target.type === 'onion' ? 'an onion address' : 'a zone'}, not an app`)
    return { appKey: fromHex(resolution.target.key), resolution }
  }

  private async appKeyOf (app: string | Uint8Array): Promise<Uint8Array> {
    if (app instanceof Uint8Array) return app
    return (await this.resolveApp(app)).appKey
  }

  async hostsOf (app: string | Uint8Array, options: AbortOptions & { includeSelf?: boolean } = {}): Promise<HostEntry[]> {
    const appKey = await this.appKeyOf(app)
    const r = await this.c.dht.getValues(hostSetKey(appKey), options)
    const self = this.c.identity.publicKey
    const out: HostEntry[] = []
    for (const v of r.values) {
      const e = openHostValue(appKey, v)
      if (e === undefined) continue
      if (options.includeSelf !== true && bytesEqual(e.publicKey, self)) continue
      out.push(e)
    }
    // Newest release first, then the longest-serving hosts.
    return out.sort((a, b) => b.release - a.release || a.since - b.since)
  }

  private providers (appKey: Uint8Array, hosts: HostEntry[], release: number): ChunkProvider[] {
    const per = this.init.concurrency ?? 4
    const out: ChunkProvider[] = []
    if (this.c.peers !== undefined) {
      for (const h of pickHosts(hosts, release, this.init.hostsPerFetch ?? 3, this.c.rng)) {
        out.push(hostChunkProvider(createHostClient(this.c.peers, { publicKey: h.publicKey, addrs: h.addrs }), appKey, per))
      }
    }
    out.push(ohtChunkProvider(this.c.dht, per))
    return out
  }

  /** The release to install: the OHT's current one, or one a host keeps. */
  private async findRelease (appKey: Uint8Array, release: number | undefined, hosts: HostEntry[], options: AbortOptions, early?: Promise<{ signed: SignedManifest, record: MutableRecord } | undefined>): Promise<{ signed: SignedManifest, record?: MutableRecord, available?: number }> {
    let current: { signed: SignedManifest, record: MutableRecord } | undefined
    let error: unknown
    try { current = await (early ?? fetchCurrentRelease(this.c.dht, appKey, options)) } catch (err) {
      if (isCodedError(err, 'CORE_ABORTED')) throw err
      error = err
    }
    const available = current?.signed.manifest.release
    if (current !== undefined && (release === undefined || release === current.signed.manifest.release)) return { signed: current.signed, record: current.record, ...(available !== undefined ? { available } : {}) }
    if (this.c.peers !== undefined) {
      let best: SignedManifest | undefined
      for (const h of hosts.slice(0, 8)) {
        try {
          const m = await createHostClient(this.c.peers, { publicKey: h.publicKey, addrs: h.addrs }).manifest(appKey, release, options)
          if (m !== undefined && (best === undefined || m.manifest.release > best.manifest.release)) best = m
          if (best !== undefined && release !== undefined) break
        } catch (err) {
          if (isCodedError(err, 'CORE_ABORTED')) throw err
          error ??= err
        }
      }
      if (best !== undefined) return { signed: best, ...(available !== undefined ? { available } : {}) }
    }
    const what = release === undefined ? 'no release' : `release ${release}`
    if (error instanceof DoaError && error.code !== 'DOA_NOT_FOUND') throw error
    throw new DoaError('DOA_NOT_FOUND', `${what} of app ${toHex(appKey).slice(0, 16)}… was found in the OHT${hosts.length > 0 ? ` or at its ${hosts.length} host(s)` : ' (and it has no hosts)'}`)
  }

  async install (target: string | Uint8Array, options: InstallOptions = {}): Promise<InstallResult> {
    this.live()
    const { appKey, resolution } = await this.resolveApp(target, options)
    if (resolution !== undefined && typeof target === 'string') await this.keepNameRecords(appKey, target, resolution, options)
    const installed = (await this.cache.list()).find(a => a.appKey === toHex(appKey))
    if (installed !== undefined && options.release === undefined) {
      // Installed already: nothing changes; a newer release is offered.
      const opened = await this.cache.open(appKey)
      const check = await this.checkUpdate(appKey, options).catch(() => ({ current: installed.current, available: undefined }))
      const meta = await this.meta(appKey)
      return {
        appKey: toHex(appKey), name: installed.name, version: opened.manifest.manifest.version, release: installed.current, cached: true,
        current: installed.current, pinned: installed.pinned, capabilities: opened.manifest.manifest.capabilities,
        grants: meta?.grants ?? opened.manifest.manifest.capabilities, sources: [], bytes: 0,
        ...(check.available !== undefined && check.available > installed.current ? { available: check.available } : {})
      }
    }
    return await this.fetchAndInstall(appKey, options)
  }

  private async fetchAndInstall (appKey: Uint8Array, options: InstallOptions, makeCurrent = options.release !== undefined): Promise<InstallResult> {
    // The host set and the release record at once (two lookups, seconds each over onion services).
    const early = fetchCurrentRelease(this.c.dht, appKey, options)
    early.catch(() => {})
    const hosts = await this.hostsOf(appKey, options).catch(() => [])
    const found = await this.findRelease(appKey, options.release, hosts, options, early)
    const m = found.signed.manifest
    const have = (await this.cache.list()).find(a => a.appKey === toHex(appKey))
    const cached = have?.releases.includes(m.release) === true
    let sources: ProviderReport[] = []
    let bytes = 0
    if (!cached) {
      const providers = this.providers(appKey, hosts, m.release)
      const bundles: { code?: Uint8Array, assets?: Uint8Array } = {}
      const total = (m.bundles.code?.chunks ?? 0) + (m.bundles.assets?.chunks ?? 0)
      let done = 0
      for (const which of ['code', 'assets'] as const) {
        const ref = m.bundles[which]
        if (ref === null) continue
        const base = done
        const got = await fetchBundleFrom(ref, providers, { ...options, onChunk: (d) => { done = base + d; options.onProgress?.(done, total) } })
        bundles[which] = got.bytes
        bytes += got.bytes.byteLength
        sources = mergeReports(sources, got.sources)
      }
      await this.cache.install(found.signed, bundles)
    } else if (makeCurrent && have !== undefined && !have.pinned && have.current !== m.release) {
      // In the cache already: make it current (the cache's pin sets current; unpin keeps it).
      await this.cache.pin(appKey, m.release)
      await this.cache.unpin(appKey)
    }
    if (options.pin === true) await this.cache.pin(appKey, m.release)
    const meta = await this.meta(appKey) ?? { v: 1, grants: [], records: {} }
    const asked = new Set(m.capabilities)
    const denied = new Set(options.deny ?? [])
    const grants = (options.grants ?? (meta.grants.length > 0 && have !== undefined ? meta.grants : m.capabilities)).filter(g => asked.has(g) && !denied.has(g)).sort()
    meta.grants = grants
    if (found.record !== undefined) meta.records[String(m.release)] = encodeRecord(found.record)
    await this.saveMeta(appKey, meta)
    const now = (await this.cache.list()).find(a => a.appKey === toHex(appKey)) as InstalledApp
    const h = this.hosted.get(toHex(appKey))
    if (h !== undefined && now.current === m.release) await h.updateRelease(await this.served(appKey, m.release), found.record).catch(() => {})
    return {
      appKey: toHex(appKey), name: m.name, version: m.version, release: m.release, cached, current: now.current, pinned: now.pinned,
      capabilities: m.capabilities, grants, sources, bytes,
      ...(found.available !== undefined && found.available > m.release ? { available: found.available } : {})
    }
  }

  /** The records a name resolved through (its label's and its zone's apex): hosts re-put them. */
  private async keepNameRecords (appKey: Uint8Array, name: string, resolution: Resolution, options: AbortOptions): Promise<void> {
    const label = name.trim().split('.')[0]
    const zone = fromHex(resolution.zone)
    const kept: EncodedRecord[] = []
    for (const l of [label, '@']) {
      const got = await this.c.dht.get(nameRecordKey(zone, l), options).catch(() => undefined)
      if (got?.record.kind === 'mutable') kept.push(encodeRecord(got.record))
    }
    const meta = await this.meta(appKey) ?? { v: 1, grants: [], records: {} }
    meta.names = kept
    await this.saveMeta(appKey, meta)
  }

  async checkUpdate (app: string | Uint8Array, options: AbortOptions = {}): Promise<{ current: number, available: number | undefined }> {
    const appKey = await this.appKeyOf(app)
    const installed = (await this.cache.list()).find(a => a.appKey === toHex(appKey))
    if (installed === undefined) throw new DoaError('DOA_NOT_FOUND', `app ${toHex(appKey).slice(0, 16)}… is not installed`)
    const found = await fetchCurrentRelease(this.c.dht, appKey, options)
    return { current: installed.current, available: found?.signed.manifest.release }
  }

  async update (app: string | Uint8Array, options: InstallOptions = {}): Promise<InstallResult> {
    this.live()
    const appKey = await this.appKeyOf(app)
    const installed = (await this.cache.list()).find(a => a.appKey === toHex(appKey))
    if (installed === undefined) throw new DoaError('DOA_NOT_FOUND', `app ${toHex(appKey).slice(0, 16)}… is not installed: install it first`)
    if (installed.pinned) throw new DoaError('DOA_BAD_ARGUMENT', `${installed.name} is pinned to release ${installed.current}: unpin it first (oht app pin ${installed.name} --off)`)
    const r = await this.fetchAndInstall(appKey, options, true)
    await this.reopen(appKey)
    return r
  }

  /** The current release changed: sessions open on the old code are reopened on the new. */
  private async reopen (appKey: Uint8Array): Promise<void> {
    const k = toHex(appKey)
    const s = this.sessions.get(k)
    if (s === undefined) return
    const old = await s.catch(() => undefined)
    const current = (await this.cache.list()).find(a => a.appKey === k)?.current
    if (old === undefined || old.manifest.manifest.release === current) return
    if (this.hosted.has(k)) return
    this.sessions.delete(k)
    await old.close()
  }

  async rollback (app: string | Uint8Array): Promise<number> {
    const appKey = await this.appKeyOf(app)
    const r = await this.cache.rollback(appKey)
    await this.reopen(appKey)
    return r
  }

  async pin (app: string | Uint8Array, release: number): Promise<void> {
    const appKey = await this.appKeyOf(app)
    await this.cache.pin(appKey, release)
    await this.reopen(appKey)
  }

  async unpin (app: string | Uint8Array): Promise<void> { await this.cache.unpin(await this.appKeyOf(app)) }

  async remove (app: string | Uint8Array): Promise<void> {
    const appKey = await this.appKeyOf(app)
    if (this.hosted.has(toHex(appKey))) await this.unhost(appKey)
    const s = this.sessions.get(toHex(appKey))
    this.sessions.delete(toHex(appKey))
    await (await s?.catch(() => undefined))?.close()
    await this.cache.remove(appKey)
  }

  async list (): Promise<AppInfo[]> {
    const out: AppInfo[] = []
    for (const a of await this.cache.list()) {
      const key = fromHex(a.appKey)
      let version = '?'
      try { version = (await this.cache.open(key)).manifest.manifest.version } catch {}
      const meta = await this.meta(key)
      out.push({ ...a, version, grants: meta?.grants ?? [], hosted: this.hosted.has(a.appKey) })
    }
    return out
  }

  // ---- sessions ----

  async open (app: string | Uint8Array, options: AbortOptions = {}): Promise<AppSession> {
    this.live()
    const appKey = await this.appKeyOf(app)
    const k = toHex(appKey)
    let s = this.sessions.get(k)
    if (s === undefined) {
      s = this.openNew(appKey, options)
      this.sessions.set(k, s)
      s.catch(() => { if (this.sessions.get(k) === s) this.sessions.delete(k) })
    }
    return await s
  }

  private async openNew (appKey: Uint8Array, options: AbortOptions): Promise<AppSession> {
    const opened = await this.cache.open(appKey)
    const meta = await this.meta(appKey)
    return await openSession({
      appKey,
      manifest: opened.manifest,
      code: opened.code,
      grants: meta?.grants ?? opened.manifest.manifest.capabilities,
      ...this.init.session,
      ...(this.hosted.has(toHex(appKey)) ? { maxOps: this.init.hosting?.quota?.maxOps ?? 100_000 } : {})
    }, {
      dht: this.c.dht,
      ...(this.c.peers !== undefined ? { peers: this.c.peers } : {}),
      clock: this.c.clock,
      sandbox: await this.sandbox,
      store: createOpStore({ dir: join(this.dir, 'state', toHex(appKey)) }),
      author: this.userKey(appKey),
      hosts: async (o) => await this.hostsOf(appKey, o),
      ...(this.c.log !== undefined ? { log: this.c.log } : {})
    }, options)
  }

  // ---- hosting ----

  /** The release as a host serves it: manifest and the packed bundles (repacking is deterministic). */
  private async served (appKey: Uint8Array, release?: number): Promise<ServedRelease> {
    const o = await this.cache.open(appKey, release)
    const pack = (files: BundleFile[] | null): Uint8Array | null => files === null ? null : packFiles(files)
    return { signed: o.manifest, code: pack(o.code), assets: pack(o.assets) }
  }

  async host (app: string | Uint8Array, quota: HostQuota = {}, options: AbortOptions = {}): Promise<HostStatus> {
    this.live()
    const appKey = await this.appKeyOf(app)
    const k = toHex(appKey)
    const existing = this.hosted.get(k)
    if (existing !== undefined) return existing.status()
    const installed = (await this.cache.list()).find(a => a.appKey === k)
    if (installed === undefined) throw new DoaError('DOA_NOT_FOUND', `app ${k.slice(0, 16)}… is not installed here: install it before hosting it`)
    const served = await this.served(appKey)
    const m: AppManifest = served.signed.manifest
    const meta = await this.meta(appKey)
    const enc = meta?.records[String(m.release)]
    let record = enc !== undefined ? decodeRecord(enc, releaseRecordKey(appKey)) : undefined
    if (record === undefined) {
      const found = await fetchCurrentRelease(this.c.dht, appKey, options).catch(() => undefined)
      if (found?.signed.manifest.release === m.release) record = found.record
    }
    const q: HostQuota = { ...this.init.hosting?.quota, ...quota }
    const needsSession = m.entry.reducer !== null
    const session = needsSession ? await this.open(appKey, options) : undefined
    const names = (meta?.names ?? []).map(e => decodeRecord(e)).filter((r): r is MutableRecord => r !== undefined)
    const h = new HostedApp(served, record, { ...this.init.hosting, quota: q }, {
      dht: this.c.dht,
      extraRecords: names,
      clock: this.c.clock,
      hostKey: this.c.identity,
      addrs: () => this.c.dht.contact.addrs,
      ...(this.c.backend !== undefined ? { backend: this.c.backend } : {}),
      ...(session !== undefined ? { session } : {}),
      ...(this.c.log !== undefined ? { log: this.c.log } : {})
    })
    this.hosted.set(k, h)
    try {
      await h.start(options)
    } catch (err) {
      this.hosted.delete(k)
      await h.stop().catch(() => {})
      throw err
    }
    await this.saveHosting()
    return h.status()
  }

  async unhost (app: string | Uint8Array, options: AbortOptions = {}): Promise<void> {
    const appKey = await this.appKeyOf(app)
    const k = toHex(appKey)
    const h = this.hosted.get(k)
    if (h === undefined) throw new DoaError('DOA_NOT_FOUND', `app ${k.slice(0, 16)}… is not hosted here`)
    this.hosted.delete(k)
    await h.stop(options)
    await this.saveHosting()
  }

  hosting (): HostStatus[] { return [...this.hosted.values()].map(h => h.status()) }

  /** For tests and shutdown: background work of hosted apps done. */
  async hostingIdle (): Promise<void> { for (const h of this.hosted.values()) await h.idle() }

  private async saveHosting (): Promise<void> {
    const apps: Record<string, HostQuota> = {}
    for (const [k, h] of this.hosted) {
      const q = h.status().quota
      apps[k] = { maxBytes: q.maxBytes, maxOps: q.maxOps, requestsPerSecond: q.requestsPerSecond }
    }
    await writeJson(join(this.dir, 'hosting.json'), { v: 1, apps })
  }

  async visit (app: string | Uint8Array, options: AbortOptions & { host?: string } = {}): Promise<VisitedApp> {
    const appKey = await this.appKeyOf(app)
    const peers = this.c.peers
    if (peers === undefined) throw new DoaError('DOA_NETWORK', 'visiting a host needs PeerNet')
    const hosts = (await this.hostsOf(appKey, options)).filter(h => h.serves.includes('ui') || h.serves.includes('chunks'))
    const pick = options.host !== undefined ? hosts.filter(h => h.host.startsWith(options.host as string)) : hosts
    let last: unknown
    for (const h of pick) {
      const client = createHostClient(peers, { publicKey: h.publicKey, addrs: h.addrs })
      try {
        return await visitApp(appKey, async (path, o) => await client.http(appKey, 'GET', path, undefined, o), options)
      } catch (err) {
        if (isCodedError(err, 'CORE_ABORTED')) throw err
        last = err
      }
    }
    if (last !== undefined) throw last
    throw new DoaError('DOA_NOT_FOUND', `app ${toHex(appKey).slice(0, 16)}… has no host to visit`)
  }

  // ---- names ----

  readonly names: Doa['names'] = {
    register: async (label, target, options = {}) => {
      this.live()
      const t: NameTarget = typeof target === 'string' ? parseTarget(target) : target
      const r = await this.nameService.register(this.zone(), label, t, options)
      this.ownedNames.set(r.label, { label: r.label, target: t, seq: r.seq, expires: r.expires, at: this.c.clock.now() })
      await this.saveNames()
      return r
    },
    revoke: async (label, options = {}) => {
      this.live()
      const r = await this.nameService.revoke(this.zone(), label, options)
      this.ownedNames.delete(label.normalize('NFC').toLowerCase())
      await this.saveNames()
      return r
    },
    resolve: async (name, options = {}) => {
      const own = toHex(this.zoneKey())
      const r = await this.nameService.resolve(name, {
        // "me" is this user's own zone unless the user gave that petname to another one.
        zoneOf: (p) => this.pets?.get(p) ?? (p === 'me' ? fromHex(own) : undefined),
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      })
      // A rotation is signed by the old zone key: the user's petnames follow it.
      if (r.rotations.length > 0 && this.pets !== undefined) {
        let moved = 0
        for (const x of r.rotations) moved += this.pets.applyRotation(x.from, x.to)
        if (moved > 0) await this.pets.save()
      }
      return r
    },
    rotate: async (options = {}) => {
      this.live()
      const old = this.zone()
      const next = this.key(this.zonePath(this.zoneGeneration + 1))
      // Names move first, so that resolvers following the rotation find them in the new zone.
      let moved = 0
      for (const o of [...this.ownedNames.values()]) {
        const r = await this.nameService.register(next, o.label, o.target, options)
        this.ownedNames.set(o.label, { ...o, seq: r.seq, expires: r.expires, at: this.c.clock.now() })
        moved++
      }
      const r = await this.nameService.rotate(old, next.publicKey, options)
      this.zoneGeneration++
      await this.saveNames()
      return { from: toHex(old.publicKey), to: toHex(next.publicKey), names: moved, stored: r.stored }
    },
    owned: () => [...this.ownedNames.values()].sort((a, b) => a.label < b.label ? -1 : 1),
    renew: async (options = {}) => {
      let n = 0
      const now = this.c.clock.now()
      for (const o of [...this.ownedNames.values()]) {
        if (renewDue(o) > now) continue
        const r = await this.nameService.register(this.zone(), o.label, o.target, options)
        this.ownedNames.set(o.label, { ...o, seq: r.seq, expires: r.expires, at: now })
        n++
      }
      if (n > 0) await this.saveNames()
      return n
    }
  }

  private async saveNames (): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeJson(join(this.dir, 'names.json'), { v: 1, generation: this.zoneGeneration, names: Object.fromEntries(this.ownedNames) })
  }
}

/** "doa:<hex>" / 64 hex → app; "<56>.onion" / 56 base32 → onion; "zone:<hex>" → delegation. */
export function parseTarget (text: string): NameTarget {
  const t = text.trim().toLowerCase()
  if (/^zone:[0-9a-f]{64}$/.test(t)) return { type: 'zone', key: t.slice(5) }
  if (/^(doa:)?[0-9a-f]{64}$/.test(t)) return { type: 'app', key: t.replace(/^doa:/, '') }
  const onion = t.replace(/\.onion$/, '')
  if (/^[a-z2-7]{56}$/.test(onion)) return { type: 'onion', address: onion }
  throw new DoaError('DOA_BAD_ARGUMENT', `${JSON.stringify(text)} is not a name target: give doa:<app key>, <address>.onion or zone:<zone key>`)
}

/**
 * Hosts to fetch from: those announcing exactly the release fetched first, each group in random
 * order (a host claiming a newer release than the OHT's, or serving chunks first, gains nothing),
 * then up to `n` of them.
 */
export function pickHosts (hosts: readonly HostEntry[], release: number, n: number, rng: Rng): HostEntry[] {
  const shuffle = (xs: HostEntry[]): HostEntry[] => {
    const a = [...xs]
    for (let i = a.length - 1; i > 0; i--) { const j = rng.int(i + 1); [a[i], a[j]] = [a[j], a[i]] }
    return a
  }
  const serving = hosts.filter(h => h.serves.includes('chunks'))
  return [...shuffle(serving.filter(h => h.release === release)), ...shuffle(serving.filter(h => h.release !== release))].slice(0, n)
}

function mergeReports (a: ProviderReport[], b: ProviderReport[]): ProviderReport[] {
  const out = new Map(a.map(r => [r.name, { ...r }]))
  for (const r of b) {
    const x = out.get(r.name)
    if (x === undefined) out.set(r.name, { ...r })
    else { x.served += r.served; x.forged += r.forged; x.failed += r.failed; x.dropped ||= r.dropped }
  }
  return [...out.values()]
}
