/**
 * Record kinds (namespaces) and their storage policy. Every record names its kind by one wire
 * byte; a storing node looks the kind up here and enforces its policy (TTL bounds, value size,
 * and for multi-value kinds how many values a key holds and how many of them one writer may
 * have). A kind this node does not know is refused with OHT_UNKNOWN_KIND.
 *
 * How a kind validates and selects follows from its record shape (src/oht/records.ts):
 * - immutable: key = SHA-256(value); every copy is the same; any copy will do.
 * - mutable: key = SHA-256(publicKey || salt), signed; the highest seq wins (compare-and-swap
 *   on request).
 * - value kinds (multi-value keys): any key; each value signed by its writer over key and kind;
 *   values are merged by (writer, id), the highest seq of each wins, signed tombstones delete.
 * A kind may add a check of its own (`check`), e.g. a namespace whose values must be small
 * JSON, or whose writers must be members of something; it runs after the signature check.
 *
 * Adding a namespace is one registration (a code, a name and a policy), not an edit of the
 * codec, the dispatch or the stats.
 *
 * @example
 * const kinds = createRecordKinds({ policy: { mailbox: { ttlMaxMs: 14 * DAY } } })
 * createOhtNode({ addrs, kinds: { mailbox: { ttlMaxMs: 14 * DAY } } }, components)
 */
import { OhtError } from './errors.ts'
import type { OhtRecord, ValueRecord } from './records.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

export interface KindPolicy {
  /** Shortest lifetime granted (shorter requests are raised to it). */
  ttlMinMs: number
  /** Longest lifetime granted (longer requests are cut to it). */
  ttlMaxMs: number
  /** Lifetime of a put that names none. */
  ttlDefaultMs: number
  /** Largest value, in bytes. */
  maxValueBytes: number
  /** Multi-value kinds: values one key holds at most (tombstones included). */
  maxValuesPerKey: number
  /** Multi-value kinds: values of one writer under one key at most. */
  maxValuesPerWriter: number
}

export type RecordShape = 'immutable' | 'mutable' | 'value'

export interface RecordKind {
  /** The wire byte. 0 and 1 are immutable and mutable; value kinds use 2-255. */
  readonly code: number
  /** 'immutable', 'mutable', or the namespace of a value kind ('set', 'mailbox', …). */
  readonly name: string
  readonly shape: RecordShape
  readonly policy: Readonly<KindPolicy>
  /** An extra check a holder runs after the signature (throw a coded OhtError to refuse). */
  readonly check?: (key: Uint8Array, record: OhtRecord) => void
}

export interface RecordKindDefinition {
  code: number
  name: string
  shape: RecordShape
  policy?: Partial<KindPolicy>
  check?: (key: Uint8Array, record: OhtRecord) => void
}

/** The built-in kinds. Value kinds: `set` for shared sets (host lists, forum threads, presence), `mailbox` for offline delivery (long-lived, many small values). */
export const BUILTIN_KINDS: readonly RecordKindDefinition[] = Object.freeze([
  { code: 0, name: 'immutable', shape: 'immutable', policy: { ttlMaxMs: 7 * DAY } },
  { code: 1, name: 'mutable', shape: 'mutable', policy: { ttlMaxMs: 7 * DAY } },
  { code: 2, name: 'set', shape: 'value', policy: { ttlMaxMs: 7 * DAY, maxValueBytes: 16_384, maxValuesPerKey: 1024, maxValuesPerWriter: 256 } },
  { code: 3, name: 'mailbox', shape: 'value', policy: { ttlMaxMs: 30 * DAY, ttlDefaultMs: 7 * DAY, maxValueBytes: 16_384, maxValuesPerKey: 4096, maxValuesPerWriter: 1024 } }
])

const BASE_POLICY: KindPolicy = Object.freeze({
  ttlMinMs: MINUTE,
  ttlMaxMs: 7 * DAY,
  ttlDefaultMs: 2 * HOUR,
  maxValueBytes: 65_536,
  maxValuesPerKey: 1,
  maxValuesPerWriter: 1
})

export interface RecordKinds {
  byCode(code: number): RecordKind | undefined
  byName(name: string): RecordKind | undefined
  /** The kind of `record`; throws OHT_UNKNOWN_KIND for a namespace not registered here. */
  of(record: OhtRecord): RecordKind
  /** The value kind named `name`; throws OHT_UNKNOWN_KIND if there is none. */
  valueKind(name: string): RecordKind
  list(): RecordKind[]
}

export interface RecordKindsInit {
  /** Kinds beyond the built-in ones. */
  kinds?: RecordKindDefinition[]
  /** Policy changes per kind name (applied to built-in and added kinds alike). */
  policy?: Record<string, Partial<KindPolicy>>
  /** Bounds every kind's policy: a node-wide cap (e.g. its own TTL limits). */
  cap?: { ttlMinMs?: number, ttlMaxMs?: number, maxValueBytes?: number }
}

function checkPolicy (name: string, p: KindPolicy): void {
  for (const [k, v] of Object.entries(p)) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new OhtError('OHT_BAD_ARGUMENT', `kind ${name}: ${k} must be a non-negative number, got ${String(v)}`)
  }
  if (p.ttlMinMs > p.ttlMaxMs) throw new OhtError('OHT_BAD_ARGUMENT', `kind ${name}: ttlMinMs exceeds ttlMaxMs`)
  if (p.maxValuesPerKey < 1 || p.maxValuesPerWriter < 1) throw new OhtError('OHT_BAD_ARGUMENT', `kind ${name}: value limits must be at least 1`)
}

/** A registry with the built-in kinds, `init.kinds` added, policies adjusted and capped. */
export function createRecordKinds (init: RecordKindsInit = {}): RecordKinds {
  const byCode = new Map<number, RecordKind>()
  const byName = new Map<string, RecordKind>()
  const defs = [...BUILTIN_KINDS, ...(init.kinds ?? [])]
  for (const d of defs) {
    if (!Number.isInteger(d.code) || d.code < 0 || d.code > 255) throw new OhtError('OHT_BAD_ARGUMENT', `kind ${d.name}: code must be 0-255`)
    if (byCode.has(d.code)) throw new OhtError('OHT_BAD_ARGUMENT', `kind code ${d.code} is registered twice`)
    if (byName.has(d.name)) throw new OhtError('OHT_BAD_ARGUMENT', `kind name ${d.name} is registered twice`)
    if ((d.code <= 1) !== (d.shape !== 'value') || (d.code === 0 && d.shape !== 'immutable') || (d.code === 1 && d.shape !== 'mutable')) {
      throw new OhtError('OHT_BAD_ARGUMENT', `kind ${d.name}: codes 0 and 1 are immutable and mutable; value kinds use 2-255`)
    }
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(d.name)) throw new OhtError('OHT_BAD_ARGUMENT', `kind name must be [a-z][a-z0-9-]{0,31}, got ${JSON.stringify(d.name)}`)
    const policy: KindPolicy = { ...BASE_POLICY, ...d.policy, ...init.policy?.[d.name] }
    if (d.shape !== 'value') { policy.maxValuesPerKey = 1; policy.maxValuesPerWriter = 1 }
    const cap = init.cap
    if (cap?.ttlMaxMs !== undefined) policy.ttlMaxMs = Math.min(policy.ttlMaxMs, cap.ttlMaxMs)
    if (cap?.ttlMinMs !== undefined) policy.ttlMinMs = Math.max(policy.ttlMinMs, cap.ttlMinMs)
    if (cap?.maxValueBytes !== undefined) policy.maxValueBytes = Math.min(policy.maxValueBytes, cap.maxValueBytes)
    if (policy.ttlMinMs > policy.ttlMaxMs) policy.ttlMinMs = policy.ttlMaxMs
    policy.ttlDefaultMs = Math.min(policy.ttlMaxMs, Math.max(policy.ttlMinMs, policy.ttlDefaultMs))
    checkPolicy(d.name, policy)
    const kind: RecordKind = Object.freeze({ code: d.code, name: d.name, shape: d.shape, policy: Object.freeze(policy), ...(d.check !== undefined ? { check: d.check } : {}) })
    byCode.set(d.code, kind)
    byName.set(d.name, kind)
  }
  for (const name of Object.keys(init.policy ?? {})) {
    if (!byName.has(name)) throw new OhtError('OHT_BAD_ARGUMENT', `policy given for unknown kind ${JSON.stringify(name)} (known: ${[...byName.keys()].join(', ')})`)
  }
  const immutable = byCode.get(0) as RecordKind
  const mutable = byCode.get(1) as RecordKind
  const unknown = (what: string): OhtError => new OhtError('OHT_UNKNOWN_KIND', `record kind ${what} is not stored by this node (known: ${[...byName.keys()].join(', ')})`)
  return {
    byCode: (code) => byCode.get(code),
    byName: (name) => byName.get(name),
    of (record) {
      if (record.kind === 'immutable') return immutable
      if (record.kind === 'mutable') return mutable
      const k = byName.get((record as ValueRecord).namespace)
      if (k === undefined || k.shape !== 'value') throw unknown(JSON.stringify((record as ValueRecord).namespace))
      return k
    },
    valueKind (name) {
      const k = byName.get(name)
      if (k === undefined || k.shape !== 'value') throw unknown(JSON.stringify(name))
      return k
    },
    list: () => [...byCode.values()]
  }
}

/** The registry of nodes that change nothing (shared: it is immutable). */
export const DEFAULT_KINDS: RecordKinds = createRecordKinds()
