/**
 * The sandbox for untrusted reducers and validators: QuickJS compiled to WebAssembly
 * (quickjs-emscripten-core 0.32 with its release-sync wasm variant).
 *
 * Why QuickJS in wasm, among the options judged:
 * - node:vm is not a security boundary (its own documentation says so): a context shares the
 *   process, prototype tricks reach the host, and it has no memory limit.
 * - SES (hardened JavaScript) gives a frozen realm but no CPU or memory limit: an infinite
 *   loop or a memory bomb takes the host down unless it also runs in a worker we kill.
 * - isolated-vm gives real V8 isolates with memory limits, but it is a native addon built from
 *   source, in maintenance mode, and its last release for Node 20 is 5.x; newer majors need 22.
 * - QuickJS in wasm: the app's heap is inside a wasm linear memory it cannot leave; the runtime
 *   has a hard memory limit, a stack limit and an interrupt hook; it is pure JS + wasm, so it
 *   installs offline and runs the same on Node 20, 22 and 24. Cost: an interpreter, about an
 *   order of magnitude slower than V8's JIT (bench/doa-sandbox.ts measures the ratio).
 *
 * Limits and their determinism:
 * - CPU: counted, never timed. QuickJS calls the interrupt hook about every 10,000 bytecode
 *   branches or calls; the host counts those calls ("ticks") per op and interrupts an op past
 *   its budget. The same op on the same state costs the same ticks on every host, to within
 *   one tick (the hook's phase depends on what ran before), so apps must stay well under the
 *   budget: a decision at the edge could differ between hosts.
 * - Memory: `setMemoryLimit` on each app's runtime; past it QuickJS throws "out of memory".
 * - Stack: `setMaxStackSize`; past it, "stack overflow".
 * - Native work does not tick: one call of a builtin such as "x".repeat(1e5) is one step for
 *   the counter but takes a fraction of a millisecond, so a hostile loop of such calls could
 *   run for minutes inside its tick budget (measured here: ~1.5 s per tick). A wall-clock
 *   backstop from the injected Clock (default 2 s per op) protects the host from that; it is
 *   not deterministic, so an op it stops is reported as DOA_SANDBOX_CPU with `backstop` in its
 *   reason, and hosts may disagree about such an op. Honest apps never come near either.
 * After a CPU, memory or stack failure the app's runtime is thrown away and rebuilt from its
 * modules (state lives outside, as JSON), so the next call starts clean.
 *
 * Isolation: each app gets a fresh runtime and context; the harness (sandbox-harness.ts)
 * removes time, randomness, eval and host objects and freezes the realm before app code runs.
 * The only host functions in the context are `tick` (our budget counter) and those the
 * manifest requested and the user granted (`sandbox:*` capabilities). All runtimes of one
 * SandboxHost share one wasm instance; create one host per app for separate wasm memories.
 * If the wasm engine itself traps, that instance is discarded (DOA_SANDBOX_CRASHED) and the
 * host builds a new one for the next app.
 */
import { newQuickJSWASMModuleFromVariant, DefaultIntrinsics, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from 'quickjs-emscripten-core'
import variantExport from '@jitl/quickjs-wasmfile-release-sync'
import { fromHex, toHex } from '../core/bytes.ts'
import type { Logger } from '../core/logger.ts'
import { systemClock, type Clock } from '../core/clock.ts'
import { sha256, verifySignature } from '../crypto/index.ts'
import type { BundleFile } from './bundle.ts'
import { DoaError, type DoaErrorCode } from './errors.ts'
import { fromUtf8, utf8, type Json } from './json.ts'
import type { Capability } from './manifest.ts'
import type { AppLogic, ApplyResult, OpInput, OpOutcome } from './logic.ts'
import { HARNESS_SOURCE } from './sandbox-harness.ts'

export interface SandboxLimits {
  /** Heap of one app's runtime. @default 33554432 (32 MiB) */
  memoryBytes?: number
  /** Stack of one app's runtime. @default 262144 (256 KiB) */
  stackBytes?: number
  /** Interrupt ticks (each ~10,000 branches or calls) one op may use. @default 200 */
  cpuTicksPerOp?: number
  /** Ticks module loading and init() may use. @default 1000 */
  loadTicks?: number
  /** Wall-clock backstop per op (and per load), from the injected Clock. @default 2000 */
  wallMsPerOp?: number
  /** Largest state or batch crossing into or out of the sandbox, in characters. @default 8388608 */
  maxJsonChars?: number
  /** Log lines one call may write (with `sandbox:log`). @default 32 */
  maxLogLinesPerCall?: number
}

export interface SandboxHostInit { limits?: SandboxLimits }
export interface SandboxHostComponents {
  log?: Logger
  /** Source of the wall-clock backstop only (never of app-visible time). @default systemClock */
  clock?: Clock
}

export interface LoadAppOptions {
  /** The code bundle's files (only .js and .mjs files are loadable modules). */
  files: readonly BundleFile[]
  /** Path of the reducer module: exports `reduce(state, body, ctx)` and optionally `init()`. */
  reducer: string
  /** Path of the validator module (exports `validate(state, body, ctx)`), or null. */
  validator: string | null
  /** Capabilities the manifest requested AND the user granted. Only sandbox:* ones matter here. */
  grants: readonly Capability[]
  /** App name, for log lines. */
  name?: string
}

export interface AppSandbox extends AppLogic {
  /** Runs the validator alone (DOA_OP_REJECTED outcome when it refuses). */
  validate(state: Json, op: OpInput): OpOutcome
  /** Reduces one op without the validator; throws the DoaError of a failed outcome. */
  reduce(state: Json, op: OpInput): Json
  /** Times the app's runtime was rebuilt after a CPU, memory or stack failure. */
  readonly resets: number
  dispose(): void
}

export interface SandboxHost {
  loadApp(options: LoadAppOptions): Promise<AppSandbox>
  /** Disposes every app sandbox it made. */
  stop(): void
}

const DEFAULTS: Required<SandboxLimits> = {
  memoryBytes: 32 * 1024 * 1024,
  stackBytes: 256 * 1024,
  cpuTicksPerOp: 200,
  loadTicks: 1000,
  wallMsPerOp: 2000,
  maxJsonChars: 8 * 1024 * 1024,
  maxLogLinesPerCall: 32
}
const MAX_DEPTH = 64
// The package's types are CommonJS-shaped; under ESM its default export is the variant itself.
const variant = variantExport as unknown as Parameters<typeof newQuickJSWASMModuleFromVariant>[0]

export async function createSandboxHost (init: SandboxHostInit = {}, components: SandboxHostComponents = {}): Promise<SandboxHost> {
  const host = new SandboxHostImpl({ ...DEFAULTS, ...init.limits }, components)
  await host.ensureModule()
  return host
}

class SandboxHostImpl implements SandboxHost {
  private module: QuickJSWASMModule | undefined
  private readonly apps = new Set<AppSandboxImpl>()

  constructor (readonly limits: Required<SandboxLimits>, readonly components: SandboxHostComponents) {}

  async ensureModule (): Promise<QuickJSWASMModule> {
    this.module ??= await newQuickJSWASMModuleFromVariant(variant)
    return this.module
  }

  /** The wasm instance trapped: no runtime in it can be trusted any more. */
  crashed (): void {
    this.module = undefined
    for (const app of this.apps) app.markCrashed()
    this.apps.clear()
  }

  forget (app: AppSandboxImpl): void { this.apps.delete(app) }

  async loadApp (options: LoadAppOptions): Promise<AppSandbox> {
    const module = await this.ensureModule()
    const app = new AppSandboxImpl(this, module, options)
    app.build()
    this.apps.add(app)
    return app
  }

  stop (): void {
    for (const app of [...this.apps]) app.dispose()
  }
}

interface Instance { rt: QuickJSRuntime, ctx: QuickJSContext, api: QuickJSHandle }

function sandboxError (code: DoaErrorCode, message: string, cause?: unknown): DoaError {
  return new DoaError(code, message, { cause })
}

function normalizeModule (base: string, requested: string): string {
  if (!requested.startsWith('./') && !requested.startsWith('../')) {
    throw sandboxError('DOA_SANDBOX_LOAD', `module ${JSON.stringify(requested)} imported from ${base} is not a relative path into the app's code bundle`)
  }
  const parts = base.split('/').slice(0, -1)
  for (const seg of requested.split('/')) {
    if (seg === '.' || seg === '') continue
    if (seg === '..') { if (parts.length === 0) throw sandboxError('DOA_SANDBOX_LOAD', `${requested} climbs out of the code bundle`); parts.pop() } else parts.push(seg)
  }
  return parts.join('/')
}

class AppSandboxImpl implements AppSandbox {
  private inst: Instance | undefined
  private closed = false
  private crashedFlag = false
  private ticks = 0
  private budget = 0
  private opIndex = -1
  private interrupted = false
  private deadline = Infinity
  private backstopped = false
  private readonly clock: Clock
  private logLines = 0
  resets = 0
  private readonly sources = new Map<string, string>()
  private readonly lim: Required<SandboxLimits>

  constructor (private readonly host: SandboxHostImpl, private readonly module: QuickJSWASMModule, private readonly opts: LoadAppOptions) {
    this.lim = host.limits
    this.clock = host.components.clock ?? systemClock
    for (const f of opts.files) {
      if (f.path.endsWith('.js') || f.path.endsWith('.mjs')) this.sources.set(f.path, fromUtf8(f.data))
    }
    for (const p of [opts.reducer, opts.validator]) {
      if (p !== null && !this.sources.has(p)) throw sandboxError('DOA_SANDBOX_LOAD', `module ${p} is not a .js/.mjs file of the code bundle`)
    }
  }

  markCrashed (): void { this.crashedFlag = true; this.inst = undefined }

  private guard<T> (fn: () => T): T {
    if (this.crashedFlag) throw sandboxError('DOA_SANDBOX_CRASHED', 'the WebAssembly engine of this sandbox trapped earlier; load the app again')
    if (this.closed) throw sandboxError('DOA_SANDBOX_CLOSED', 'this app sandbox was disposed')
    try {
      return fn()
    } catch (err) {
      if (err instanceof DoaError) throw err
      // Anything else comes from the wasm engine itself (a trap, an abort): discard it all.
      this.host.crashed()
      throw sandboxError('DOA_SANDBOX_CRASHED', `the sandbox engine failed: ${(err as Error)?.message ?? String(err)}`, err)
    }
  }

  build (): void {
    this.guard(() => { this.inst = this.createInstance() })
  }

  private createInstance (): Instance {
    const rt = this.module.newRuntime()
    rt.setMemoryLimit(this.lim.memoryBytes)
    rt.setMaxStackSize(this.lim.stackBytes)
    rt.setInterruptHandler(() => {
      this.ticks++
      if (this.ticks > this.budget) { this.interrupted = true; return true }
      if (this.clock.monotonic() > this.deadline) { this.interrupted = true; this.backstopped = true; return true }
      return false
    })
    rt.setModuleLoader((name) => {
      const src = this.sources.get(name)
      if (src === undefined) return { error: new Error(`module ${name} is not in the app's code bundle`) }
      return src
    }, (base, requested) => normalizeModule(base, requested))
    const ctx = rt.newContext({ intrinsics: { ...DefaultIntrinsics, Date: false } })
    let api: QuickJSHandle | undefined
    try {
      api = this.installHarness(ctx)
      this.loadModules(ctx, api)
      return { rt, ctx, api }
    } catch (err) {
      api?.dispose()
      ctx.dispose()
      rt.dispose()
      throw err
    }
  }

  private startBudget (ticks: number): void {
    this.ticks = 0
    this.budget = ticks
    this.deadline = this.clock.monotonic() + this.lim.wallMsPerOp
    this.backstopped = false
  }

  private installHarness (ctx: QuickJSContext): QuickJSHandle {
    this.startBudget(this.lim.loadTicks)
    const factory = this.unwrap(ctx, ctx.evalCode(HARNESS_SOURCE, 'doa-harness.js', { type: 'global', strict: true }), 'DOA_SANDBOX_LOAD', 'harness')
    const fns = ctx.newObject()
    const grants = ctx.newArray()
    try {
      const add = (name: string, fn: (...args: QuickJSHandle[]) => QuickJSHandle | undefined): void => {
        const h = ctx.newFunction(name, fn)
        ctx.setProp(fns, name, h)
        h.dispose()
      }
      add('tick', () => { this.opIndex++; this.startBudget(this.lim.cpuTicksPerOp); return undefined })
      const granted = new Set(this.opts.grants)
      if (granted.has('sandbox:log')) {
        add('log', (line) => {
          if (this.logLines++ < this.lim.maxLogLinesPerCall) this.host.components.log?.(`app ${this.opts.name ?? '?'}: %s`, ctx.getString(line))
          return undefined
        })
      }
      if (granted.has('sandbox:sha256')) {
        add('sha256', (text) => ctx.newString(toHex(sha256(utf8(ctx.getString(text).slice(0, 1 << 20))))))
      }
      if (granted.has('sandbox:ed25519')) {
        add('verifyEd25519', (pub, msg, sig) => {
          let ok = false
          try { ok = verifySignature(fromHex(ctx.getString(pub)), utf8(ctx.getString(msg).slice(0, 1 << 20)), fromHex(ctx.getString(sig))) } catch { ok = false }
          return ok ? ctx.true : ctx.false
        })
      }
      this.opts.grants.forEach((g, i) => {
        const s = ctx.newString(g)
        ctx.setProp(grants, i, s)
        s.dispose()
      })
      const depth = ctx.newNumber(MAX_DEPTH)
      const api = this.unwrap(ctx, ctx.callFunction(factory, ctx.undefined, fns, grants, depth), 'DOA_SANDBOX_LOAD', 'harness')
      depth.dispose()
      this.callApi(ctx, api, 'lockdown', [], 'DOA_SANDBOX_LOAD').dispose()
      return api
    } finally {
      factory.dispose(); fns.dispose(); grants.dispose()
    }
  }

  private loadModules (ctx: QuickJSContext, api: QuickJSHandle): void {
    this.startBudget(this.lim.loadTicks); this.opIndex = -1
    const exportsOf = (path: string): QuickJSHandle => {
      const res = ctx.evalCode(this.sources.get(path) as string, path, { type: 'module' })
      const ns = this.unwrap(ctx, res, 'DOA_SANDBOX_LOAD', `module ${path}`)
      const st = ctx.getPromiseState(ns)
      if (st.type === 'fulfilled' && st.notAPromise === true) return ns
      ns.dispose()
      if (st.type === 'fulfilled') return st.value
      if (st.type === 'rejected') { const e = ctx.dump(st.error); st.error.dispose(); throw sandboxError('DOA_SANDBOX_LOAD', `module ${path} failed: ${describe(e)}`) }
      throw sandboxError('DOA_SANDBOX_LOAD', `module ${path} uses top-level await, which reducers may not`)
    }
    const red = exportsOf(this.opts.reducer)
    const val = this.opts.validator === null ? undefined : (this.opts.validator === this.opts.reducer ? red : exportsOf(this.opts.validator))
    try {
      const reduce = ctx.getProp(red, 'reduce')
      const initFn = ctx.getProp(red, 'init')
      const validate = val === undefined ? ctx.undefined : ctx.getProp(val, 'validate')
      try {
        if (ctx.typeof(reduce) !== 'function') throw sandboxError('DOA_SANDBOX_LOAD', `${this.opts.reducer} does not export a function reduce(state, body, ctx)`)
        if (ctx.typeof(initFn) !== 'function' && ctx.typeof(initFn) !== 'undefined') throw sandboxError('DOA_SANDBOX_LOAD', `${this.opts.reducer} exports an init that is not a function`)
        if (val !== undefined && ctx.typeof(validate) !== 'function') throw sandboxError('DOA_SANDBOX_LOAD', `${this.opts.validator ?? ''} does not export a function validate(state, body, ctx)`)
        this.callApi(ctx, api, 'setModule', [initFn, reduce, validate], 'DOA_SANDBOX_LOAD').dispose()
      } finally {
        reduce.dispose(); initFn.dispose(); validate.dispose()
      }
    } finally {
      red.dispose()
      if (val !== undefined && val !== red) val.dispose()
    }
  }

  private unwrap (ctx: QuickJSContext, res: { error?: QuickJSHandle, value?: QuickJSHandle }, code: DoaErrorCode, what: string): QuickJSHandle {
    if (res.error !== undefined) {
      const e = ctx.dump(res.error)
      res.error.dispose()
      if (this.interrupted) {
        this.interrupted = false
        if (this.backstopped) throw sandboxError('DOA_SANDBOX_CPU', `${what} ran past the ${this.lim.wallMsPerOp} ms wall-clock backstop (native work the tick budget does not count)`)
        throw sandboxError('DOA_SANDBOX_CPU', `${what} ran past its instruction budget of ${this.budget} ticks`)
      }
      const m = describe(e)
      if (m.includes('out of memory')) throw sandboxError('DOA_SANDBOX_MEMORY', `${what} ran out of its ${this.lim.memoryBytes}-byte memory limit`)
      if (m.includes('stack overflow')) throw sandboxError('DOA_SANDBOX_STACK', `${what} recursed past its ${this.lim.stackBytes}-byte stack limit`)
      if (m.includes('DOA sandbox:')) throw sandboxError('DOA_SANDBOX_FORBIDDEN', `${what}: ${m}`)
      throw sandboxError(code, `${what} failed: ${m}`)
    }
    return res.value as QuickJSHandle
  }

  private callApi (ctx: QuickJSContext, api: QuickJSHandle, method: string, args: QuickJSHandle[], code: DoaErrorCode): QuickJSHandle {
    const fn = ctx.getProp(api, method)
    try {
      return this.unwrap(ctx, ctx.callFunction(fn, api, ...args), code, method)
    } finally { fn.dispose() }
  }

  private callJson (method: string, args: Array<string | boolean>): Json {
    const inst = this.inst
    if (inst === undefined) throw sandboxError('DOA_SANDBOX_CLOSED', 'this app sandbox has no runtime')
    const { ctx, api } = inst
    for (const a of args) if (typeof a === 'string' && a.length > this.lim.maxJsonChars) throw sandboxError('DOA_TOO_LARGE', `input of ${a.length} characters is over the sandbox's ${this.lim.maxJsonChars}-character limit`)
    const handles = args.map(a => typeof a === 'string' ? ctx.newString(a) : (a ? ctx.true : ctx.false))
    this.interrupted = false
    this.logLines = 0
    // Ops are numbered by the harness's tick() calls from 0; -1 = before the first (init, setup).
    // 'recover' reads what the interrupted call left: it must see that call's op number.
    if (method !== 'recover') this.opIndex = -1
    this.startBudget(this.lim.loadTicks)
    try {
      const out = this.callApi(ctx, api, method, handles, 'DOA_SANDBOX_THREW')
      const text = ctx.getString(out)
      out.dispose()
      if (text.length > this.lim.maxJsonChars) throw sandboxError('DOA_SANDBOX_BAD_OUTPUT', `output of ${text.length} characters is over the ${this.lim.maxJsonChars}-character limit`)
      return JSON.parse(text) as Json
    } finally {
      for (const h of handles) h.dispose()
    }
  }

  /** Throws away the runtime after a CPU/memory/stack failure and builds a fresh one. */
  private reset (): void {
    const old = this.inst
    this.inst = undefined
    if (old !== undefined) { old.api.dispose(); old.ctx.dispose(); old.rt.dispose() }
    this.resets++
    this.inst = this.createInstance()
  }

  init (): Json {
    return this.guard(() => {
      const r = this.callJson('init', []) as { state?: Json, error?: OpOutcome }
      if (r.error !== undefined && !r.error.ok) throw sandboxError(r.error.code, `app init: ${r.error.reason}`)
      return r.state ?? null
    })
  }

  applyMany (state: Json, ops: readonly OpInput[], options: { validate?: boolean } = {}): ApplyResult {
    return this.guard(() => {
      const useValidator = options.validate !== false
      let cur = state
      const outcomes: OpOutcome[] = []
      let start = 0
      while (start < ops.length) {
        const batch = ops.slice(start).map(o => [o.body, o.ctx])
        try {
          const r = this.callJson('apply', [JSON.stringify(cur), JSON.stringify(batch), useValidator]) as { state: Json, outcomes: OpOutcome[] }
          return { state: r.state, outcomes: [...outcomes, ...r.outcomes] }
        } catch (err) {
          if (!(err instanceof DoaError) || !['DOA_SANDBOX_CPU', 'DOA_SANDBOX_MEMORY', 'DOA_SANDBOX_STACK'].includes(err.code) || this.opIndex < 0) throw err
          // One op blew a limit the harness cannot catch: keep what completed before it, fail
          // that op, rebuild the runtime and go on with the rest.
          let partial: { state: Json, outcomes: OpOutcome[] } | undefined
          try { partial = this.callJson('recover', []) as { state: Json, outcomes: OpOutcome[] } } catch { partial = undefined }
          const done = partial?.outcomes.length ?? 0
          if (partial === undefined || done !== this.opIndex) throw err
          cur = partial.state
          outcomes.push(...partial.outcomes, { ok: false, code: err.code, reason: err.message })
          start += done + 1
          this.reset()
        }
      }
      return { state: cur, outcomes }
    })
  }

  reduce (state: Json, op: OpInput): Json {
    const r = this.applyMany(state, [op], { validate: false })
    const o = r.outcomes[0]
    if (!o.ok) throw sandboxError(o.code, o.reason)
    return r.state
  }

  validate (state: Json, op: OpInput): OpOutcome {
    return this.guard(() => {
      try {
        return this.callJson('validate', [JSON.stringify(state), JSON.stringify(op.body), JSON.stringify(op.ctx)]) as OpOutcome
      } catch (err) {
        if (err instanceof DoaError && ['DOA_SANDBOX_CPU', 'DOA_SANDBOX_MEMORY', 'DOA_SANDBOX_STACK'].includes(err.code)) {
          this.reset()
          return { ok: false, code: err.code, reason: err.message }
        }
        throw err
      }
    })
  }

  dispose (): void {
    if (this.closed) return
    this.closed = true
    this.host.forget(this)
    const inst = this.inst
    this.inst = undefined
    if (inst === undefined || this.crashedFlag) return
    try { inst.api.dispose(); inst.ctx.dispose(); inst.rt.dispose() } catch { this.host.crashed() }
  }
}

function describe (e: unknown): string {
  if (e !== null && typeof e === 'object') {
    const o = e as { name?: unknown, message?: unknown }
    if (typeof o.message === 'string') return `${typeof o.name === 'string' ? o.name + ': ' : ''}${o.message.slice(0, 500)}`
  }
  try { return JSON.stringify(e).slice(0, 500) } catch { return String(e) }
}
