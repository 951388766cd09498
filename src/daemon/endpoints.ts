/**
 * Onion endpoints the daemon publishes for local services ("expose 127.0.0.1:8080 as an onion
 * address"). Each endpoint's key derives from the node identity and the endpoint's name
 * (key tree path `endpoint.<name>`), so after a restart, or after tor restarts, it comes back
 * at the same address. The list lives in `<state>/endpoints.json` (0600).
 */
import { readFile } from 'node:fs/promises'
import type { AbortOptions } from '../core/index.ts'
import { errorMessage, writeFileAtomic } from '../core/index.ts'
import { deriveChildSeed, identityFromSeed, torKeyBlob, type Identity } from '../crypto/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import { publishOnion } from '../tor/endpoint.ts'
import { DaemonError } from './errors.ts'
import type { JsonLog } from './json-log.ts'

export interface EndpointSpec {
  /** 1-63 characters of a-z, 0-9, "-" or "_". */
  name: string
  /** Virtual port on the onion address. */
  port: number
  /** Local target: "127.0.0.1:<port>", "localhost:<port>", "[::1]:<port>" or "unix:/path". */
  target: string
}

export interface EndpointView extends EndpointSpec {
  onion: string
  address: string
  published: boolean
  error?: string
}

const NAME = /^[a-z0-9_-]{1,63}$/
const MAX_ENDPOINTS = 256
const MAX_FILE_BYTES = 256 * 1024
const PUBLISH_TIMEOUT_MS = 90_000

export function validateEndpoint (spec: EndpointSpec): EndpointSpec {
  if (!NAME.test(spec.name)) throw new DaemonError('DAEMON_BAD_REQUEST', `endpoint name ${JSON.stringify(spec.name)} must be 1-63 characters of a-z, 0-9, "-" or "_"`)
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new DaemonError('DAEMON_BAD_REQUEST', `endpoint port ${spec.port} is not a port number (1-65535)`)
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/.exec(spec.target)
  const unix = spec.target.startsWith('unix:/') && !/[\s"]/.test(spec.target)
  if (!unix && (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
    throw new DaemonError('DAEMON_BAD_REQUEST', `endpoint target ${JSON.stringify(spec.target)} must be a loopback "127.0.0.1:<port>" or "unix:/path"`)
  }
  return { name: spec.name, port: spec.port, target: spec.target }
}

interface Entry { spec: EndpointSpec, identity: Identity, published: boolean, error?: string }

export class Endpoints {
  private readonly entries = new Map<string, Entry>()

  constructor (private readonly file: string, private readonly owner: Identity, private readonly log: JsonLog, private readonly detach: boolean) {}

  /** Loads the saved list (missing file = none). Malformed files are an error naming the file. */
  async load (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new DaemonError('DAEMON_STATE', `cannot read ${this.file}: ${errorMessage(err)}`, { cause: err })
    }
    if (text.length > MAX_FILE_BYTES) throw new DaemonError('DAEMON_STATE', `${this.file} is too large to be an endpoint list`)
    let raw: unknown
    try { raw = JSON.parse(text) } catch (err) { throw new DaemonError('DAEMON_STATE', `${this.file} is not valid JSON: fix or delete it`, { cause: err }) }
    const list = (raw as { endpoints?: unknown })?.endpoints
    if (!Array.isArray(list)) throw new DaemonError('DAEMON_STATE', `${this.file} has no "endpoints" list: fix or delete it`)
    for (const item of list.slice(0, MAX_ENDPOINTS)) {
      const spec = validateEndpoint(item as EndpointSpec)
      this.entries.set(spec.name, this.entry(spec))
    }
  }

  private entry (spec: EndpointSpec): Entry {
    const seed = deriveChildSeed(this.owner.seed, `endpoint.${spec.name}`)
    try { return { spec, identity: identityFromSeed(seed), published: false } } finally { seed.fill(0) }
  }

  private async save (): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify({ endpoints: [...this.entries.values()].map(e => e.spec) }, null, 2) + '\n', { mode: 0o600 })
  }

  list (): EndpointView[] {
    return [...this.entries.values()].map(e => ({
      ...e.spec,
      onion: e.identity.onion,
      address: `${e.identity.onion}.onion`,
      published: e.published,
      ...(e.error !== undefined ? { error: e.error } : {})
    }))
  }

  get size (): number { return this.entries.size }

  /** ADD_ONION with the endpoint's key; resolves once tor confirmed the descriptor uploads. */
  private async publish (e: Entry, control: TorControl, options: AbortOptions): Promise<void> {
    try {
      await publishOnion(control, {
        key: { type: 'ED25519-V3', blob: torKeyBlob(e.identity) },
        ports: [{ virtualPort: e.spec.port, target: e.spec.target.replace(/^localhost:/, '127.0.0.1:') }],
        detach: this.detach,
        timeoutMs: PUBLISH_TIMEOUT_MS,
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      })
      e.published = true
      delete e.error
    } catch (err) {
      // 550: tor still has it (a detached endpoint kept from our previous run): that is ours.
      if ((err as { status?: number }).status === 550) { e.published = true; delete e.error; return }
      e.published = false
      e.error = errorMessage(err)
      throw err
    }
  }

  /** Publishes every endpoint on `control` (after start or after tor came back). */
  async publishAll (control: TorControl, options: AbortOptions = {}): Promise<void> {
    for (const e of this.entries.values()) {
      try {
        await this.publish(e, control, options)
        this.log.info('endpoint published', { name: e.spec.name, address: `${e.identity.onion}.onion`, port: e.spec.port })
      } catch (err) {
        this.log.error('endpoint not published', { name: e.spec.name, err: errorMessage(err) })
      }
    }
  }

  async add (spec: EndpointSpec, control: TorControl | undefined, options: AbortOptions = {}): Promise<EndpointView> {
    const clean = validateEndpoint(spec)
    if (this.entries.has(clean.name)) throw new DaemonError('DAEMON_CONFLICT', `an endpoint named ${clean.name} exists: remove it first`)
    if (this.entries.size >= MAX_ENDPOINTS) throw new DaemonError('DAEMON_BAD_REQUEST', `at most ${MAX_ENDPOINTS} endpoints`)
    const e = this.entry(clean)
    if (control === undefined) throw new DaemonError('DAEMON_NOT_READY', 'endpoints need tor, which is not connected right now: try again shortly')
    await this.publish(e, control, options)
    this.entries.set(clean.name, e)
    await this.save()
    this.log.info('endpoint added', { name: clean.name, address: `${e.identity.onion}.onion`, port: clean.port })
    return this.list().find(v => v.name === clean.name) as EndpointView
  }

  async remove (name: string, control: TorControl | undefined, options: AbortOptions = {}): Promise<void> {
    const e = this.entries.get(name)
    if (e === undefined) throw new DaemonError('DAEMON_NOT_FOUND', `no endpoint named ${JSON.stringify(name)}`)
    if (control !== undefined && e.published) await control.delOnion(e.identity.onion, options).catch(() => {})
    this.entries.delete(name)
    e.identity.destroy()
    await this.save()
    this.log.info('endpoint removed', { name })
  }

  /** Withdraws every endpoint from tor (shutdown without keep_on_shutdown); the list stays saved. */
  async withdrawAll (control: TorControl | undefined, options: AbortOptions = {}): Promise<void> {
    for (const e of this.entries.values()) {
      if (control !== undefined && e.published) await control.delOnion(e.identity.onion, options).catch(() => {})
      e.published = false
    }
  }

  destroy (): void {
    for (const e of this.entries.values()) e.identity.destroy()
  }
}
