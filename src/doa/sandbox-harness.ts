/**
 * The harness: our own code, evaluated inside each app's QuickJS context before any app code.
 * It removes every source of time, randomness and host access, freezes the intrinsics, and is
 * the only caller of the app's reducer and validator. The host holds the object it returns;
 * app code cannot reach it (it is never put on globalThis).
 *
 * Why each step:
 * - Forbidden globals become getters that record the attempt and throw, so an app that reads
 *   `Date`, `Math.random`, `process`, `require`, `eval`, `Function`, WeakRef … fails the call
 *   with DOA_SANDBOX_FORBIDDEN even if it catches the TypeError.
 * - Function constructors (reachable as `(function(){}).constructor`) are tamed the same way:
 *   no code enters the context but the bundle's modules.
 * - Every intrinsic and globalThis are deep-frozen: app code can neither patch what the harness
 *   relies on nor keep state in globals between calls (module-level variables remain possible
 *   and are documented as a bug of the app: they would diverge across snapshot joins).
 * - State is deep-frozen (sealed) before each reducer call, so a reducer that throws half-way
 *   cannot leave half a change behind; reducers return new objects (Redux style). Sealing
 *   checks that the value is JSON data (plain objects, dense arrays, finite numbers, no
 *   accessors) and turns -0 into 0, because anything else would change shape through JSON and
 *   make hosts disagree. Objects already sealed are skipped, so an op costs what it changes.
 * - `tick()` before each op lets the host count the instruction budget per op, exactly (the host
 *   numbers the ops itself: a call without arguments is the cheapest crossing there is).
 */
export const HARNESS_SOURCE = String.raw`(function (hostFns, grants, maxDepth) {
  'use strict'
  const G = globalThis
  const O = Object
  const freeze = O.freeze
  const getProto = O.getPrototypeOf
  const getOwnNames = O.getOwnPropertyNames
  const getSymbols = O.getOwnPropertySymbols
  const getDesc = O.getOwnPropertyDescriptor
  const keysOf = O.keys
  const defProp = O.defineProperty
  const isArray = Array.isArray
  const ObjProto = O.prototype
  // Called with .call on the value checked, so they work on null-prototype objects too.
  const lookupGetter = ObjProto.__lookupGetter__
  const lookupSetter = ObjProto.__lookupSetter__
  const ArrProto = Array.prototype
  const parse = JSON.parse
  const stringify = JSON.stringify
  const WS = WeakSet
  const wsHas = WeakSet.prototype.has
  const wsAdd = WeakSet.prototype.add
  const apply = Reflect.apply
  const InternalErr = typeof InternalError === 'function' ? InternalError : undefined
  const TypeErr = TypeError
  const Err = Error
  const isObjIs = O.is
  const tick = hostFns.tick

  let violation = null
  function forbid (name) {
    return function () {
      if (violation === null) violation = name
      throw new TypeErr('DOA sandbox: ' + name + ' is not available to app code')
    }
  }

  const FORBIDDEN = ['Date', 'process', 'require', 'module', 'exports', 'fetch', 'setTimeout', 'setInterval',
    'clearTimeout', 'clearInterval', 'setImmediate', 'queueMicrotask', 'WebAssembly', 'SharedArrayBuffer',
    'Atomics', 'WeakRef', 'FinalizationRegistry', 'performance', 'crypto', 'XMLHttpRequest', 'WebSocket',
    'Worker', 'navigator', 'eval', 'Function', 'console', 'os', 'std', 'scriptArgs', 'print', 'gc']

  let sealed = null

  // Checks that v is JSON data and deep-freezes it. Returns a reason string when it is not.
  // Per property it reads the value and asks __lookupGetter__/__lookupSetter__ whether it is an
  // accessor: no descriptor object is allocated, which is most of what sealing costs.
  function seal (v, depth) {
    if (v === null) return null
    const t = typeof v
    if (t === 'string' || t === 'boolean') return null
    if (t === 'number') return (v === v && v !== Infinity && v !== -Infinity) ? null : 'a non-finite number'
    if (t !== 'object') return 'a value of type ' + t
    if (sealed.has(v)) return null
    if (depth > maxDepth) return 'nesting deeper than ' + maxDepth + ' levels (or a cycle)'
    const proto = getProto(v)
    const arr = isArray(v)
    if (arr ? proto !== ArrProto : (proto !== ObjProto && proto !== null)) return 'an object that is not a plain object or array'
    if (getSymbols(v).length !== 0) return 'an object with symbol keys'
    const names = getOwnNames(v)
    if (arr) {
      const n = v.length
      if (names.length !== n + 1) return 'a sparse array or an array with extra properties'
      for (let i = 0; i < n; i++) {
        if (lookupGetter.call(v, i) !== undefined || lookupSetter.call(v, i) !== undefined) return 'an accessor property ' + i
        const x = v[i]
        if (x === null || typeof x === 'string' || typeof x === 'boolean') continue
        if (x === 0 && isObjIs(x, -0)) { v[i] = 0; continue }
        if (typeof x === 'object' && sealed.has(x)) continue
        const r = seal(x, depth + 1)
        if (r !== null) return r
      }
    } else {
      // Object literals cannot make hidden properties; only defineProperty can.
      if (keysOf(v).length !== names.length) return 'an object with hidden (non-enumerable) properties'
      for (let i = 0; i < names.length; i++) {
        const k = names[i]
        if (lookupGetter.call(v, k) !== undefined || lookupSetter.call(v, k) !== undefined) return 'an accessor property ' + stringify(k)
        const x = v[k]
        if (x === null || typeof x === 'string' || typeof x === 'boolean') continue
        if (x === 0 && isObjIs(x, -0)) { v[k] = 0; continue }
        if (typeof x === 'object' && sealed.has(x)) continue
        const r = seal(x, depth + 1)
        if (r !== null) return r
      }
    }
    freeze(v)
    sealed.add(v)
    return null
  }

  function deepFreeze (root) {
    const seen = new WS()
    const todo = [root]
    while (todo.length > 0) {
      const o = todo.pop()
      if (o === null || (typeof o !== 'object' && typeof o !== 'function')) continue
      if (apply(wsHas, seen, [o])) continue
      apply(wsAdd, seen, [o])
      const p = getProto(o)
      if (p !== null) todo.push(p)
      const names = getOwnNames(o)
      for (let i = 0; i < names.length; i++) {
        const d = getDesc(o, names[i])
        if (d === undefined) continue
        if ('value' in d) todo.push(d.value)
        else { if (d.get) todo.push(d.get); if (d.set) todo.push(d.set) }
      }
      const syms = getSymbols(o)
      for (let i = 0; i < syms.length; i++) {
        const d = getDesc(o, syms[i])
        if (d !== undefined && 'value' in d) todo.push(d.value)
      }
      freeze(o)
    }
  }

  function lockdown () {
    for (let i = 0; i < FORBIDDEN.length; i++) {
      const name = FORBIDDEN[i]
      try { delete G[name] } catch (e) {}
      defProp(G, name, { get: forbid(name), set: forbid(name), configurable: false, enumerable: false })
    }
    defProp(Math, 'random', { get: forbid('Math.random'), configurable: false, enumerable: false })
    const fnProtos = [getProto(function () {}), getProto(function * () {})]
    try { fnProtos.push(getProto(async function () {})) } catch (e) {}
    try { fnProtos.push(getProto(async function * () {})) } catch (e) {}
    for (let i = 0; i < fnProtos.length; i++) {
      defProp(fnProtos[i], 'constructor', { get: forbid('the Function constructor'), configurable: false, enumerable: false })
    }
    const host = {}
    if (grants.indexOf('sandbox:log') >= 0) {
      host.log = function () {
        let line = ''
        for (let i = 0; i < arguments.length; i++) line += (i > 0 ? ' ' : '') + (typeof arguments[i] === 'string' ? arguments[i] : stringify(arguments[i]))
        hostFns.log(String(line).slice(0, 1024))
      }
    }
    if (grants.indexOf('sandbox:sha256') >= 0) {
      host.sha256 = function (text) {
        if (typeof text !== 'string') throw new TypeErr('host.sha256 takes a string')
        return hostFns.sha256(text)
      }
    }
    if (grants.indexOf('sandbox:ed25519') >= 0) {
      host.verifyEd25519 = function (pub, msg, sig) {
        if (typeof pub !== 'string' || typeof msg !== 'string' || typeof sig !== 'string') throw new TypeErr('host.verifyEd25519 takes (publicKeyHex, message, signatureHex) strings')
        return hostFns.verifyEd25519(pub, msg, sig)
      }
    }
    defProp(G, 'host', { value: freeze(host), writable: false, configurable: false, enumerable: false })
    deepFreeze(G)
  }

  let fnInit, fnReduce, fnValidate
  let cur = null
  let outcomes = []

  function classify (e) {
    if (InternalErr !== undefined && e instanceof InternalErr) {
      const m = String(e.message)
      if (m.indexOf('out of memory') >= 0) return ['DOA_SANDBOX_MEMORY', 'ran out of its memory limit']
      if (m.indexOf('stack overflow') >= 0) return ['DOA_SANDBOX_STACK', 'recursed past its stack limit']
    }
    if (e instanceof Err && typeof e.message === 'string') return ['DOA_SANDBOX_THREW', String(e.name) + ': ' + e.message.slice(0, 500)]
    let s
    try { s = stringify(e) } catch (x) { s = typeof e }
    return ['DOA_SANDBOX_THREW', 'threw ' + String(s).slice(0, 500)]
  }

  function outcome (code, reason) {
    if (violation !== null) return { ok: false, code: 'DOA_SANDBOX_FORBIDDEN', reason: 'reached for ' + violation }
    if (code === null) return { ok: true }
    return { ok: false, code: code, reason: reason }
  }

  function applyOne (i, body, ctx, useValidator) {
    tick()
    violation = null
    if (useValidator && fnValidate !== undefined) {
      let verdict
      try { verdict = fnValidate(cur, body, ctx) } catch (e) { const c = classify(e); return outcome(c[0], 'validator ' + c[1]) }
      if (violation !== null) return outcome(null)
      if (verdict === false || typeof verdict === 'string') return outcome('DOA_OP_REJECTED', typeof verdict === 'string' ? verdict.slice(0, 500) : 'refused by the app validator')
      if (verdict !== true) return outcome('DOA_SANDBOX_BAD_OUTPUT', 'validator returned neither true, false nor a reason string')
    }
    let next
    try { next = fnReduce(cur, body, ctx) } catch (e) { const c = classify(e); return outcome(c[0], 'reducer ' + c[1]) }
    if (violation !== null) return outcome(null)
    let bad
    try { bad = seal(next, 0) } catch (e) { const c = classify(e); return outcome(c[0], 'while checking the new state: ' + c[1]) }
    if (bad !== null) return outcome('DOA_SANDBOX_BAD_OUTPUT', 'reducer returned ' + bad)
    cur = next
    return outcome(null)
  }

  return {
    lockdown: lockdown,
    setModule: function (init, reduce, validate) { fnInit = init; fnReduce = reduce; fnValidate = validate },
    init: function () {
      sealed = new WS()
      violation = null
      let v = null
      try { if (fnInit !== undefined) v = fnInit() } catch (e) { const c = classify(e); return stringify({ error: outcome(c[0], 'init ' + c[1]) }) }
      if (violation !== null) return stringify({ error: outcome(null) })
      const bad = seal(v, 0)
      if (bad !== null) return stringify({ error: outcome('DOA_SANDBOX_BAD_OUTPUT', 'init returned ' + bad) })
      return stringify({ state: v })
    },
    // Folds ops[i] = [body, ctx] into state; outcomes[i] says what happened to each op.
    apply: function (stateJson, opsJson, useValidator) {
      sealed = new WS()
      cur = parse(stateJson)
      const bad = seal(cur, 0)
      if (bad !== null) throw new TypeErr('state is ' + bad)
      const ops = parse(opsJson)
      outcomes = []
      for (let i = 0; i < ops.length; i++) outcomes.push(applyOne(i, ops[i][0], ops[i][1], useValidator))
      return stringify({ state: cur, outcomes: outcomes })
    },
    // After the host interrupted a batch: the state after the last op that completed.
    recover: function () {
      return stringify({ state: cur, outcomes: outcomes })
    },
    validate: function (stateJson, bodyJson, ctxJson) {
      sealed = new WS()
      cur = parse(stateJson)
      seal(cur, 0)
      tick()
      violation = null
      if (fnValidate === undefined) return stringify(outcome(null))
      let verdict
      try { verdict = fnValidate(cur, parse(bodyJson), parse(ctxJson)) } catch (e) { const c = classify(e); return stringify(outcome(c[0], 'validator ' + c[1])) }
      if (violation !== null) return stringify(outcome(null))
      if (verdict === true) return stringify(outcome(null))
      if (verdict === false || typeof verdict === 'string') return stringify(outcome('DOA_OP_REJECTED', typeof verdict === 'string' ? verdict.slice(0, 500) : 'refused by the app validator'))
      return stringify(outcome('DOA_SANDBOX_BAD_OUTPUT', 'validator returned neither true, false nor a reason string'))
    }
  }
})`
