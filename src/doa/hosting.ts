/**
 * Hosting one app: serving it (app-server.ts) over PeerNet and, where the composition root
 * gives a `HostingBackend`, over HTTP at an onion endpoint; announcing it in the app's host set;
 * and keeping it alive in the OHT while its author is away:
 *
 * - the host-set value is renewed every `announceEveryMs` (its TTL is three times that), and
 *   deleted (a signed tombstone) when hosting stops;
 * - every `republishEveryMs` the host re-puts the release record it keeps (the author's own
 *   signed record, byte for byte: holders refresh it), the name records the app was installed
 *   by, and every chunk and index of the release, so the app stays installable (and its name
 *   resolvable) after the author's own records run out (7 days);
 * - with a session (apps with a reducer), every `snapshotEveryOps` new ops (or
 *   `snapshotEveryMs`) it makes a signed snapshot, puts its chunks and names it in its
 *   announcement, and re-puts the op values it holds (up to `republishOpsMax` a round,
 *   newest first), so late joiners need neither the author nor a year of ops.
 *
 * Hosting is opt-in, per app, with quotas: the bundles and blobs kept (`maxBytes`) and the ops
 * (`maxOps`); an app over its byte quota is refused (DOA_QUOTA).
 */
import type { AbortOptions } from '../core/abort.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import { errorMessage, isCodedError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { toHex } from '../core/bytes.ts'
import type { MutableRecord, ValueRecord } from '../oht/index.ts'
import { createAppServer, type AppServer, type HttpRequest, type ServedRelease } from './app-server.ts'
import type { HttpResponse } from './app-wire.ts'
import { chunkBundle } from './bundle.ts'
import { DoaError } from './errors.ts'
import { encodeHostAnnouncement, type HostAnnouncement, type HostService, type HostSnapshotRef } from './host-set.ts'
import type { Signer } from './manifest.ts'
import { HOST_VALUE_ID, hostSetKey } from './net-keys.ts'
import type { DoaDht } from './op-log.ts'
import type { AppSession } from './session.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** Where an app's HTTP face is published: the daemon implements it with an ONI endpoint. */
export interface HostingBackend {
  /**
   * Publishes `handler` at an onion address (the daemon: a loopback HTTP server and an ONI
   * endpoint routed to it). Resolves once the address is reachable.
   */
  expose(app: { appKey: Uint8Array, name: string }, handler: (req: HttpRequest, options: AbortOptions) => Promise<HttpResponse>, options: AbortOptions): Promise<{ onion: string, port: number }>
  /** Withdraws what expose() published for `appKey`. */
  withdraw(appKey: Uint8Array, options: AbortOptions): Promise<void>
}

export interface HostQuota {
  /** Bytes of bundles and snapshot blobs kept for the app. @default 67108864 (64 MiB) */
  maxBytes?: number
  /** Ops of the app kept. @default 100000 */
  maxOps?: number
  /** Requests per second answered for the app. @default 50 */
  requestsPerSecond?: number
}

export interface HostedAppInit {
  quota?: HostQuota
  /** @default 3600000 (1 h; the value lives 3 h) */
  announceEveryMs?: number
  /** @default 43200000 (12 h) */
  republishEveryMs?: number
  /** @default 256 */
  snapshotEveryOps?: number
  /** @default 21600000 (6 h, when ops came in since the last one) */
  snapshotEveryMs?: number
  /** @default 512 */
  republishOpsMax?: number
  /** Lifetime asked for re-put records. @default 7 days */
  recordTtlMs?: number
}

export interface HostedAppComponents {
  dht: DoaDht
  clock: Clock
  /** The host's node key: signs its host-set value and its snapshots. */
  hostKey: Signer
  /** PeerNet addresses others reach this host at (its contact's). */
  addrs: () => string[]
  backend?: HostingBackend
  session?: AppSession
  /** Other signed records to keep alive (the name records the app was installed by). */
  extraRecords?: MutableRecord[]
  log?: Logger
}

export interface HostStatus {
  app: string
  name: string
  release: number
  onion?: string
  port?: number
  /** Bytes kept for the app (bundles, snapshot). */
  bytes: number
  ops: number
  quota: Required<HostQuota>
  since: number
  announcedAt: number
  /** Holders that stored the last announcement. */
  announcedTo: number
  republishedAt: number
  snapshot: HostSnapshotRef | null
  lastError?: string
}

const DEFAULT_QUOTA: Required<HostQuota> = { maxBytes: 64 * 1024 * 1024, maxOps: 100_000, requestsPerSecond: 50 }

export class HostedApp {
  readonly appKey: Uint8Array
  readonly server: AppServer
  private readonly quota: Required<HostQuota>
  private readonly timers: TimerHandle[] = []
  private readonly stopping = new AbortController()
  private onion: string | undefined
  private port: number | undefined
  private readonly since: number
  private announcedAt = 0
  private announcedTo = 0
  private republishedAt = 0
  private snapshotRef: HostSnapshotRef | null = null
  private snapshotAt = 0
  private opsAtSnapshot = 0
  private lastError: string | undefined
  private busy: Promise<void> = Promise.resolve()
  private stopped = false

  constructor (first: ServedRelease, private releaseRecord: MutableRecord | undefined, private readonly init: HostedAppInit, private readonly c: HostedAppComponents) {
    this.quota = { ...DEFAULT_QUOTA, ...init.quota }
    this.server = createAppServer(first, { requestsPerSecond: this.quota.requestsPerSecond }, { clock: c.clock, ...(c.session !== undefined ? { state: c.session.api } : {}) })
    this.appKey = this.server.appKey
    this.since = Math.floor(c.clock.now())
    this.checkBytes()
  }

  private checkBytes (): void {
    if (this.server.bytes > this.quota.maxBytes) {
      throw new DoaError('DOA_QUOTA', `${this.server.manifest.manifest.name} needs ${this.server.bytes} bytes; its hosting quota is ${this.quota.maxBytes} (raise it with --max-bytes)`)
    }
  }

  get name (): string { return this.server.manifest.manifest.name }

  /** Exposes the HTTP face (if a backend is given), announces, and starts the timers. */
  async start (options: AbortOptions = {}): Promise<void> {
    if (this.c.backend !== undefined) {
      const r = await this.c.backend.expose({ appKey: this.appKey, name: this.name }, async (req, opts) => await this.server.http(req, opts), options)
      this.onion = r.onion
      this.port = r.port
    }
    await this.announce(options)
    // The first republish right away: an install that just fetched the app refreshes it all.
    void this.serial(async () => { await this.republish() })
    const every = (ms: number, fn: () => Promise<void>): void => {
      const t = this.c.clock.setInterval(() => { void this.serial(fn) }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.init.announceEveryMs ?? HOUR, async () => { await this.announce({ signal: this.stopping.signal }) })
    every(this.init.republishEveryMs ?? 12 * HOUR, async () => { await this.republish() })
    if (this.c.session !== undefined && this.server.manifest.manifest.bundles.code !== null) {
      const off = this.c.session.on((e) => {
        if (e.type === 'state' && e.ops - this.opsAtSnapshot >= (this.init.snapshotEveryOps ?? 256)) void this.serial(async () => { await this.snapshot() })
      })
      this.timers.push({ cancel: off, unref () { return this } })
      every(this.init.snapshotEveryMs ?? 6 * HOUR, async () => { if ((this.c.session?.covered ?? 0) !== this.opsAtSnapshot) await this.snapshot() })
    }
  }

  /** Runs background work one piece at a time (announce, republish, snapshot never overlap). */
  private async serial (fn: () => Promise<void>): Promise<void> {
    const run = this.busy.then(async () => {
      if (this.stopped) return
      try { await fn() } catch (err) {
        if (this.stopped || isCodedError(err, 'CORE_ABORTED')) return
        this.lastError = errorMessage(err)
        this.c.log?.('hosting %s: %s', this.name, this.lastError)
      }
    })
    this.busy = run
    await run
  }

  /** Waits for background work started so far (tests and shutdown). */
  async idle (): Promise<void> { await this.busy }

  private announcement (): HostAnnouncement {
    const serves: HostService[] = ['chunks']
    const caps = this.server.manifest.manifest.capabilities
    if (this.onion !== undefined && caps.includes('ui')) serves.push('ui')
    if (this.c.session !== undefined && caps.includes('api')) serves.push('api')
    if (this.c.session !== undefined) serves.push('sync')
    return {
      v: 1,
      app: toHex(this.appKey),
      release: this.server.release,
      addrs: this.c.addrs().slice(0, 8),
      ...(this.onion !== undefined ? { onion: this.onion } : {}),
      ...(this.port !== undefined ? { port: this.port } : {}),
      serves: serves.sort(),
      quota: { bytes: this.quota.maxBytes, ops: this.quota.maxOps },
      snapshot: this.snapshotRef,
      since: this.since
    }
  }

  async announce (options: AbortOptions = {}): Promise<void> {
    const every = this.init.announceEveryMs ?? HOUR
    const r = await this.c.dht.putValue(hostSetKey(this.appKey), {
      id: HOST_VALUE_ID, value: encodeHostAnnouncement(this.announcement()), signer: this.c.hostKey, ttlMs: 3 * every, ...options
    })
    this.announcedAt = this.c.clock.now()
    this.announcedTo = r.stored
    if (r.stored === 0) throw new DoaError('DOA_NETWORK', `no OHT node stored the host announcement of ${this.name}`)
  }

  /** Re-puts the release record and every chunk (and the newest op values), refreshing their lifetimes. */
  async republish (): Promise<void> {
    const signal = this.stopping.signal
    const ttlMs = this.init.recordTtlMs ?? 7 * 24 * HOUR
    if (this.releaseRecord !== undefined) await this.c.dht.put(this.releaseRecord, { signal })
    for (const r of this.c.extraRecords ?? []) {
      // A newer record (its owner updated the name) makes holders refuse this one: fine.
      await this.c.dht.put(r, { signal }).catch((err: unknown) => { if (!isCodedError(err, 'OHT_SEQ_STALE')) throw err })
    }
    for (const key of this.server.chunkKeys()) {
      const chunk = this.server.chunk(key)
      if (chunk !== undefined) await this.c.dht.put({ kind: 'immutable', value: chunk, ttlMs }, { signal })
    }
    const session = this.c.session
    if (session !== undefined) {
      const records: ValueRecord[] = session.records().sort((a, b) => b.seq - a.seq).slice(0, this.init.republishOpsMax ?? 512)
      for (const r of records) {
        await this.c.dht.put(r, { signal }).catch((err: unknown) => {
          // A slot already holding a newer value (a newer head) refuses the older one: fine.
          if (!isCodedError(err, 'OHT_SEQ_STALE')) throw err
        })
      }
    }
    this.republishedAt = this.c.clock.now()
  }

  /** A signed snapshot of the session's state: chunks into the OHT, named in the announcement. */
  async snapshot (): Promise<void> {
    const session = this.c.session
    if (session === undefined) return
    const signal = this.stopping.signal
    const snap = session.snapshot(this.c.hostKey)
    const chunked = chunkBundle(snap.bytes)
    if (this.server.bytes + snap.bytes.byteLength > this.quota.maxBytes) throw new DoaError('DOA_QUOTA', `a snapshot of ${snap.bytes.byteLength} bytes would put ${this.name} over its hosting quota`)
    for (const v of [chunked.index, ...chunked.chunks]) await this.c.dht.put({ kind: 'immutable', value: v, ttlMs: this.init.recordTtlMs ?? 7 * 24 * HOUR }, { signal })
    this.server.addBlob('snapshot', snap.bytes)
    this.snapshotRef = { ref: chunked.ref, stateHash: snap.snapshot.stateHash, ops: snap.snapshot.count, release: snap.snapshot.release }
    this.snapshotAt = this.c.clock.now()
    this.opsAtSnapshot = snap.snapshot.count
    await this.announce({ signal })
  }

  /** Serves a newer release (after an update of the host's install). */
  async updateRelease (release: ServedRelease, record: MutableRecord | undefined): Promise<void> {
    this.server.addRelease(release)
    this.checkBytes()
    if (record !== undefined) this.releaseRecord = record
    await this.serial(async () => { await this.announce({ signal: this.stopping.signal }) })
  }

  status (): HostStatus {
    return {
      app: toHex(this.appKey),
      name: this.name,
      release: this.server.release,
      ...(this.onion !== undefined ? { onion: this.onion } : {}),
      ...(this.port !== undefined ? { port: this.port } : {}),
      bytes: this.server.bytes,
      ops: this.c.session?.covered ?? 0,
      quota: { ...this.quota },
      since: this.since,
      announcedAt: this.announcedAt,
      announcedTo: this.announcedTo,
      republishedAt: this.republishedAt,
      snapshot: this.snapshotRef,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {})
    }
  }

  /** Stops the timers, deletes the announcement (unless `keepAnnouncement`), withdraws the endpoint. */
  async stop (options: AbortOptions & { keepAnnouncement?: boolean } = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.stopping.abort()
    for (const t of this.timers) t.cancel()
    await this.busy.catch(() => {})
    if (options.keepAnnouncement !== true) {
      await this.c.dht.deleteValue(hostSetKey(this.appKey), { id: HOST_VALUE_ID, signer: this.c.hostKey, ...(options.signal !== undefined ? { signal: options.signal } : {}) }).catch((err: unknown) => {
        this.c.log?.('withdrawing the host announcement of %s failed: %s', this.name, errorMessage(err))
      })
    }
    if (this.c.backend !== undefined && this.onion !== undefined) await this.c.backend.withdraw(this.appKey, options).catch(() => {})
  }
}
