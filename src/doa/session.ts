/**
 * An open app (`doa.open(app)`): its replica folded by its reducer in the sandbox, fed by the
 * OHT and the app's hosts, with the user's ops signed and published. What it gives:
 *
 * - `state`, `stateHash`, `heads()`, `log()`: the app's state after every accepted op (needs the
 *   `state:read` grant);
 * - `submit(body)`: a new op signed with the user's key for this app, checked by the validator
 *   locally first, then written to the OHT (needs `state:write`);
 * - events (`on()` or `events()`): every op accepted, and every change of the state hash;
 * - `sync()`: catch up from the OHT's heads and pages, and from the app's hosts (anti-entropy);
 * - `snapshot(host)`: a signed snapshot of the state (hosts publish them for late joiners).
 *
 * Live updates: the session watches the app's heads key (op-log.ts); a head that skips ahead
 * makes it fetch the missing pages; a periodic sync (every `syncIntervalMs`) covers what a
 * watch can miss. New sessions without local ops may start from a host's snapshot instead of
 * genesis (see `openSession`'s `snapshot` option).
 */
import type { AbortOptions } from '../core/abort.ts'
import { errorMessage, isCodedError } from '../core/errors.ts'
import type { Clock, TimerHandle } from '../core/clock.ts'
import type { Logger } from '../core/logger.ts'
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts'
import type { PeerNet, ValueRecord } from '../oht/index.ts'
import { fetchBundleFrom, type ChunkProvider } from './chunk-fetch.ts'
import { DoaError } from './errors.ts'
import { createHostClient, hostChunkProvider, ohtChunkProvider, type HostClient } from './host-client.ts'
import type { HostEntry } from './host-set.ts'
import type { Json } from './json.ts'
import { plainLogic, type AppLogic } from './logic.ts'
import type { Capability, SignedManifest, Signer } from './manifest.ts'
import { fetchAuthorOps, fetchHeads, missingRanges, publishOp, watchHeads, type DoaDht, type PublishedOp } from './op-log.ts'
import type { OpStore } from './op-store.ts'
import { compareOps, decodeOp, signOp, MAX_PARENTS, type Op, type OpParent } from './ops.ts'
import { createReplica, type AddResult, type Replica, type SnapshotHead } from './replica.ts'
import type { AppSandbox, SandboxHost } from './sandbox.ts'
import { makeSnapshot, openSnapshot, replicaFromSnapshot, type SignedSnapshot } from './snapshot.ts'
import type { AppStateApi } from './app-server.ts'
import type { BundleFile } from './bundle.ts'

export type SessionEvent =
  | { type: 'op', id: string, author: string, seq: number, status: AddResult['status'], via: 'local' | 'oht' | 'host' | 'api' | 'store' }
  | { type: 'state', stateHash: string, ops: number }
  | { type: 'error', code: string, message: string }

export interface SessionInit {
  appKey: Uint8Array
  manifest: SignedManifest
  /** The code bundle's files (null for an app without a reducer). */
  code: BundleFile[] | null
  /** Capabilities the user granted (only those the manifest also asks for count). */
  grants: readonly Capability[]
  /** Watch the heads key for live ops. @default true */
  watch?: boolean
  /** Periodic catch-up from the OHT and the hosts (0: none). @default 60000 */
  syncIntervalMs?: number
  /** Ops this session keeps at most (a host's quota); more are refused with DOA_QUOTA. @default 1000000 */
  maxOps?: number
  /**
   * A new session (no ops stored yet) may start from a host's signed snapshot instead of
   * genesis: 'agree' takes one only when `minAgree` hosts announce the same state hash and op
   * count (or only one host announces any), 'any' takes the one covering the most ops, 'never'
   * always replays from genesis. @default 'agree'
   */
  snapshot?: 'agree' | 'any' | 'never'
  /** @default 2 */
  minAgree?: number
}

export interface SessionComponents {
  dht: DoaDht
  peers?: PeerNet
  clock: Clock
  /** Runs the reducer and validator (one shared host for all sessions of a process). */
  sandbox: SandboxHost
  /** Where the log is kept. */
  store: OpStore
  /** The user's key for this app (signs ops); without it the session is read-only. */
  author?: Signer
  /** The app's hosts now (the host set, minus ourselves). */
  hosts?: (options: AbortOptions) => Promise<HostEntry[]>
  /** Trusted logic instead of the sandbox (tests, built-in apps). */
  logic?: AppLogic
  log?: Logger
}

export interface SubmitResult {
  op: Op
  status: AddResult['status']
  /** Holders that stored it (0 when publishing failed: the op stays local and is retried by sync). */
  stored: number
  error?: string
}

export interface SyncResult {
  /** Ops newly accepted. */
  added: number
  /** Sources that answered: "oht", hosts. */
  sources: string[]
}

export interface AppSession {
  readonly appKey: Uint8Array
  readonly manifest: SignedManifest
  readonly grants: readonly Capability[]
  /** The state after every accepted op (needs the state:read grant). */
  readonly state: Json
  readonly stateHash: string
  /** Accepted ops (the snapshot base not counted). */
  readonly size: number
  /** Ops covered in all, the snapshot base included. */
  readonly covered: number
  /** Ops still waiting for a gap or a parent. */
  readonly pending: number
  /** True when the session started from a snapshot and met ops from before it. */
  readonly needsHistory: boolean
  /** The snapshot it started from, if it did. */
  readonly base: { host: string, ops: number } | undefined
  heads(): SnapshotHead[]
  versionVector(): Record<string, number>
  log(): readonly Op[]
  submit(body: Json, options?: AbortOptions): Promise<SubmitResult>
  /** Adds ops from anywhere (bytes are verified); they are kept and folded. */
  add(ops: Iterable<Uint8Array | Op>, via?: 'oht' | 'host' | 'api'): Promise<AddResult[]>
  sync(options?: AbortOptions): Promise<SyncResult>
  snapshot(host: Signer): SignedSnapshot
  /** Calls `fn` for each event; returns the unsubscribe function. */
  on(fn: (e: SessionEvent) => void): () => void
  /** Events as an async iterable, ending when `signal` aborts or the session closes. */
  events(options?: AbortOptions): AsyncIterable<SessionEvent>
  /** The API a host serves for this app (app-server.ts). */
  readonly api: AppStateApi
  /** Op value records fetched from the OHT (hosts re-put them to keep logs alive). */
  records(): ValueRecord[]
  close(): Promise<void>
}

export async function openSession (init: SessionInit, components: SessionComponents, options: AbortOptions = {}): Promise<AppSession> {
  const s = new Session(init, components)
  try {
    await s.open(options)
    return s
  } catch (err) {
    await s.close()
    throw err
  }
}

const emptyLogic: AppLogic = plainLogic({ init: () => null, reduce: (s) => s })
/** Op value records kept for re-putting (a host re-puts at most 512 a round). */
const KEPT_RECORDS = 2048

class Session implements AppSession {
  readonly appKey: Uint8Array
  readonly manifest: SignedManifest
  readonly grants: readonly Capability[]
  private replica!: Replica
  private sandbox: AppSandbox | undefined
  private logic: AppLogic = emptyLogic
  private readonly listeners = new Set<(e: SessionEvent) => void>()
  private readonly stopping = new AbortController()
  private timer: TimerHandle | undefined
  private closed = false
  private syncing: Promise<SyncResult> | undefined
  private checkedOwnHead = false
  private readonly unpublished = new Map<string, Op>()
  private readonly valueRecords = new Map<string, ValueRecord>()
  private baseInfo: { host: string, ops: number } | undefined
  private baseOps = 0
  private watching: Promise<void> | undefined
  readonly api: AppStateApi

  constructor (private readonly init: SessionInit, private readonly c: SessionComponents) {
    this.appKey = init.appKey
    this.manifest = init.manifest
    const asked = new Set(init.manifest.manifest.capabilities)
    this.grants = [...new Set(init.grants)].filter(g => asked.has(g)).sort()
    this.api = {
      view: () => ({ stateHash: this.stateHash, heads: this.heads(), ops: this.covered, state: this.state }),
      opsAfter: (vector, maxBytes) => this.opsAfter(vector, maxBytes),
      submit: async (bytes) => (await this.add([bytes], 'api'))[0]
    }
  }

  private can (c: Capability): boolean { return this.grants.includes(c) }

  async open (options: AbortOptions): Promise<void> {
    const m = this.manifest.manifest
    if (this.c.logic !== undefined) this.logic = this.c.logic
    else if (m.entry.reducer !== null) {
      if (this.init.code === null) throw new DoaError('DOA_BAD_ARGUMENT', 'the app has a reducer but no code bundle was given')
      this.sandbox = await this.c.sandbox.loadApp({ files: this.init.code, reducer: m.entry.reducer, validator: m.entry.validator, grants: this.grants, name: m.name })
      this.logic = this.sandbox
    }
    const stored = await this.c.store.load()
    const snap = await this.c.store.loadSnapshot()
    let started = false
    if (snap !== undefined) started = this.startFrom(snap, undefined)
    if (!started && stored.length === 0 && (this.init.snapshot ?? 'agree') !== 'never') {
      started = await this.fetchSnapshot(options).catch((err: unknown) => {
        this.c.log?.('no snapshot used for %s: %s', m.name, errorMessage(err))
        return false
      })
    }
    if (!started) this.replica = createReplica({ appKey: this.appKey }, { logic: this.logic })
    this.replica.addMany(stored)
    if (this.init.watch !== false) this.watching = this.watchLoop()
    const every = this.init.syncIntervalMs ?? 60_000
    if (every > 0) {
      this.timer = this.c.clock.setInterval(() => { void this.sync().catch(() => {}) }, every)
      this.timer.unref()
    }
  }

  /** Starts the replica from a verified snapshot (bytes from disk or a host). */
  private startFrom (bytes: Uint8Array, expectHost: string | undefined): boolean {
    const opened = openSnapshot(bytes, this.appKey)
    const s = opened.snapshot
    const code = this.manifest.manifest.bundles.code
    if (code === null || s.codeRoot !== code.root) throw new DoaError('DOA_SNAPSHOT_MISMATCH', `the snapshot was made by another release's reducer (code root ${s.codeRoot.slice(0, 16)}…)`)
    if (expectHost !== undefined && s.host !== expectHost) throw new DoaError('DOA_KEY_MISMATCH', 'the snapshot is signed by another host than the one announcing it')
    this.replica = replicaFromSnapshot(s, {}, this.logic)
    this.baseInfo = { host: s.host, ops: s.count }
    this.baseOps = s.count
    return true
  }

  /** Picks a host snapshot by the session's policy, fetches and verifies it, starts from it. */
  private async fetchSnapshot (options: AbortOptions): Promise<boolean> {
    if (this.c.hosts === undefined || this.manifest.manifest.bundles.code === null) return false
    const code = this.manifest.manifest.bundles.code
    const hosts = (await this.c.hosts(options)).filter(h => h.snapshot !== null && h.snapshot.release === this.manifest.manifest.release)
    if (hosts.length === 0) return false
    const policy = this.init.snapshot ?? 'agree'
    const groups = new Map<string, HostEntry[]>()
    for (const h of hosts) {
      const k = `${h.snapshot?.stateHash ?? ''}/${h.snapshot?.ops ?? 0}`
      groups.set(k, [...(groups.get(k) ?? []), h])
    }
    const ranked = [...groups.values()].sort((a, b) => (b[0].snapshot?.ops ?? 0) - (a[0].snapshot?.ops ?? 0) || b.length - a.length)
    const need = Math.min(this.init.minAgree ?? 2, hosts.length)
    const pick = policy === 'any' ? ranked[0] : ranked.find(g => g.length >= need)
    if (pick === undefined) return false
    for (const h of pick) {
      const ref = h.snapshot?.ref
      if (ref === undefined) continue
      try {
        const providers: ChunkProvider[] = []
        if (this.c.peers !== undefined) providers.push(hostChunkProvider(createHostClient(this.c.peers, { publicKey: h.publicKey, addrs: h.addrs }), this.appKey))
        providers.push(ohtChunkProvider(this.c.dht))
        const blob = await fetchBundleFrom(ref, providers, options)
        if (this.startFrom(blob.bytes, h.host)) {
          if (toHex(this.replica.stateHash()) !== h.snapshot?.stateHash) throw new DoaError('DOA_SNAPSHOT_MISMATCH', 'the snapshot fetched is not the one announced')
          await this.c.store.saveSnapshot(blob.bytes)
          this.c.log?.('%s starts from the snapshot of host %s (%d ops, code %s…)', this.manifest.manifest.name, h.host.slice(0, 12), h.snapshot?.ops ?? 0, code.root.slice(0, 12))
          return true
        }
      } catch (err) {
        if (isCodedError(err, 'CORE_ABORTED')) throw err
        this.c.log?.('snapshot of host %s refused: %s', h.host.slice(0, 12), errorMessage(err))
      }
    }
    return false
  }

  private live (): void {
    if (this.closed) throw new DoaError('DOA_CLOSED', 'this app session is closed')
  }

  get state (): Json {
    this.live()
    if (!this.can('state:read')) throw new DoaError('DOA_CAPABILITY', `${this.manifest.manifest.name} was not granted state:read`)
    return this.replica.state
  }

  get stateHash (): string { this.live(); return toHex(this.replica.stateHash()) }
  get size (): number { return this.replica.size }
  get covered (): number { return this.baseOps + this.replica.size }
  get pending (): number { return this.replica.pending }
  get needsHistory (): boolean { return this.replica.needsHistory }
  get base (): { host: string, ops: number } | undefined { return this.baseInfo }
  heads (): SnapshotHead[] { return this.replica.heads() }
  versionVector (): Record<string, number> { return this.replica.versionVector() }
  log (): readonly Op[] { return this.replica.log() }
  records (): ValueRecord[] { return [...this.valueRecords.values()] }

  /** The newest KEPT_RECORDS value records seen (what a host re-puts), not every one ever. */
  private keepRecord (op: Op, record: ValueRecord): void {
    const k = `${toHex(record.key)}/${toHex(record.id)}/${toHex(op.id)}`
    this.valueRecords.delete(k)
    this.valueRecords.set(k, record)
    while (this.valueRecords.size > KEPT_RECORDS) this.valueRecords.delete(this.valueRecords.keys().next().value as string)
  }

  private emit (e: SessionEvent): void {
    for (const fn of this.listeners) {
      try { fn(e) } catch (err) { this.c.log?.('session listener failed: %s', errorMessage(err)) }
    }
  }

  on (fn: (e: SessionEvent) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  async * events (options: AbortOptions = {}): AsyncIterable<SessionEvent> {
    const queue: SessionEvent[] = []
    let wake: (() => void) | undefined
    const off = this.on((e) => { if (queue.length < 10_000) queue.push(e); wake?.() })
    const onAbort = (): void => { wake?.() }
    options.signal?.addEventListener('abort', onAbort)
    this.stopping.signal.addEventListener('abort', onAbort)
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as SessionEvent
        if (this.closed || options.signal?.aborted === true) return
        await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
      }
    } finally {
      off()
      options.signal?.removeEventListener('abort', onAbort)
      this.stopping.signal.removeEventListener('abort', onAbort)
    }
  }

  async add (ops: Iterable<Uint8Array | Op>, via: 'oht' | 'host' | 'api' = 'oht'): Promise<AddResult[]> {
    this.live()
    const max = this.init.maxOps ?? 1_000_000
    const results: AddResult[] = []
    const keep: Uint8Array[] = []
    for (const o of ops) {
      let op: Op
      try {
        // Decoded (and its signature checked) once here; the replica takes the Op as it is.
        op = o instanceof Uint8Array ? decodeOp(o, this.appKey) : o
      } catch (err) {
        const e = err as DoaError
        results.push({ status: 'rejected', code: e.code ?? 'DOA_BAD_OP', reason: e.message })
        continue
      }
      if (this.replica.size + this.replica.pending >= max) { results.push({ status: 'rejected', id: toHex(op.id), code: 'DOA_QUOTA', reason: `this host keeps at most ${max} ops of this app` }); continue }
      const r = this.replica.add(op)
      results.push(r)
      if (r.status === 'accepted' || r.status === 'pending') {
        keep.push(op.bytes)
        this.emit({ type: 'op', id: r.id ?? '', author: toHex(op.author), seq: op.seq, status: r.status, via })
      }
    }
    if (keep.length > 0) await this.c.store.append(keep)
    // A pending op may have completed others: the state can change even when this op waited.
    if (keep.length > 0 && this.listeners.size > 0) {
      const h = toHex(this.replica.stateHash())
      if (h !== this.lastHash) {
        this.lastHash = h
        this.emit({ type: 'state', stateHash: h, ops: this.covered })
      }
    }
    return results
  }

  private lastHash = ''

  private lamportNext (): { lamport: number, parents: OpParent[] } {
    const heads = this.replica.heads()
    const me = this.c.author !== undefined ? toHex(this.c.author.publicKey) : ''
    const top = heads.reduce((m, h) => Math.max(m, h.lamport), 0)
    const parents = heads.filter(h => h.author !== me).sort((a, b) => b.lamport - a.lamport).slice(0, MAX_PARENTS).map(h => ({ author: fromHex(h.author), seq: h.seq }))
    return { lamport: top + 1, parents }
  }

  async submit (body: Json, options: AbortOptions = {}): Promise<SubmitResult> {
    this.live()
    const author = this.c.author
    if (author === undefined) throw new DoaError('DOA_CAPABILITY', 'this session has no key to sign ops with')
    if (!this.can('state:write')) throw new DoaError('DOA_CAPABILITY', `${this.manifest.manifest.name} was not granted state:write`)
    const me = toHex(author.publicKey)
    if (!this.checkedOwnHead) {
      // Another device of ours (or a lost store) may have written under this key: never reuse a seq.
      try {
        const heads = await fetchHeads(this.c.dht, this.appKey, options)
        const mine = heads.find(h => bytesEqual(h.op.author, author.publicKey))
        if (mine !== undefined && mine.op.seq > (this.replica.versionVector()[me] ?? 0)) {
          await this.add([mine.op.bytes], 'oht')
          await this.catchUp(me, mine.op.seq, options)
        }
        this.checkedOwnHead = true
      } catch (err) {
        if (isCodedError(err, 'CORE_ABORTED')) throw err
        this.c.log?.('could not check our own head before writing: %s', errorMessage(err))
      }
    }
    const seq = (this.replica.versionVector()[me] ?? 0) + 1
    const { lamport, parents } = this.lamportNext()
    const op = signOp(author, { appKey: this.appKey, seq, lamport, time: Math.floor(this.c.clock.now()), parents, body })
    // The validator judges it here first: a refused op is never published.
    const verdict = this.logic.applyMany(this.replica.state, [{ body: op.body, ctx: { id: toHex(op.id), author: me, seq, lamport, time: op.time } }])
    const outcome = verdict.outcomes[0]
    if (outcome !== undefined && !outcome.ok) throw new DoaError(outcome.code === 'DOA_OP_REJECTED' ? 'DOA_OP_REJECTED' : outcome.code, `the app refused this op: ${outcome.reason}`)
    const [r] = await this.add([op], 'api')
    if (r.status !== 'accepted') throw new DoaError(r.code ?? 'DOA_OP_REJECTED', `the op was not accepted: ${r.reason ?? r.status}`)
    let published: PublishedOp | undefined
    let error: string | undefined
    try {
      published = await publishOp(this.c.dht, op, author, options)
    } catch (err) {
      if (isCodedError(err, 'CORE_ABORTED')) throw err
      error = errorMessage(err)
      this.unpublished.set(toHex(op.id), op)
    }
    return { op, status: r.status, stored: published?.stored ?? 0, ...(error !== undefined ? { error } : {}) }
  }

  /** Fetches author `a`'s ops up to `to` that the replica lacks. */
  private async catchUp (a: string, to: number, options: AbortOptions): Promise<number> {
    const have = this.replica.versionVector()[a] ?? 0
    if (to <= have) return 0
    const got = await fetchAuthorOps(this.c.dht, this.appKey, fromHex(a), have + 1, to, options)
    for (const f of got) this.keepRecord(f.op, f.record)
    const r = await this.add(got.map(f => f.op), 'oht')
    return r.filter(x => x.status === 'accepted').length
  }

  sync (options: AbortOptions = {}): Promise<SyncResult> {
    if (this.closed) return Promise.resolve({ added: 0, sources: [] })
    this.syncing ??= this.runSync(options).finally(() => { this.syncing = undefined })
    return this.syncing
  }

  private async runSync (options: AbortOptions): Promise<SyncResult> {
    const signal = options.signal ?? this.stopping.signal
    const opts = { signal }
    const sources: string[] = []
    let added = 0
    // Ops of ours that did not reach the OHT earlier.
    const author = this.c.author
    if (author !== undefined) {
      for (const [id, op] of [...this.unpublished]) {
        try { await publishOp(this.c.dht, op, author, opts); this.unpublished.delete(id) } catch { break }
      }
    }
    try {
      const heads = await fetchHeads(this.c.dht, this.appKey, opts)
      sources.push('oht')
      for (const h of heads) this.keepRecord(h.op, h.record)
      const before = this.replica.size
      await this.add(heads.map(h => h.op), 'oht')
      for (const gap of missingRanges(this.replica.versionVector(), heads.map(h => h.op))) await this.catchUp(gap.author, gap.to, opts)
      added += this.replica.size - before
    } catch (err) {
      if (signal.aborted) throw err
      this.c.log?.('sync from the OHT failed: %s', errorMessage(err))
    }
    // Anti-entropy with a few hosts: they hold what the OHT let expire and what visitors posted to them.
    if (this.c.hosts !== undefined && this.c.peers !== undefined && this.can('state:read')) {
      let hosts: HostEntry[] = []
      try { hosts = (await this.c.hosts(opts)).filter(h => h.serves.includes('sync')) } catch { hosts = [] }
      for (const h of hosts.slice(0, 3)) {
        const client: HostClient = createHostClient(this.c.peers, { publicKey: h.publicKey, addrs: h.addrs })
        try {
          for (let round = 0; round < 64; round++) {
            const r = await client.sync(this.appKey, this.replica.versionVector(), opts)
            const before = this.replica.size
            await this.add(r.ops, 'host')
            added += this.replica.size - before
            if (!r.more || this.replica.size === before) break
          }
          sources.push(client.name)
        } catch (err) {
          if (signal.aborted) throw err
          this.c.log?.('sync with %s failed: %s', client.name, errorMessage(err))
        }
      }
    }
    return { added, sources }
  }

  private async watchLoop (): Promise<void> {
    const signal = this.stopping.signal
    while (!signal.aborted) {
      try {
        for await (const f of watchHeads(this.c.dht, this.appKey, { signal })) {
          this.keepRecord(f.op, f.record)
          const [r] = await this.add([f.op], 'oht')
          if (r.status === 'pending') await this.catchUp(toHex(f.op.author), f.op.seq - 1, { signal }).catch(() => 0)
        }
      } catch (err) {
        if (signal.aborted) return
        this.c.log?.('watching %s failed: %s; watching again shortly', this.manifest.manifest.name, errorMessage(err))
      }
      await this.c.clock.sleep(5_000, { signal }).catch(() => {})
    }
  }

  private opsAfter (vector: Record<string, number>, maxBytes: number): { ops: Uint8Array[], more: boolean } {
    const all = this.replica.opsAfter(vector).sort((a, b) => compareOps(a, b))
    const out: Uint8Array[] = []
    let n = 0
    for (const op of all) {
      if (n + op.bytes.byteLength + 4 > maxBytes || out.length >= 0xffff) return { ops: out, more: true }
      out.push(op.bytes)
      n += op.bytes.byteLength + 4
    }
    return { ops: out, more: false }
  }

  snapshot (host: Signer): SignedSnapshot {
    this.live()
    const code = this.manifest.manifest.bundles.code
    if (code === null) throw new DoaError('DOA_BAD_ARGUMENT', 'an app without code has no state to snapshot')
    return makeSnapshot(this.replica, { release: this.manifest.manifest.release, codeRoot: code.root, time: Math.floor(this.c.clock.now()) }, host)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopping.abort()
    this.timer?.cancel()
    await this.watching?.catch(() => {})
    await this.syncing?.catch(() => {})
    this.sandbox?.dispose()
    this.listeners.clear()
  }
}

