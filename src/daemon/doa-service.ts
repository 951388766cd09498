/**
 * The daemon's DOA service: a `createDoa()` on the daemon's node (its engine and PeerNet, its
 * identity), state under `<state dir>/doa`, hosted apps published at ONI endpoints, local UIs
 * for `oht app run`, and the API routes of both `oht app …` and `oht name …`.
 *
 * Hosting backend: each hosted app gets a loopback HTTP server (doa-http.ts) and an ONI
 * endpoint `doa-<name>` whose key derives from the node identity (`doa.host.<app>`), so the
 * app keeps its onion address across restarts; its route sends the endpoint's port (80) to the
 * server. Without tor (transport tcp or local) apps are hosted over PeerNet only.
 *
 * API (JSON; <app> = 64-hex app key, "doa:<key>", an installed app's name, or a name such as
 * guestbook.alice; encode it with encodeURIComponent):
 *
 *   GET    /v1/apps                       { apps: [...] }
 *   POST   /v1/apps/publish               { dir, release? } → { appKey, release, name, version, unchanged, records, minStored }
 *   POST   /v1/apps/install               { app, release?, pin?, deny? } → install result
 *   GET    /v1/apps/<app>                 { app, hosts, update }
 *   DELETE /v1/apps/<app>                 remove it from the cache
 *   POST   /v1/apps/<app>/update          → install result        POST /v1/apps/<app>/rollback → { release }
 *   POST   /v1/apps/<app>/pin { release } DELETE /v1/apps/<app>/pin
 *   POST   /v1/apps/<app>/host { maxBytes?, maxOps? } → host status   DELETE /v1/apps/<app>/host
 *   GET    /v1/apps/<app>/state           { release, stateHash, ops, heads, state }
 *   POST   /v1/apps/<app>/ops { body }    → { id, seq, status, stored }
 *   POST   /v1/apps/<app>/run             → { url }  (a local UI on 127.0.0.1 with a session token)
 *   DELETE /v1/apps/<app>/run
 *   GET    /v1/hosting                    { hosted: [...] }
 *   GET    /v1/names                      { zone, names: [...] }
 *   POST   /v1/names { label, target }    → registration
 *   DELETE /v1/names/<label>              revoke (final)
 *   GET    /v1/names/resolve?name=…       → { name, target, zone, rotations, onion? }
 *   POST   /v1/names/rotate               → { from, to, names, stored }: a new zone key, names moved
 *   GET    /v1/petnames                   { petnames }   POST /v1/petnames { petname, zone }   DELETE /v1/petnames/<petname>
 */
import { join } from 'node:path'
import type { AbortOptions, Clock, Rng } from '../core/index.ts'
import { errorMessage, fromHex, isCodedError, toHex } from '../core/index.ts'
import type { Identity } from '../crypto/index.ts'
import {
  createAppServer, createDoa, DoaError, packFiles, parseAppKey, CAPABILITIES, type AppServer, type Capability, type Doa, type HostingBackend,
  type HttpRequest, type HttpResponse, type NameTarget
} from '../doa/index.ts'
import type { Oni } from '../oni/index.ts'
import type { OhtSdkNode } from '../sdk/index.ts'
import { startLoopbackServer, startRunServer, type LoopbackServer, type RunServer } from './doa-http.ts'
import type { JsonLog } from './json-log.ts'
import { createAppCache } from '../doa/index.ts'

export interface DoaServiceInit {
  stateDir: string
  /** Virtual port of hosted apps' onion endpoints. @default 80 */
  httpPort?: number
  /** Default hosting quota. */
  maxHostBytes?: number
  maxHostOps?: number
}

export interface DoaServiceComponents {
  node: OhtSdkNode
  identity: Identity
  clock: Clock
  rng: Rng
  log: JsonLog
  /** ONI's endpoint manager (transport tor); hosting is PeerNet-only without it. */
  oni?: () => Oni | undefined
}

export interface DoaApiRequest { method: string, path: string, query: URLSearchParams, body: unknown }

/** The endpoint name of a hosted app: ONI names are [a-z0-9][a-z0-9._-]{0,62}. */
function endpointName (name: string, appKey: Uint8Array): string {
  return `doa-${name.slice(0, 40)}-${toHex(appKey).slice(0, 8)}`
}

class OniBackend implements HostingBackend {
  private readonly servers = new Map<string, { server: LoopbackServer, endpoint: string }>()
  constructor (private readonly oni: () => Oni | undefined, private readonly port: number, private readonly log: JsonLog) {}

  async expose (app: { appKey: Uint8Array, name: string }, handler: (req: HttpRequest, options: AbortOptions) => Promise<HttpResponse>, options: AbortOptions): Promise<{ onion: string, port: number }> {
    const oni = this.oni()
    if (oni === undefined) throw new DoaError('DOA_NETWORK', 'onion endpoints are not available (ONI is not running)')
    const k = toHex(app.appKey)
    await this.withdraw(app.appKey, options).catch(() => {})
    const server = await startLoopbackServer(handler)
    const name = endpointName(app.name, app.appKey)
    const target = `127.0.0.1:${server.port}`
    try {
      // The same derived key every time: the app keeps its onion address across restarts.
      if (oni.endpoints.get(name) !== undefined) await oni.endpoints.delete(name, options)
      const status = await oni.endpoints.create({ name, key: { type: 'derived', path: `doa.host.${k.slice(0, 32)}` }, routes: [{ virtualPort: this.port, target }] }, options)
      this.servers.set(k, { server, endpoint: name })
      const onion = status.address.replace(/\.onion$/, '')
      this.log.info('app hosted at an onion endpoint', { app: app.name, onion, port: this.port })
      return { onion, port: this.port }
    } catch (err) {
      await server.close()
      throw err
    }
  }

  async withdraw (appKey: Uint8Array, options: AbortOptions): Promise<void> {
    const k = toHex(appKey)
    const s = this.servers.get(k)
    if (s === undefined) return
    this.servers.delete(k)
    await this.oni()?.endpoints.delete(s.endpoint, options).catch(() => {})
    await s.server.close()
  }

  async stop (): Promise<void> {
    for (const s of this.servers.values()) await s.server.close().catch(() => {})
    this.servers.clear()
  }
}

function bad (message: string): never { throw new DoaError('DOA_BAD_ARGUMENT', message) }

function obj (v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('the request body must be a JSON object')
  return v as Record<string, unknown>
}

function only (b: Record<string, unknown>, fields: string[]): void {
  for (const k of Object.keys(b)) if (!fields.includes(k)) bad(`unknown field ${JSON.stringify(k)} (expected: ${fields.join(', ')})`)
}

function optInt (b: Record<string, unknown>, f: string, min: number): number | undefined {
  const v = b[f]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(`${f} must be a whole number of at least ${min}`)
  return v
}

function caps (v: unknown, f: string): Capability[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.some(c => !(CAPABILITIES as readonly unknown[]).includes(c))) bad(`${f} must be a list of: ${CAPABILITIES.join(', ')}`)
  return v as Capability[]
}

export class DoaService {
  readonly doa: Doa
  private readonly backend: OniBackend | undefined
  private readonly runs = new Map<string, RunServer>()
  private readonly runApps = new Map<string, AppServer>()

  constructor (private readonly init: DoaServiceInit, private readonly c: DoaServiceComponents) {
    this.backend = c.oni !== undefined ? new OniBackend(c.oni, init.httpPort ?? 80, c.log) : undefined
    const log = Object.assign((msg: string, ...args: unknown[]) => { c.log.debug(msg, { ns: 'doa', args: args.map(a => a instanceof Uint8Array ? `<${a.byteLength} bytes>` : a) }) }, {
      enabled: false, namespace: 'doa', error: (m: string, ...a: unknown[]) => { c.log.error(m, { ns: 'doa', args: a.map(String) }) }, warn: (m: string, ...a: unknown[]) => { c.log.warn(m, { ns: 'doa', args: a.map(String) }) }, extend () { return this }
    })
    this.doa = createDoa({
      dir: join(init.stateDir, 'doa'),
      hosting: { quota: { ...(init.maxHostBytes !== undefined ? { maxBytes: init.maxHostBytes } : {}), ...(init.maxHostOps !== undefined ? { maxOps: init.maxHostOps } : {}) } }
    }, {
      dht: c.node.dht,
      peers: c.node.peers,
      identity: c.identity,
      clock: c.clock,
      rng: c.rng,
      log: log as never,
      ...(this.backend !== undefined ? { backend: this.backend } : {})
    })
  }

  async start (options: AbortOptions = {}): Promise<void> {
    await this.doa.start(options)
    this.c.log.info('doa started', { hosted: this.doa.hosting().length, apps: (await this.doa.list()).length })
  }

  async stop (): Promise<void> {
    for (const r of this.runs.values()) await r.close().catch(() => {})
    this.runs.clear()
    await this.doa.stop()
    await this.backend?.stop()
  }

  status (): unknown {
    return { hosted: this.doa.hosting().map(h => ({ app: h.app, name: h.name, release: h.release, onion: h.onion ?? null })), running: [...this.runs.keys()] }
  }

  /** The API: undefined when no DOA route matches. */
  async handle (req: DoaApiRequest, options: AbortOptions): Promise<{ status: number, body: unknown } | undefined> {
    const ok = (body: unknown): { status: number, body: unknown } => ({ status: 200, body })
    const { method, path } = req
    const d = this.doa
    if (path === '/v1/apps' && method === 'GET') return ok({ apps: await d.list() })
    if (path === '/v1/hosting' && method === 'GET') return ok({ hosted: d.hosting() })
    if (path === '/v1/apps/publish' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['dir', 'release'])
      if (typeof b.dir !== 'string' || !b.dir.startsWith('/')) bad('dir must be the absolute path of the app directory (the daemon reads it)')
      const release = optInt(b, 'release', 1)
      const r = await d.publish(b.dir, { ...options, ...(release !== undefined ? { release } : {}) })
      this.c.log.info('app published', { app: r.manifest.name, release: r.release, unchanged: r.unchanged })
      return ok({ appKey: `doa:${r.appKey}`, name: r.manifest.name, version: r.manifest.version, release: r.release, unchanged: r.unchanged, records: r.records, minStored: r.minStored, capabilities: r.manifest.capabilities })
    }
    if (path === '/v1/apps/install' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['app', 'release', 'pin', 'deny'])
      if (typeof b.app !== 'string' || b.app === '') bad('app must be an app key (doa:<64 hex>) or a name such as guestbook.alice')
      const release = optInt(b, 'release', 0)
      if (b.pin !== undefined && typeof b.pin !== 'boolean') bad('pin must be true or false')
      const deny = caps(b.deny, 'deny')
      const r = await d.install(b.app, { ...options, ...(release !== undefined ? { release } : {}), ...(b.pin === true ? { pin: true } : {}), ...(deny !== undefined ? { deny } : {}) })
      this.c.log.info('app installed', { app: r.name, release: r.release, cached: r.cached })
      return ok({ ...r, appKey: `doa:${r.appKey}` })
    }
    if (path === '/v1/names' && method === 'GET') return ok({ zone: toHex(d.zoneKey()), names: d.names.owned() })
    if (path === '/v1/names' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['label', 'target'])
      if (typeof b.label !== 'string' || typeof b.target !== 'string') bad('send { "label": "…", "target": "doa:<app key> | <address>.onion | zone:<key>" }')
      const target = await this.target(b.target, options)
      const r = await d.names.register(b.label, target, options)
      this.c.log.info('name registered', { label: r.label, zone: r.zone })
      return ok(r)
    }
    if (path === '/v1/names/rotate' && method === 'POST') {
      const r = await d.names.rotate(options)
      this.c.log.info('zone rotated', { from: r.from, to: r.to, names: r.names })
      return ok(r)
    }
    if (path === '/v1/names/resolve' && method === 'GET') {
      const name = req.query.get('name')
      if (name === null || name === '') bad('give ?name=<label>.<petname>')
      return ok(await this.resolve(name, options))
    }
    const revoke = /^\/v1\/names\/([^/]+)$/.exec(path)
    if (revoke !== null && method === 'DELETE') {
      const r = await d.names.revoke(decodeURIComponent(revoke[1]), options)
      return ok({ revoked: decodeURIComponent(revoke[1]), stored: r.stored })
    }
    if (path === '/v1/petnames' && method === 'GET') return ok({ zone: toHex(d.zoneKey()), petnames: d.petnames.list() })
    if (path === '/v1/petnames' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['petname', 'zone'])
      if (typeof b.petname !== 'string' || typeof b.zone !== 'string') bad('send { "petname": "alice", "zone": "<64 hex zone key>" }')
      const zone = b.zone.trim().toLowerCase().replace(/^zone:/, '')
      if (!/^[0-9a-f]{64}$/.test(zone)) bad('zone must be a 64-hex-digit zone key (oht name zone prints yours)')
      d.petnames.set(b.petname, fromHex(zone))
      await d.petnames.save()
      return ok({ petname: b.petname.normalize('NFC').toLowerCase(), zone })
    }
    const pet = /^\/v1\/petnames\/([^/]+)$/.exec(path)
    if (pet !== null && method === 'DELETE') {
      const p = decodeURIComponent(pet[1])
      if (!d.petnames.remove(p)) throw new DoaError('DOA_NOT_FOUND', `no petname ${JSON.stringify(p)}`)
      await d.petnames.save()
      return ok({ removed: p })
    }
    const m = /^\/v1\/apps\/([^/]+)(?:\/([a-z]+))?$/.exec(path)
    if (m === null) return undefined
    const app = decodeURIComponent(m[1])
    const action = m[2]
    if (action === undefined && method === 'GET') {
      const appKey = (await d.resolveApp(app, options)).appKey
      const info = (await d.list()).find(a => a.appKey === toHex(appKey))
      const hosts = await d.hostsOf(appKey, { ...options, includeSelf: true }).catch(() => [])
      const update = info !== undefined ? await d.checkUpdate(appKey, options).catch(() => undefined) : undefined
      return ok({ appKey: `doa:${toHex(appKey)}`, installed: info ?? null, update: update ?? null, hosts: hosts.map(h => ({ host: h.host, release: h.release, onion: h.onion ?? null, port: h.port ?? null, serves: h.serves, snapshot: h.snapshot !== null ? { ops: h.snapshot.ops, stateHash: h.snapshot.stateHash } : null, since: h.since })) })
    }
    if (action === undefined && method === 'DELETE') {
      const appKey = (await d.resolveApp(app, options)).appKey
      await this.stopRun(appKey)
      await d.remove(appKey)
      return ok({ removed: `doa:${toHex(appKey)}` })
    }
    if (action === 'update' && method === 'POST') return ok(await d.update(app, options))
    if (action === 'rollback' && method === 'POST') return ok({ release: await d.rollback(app) })
    if (action === 'pin' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['release'])
      const release = optInt(b, 'release', 0)
      if (release === undefined) bad('give { "release": n }')
      await d.pin(app, release)
      return ok({ pinned: release })
    }
    if (action === 'pin' && method === 'DELETE') { await d.unpin(app); return ok({ pinned: null }) }
    if (action === 'host' && method === 'POST') {
      const b = obj(req.body ?? {})
      only(b, ['maxBytes', 'maxOps'])
      const maxBytes = optInt(b, 'maxBytes', 1)
      const maxOps = optInt(b, 'maxOps', 1)
      const s = await d.host(app, { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(maxOps !== undefined ? { maxOps } : {}) }, options)
      this.c.log.info('app hosted', { app: s.name, onion: s.onion ?? null })
      return ok(s)
    }
    if (action === 'host' && method === 'DELETE') { await d.unhost(app, options); return ok({ hosted: false }) }
    if (action === 'state' && method === 'GET') {
      const s = await d.open(app, options)
      if (req.query.get('sync') !== '0') await s.sync(options)
      return ok({ appKey: `doa:${toHex(s.appKey)}`, release: s.manifest.manifest.release, stateHash: s.stateHash, ops: s.covered, pending: s.pending, heads: s.heads(), state: s.state })
    }
    if (action === 'ops' && method === 'POST') {
      const b = obj(req.body)
      only(b, ['body'])
      if (b.body === undefined) bad('give { "body": <the op as JSON> }')
      const s = await d.open(app, options)
      const r = await s.submit(b.body as never, options)
      return ok({ id: toHex(r.op.id), seq: r.op.seq, lamport: r.op.lamport, status: r.status, stored: r.stored, ...(r.error !== undefined ? { error: r.error } : {}) })
    }
    if (action === 'run' && method === 'POST') return ok(await this.run(app, options))
    if (action === 'run' && method === 'DELETE') {
      const appKey = (await d.resolveApp(app, options)).appKey
      await this.stopRun(appKey)
      return ok({ running: false })
    }
    if (action === 'hosts' && method === 'GET') {
      const hosts = await d.hostsOf(app, { ...options, includeSelf: true })
      return ok({ hosts: hosts.map(({ publicKey: _k, ...h }) => h) })
    }
    return undefined
  }

  private async target (text: string, options: AbortOptions): Promise<NameTarget | string> {
    const t = text.trim()
    // An installed app's name is a fine target too: its key.
    if (/^[a-z0-9][a-z0-9-]{0,63}$/.test(t) && !/^[a-z2-7]{56}$/.test(t)) {
      const key = (await this.doa.resolveApp(t, options)).appKey
      return { type: 'app', key: toHex(key) }
    }
    return t
  }

  /** A name resolved; for an app, also the onion address of a host that serves its UI. */
  async resolve (name: string, options: AbortOptions): Promise<Record<string, unknown>> {
    const r = await this.doa.names.resolve(name, options)
    const out: Record<string, unknown> = { name, target: r.target, zone: r.zone, rotations: r.rotations }
    if (r.target.type === 'onion') out.onion = r.target.address
    if (r.target.type === 'app') {
      const hosts = await this.doa.hostsOf(parseAppKey(r.target.key), { ...options, includeSelf: true }).catch(() => [])
      const h = hosts.find(x => x.onion !== undefined && x.serves.includes('ui'))
      if (h?.onion !== undefined) out.onion = h.onion
    }
    return out
  }

  /** Onion address for a name, or throws (the proposal-279 plugin and .onet use it). */
  async onionOf (name: string, options: AbortOptions): Promise<string> {
    const r = await this.resolve(name, options)
    if (typeof r.onion !== 'string') throw new DoaError('DOA_NOT_FOUND', `${name} names an app that no host serves at an onion address yet`)
    return r.onion
  }

  private async run (app: string, options: AbortOptions): Promise<{ url: string, app: string, name: string }> {
    const appKey = (await this.doa.resolveApp(app, options)).appKey
    const k = toHex(appKey)
    const existing = this.runs.get(k)
    const session = await this.doa.open(appKey, options)
    const name = session.manifest.manifest.name
    if (existing !== undefined) return { url: existing.url, app: `doa:${k}`, name }
    if (session.manifest.manifest.entry.ui === null) throw new DoaError('DOA_CAPABILITY', `${name} has no UI to run`)
    const opened = await createAppCache(join(this.init.stateDir, 'doa', 'cache')).open(appKey)
    const server = createAppServer({ signed: opened.manifest, code: opened.code === null ? null : packFiles(opened.code), assets: opened.assets === null ? null : packFiles(opened.assets) }, { requestsPerSecond: 1000, burst: 1000 }, { clock: this.c.clock, state: session.api })
    this.runApps.set(k, server)
    const run = await startRunServer(async (req, o) => await server.http(req, o), session, { rng: this.c.rng, clock: this.c.clock })
    this.runs.set(k, run)
    this.c.log.info('app UI running', { app: name, port: run.port })
    return { url: run.url, app: `doa:${k}`, name }
  }

  private async stopRun (appKey: Uint8Array): Promise<void> {
    const k = toHex(appKey)
    const r = this.runs.get(k)
    this.runs.delete(k)
    this.runApps.delete(k)
    await r?.close()
  }
}

/** HTTP statuses of DOA error codes, for the API server. */
export const DOA_HTTP_STATUS: Record<string, number> = {
  DOA_NOT_FOUND: 404, DOA_NOT_HOSTED: 404, DOA_NAME_REVOKED: 404, DOA_NAME_EXPIRED: 404,
  DOA_BAD_ARGUMENT: 400, DOA_BAD_MANIFEST: 400, DOA_BAD_NAME: 400, DOA_BAD_JSON: 400, DOA_BAD_BUNDLE: 400, DOA_TOO_LARGE: 413,
  DOA_OP_REJECTED: 422, DOA_KEY_MISMATCH: 422, DOA_BAD_SIGNATURE: 422, DOA_CHUNK_MISMATCH: 422, DOA_BAD_RECORD: 422, DOA_NAME_LOOP: 422,
  DOA_CAPABILITY: 403, DOA_QUOTA: 409, DOA_NETWORK: 502, DOA_CLOSED: 503
}

export function describeDoaError (err: unknown): string {
  return isCodedError(err) ? `${err.code}: ${errorMessage(err)}` : errorMessage(err)
}
