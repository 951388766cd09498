import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { isCodedError } from '../../src/core/index.ts'
import { createSandboxHost, utf8, type AppSandbox, type OpInput, type SandboxHost } from '../../src/doa/index.ts'

const REDUCER = `
import { add } from './lib/math.js'
export function init () { return { n: 0, authors: [] } }
export function reduce (state, body, ctx) {
  switch (body.t) {
    case 'loop': for (;;) {}
    case 'bomb': { const a = []; for (;;) a.push({ a: a.length, b: [1, 2, 3] }) }
    case 'deep': { const f = (n) => f(n + 1) + 1; return f(0) }
    case 'date': return { t: Date.now() }
    case 'date-caught': try { return { t: new Date().getTime() } } catch (e) { return state }
    case 'random': return { r: Math.random() }
    case 'process': return { p: process.env }
    case 'require': return require('fs')
    case 'global-escape': return { f: globalThis.constructor.constructor('return this')() }
    case 'fn-ctor': return (function () {}).constructor('return 1')()
    case 'eval': return eval('1')
    case 'patch': Object.prototype.evil = 1; return state
    case 'global-stash': globalThis.stash = 1; return state
    case 'undefined': return undefined
    case 'fn-out': return { f () {} }
    case 'nan': return { x: NaN }
    case 'cycle': { const o = {}; o.o = o; return o }
    case 'getter': return { ...state, get n () { return 5 } }
    case 'setter': return { ...state, set z (v) {} }
    case 'index-getter': { const a = [1, 2]; Object.defineProperty(a, 1, { get () { return 2 }, enumerable: true }); return { ...state, a } }
    case 'hidden': { const o = { ...state }; Object.defineProperty(o, 'h', { value: 1, enumerable: false }); return o }
    case 'sparse': { const a = [1, 2, 3]; delete a[1]; return { ...state, a } }
    case 'array-extra': { const a = [1]; a.x = 2; return { ...state, a } }
    case 'symbol': return { ...state, [Symbol.iterator]: 1 }
    case 'map': return { ...state, m: new Map() }
    case 'null-proto-getter': { const o = Object.create(null); Object.defineProperty(o, 'g', { get () { return 1 }, enumerable: true }); return { ...state, o } }
    case 'minus-zero': return { ...state, z: -0, zs: [-0, { y: -0 }] }
    case 'probe-zero': return { ...state, neg: [Object.is(state.z, -0), Object.is(state.zs[0], -0), Object.is(state.zs[1].y, -0)] }
    case 'mutate': state.n = 99; return state
    case 'throw': throw new Error('no such op')
    case 'log': host.log('n is', state.n); return state
    case 'hash': return { ...state, h: host.sha256('abc') }
    default: return { n: add(state.n, body.by), authors: [...state.authors, ctx.author] }
  }
}`
const VALIDATOR = 'export function validate (state, body) { return body.by === 13 ? \'13 is not allowed\' : true }'

const files = [
  { path: 'reducer.js', data: utf8(REDUCER) },
  { path: 'lib/math.js', data: utf8('export const add = (a, b) => a + b') },
  { path: 'validator.js', data: utf8(VALIDATOR) }
]
const op = (body: Record<string, unknown>, seq = 1): OpInput => ({ body: body as never, ctx: { id: 'i', author: 'a', seq, lamport: seq, time: 0 } })

describe('doa sandbox', () => {
  let host: SandboxHost
  let app: AppSandbox
  const logs: string[] = []
  before(async () => {
    host = await createSandboxHost({ limits: { cpuTicksPerOp: 50, memoryBytes: 8 * 1024 * 1024 } }, { log: Object.assign((m: string, ...a: unknown[]) => { logs.push(m.replace('%s', String(a[0]))) }, { enabled: true, namespace: 't', error () {}, warn () {}, extend () { return this } }) as never })
    app = await host.loadApp({ files, reducer: 'reducer.js', validator: 'validator.js', grants: [], name: 'test' })
  })
  after(() => { host.stop() })

  const start = (): unknown => app.init()
  const assertHealthy = (): void => {
    assert.deepEqual(app.reduce({ n: 1, authors: [] }, op({ by: 2 })), { n: 3, authors: ['a'] }, 'the next call in the same host works')
  }

  it('folds ops with imports between modules and runs the validator', () => {
    const s = start()
    assert.deepEqual(s, { n: 0, authors: [] })
    const r = app.applyMany(s as never, [op({ by: 2 }), op({ by: 13 }), op({ by: 5 })])
    assert.deepEqual(r.state, { n: 7, authors: ['a', 'a'] })
    assert.deepEqual(r.outcomes.map(o => o.ok ? 'ok' : o.code), ['ok', 'DOA_OP_REJECTED', 'ok'])
    assert.deepEqual(app.validate(s as never, op({ by: 13 })), { ok: false, code: 'DOA_OP_REJECTED', reason: '13 is not allowed' })
  })

  const limitCases: Array<[string, string]> = [
    ['loop', 'DOA_SANDBOX_CPU'],
    ['bomb', 'DOA_SANDBOX_MEMORY'],
    ['deep', 'DOA_SANDBOX_STACK'],
    ['date', 'DOA_SANDBOX_FORBIDDEN'],
    ['date-caught', 'DOA_SANDBOX_FORBIDDEN'],
    ['random', 'DOA_SANDBOX_FORBIDDEN'],
    ['process', 'DOA_SANDBOX_FORBIDDEN'],
    ['require', 'DOA_SANDBOX_FORBIDDEN'],
    ['global-escape', 'DOA_SANDBOX_FORBIDDEN'],
    ['fn-ctor', 'DOA_SANDBOX_FORBIDDEN'],
    ['eval', 'DOA_SANDBOX_FORBIDDEN'],
    ['patch', 'DOA_SANDBOX_THREW'],
    ['global-stash', 'DOA_SANDBOX_THREW'],
    ['undefined', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['fn-out', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['nan', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['cycle', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['getter', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['setter', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['index-getter', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['hidden', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['sparse', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['array-extra', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['symbol', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['map', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['null-proto-getter', 'DOA_SANDBOX_BAD_OUTPUT'],
    ['mutate', 'DOA_SANDBOX_THREW'],
    ['throw', 'DOA_SANDBOX_THREW'],
    ['log', 'DOA_SANDBOX_THREW'],
    ['hash', 'DOA_SANDBOX_THREW']
  ]
  for (const [t, code] of limitCases) {
    it(`ends "${t}" with ${code}, leaves the state as it was and stays usable`, () => {
      const s = { n: 1, authors: [] }
      assert.throws(() => app.reduce(s, op({ t })), (e: unknown) => isCodedError(e, code), t)
      const r = app.applyMany(s, [op({ by: 1 }), op({ t }), op({ by: 1 })])
      assert.deepEqual(r.outcomes.map(o => o.ok ? 'ok' : o.code), ['ok', code, 'ok'])
      assert.deepEqual(r.state, { n: 3, authors: ['a', 'a'] })
      assertHealthy()
    })
  }

  it('installs only granted capabilities', async () => {
    const granted = await host.loadApp({ files, reducer: 'reducer.js', validator: null, grants: ['sandbox:log', 'sandbox:sha256'], name: 'granted' })
    try {
      assert.deepEqual(granted.reduce({ n: 4, authors: [] }, op({ t: 'hash' })), { n: 4, authors: [], h: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' })
      granted.reduce({ n: 4, authors: [] }, op({ t: 'log' }))
      assert.ok(logs.some(l => l.includes('n is 4')), logs.join('\n'))
    } finally { granted.dispose() }
  })

  it('rebuilds its runtime after a limit failure, and refuses use after dispose', async () => {
    const other = await host.loadApp({ files, reducer: 'reducer.js', validator: null, grants: [] })
    const before = other.resets
    assert.throws(() => other.reduce({ n: 0, authors: [] }, op({ t: 'loop' })), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_CPU'))
    assert.equal(other.resets, before + 1)
    other.dispose()
    assert.throws(() => other.init(), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_CLOSED'))
  })

  it('refuses to load modules that are missing, import outside the bundle, or run too long at load', async () => {
    await assert.rejects(host.loadApp({ files, reducer: 'nope.js', validator: null, grants: [] }), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_LOAD'))
    const escape = [{ path: 'r.js', data: utf8("import fs from 'fs'; export function reduce (s) { return s }") }]
    await assert.rejects(host.loadApp({ files: escape, reducer: 'r.js', validator: null, grants: [] }), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_LOAD'))
    const spin = [{ path: 'r.js', data: utf8('for (;;) {} export function reduce (s) { return s }') }]
    await assert.rejects(host.loadApp({ files: spin, reducer: 'r.js', validator: null, grants: [] }), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_CPU'))
    const noReduce = [{ path: 'r.js', data: utf8('export const x = 1') }]
    await assert.rejects(host.loadApp({ files: noReduce, reducer: 'r.js', validator: null, grants: [] }), (e: unknown) => isCodedError(e, 'DOA_SANDBOX_LOAD'))
    assertHealthy()
  })

  it('turns -0 into 0 in a new state, so the next op of a batch sees what JSON would give it', () => {
    const r = app.applyMany({ n: 1, authors: [] }, [op({ t: 'minus-zero' }), op({ t: 'probe-zero' })], { validate: false })
    assert.deepEqual((r.state as { neg: boolean[] }).neg, [false, false, false])
  })

  it('gives the same result for the same ops whether applied one by one or in one batch', () => {
    const ops = Array.from({ length: 30 }, (_, i) => op({ by: i % 7 === 3 ? 13 : i }, i + 1))
    let s = app.init()
    for (const o of ops) s = app.applyMany(s, [o]).state
    assert.deepEqual(app.applyMany(app.init(), ops).state, s)
  })
})
