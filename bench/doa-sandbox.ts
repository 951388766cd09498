/**
 * DOA sandbox benchmark: the same reducer source folded (a) as plain JavaScript in V8, (b) in
 * the QuickJS/wasm sandbox in batches (how replay runs), (c) in the sandbox one op per call;
 * plus sandbox start-up (wasm module, then one app's runtime and modules) and per-call
 * overhead (p50/p95 of a trivial op). Ratios are against the plain-JS baseline of the same run.
 *
 * Usage: node --import tsx bench/doa-sandbox.ts [ops=20000]
 * Writes bench/results/doa-sandbox.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { createSandboxHost, plainLogic, utf8, type Json, type OpInput } from '../src/doa/index.ts'

const OPS = Number(process.argv[2] ?? 20_000)
const now = (): number => performance.now()
function pct (xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const r2 = (x: number): number => Math.round(x * 100) / 100

// A chat-like reducer: the last 50 messages and a count per author, immutable updates.
const SOURCE = `export function init () { return { last: [], counts: {}, total: 0 } }
export function reduce (s, body, ctx) {
  const last = s.last.length >= 50 ? [...s.last.slice(1), { a: ctx.author, t: body.text }] : [...s.last, { a: ctx.author, t: body.text }]
  return { last, counts: { ...s.counts, [ctx.author]: (s.counts[ctx.author] ?? 0) + 1 }, total: s.total + body.text.length }
}
export function validate (s, body) { return typeof body.text === 'string' && body.text.length <= 280 ? true : 'bad message' }`

const authors = Array.from({ length: 8 }, (_, i) => 'a'.repeat(63) + String(i))
const ops: OpInput[] = Array.from({ length: OPS }, (_, i) => ({
  body: { text: `message number ${i} with a little text` },
  ctx: { id: String(i), author: authors[i % authors.length], seq: Math.floor(i / authors.length) + 1, lamport: i + 1, time: 0 }
}))
const results: Record<string, unknown> = { ops: OPS, node: process.version }

// Plain JS: the very same source, loaded as a module by V8.
const mod = await import('data:text/javascript,' + encodeURIComponent(SOURCE)) as { init(): Json, reduce(s: Json, b: Json, c: unknown): Json, validate(s: Json, b: Json): true | string }
let t = now()
let s: Json = mod.init()
for (const op of ops) { if (mod.validate(s, op.body) === true) s = mod.reduce(s, op.body, op.ctx) }
const plainMs = now() - t
const plainState = JSON.stringify(s)

// plainLogic: the same, with the canonical-JSON copies the replay contract implies.
const logic = plainLogic({ init: mod.init, reduce: mod.reduce, validate: mod.validate })
t = now()
let ls = logic.init()
for (let i = 0; i < ops.length; i += 256) ls = logic.applyMany(ls, ops.slice(i, i + 256)).state
const plainLogicMs = now() - t

// Sandbox start-up.
t = now()
const host = await createSandboxHost()
const moduleMs = now() - t
const loads: number[] = []
for (let i = 0; i < 10; i++) {
  t = now()
  const a = await host.loadApp({ files: [{ path: 'app.js', data: utf8(SOURCE) }], reducer: 'app.js', validator: 'app.js', grants: [] })
  loads.push(now() - t)
  a.dispose()
}
const app = await host.loadApp({ files: [{ path: 'app.js', data: utf8(SOURCE) }], reducer: 'app.js', validator: 'app.js', grants: [] })

// Sandbox, batched as replay does (one batch = one checkpoint interval).
t = now()
let ss = app.init()
for (let i = 0; i < ops.length; i += 256) ss = app.applyMany(ss, ops.slice(i, i + 256)).state
const batchMs = now() - t
if (JSON.stringify(ss) !== plainState && JSON.stringify(JSON.parse(JSON.stringify(ss))) !== plainState) console.warn('warning: sandbox and plain states differ in key order (hashes use canonical JSON)')

// Sandbox, one op per call (the state crosses the boundary every op).
const single = Math.min(OPS, 2000)
t = now()
let s1 = app.init()
for (let i = 0; i < single; i++) s1 = app.applyMany(s1, [ops[i]]).state
const singleMs = now() - t

// Per-call overhead: a trivial op on a tiny state.
const tiny = await host.loadApp({ files: [{ path: 'r.js', data: utf8('export function reduce (s, b) { return s + b }') }], reducer: 'r.js', validator: null, grants: [] })
const calls: number[] = []
for (let i = 0; i < 2000; i++) { t = now(); tiny.applyMany(1, [{ body: 1, ctx: ops[0].ctx }]); calls.push(now() - t) }

const rate = (n: number, ms: number): number => Math.round(n / (ms / 1000))
results.plainJs = { opsPerSec: rate(OPS, plainMs) }
results.plainLogic = { opsPerSec: rate(OPS, plainLogicMs), ratioToPlain: r2(plainLogicMs / plainMs) }
results.sandboxBatched = { opsPerSec: rate(OPS, batchMs), slowdownVsPlainJs: r2(batchMs / plainMs), slowdownVsPlainLogic: r2(batchMs / plainLogicMs) }
results.sandboxOnePerCall = { ops: single, opsPerSec: rate(single, singleMs) }
results.startup = { wasmModuleMs: r2(moduleMs), loadAppP50Ms: r2(pct(loads, 50)), loadAppP95Ms: r2(pct(loads, 95)) }
results.perCall = { p50Ms: r2(pct(calls, 50)), p95Ms: r2(pct(calls, 95)) }
console.log(`plain JS reducer:          ${rate(OPS, plainMs)} ops/s`)
console.log(`plainLogic (JSON copies):  ${rate(OPS, plainLogicMs)} ops/s`)
console.log(`sandbox, batches of 256:   ${rate(OPS, batchMs)} ops/s  (${r2(batchMs / plainMs)}x slower than plain JS, ${r2(batchMs / plainLogicMs)}x than plainLogic)`)
console.log(`sandbox, one op per call:  ${rate(single, singleMs)} ops/s`)
console.log(`start-up: wasm module ${r2(moduleMs)} ms; app runtime + modules p50 ${r2(pct(loads, 50))} ms, p95 ${r2(pct(loads, 95))} ms`)
console.log(`per-call overhead (trivial op): p50 ${r2(pct(calls, 50))} ms, p95 ${r2(pct(calls, 95))} ms`)
tiny.dispose(); app.dispose(); host.stop()
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/doa-sandbox.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
