/**
 * Watching a key. Holders push each new write of a key (a newer record, a new or changed value)
 * to the peers that watch it, so an online watcher hears of it one one-way trip after it was
 * stored, instead of polling (over Tor: one onion round trip instead of a lookup per poll).
 *
 * Holder side: WATCH grants a lease (at most `watch.leaseMs`), bounded per key and per peer
 * (OHT_WATCH_LIMIT); every write stored here goes to the key's live watchers as a NOTIFY; a
 * watcher that answers OHT_NOT_WATCHING or fails twice is dropped; leases expire by themselves.
 *
 * Watcher side: `watch(key)` looks the key up and delivers what is there (catch-up), subscribes
 * at its `watch.holders` closest holders, renews at half the lease, and when a holder fails or
 * every few renewals looks the key up again and catches up: a holder that left costs a lookup,
 * never a missed write. Pushed records are verified like any other (key binding, signature) and
 * deduplicated: each write is delivered once.
 */
import { setMaxListeners } from 'node:events'
import { scopedSignal } from '../core/abort.ts'
import { toHex } from '../core/bytes.ts'
import type { TimerHandle } from '../core/clock.ts'
import { isCodedError } from '../core/errors.ts'
import type { OhtRequest } from './codec.ts'
import { OhtError } from './errors.ts'
import type { WatchEvent, WatchOptions } from './index.ts'
import type { RecordKind } from './kinds.ts'
import type { Candidate } from './lookup.ts'
import type { PeerContact } from './network.ts'
import type { OhtNodeImpl } from './node.ts'
import { copyRecord, validateRecord, valueSlot, type OhtRecord } from './records.ts'

const MIN_LEASE_MS = 1_000
/** Renewals between two full lookups of the key (to follow holders as the network churns). */
const RENEWALS_PER_LOOKUP = 3
/** Writes remembered per watch to deliver each once. */
const SEEN_MAX = 8192

interface Watcher { contact: PeerContact, hex: string, expiresAt: number, failures: number }

export class Watches {
  /** Holder side: watchers by key (hex/kind). */
  private readonly byKey = new Map<string, Map<string, Watcher>>()
  /** Holder side: watched keys per watcher. */
  private readonly perPeer = new Map<string, number>()
  /** Watcher side: our own watch sessions by key (hex/kind). */
  private readonly sessions = new Map<string, Set<WatchSession>>()

  constructor (private readonly n: OhtNodeImpl) {}

  get watchedKeys (): number { return this.byKey.size }

  // ---------------------------------------------------------------- holder side

  subscribe (contact: PeerContact, fromId: Uint8Array, req: Extract<OhtRequest, { type: 'watch' }>): number {
    const cfg = this.n.cfg
    const id = `${toHex(req.key)}/${req.kind}`
    const hex = toHex(fromId)
    let watchers = this.byKey.get(id)
    const existing = watchers?.get(hex)
    if (req.cancel) {
      if (existing !== undefined) this.remove(id, hex)
      return 0
    }
    const granted = Math.max(MIN_LEASE_MS, Math.min(req.leaseMs, cfg.watchLeaseMs))
    const expiresAt = this.n.clock.now() + granted
    if (existing !== undefined) {
      existing.expiresAt = expiresAt
      existing.failures = 0
      if (contact.addrs.length > 0) existing.contact = contact
      return granted
    }
    if ((watchers?.size ?? 0) >= cfg.watchersPerKey) throw new OhtError('OHT_WATCH_LIMIT', `this key already has ${cfg.watchersPerKey} watchers here: watch it at another holder`)
    if ((this.perPeer.get(hex) ?? 0) >= cfg.watchesPerPeer) throw new OhtError('OHT_WATCH_LIMIT', `you already watch ${cfg.watchesPerPeer} keys here: cancel some first`)
    if (watchers === undefined) { watchers = new Map(); this.byKey.set(id, watchers) }
    watchers.set(hex, { contact: { publicKey: contact.publicKey.slice(), addrs: [...contact.addrs] }, hex, expiresAt, failures: 0 })
    this.perPeer.set(hex, (this.perPeer.get(hex) ?? 0) + 1)
    return granted
  }

  private remove (id: string, hex: string): void {
    const watchers = this.byKey.get(id)
    if (watchers?.delete(hex) !== true) return
    if (watchers.size === 0) this.byKey.delete(id)
    const left = (this.perPeer.get(hex) ?? 1) - 1
    if (left <= 0) this.perPeer.delete(hex)
    else this.perPeer.set(hex, left)
  }

  /** A write was stored here: tell the key's watchers (encoded now; `record` may be a frame view). */
  stored (key: Uint8Array, kind: number, record: OhtRecord): void {
    if (this.byKey.size === 0) return
    const id = `${toHex(key)}/${kind}`
    const watchers = this.byKey.get(id)
    if (watchers === undefined) return
    const n = this.n
    const now = n.clock.now()
    for (const w of [...watchers.values()]) {
      if (w.expiresAt <= now) { this.remove(id, w.hex); continue }
      n.stats.notificationsSent++
      const peer = { id: n.idOf(w.contact.publicKey), contact: w.contact }
      // The frame is encoded before spawn returns (request encodes before it awaits).
      n.spawn('notify', async (signal) => {
        try {
          await n.rpc.request(peer, { type: 'notify', addrs: n.contact.addrs, key, record }, signal)
          w.failures = 0
        } catch (err) {
          if (isCodedError(err, 'OHT_NOT_WATCHING') || ++w.failures >= 2) this.remove(id, w.hex)
        }
      })
    }
  }

  /** Drops expired leases (holder side). */
  sweep (now: number): void {
    for (const [id, watchers] of this.byKey) {
      for (const w of [...watchers.values()]) if (w.expiresAt <= now) this.remove(id, w.hex)
    }
  }

  // ---------------------------------------------------------------- watcher side

  /** A holder pushed a write of a key we may watch. Throws OHT_NOT_WATCHING if we do not. */
  notified (key: Uint8Array, record: OhtRecord): void {
    const n = this.n
    const kind = n.cfg.kinds.of(record)
    const set = this.sessions.get(`${toHex(key)}/${kind.code}`)
    if (set === undefined || set.size === 0) throw new OhtError('OHT_NOT_WATCHING', 'no watch on this key here')
    validateRecord(key, record, Math.min(n.cfg.maxValueBytes, kind.policy.maxValueBytes), n.verifier, kind.code)
    n.stats.notificationsReceived++
    const own = copyRecord(record)
    for (const s of set) s.deliver(own, 'notify')
  }

  watch (key: Uint8Array, options: WatchOptions = {}): AsyncIterable<WatchEvent> {
    const n = this.n
    n.assertRunning()
    if (!(key instanceof Uint8Array) || key.byteLength !== 32) throw new OhtError('OHT_BAD_ARGUMENT', 'key must be 32 bytes')
    const kind = options.kind === undefined ? n.cfg.kinds.byName('mutable') as RecordKind : n.cfg.kinds.byName(options.kind)
    if (kind === undefined) throw new OhtError('OHT_UNKNOWN_KIND', `record kind ${JSON.stringify(options.kind)} is not known here`)
    const id = `${toHex(key)}/${kind.code}`
    const sessions = this.sessions
    return {
      [Symbol.asyncIterator]: () => {
        const session = new WatchSession(n, key.slice(), kind, options, () => {
          const set = sessions.get(id)
          set?.delete(session)
          if (set?.size === 0) sessions.delete(id)
        })
        let set = sessions.get(id)
        if (set === undefined) { set = new Set(); sessions.set(id, set) }
        set.add(session)
        session.start()
        return session
      }
    }
  }

  /** Ends every watch session and forgets every watcher (the node stops). */
  clear (): void {
    for (const set of this.sessions.values()) for (const s of [...set]) s.end()
    this.sessions.clear()
    this.byKey.clear()
    this.perPeer.clear()
  }
}

/** One watch of one key: its event queue, its holders, its renewals. */
class WatchSession implements AsyncIterator<WatchEvent> {
  private readonly queue: WatchEvent[] = []
  private wake: (() => void) | undefined
  private ended = false
  private failure: unknown
  private holders: Candidate[] = []
  private timer: TimerHandle | undefined
  private renewals = 0
  private readonly seen = new Map<string, number>()
  private readonly controller = new AbortController()
  private readonly scoped: { signal: AbortSignal, clear(): void }

  constructor (private readonly n: OhtNodeImpl, private readonly key: Uint8Array, private readonly kind: RecordKind, options: WatchOptions, private readonly onEnd: () => void) {
    this.scoped = scopedSignal(n.clock, undefined, options.signal, n.lifetimeSignal, this.controller.signal)
    setMaxListeners(0, this.scoped.signal)
    this.scoped.signal.addEventListener('abort', () => { this.end() }, { once: true })
  }

  start (): void {
    void this.refresh()
  }

  /** Delivers a write once: a single record only if newer, a value only if newer in its slot. */
  deliver (record: OhtRecord, via: 'catch-up' | 'notify'): void {
    if (this.ended) return
    const slot = record.kind === 'value' ? valueSlot(record) : ''
    const seq = record.kind === 'immutable' ? 0 : record.seq
    const prev = this.seen.get(slot)
    if (prev !== undefined && prev >= seq) return
    if (this.seen.size >= SEEN_MAX && prev === undefined) this.seen.delete(this.seen.keys().next().value as string)
    this.seen.set(slot, seq)
    this.push({ type: 'record', record, via })
  }

  private push (e: WatchEvent): void {
    this.queue.push(e)
    this.wake?.()
  }

  /** Looks the key up, catches up on what is there, (re)subscribes at the closest holders. */
  private async refresh (): Promise<void> {
    const n = this.n
    const signal = this.scoped.signal
    this.timer?.cancel()
    this.timer = undefined
    try {
      const valueKind = this.kind.shape === 'value'
      const found = await n.ops.iterate(this.key, valueKind ? 'values' : 'get', 'user', { signal, valueKind: this.kind.code, complete: true })
      if (this.ended) return
      const local = valueKind ? n.store.values(this.key, this.kind.code).map(e => e.record) : [n.store.get(this.key)?.record]
      const seenNow: OhtRecord[] = []
      for (const r of local) if (r !== undefined) seenNow.push(copyRecord(r))
      for (const c of found.answered) {
        if (c.result?.record !== undefined) seenNow.push(c.result.record)
        if (c.result?.values !== undefined) seenNow.push(...c.result.values)
      }
      for (const r of seenNow) {
        try { validateRecord(this.key, r, this.kind.policy.maxValueBytes, n.verifier, this.kind.code) } catch { continue }
        this.deliver(r, 'catch-up')
      }
      this.holders = found.closest.slice(0, n.cfg.watchHolders)
      const granted = await this.subscribeAll(false)
      if (this.ended) return
      this.push({ type: 'holders', count: granted.count })
      this.renewals = 0
      this.schedule(granted.leaseMs)
    } catch (err) {
      if (this.ended) return
      // No holder reachable now (no peers, all failed): try again in a while.
      n.log('watch refresh failed: %s', err instanceof Error ? err.message : String(err))
      this.schedule(n.cfg.watchLeaseMs)
    }
  }

  private async subscribeAll (cancel: boolean): Promise<{ count: number, leaseMs: number }> {
    const n = this.n
    let count = 0
    let leaseMs = n.cfg.watchLeaseMs
    const signal = cancel ? n.lifetimeSignal : this.scoped.signal
    await Promise.all(this.holders.map(async (h) => {
      try {
        const res = await n.rpc.request(h, { type: 'watch', addrs: n.contact.addrs, key: this.key, kind: this.kind.code, leaseMs: n.cfg.watchLeaseMs, cancel }, signal)
        if (res.type === 'watching' && res.grantedMs > 0) { count++; leaseMs = Math.min(leaseMs, res.grantedMs) }
      } catch {}
    }))
    return { count, leaseMs }
  }

  private schedule (leaseMs: number): void {
    if (this.ended) return
    this.timer = this.n.clock.setTimeout(() => {
      this.timer = undefined
      void this.renew()
    }, Math.max(MIN_LEASE_MS / 2, leaseMs / 2))
    this.timer.unref()
  }

  /** Renews the leases; a holder that fails (or every few renewals) means a fresh lookup. */
  private async renew (): Promise<void> {
    if (this.ended) return
    if (++this.renewals >= RENEWALS_PER_LOOKUP || this.holders.length === 0) { await this.refresh(); return }
    const granted = await this.subscribeAll(false)
    if (this.ended) return
    if (granted.count < this.holders.length) { await this.refresh(); return }
    this.schedule(granted.leaseMs)
  }

  end (): void {
    if (this.ended) return
    this.ended = true
    this.timer?.cancel()
    this.onEnd()
    // Tell the holders we are gone (best effort; leases expire by themselves anyway).
    if (this.n.running && this.holders.length > 0) void this.subscribeAll(true)
    this.controller.abort()
    this.scoped.clear()
    this.wake?.()
  }

  async next (): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      const e = this.queue.shift()
      if (e !== undefined) return { value: e, done: false }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure
        return { value: undefined, done: true }
      }
      await new Promise<void>((resolve) => { this.wake = resolve })
      this.wake = undefined
    }
  }

  async return (): Promise<IteratorResult<WatchEvent>> {
    this.end()
    return { value: undefined, done: true }
  }
}
