/**
 * The `local` transport: a node with no network, its records in this process only. For
 * offline development and for a daemon that should serve the API before it has peers.
 * Same keys as the OHT (immutable: SHA-256(value); mutable: SHA-256(publicKey || salt)),
 * TTLs honoured on the injected clock, values zeroed when dropped.
 */
import type { AbortOptions, Clock } from '../core/index.ts'
import { throwIfAborted, toHex } from '../core/index.ts'
import { sha256, type Identity } from '../crypto/index.ts'
import { DaemonError } from './errors.ts'
import type { DaemonGetResult, DaemonNode, DaemonPeer, DaemonPutResult, NodeCounters } from './node.ts'

export interface LocalNodeInit {
  /** @default 65_536 */
  maxValueBytes?: number
  /** @default 24 h */
  defaultTtlMs?: number
  /** @default 7 days */
  maxTtlMs?: number
}

interface Entry { kind: 'immutable' | 'mutable', value: Uint8Array, seq?: number, publicKey?: Uint8Array, expiresAt: number }

const HOUR = 3_600_000

export function createLocalNode (identity: Pick<Identity, 'publicKey'>, clock: Clock, init: LocalNodeInit = {}): DaemonNode {
  return new LocalNode(identity, clock, init)
}

class LocalNode implements DaemonNode {
  readonly addrs: string[] = []
  private readonly records = new Map<string, Entry>()
  private readonly maxValueBytes: number
  private readonly defaultTtlMs: number
  private readonly maxTtlMs: number
  private lookups = 0
  private lookupFailures = 0
  private stopped = false

  constructor (private readonly identity: Pick<Identity, 'publicKey'>, private readonly clock: Clock, init: LocalNodeInit) {
    this.maxValueBytes = init.maxValueBytes ?? 65_536
    this.defaultTtlMs = init.defaultTtlMs ?? 24 * HOUR
    this.maxTtlMs = init.maxTtlMs ?? 7 * 24 * HOUR
  }

  private check (value: Uint8Array, options: AbortOptions): void {
    if (this.stopped) throw new DaemonError('DAEMON_STOPPED', 'the node is stopped')
    throwIfAborted(options.signal)
    if (value.byteLength > this.maxValueBytes) throw new DaemonError('DAEMON_BAD_REQUEST', `value is ${value.byteLength} bytes; the limit is ${this.maxValueBytes}`)
  }

  private expiry (ttlMs: number | undefined): number {
    return this.clock.now() + Math.min(this.maxTtlMs, Math.max(1, ttlMs ?? this.defaultTtlMs))
  }

  private set (key: Uint8Array, entry: Entry): void {
    const hex = toHex(key)
    const old = this.records.get(hex)
    if (old !== undefined && old.value !== entry.value) old.value.fill(0)
    this.records.set(hex, entry)
  }

  async putImmutable (value: Uint8Array, options: { ttlMs?: number } & AbortOptions = {}): Promise<DaemonPutResult> {
    this.check(value, options)
    const key = sha256(value)
    this.set(key, { kind: 'immutable', value: Uint8Array.from(value), expiresAt: this.expiry(options.ttlMs) })
    return { key, stored: 1, attempted: 1 }
  }

  async putMutable (options: { salt: Uint8Array, value: Uint8Array, ttlMs?: number } & AbortOptions): Promise<DaemonPutResult> {
    this.check(options.value, options)
    const key = sha256(this.identity.publicKey, options.salt)
    const prev = this.live(toHex(key))
    const seq = (prev?.seq ?? 0) + 1
    this.set(key, { kind: 'mutable', value: Uint8Array.from(options.value), seq, publicKey: this.identity.publicKey, expiresAt: this.expiry(options.ttlMs) })
    return { key, stored: 1, attempted: 1, seq }
  }

  async get (key: Uint8Array, options: AbortOptions = {}): Promise<DaemonGetResult | undefined> {
    if (this.stopped) throw new DaemonError('DAEMON_STOPPED', 'the node is stopped')
    throwIfAborted(options.signal)
    this.lookups++
    const e = this.live(toHex(key))
    if (e === undefined) { this.lookupFailures++; return undefined }
    return {
      kind: e.kind,
      value: Uint8Array.from(e.value),
      responses: 1,
      ...(e.seq !== undefined ? { seq: e.seq } : {}),
      ...(e.publicKey !== undefined ? { publicKey: e.publicKey } : {})
    }
  }

  private live (hex: string): Entry | undefined {
    const e = this.records.get(hex)
    if (e === undefined) return undefined
    if (e.expiresAt <= this.clock.now()) {
      e.value.fill(0)
      this.records.delete(hex)
      return undefined
    }
    return e
  }

  async bootstrap (addrs: string[]): Promise<{ peers: number }> {
    if (addrs.length > 0) throw new DaemonError('DAEMON_BAD_REQUEST', 'the local transport has no network: set node.transport to "tor" or "tcp" to reach peers')
    return { peers: 0 }
  }

  peers (): DaemonPeer[] { return [] }

  counters (): NodeCounters {
    let bytes = 0
    for (const [hex] of this.records) {
      const e = this.live(hex)
      if (e !== undefined) bytes += e.value.byteLength
    }
    return { peers: 0, recordsStored: this.records.size, bytesStored: bytes, lookups: this.lookups, lookupFailures: this.lookupFailures, requestsIn: 0, requestsOut: 0, timeouts: 0 }
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const e of this.records.values()) e.value.fill(0)
    this.records.clear()
  }
}
