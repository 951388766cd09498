/**
 * The engine's configuration: defaults, and an OhtNodeInit resolved into plain numbers checked
 * once at construction (a bad setting is OHT_BAD_ARGUMENT, never a surprise at run time).
 */
import { MAX_CONTACTS } from './codec.ts'
import { OhtError } from './errors.ts'
import type { OhtNodeInit } from './index.ts'
import { createRecordKinds, type RecordKinds } from './kinds.ts'

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

/**
 * The engine's defaults for the settings of OhtNodeInit that are plain numbers (milliseconds
 * where the name says so). Read-only; pass an OhtNodeInit to change them for one node.
 * `ttlMaxMs` is the node-wide cap; each kind has its own bounds below it (src/oht/kinds.ts).
 */
export const OHT_DEFAULTS = Object.freeze({
  k: 20,
  alpha: 3,
  maxValueBytes: 65_536,
  ttlMinMs: MINUTE,
  ttlMaxMs: 30 * DAY,
  ttlDefaultMs: 2 * HOUR,
  maintenanceIntervalMs: 5 * MINUTE,
  refreshIntervalMs: 6 * HOUR,
  republishIntervalMs: HOUR,
  replicateIntervalMs: HOUR,
  probeAfterMs: HOUR,
  probeIntervalMs: 20 * MINUTE,
  staleAfterMs: HOUR,
  unreachableForMs: 10 * MINUTE,
  watchLeaseMs: 10 * MINUTE,
  watchersPerKey: 64,
  watchesPerPeer: 256,
  watchHolders: 3
})

export interface ResolvedConfig {
  k: number
  alpha: number
  disjointPaths: number
  maxValueBytes: number
  ttlMin: number
  ttlMax: number
  ttlDefault: number
  kinds: RecordKinds
  maintenanceIntervalMs: number
  refreshIntervalMs: number
  republishIntervalMs: number
  replicateIntervalMs: number
  refreshesPerTick: number
  replicationsPerTick: number
  probeAfterMs: number
  probeIntervalMs: number
  staleAfterMs: number
  silentNear: number
  silentFar: number
  unreachableForMs: number
  displaceSilentAfterMs: number
  maxFailures: number
  tokenRotateMs: number
  bootstrapRefreshes: number
  maxBytesPerPeer: number
  maxRecordsPerPeer: number
  maxStoreBytes: number
  maxStoreRecords: number
  requestsPerSecondPerPeer: number
  burst: number
  watchLeaseMs: number
  watchersPerKey: number
  watchesPerPeer: number
  watchHolders: number
}

function nonNegative (v: number | undefined, def: number, what: string): number {
  const x = v ?? def
  if (!(Number.isFinite(x) && x >= 0)) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be a non-negative number, got ${String(v)}`)
  return x
}

function positive (v: number | undefined, def: number, what: string): number {
  const x = v ?? def
  if (!(Number.isFinite(x) && x > 0)) throw new OhtError('OHT_BAD_ARGUMENT', `${what} must be a positive number, got ${String(v)}`)
  return x
}

export function resolveConfig (init: OhtNodeInit): ResolvedConfig {
  const lim = init.limits ?? {}
  const D = OHT_DEFAULTS
  const ttlMin = positive(init.ttl?.minMs, D.ttlMinMs, 'ttl.minMs')
  const ttlMax = positive(init.ttl?.maxMs, D.ttlMaxMs, 'ttl.maxMs')
  if (ttlMin > ttlMax) throw new OhtError('OHT_BAD_ARGUMENT', 'ttl.minMs must not exceed ttl.maxMs')
  const maxValueBytes = Math.floor(positive(init.maxValueBytes, D.maxValueBytes, 'maxValueBytes'))
  const ttlDefault = positive(init.ttl?.defaultMs, D.ttlDefaultMs, 'ttl.defaultMs')
  // The node's TTL bounds cap every kind; its default applies to the single-record kinds.
  const policy = { ...init.kinds }
  for (const name of ['immutable', 'mutable']) {
    if (init.ttl?.defaultMs !== undefined) policy[name] = { ttlDefaultMs: ttlDefault, ...policy[name] }
    if (init.ttl?.maxMs !== undefined) policy[name] = { ttlMaxMs: ttlMax, ...policy[name] }
    if (init.ttl?.minMs !== undefined) policy[name] = { ttlMinMs: ttlMin, ...policy[name] }
  }
  const kinds = createRecordKinds({ policy, cap: { ttlMinMs: ttlMin, ttlMaxMs: ttlMax, maxValueBytes } })
  const displace = init.displaceSilentAfterMs === Infinity ? Infinity : positive(init.displaceSilentAfterMs, HOUR, 'displaceSilentAfterMs')
  return {
    k: Math.min(MAX_CONTACTS, Math.floor(positive(init.k, D.k, 'k'))),
    alpha: Math.floor(positive(init.alpha, D.alpha, 'alpha')),
    disjointPaths: Math.floor(positive(init.disjointPaths, 1, 'disjointPaths')),
    maxValueBytes,
    ttlMin,
    ttlMax,
    ttlDefault,
    kinds,
    maintenanceIntervalMs: positive(init.maintenanceIntervalMs, D.maintenanceIntervalMs, 'maintenanceIntervalMs'),
    refreshIntervalMs: positive(init.refreshIntervalMs, D.refreshIntervalMs, 'refreshIntervalMs'),
    republishIntervalMs: positive(init.republishIntervalMs, D.republishIntervalMs, 'republishIntervalMs'),
    replicateIntervalMs: positive(init.replicateIntervalMs, D.replicateIntervalMs, 'replicateIntervalMs'),
    refreshesPerTick: Math.floor(positive(init.refreshesPerTick, 1, 'refreshesPerTick')),
    replicationsPerTick: Math.floor(positive(init.replicationsPerTick, 20, 'replicationsPerTick')),
    probeAfterMs: positive(init.probeAfterMs, D.probeAfterMs, 'probeAfterMs'),
    probeIntervalMs: positive(init.probeIntervalMs, D.probeIntervalMs, 'probeIntervalMs'),
    staleAfterMs: positive(init.staleAfterMs, D.staleAfterMs, 'staleAfterMs'),
    silentNear: Math.floor(nonNegative(init.silentInAnswers?.near, 12, 'silentInAnswers.near')),
    silentFar: Math.floor(nonNegative(init.silentInAnswers?.far, 5, 'silentInAnswers.far')),
    unreachableForMs: positive(init.unreachableForMs, D.unreachableForMs, 'unreachableForMs'),
    displaceSilentAfterMs: displace,
    maxFailures: Math.floor(positive(init.maxFailures, 3, 'maxFailures')),
    tokenRotateMs: positive(init.tokenRotateMs, 5 * MINUTE, 'tokenRotateMs'),
    bootstrapRefreshes: Math.floor(nonNegative(init.bootstrapRefreshes, 0, 'bootstrapRefreshes')),
    maxBytesPerPeer: positive(lim.maxBytesPerPeer, 16 * 1024 * 1024, 'limits.maxBytesPerPeer'),
    maxRecordsPerPeer: positive(lim.maxRecordsPerPeer, 4096, 'limits.maxRecordsPerPeer'),
    maxStoreBytes: positive(lim.maxStoreBytes, 512 * 1024 * 1024, 'limits.maxStoreBytes'),
    maxStoreRecords: positive(lim.maxStoreRecords, 200_000, 'limits.maxStoreRecords'),
    requestsPerSecondPerPeer: positive(lim.requestsPerSecondPerPeer, 50, 'limits.requestsPerSecondPerPeer'),
    burst: positive(lim.burst, 100, 'limits.burst'),
    watchLeaseMs: positive(init.watch?.leaseMs, D.watchLeaseMs, 'watch.leaseMs'),
    watchersPerKey: Math.floor(positive(init.watch?.watchersPerKey, D.watchersPerKey, 'watch.watchersPerKey')),
    watchesPerPeer: Math.floor(positive(init.watch?.watchesPerPeer, D.watchesPerPeer, 'watch.watchesPerPeer')),
    watchHolders: Math.floor(positive(init.watch?.holders, D.watchHolders, 'watch.holders'))
  }
}
