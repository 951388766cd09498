/**
 * Store memory: heap bytes one stored record really costs, against the estimate the limits
 * count (recordCost), and a node under a flood of small PUTs from many fresh identities staying
 * within its configured store limit plus a fixed margin.
 *
 *   1. Per record: N records of each kind (8-byte values) put straight into a memory store;
 *      heap after a full collection, before and after, divided by N. Goal: <= 600 B + the value.
 *   2. Flood: a node with limits.maxStoreBytes = L receives PUTs of 8-byte immutable records
 *      from 50 fresh identities (their rate limits lifted, as Sybils with many identities would
 *      get) until it refuses; its heap growth must stay within L + a margin. The baseline in the
 *      same run: the records the node accepted, counted the old way (value bytes only).
 *
 * Usage: node --expose-gc --import tsx bench/store-memory.ts [--records 100000] [--limit-mib 16]
 * (relaunches itself with --expose-gc when missing). Writes bench/results/store-memory.json.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { FakeClock, SeededRng } from '../src/core/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import {
  createMemoryStore, createOhtNode, decodeResponse, encodeRequest, immutableKey, recordCost, recordWireSize, signMutable, signValue,
  RECORD_OVERHEAD_BYTES, type DhtNet, type DhtRequestHandler, type OhtRecord, type PeerContact
} from '../src/oht/index.ts'

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
const gc = globalThis.gc as () => void

function arg (name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return def
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) { console.error(`--${name} must be a positive number`); process.exit(2) }
  return v
}
const N = arg('records', 100_000)
const LIMIT = arg('limit-mib', 16) * 1024 * 1024
const VALUE = 8
const HOUR = 3_600_000

function heap (): number { gc(); gc(); return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers }

const rng = new SeededRng('store-memory')
const writer = identityFromSeed(rng.bytes(32))
const results: Record<string, unknown> = { node: process.version, records: N, valueBytes: VALUE, overheadEstimate: RECORD_OVERHEAD_BYTES }

// ---------------------------------------------------------------- 1. per record
const perKind: Record<string, unknown> = {}
for (const kind of ['immutable', 'mutable', 'set', 'set16'] as const) {
  const clock = new FakeClock()
  const store = createMemoryStore({ clock })
  const make = (i: number): { key: Uint8Array, record: OhtRecord } => {
    const value = new Uint8Array(VALUE)
    new DataView(value.buffer).setUint32(0, i)
    if (kind === 'immutable') return { key: immutableKey(value), record: { kind: 'immutable', ttlMs: HOUR, value } }
    if (kind === 'mutable') {
      const salt = value.slice(0, 4)
      const r = signMutable(writer, { salt, seq: 1, ttlMs: HOUR, value })
      return { key: immutableKey(new Uint8Array([...writer.publicKey, ...salt])), record: r }
    }
    const key = rng.bytes(32)
    return { key, record: signValue(writer, { namespace: 'set', kindCode: 2, key, id: value.slice(0, 4), seq: 1, ttlMs: HOUR, value }) }
  }
  // set: one value per key (the worst case: each value makes its set); set16: 16 values per key.
  const perKey = kind === 'set16' ? 16 : 1
  let setKey = rng.bytes(32)
  const keyFor = (i: number, p: { key: Uint8Array }): Uint8Array => {
    if (kind === 'immutable' || (kind === 'mutable' && i < 2000)) return p.key
    if (kind === 'mutable') return rng.bytes(32)
    if (i % perKey === 0) setKey = rng.bytes(32)
    return setKey
  }
  // Signing is slow; sign a pool once and reuse records under fresh keys where the kind allows.
  const pool = Array.from({ length: Math.min(N, kind === 'immutable' ? N : 2000) }, (_, i) => make(i))
  const before = heap()
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const p = pool[i % pool.length]
    const key = keyFor(i, p)
    // Values under one key need distinct ids: the pool's record i % pool.length has id i % pool.length.
    const record = kind.startsWith('set') ? { ...p.record, key, id: new Uint8Array([i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255]) } as OhtRecord : p.record
    store.put({ key, record, expiresAt: clock.now() + HOUR, storedAt: clock.now(), refreshedAt: clock.now(), source: `peer${i % 50}` })
  }
  const putMs = performance.now() - t0
  const after = heap()
  const wire = recordWireSize(pool[0].record)
  const perRecord = (after - before) / N
  perKind[kind] = {
    heapBytesPerRecord: Math.round(perRecord),
    beyondValue: Math.round(perRecord - VALUE),
    countedCost: recordCost(wire),
    wireBytes: wire,
    putsPerSec: Math.round(N / (putMs / 1000)),
    goalBeyondValue: 600,
    met: perRecord - VALUE <= 600
  }
  console.log(`${kind.padEnd(9)} ${Math.round(perRecord)} B of heap per record (${Math.round(perRecord - VALUE)} B beyond the ${VALUE}-byte value; goal <= 600), counted as ${recordCost(wire)} B against the limits; ${Math.round(N / (putMs / 1000))} puts/s`)
  if (store.size !== N) throw new Error(`stored ${store.size} of ${N}`)
  store.clear()
}
results.perRecord = perKind

// ---------------------------------------------------------------- 2. a flood against a node
{
  const clock = new FakeClock()
  let handler: DhtRequestHandler | undefined
  const nodeId = identityFromSeed(rng.bytes(32))
  const net: DhtNet = {
    async request () { throw new Error('the flooded node sends nothing here') },
    handle (h) { handler = h }
  }
  const node = createOhtNode({ addrs: ['mem:node'], limits: { maxStoreBytes: LIMIT, maxStoreRecords: 10_000_000, maxRecordsPerPeer: 10_000_000, maxBytesPerPeer: LIMIT, requestsPerSecondPerPeer: 1e9, burst: 1e9 } }, { identity: nodeId, net, clock, rng: rng.fork('node') })
  await node.start()
  const sybils: PeerContact[] = Array.from({ length: 50 }, () => ({ publicKey: identityFromSeed(rng.bytes(32)).publicKey, addrs: [] }))
  const before = heap()
  let accepted = 0
  let refused = 0
  for (let i = 0; refused < 1000 && i < 5_000_000; i++) {
    const from = sybils[i % sybils.length]
    const value = new Uint8Array(VALUE)
    new DataView(value.buffer).setUint32(0, i)
    const key = immutableKey(value)
    const meta = decodeResponse(await (handler as DhtRequestHandler)(from, encodeRequest({ type: 'get', addrs: [], key, metadataOnly: true }), {}))
    if (meta.type !== 'value') throw new Error(`GET answered ${meta.type}`)
    const res = decodeResponse(await (handler as DhtRequestHandler)(from, encodeRequest({ type: 'put', addrs: [], token: meta.token, key, remainingMs: HOUR, record: { kind: 'immutable', ttlMs: HOUR, value } }), {}))
    if (res.type === 'stored') accepted++
    else refused++
  }
  const grew = heap() - before
  const margin = 4 * 1024 * 1024
  const flood = {
    limitBytes: LIMIT,
    accepted,
    refusedAfterFull: refused,
    heapGrowthBytes: grew,
    withinLimitPlusMargin: grew <= LIMIT + margin,
    marginBytes: margin,
    baselineValueBytesOnly: accepted * VALUE,
    countedBytes: node.store.bytes
  }
  results.flood = flood
  console.log(`flood: ${accepted} records accepted under a ${(LIMIT / 1048576).toFixed(0)} MiB limit, then refused; heap grew ${(grew / 1048576).toFixed(1)} MiB (limit + ${margin / 1048576} MiB margin: ${flood.withinLimitPlusMargin ? 'met' : 'MISSED'}); counting only values (the old rule) would have called them ${(accepted * VALUE / 1048576).toFixed(2)} MiB`)
  await node.stop()
}

mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/store-memory.json', import.meta.url), JSON.stringify(results, null, 2))
console.log('wrote bench/results/store-memory.json')
