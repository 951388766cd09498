/**
 * Project lint, on the TypeScript AST (docs/architecture.md explains the why of each rule):
 *
 *  1. Layers. Every folder of src/ has a rule below; a folder (or a file directly in src/)
 *     without one is itself a finding. A file may import only the src/ folders its rule lists,
 *     through static imports, `export … from`, dynamic `import()` and `require()`, and what it
 *     imports is followed through re-exports (`export { x } from`, `export *`, import-then-
 *     export) to where it is defined: reaching a forbidden layer or package through an allowed
 *     module is a finding too.
 *  2. Network packages. Only the layers that talk to sockets may import them; the rest see the
 *     network through seams (DhtNet, PeerNet). `*` = every network package.
 *
 *     | src/ folder        | may import (src/)                                          | network packages       |
 *     |--------------------|------------------------------------------------------------|------------------------|
 *     | core               | -                                                          | -                      |
 *     | crypto             | core                                                       | -                      |
 *     | netsim             | core crypto                                                | -                      |
 *     | netsim/world       | core crypto oht netsim                                     | -                      |
 *     | tor                | core crypto                                                | node:net               |
 *     | oht                | core crypto                                                | -                      |
 *     | net                | core crypto tor oht                                        | *                      |
 *     | oni                | core crypto tor oht                                        | node:net node:dgram    |
 *     | sdk                | core crypto tor oht net                                    | -                      |
 *     | wormhole           | core crypto oht                                            | -                      |
 *     | scramble-routing   | core crypto oht                                            | -                      |
 *     | doa                | core crypto oht wormhole scramble-routing                  | -                      |
 *     | apps               | core crypto oht wormhole scramble-routing doa              | -                      |
 *     | daemon             | core crypto tor oht oni sdk wormhole scramble-routing doa apps | node:net node:http |
 *     | cli                | core crypto tor oht oni sdk wormhole scramble-routing doa apps daemon | node:net node:http |
 *     | (files in src/)    | core crypto oht net sdk                                    | -                      |
 *
 *     Network packages: libp2p, @libp2p/*, @chainsafe/*, @multiformats/*, socks, ws, undici,
 *     node:net, node:dgram, node:dns, node:http, node:https, node:http2, node:tls (with or
 *     without the node: prefix). node:dns is here because a name resolved outside tor leaks.
 *  3. Time and randomness enter src/ only through src/core (Clock, Rng), because the simulator
 *     must control them. Outside src/core these are findings: Date.now, Date(), new Date()
 *     without arguments, performance.now/timeOrigin, process.hrtime, process.uptime,
 *     Math.random, AbortSignal.timeout, setTimeout and setInterval (global or from
 *     node:timers[/promises]), `performance` from node:perf_hooks, and every randomness or
 *     key-generation function of node:crypto or Web Crypto (randomBytes, randomUUID, randomInt,
 *     randomFill[Sync], getRandomValues, generateKey[Pair][Sync], generatePrime[Sync],
 *     webcrypto), whether imported by name, reached through a namespace or default import or
 *     the global `crypto`, destructured, or indexed with a string. setImmediate and
 *     queueMicrotask stay allowed: they order work, they do not read or wait for time.
 *  4. Tests run whole: no `.only`, `.skip` or `.todo`, no `{ skip }` / `{ todo }` options, no
 *     `t.skip()` / `t.todo()` under test/.
 *
 * Usage: node --import tsx scripts/lint.ts [--root <dir>]   (default: this repository)
 * Exits 1 and prints `file:line: finding` for every finding.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

interface LayerRule {
  /** src/ folders this one may import. */
  imports: readonly string[]
  /** Network packages it may import: '*' for all. */
  network: readonly string[] | '*'
}

/** Keyed by folder under src/ ('' = files directly in src/); a deeper key wins for its subtree. */
const RULES: Record<string, LayerRule> = {
  '': { imports: ['core', 'crypto', 'oht', 'net', 'sdk'], network: [] },
  core: { imports: [], network: [] },
  crypto: { imports: ['core'], network: [] },
  netsim: { imports: ['core', 'crypto'], network: [] },
  // The OHT-on-simulator world (real OHT nodes on simulated hosts, for the scenarios of the
  // layers above): it alone in netsim/ may import oht/.
  'netsim/world': { imports: ['core', 'crypto', 'oht', 'netsim'], network: [] },
  tor: { imports: ['core', 'crypto'], network: ['node:net'] },
  oht: { imports: ['core', 'crypto'], network: [] },
  net: { imports: ['core', 'crypto', 'tor', 'oht'], network: '*' },
  oni: { imports: ['core', 'crypto', 'tor', 'oht'], network: ['node:net', 'node:dgram'] },
  sdk: { imports: ['core', 'crypto', 'tor', 'oht', 'net'], network: [] },
  wormhole: { imports: ['core', 'crypto', 'oht'], network: [] },
  'scramble-routing': { imports: ['core', 'crypto', 'oht'], network: [] },
  doa: { imports: ['core', 'crypto', 'oht', 'wormhole', 'scramble-routing'], network: [] },
  // The applications built on the layers (cluster status, call-home, ...): like doa, they see
  // the network only through the engine and the PeerNet seam, so they run in the simulator too.
  apps: { imports: ['core', 'crypto', 'oht', 'wormhole', 'scramble-routing', 'doa'], network: [] },
  daemon: { imports: ['core', 'crypto', 'tor', 'oht', 'oni', 'sdk', 'wormhole', 'scramble-routing', 'doa', 'apps'], network: ['node:net', 'node:http'] },
  cli: { imports: ['core', 'crypto', 'tor', 'oht', 'oni', 'sdk', 'wormhole', 'scramble-routing', 'doa', 'apps', 'daemon'], network: ['node:net', 'node:http'] }
}

const NETWORK_EXACT = new Set(['libp2p', 'socks', 'ws', 'undici', 'net', 'dgram', 'dns', 'dns/promises', 'http', 'https', 'http2', 'tls'])
const NETWORK_SCOPES = ['@libp2p/', '@chainsafe/', '@multiformats/']

/** The canonical name of a network package (`node:net` for `net`), or undefined. */
function networkPackage (spec: string): string | undefined {
  const bare = spec.startsWith('node:') ? spec.slice(5) : spec
  if (NETWORK_EXACT.has(bare)) return ['libp2p', 'socks', 'ws', 'undici'].includes(bare) ? bare : `node:${bare.split('/')[0]}`
  if (NETWORK_EXACT.has(bare.split('/')[0])) return bare.split('/')[0] === 'libp2p' ? 'libp2p' : undefined
  if (NETWORK_SCOPES.some(s => spec.startsWith(s))) return spec
  return undefined
}

function networkAllowed (rule: LayerRule, pkg: string): boolean {
  if (rule.network === '*') return true
  return rule.network.includes(pkg)
}

const CRYPTO_MODULES = new Set(['node:crypto', 'crypto'])
const TIMER_MODULES = new Set(['node:timers', 'timers', 'node:timers/promises', 'timers/promises'])
const PERF_MODULES = new Set(['node:perf_hooks', 'perf_hooks'])
const RANDOM_NAMES = new Set([
  'randomBytes', 'pseudoRandomBytes', 'randomUUID', 'randomInt', 'randomFill', 'randomFillSync', 'getRandomValues',
  'generateKey', 'generateKeySync', 'generateKeyPair', 'generateKeyPairSync', 'generatePrime', 'generatePrimeSync', 'webcrypto'
])
const TIMER_NAMES = new Set(['setTimeout', 'setInterval', 'scheduler'])
/** object → members that read or wait for time, or draw chance. */
const AMBIENT_MEMBERS: Record<string, Set<string>> = {
  Date: new Set(['now']),
  Math: new Set(['random']),
  AbortSignal: new Set(['timeout']),
  performance: new Set(['now', 'timeOrigin']),
  process: new Set(['hrtime', 'uptime'])
}

function parseArgs (): string {
  const i = process.argv.indexOf('--root')
  if (i !== -1) {
    const dir = process.argv[i + 1]
    if (dir === undefined) { console.error('lint: --root needs a directory'); process.exit(2) }
    return resolve(dir)
  }
  return new URL('..', import.meta.url).pathname
}

const root = parseArgs()
const srcRoot = join(root, 'src')
const findings: string[] = []

function walk (dir: string, out: string[] = []): string[] {
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return out }
  for (const e of entries.sort()) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

/** The rule key of a src/ file: the deepest RULES key its folder falls under, or undefined. */
function ruleKeyOf (file: string): string | undefined {
  const parts = relative(srcRoot, file).split(sep)
  if (parts.length === 1) return ''
  for (let n = parts.length - 1; n >= 1; n--) {
    const key = parts.slice(0, n).join('/')
    if (RULES[key] !== undefined) return key
  }
  return undefined
}

/** The top src/ folder a file lives in ('' for files directly in src/). */
function layerOf (file: string): string {
  const parts = relative(srcRoot, file).split(sep)
  return parts.length === 1 ? '' : parts[0]
}

const label = (layer: string): string => layer === '' ? 'src/' : `${layer}/`

// ---- parsing and re-export resolution ----

interface ModuleExports {
  /** exported name → where it comes from (a module specifier resolved to a file, or a package) and its name there ('*' = the namespace). */
  named: Map<string, { from: string, name: string }>
  /** `export * from` targets. */
  stars: string[]
  /** Names this file declares itself with `export`. */
  local: Set<string>
}

const sources = new Map<string, ts.SourceFile>()
const exportsCache = new Map<string, ModuleExports>()

function parse (file: string): ts.SourceFile | undefined {
  let sf = sources.get(file)
  if (sf !== undefined) return sf
  let text: string
  try { text = readFileSync(file, 'utf8') } catch { return undefined }
  sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true)
  sources.set(file, sf)
  return sf
}

/** A relative specifier resolved to a .ts file, a package name as it is, or undefined when a relative one leads nowhere. */
function resolveSpec (fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return spec
  const base = join(dirname(fromFile), spec)
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (candidate.endsWith('.ts') && existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return undefined
}

function hasExportModifier (node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some(m => m.kind === ts.SyntaxKind.ExportKeyword)
}

function moduleExports (file: string): ModuleExports {
  const cached = exportsCache.get(file)
  if (cached !== undefined) return cached
  const out: ModuleExports = { named: new Map(), stars: [], local: new Set() }
  exportsCache.set(file, out) // before recursing: cycles end here
  const sf = parse(file)
  if (sf === undefined) return out
  const imported = new Map<string, { from: string, name: string }>()
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier) && st.importClause !== undefined) {
      const from = resolveSpec(file, st.moduleSpecifier.text)
      if (from === undefined) continue
      const clause = st.importClause
      if (clause.name !== undefined) imported.set(clause.name.text, { from, name: 'default' })
      const nb = clause.namedBindings
      if (nb !== undefined && ts.isNamespaceImport(nb)) imported.set(nb.name.text, { from, name: '*' })
      if (nb !== undefined && ts.isNamedImports(nb)) for (const el of nb.elements) imported.set(el.name.text, { from, name: (el.propertyName ?? el.name).text })
    } else if (ts.isExportDeclaration(st)) {
      const spec = st.moduleSpecifier !== undefined && ts.isStringLiteral(st.moduleSpecifier) ? resolveSpec(file, st.moduleSpecifier.text) : undefined
      if (st.moduleSpecifier !== undefined && spec === undefined) continue
      if (st.exportClause === undefined) { if (spec !== undefined) out.stars.push(spec); continue }
      if (ts.isNamespaceExport(st.exportClause)) { if (spec !== undefined) out.named.set(st.exportClause.name.text, { from: spec, name: '*' }); continue }
      for (const el of st.exportClause.elements) {
        const inner = (el.propertyName ?? el.name).text
        if (spec !== undefined) out.named.set(el.name.text, { from: spec, name: inner })
        else {
          const via = imported.get(inner)
          if (via !== undefined) out.named.set(el.name.text, via)
          else out.local.add(el.name.text)
        }
      }
    } else if (hasExportModifier(st)) {
      if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) out.local.add(d.name.text)
      } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) && st.name !== undefined) {
        out.local.add(st.name.text)
      }
    }
  }
  return out
}

/**
 * Where `name` exported by `target` is defined: files and packages. '*' = everything the
 * module exports (a namespace import or `export *`).
 */
function origins (target: string, name: string, seen = new Set<string>()): Set<string> {
  const result = new Set<string>()
  const key = `${target}\0${name}`
  if (seen.has(key)) return result
  seen.add(key)
  if (!target.endsWith('.ts')) { result.add(target); return result }
  const ex = moduleExports(target)
  if (name === '*') {
    result.add(target)
    for (const via of ex.named.values()) for (const o of origins(via.from, via.name, seen)) result.add(o)
    for (const s of ex.stars) for (const o of origins(s, '*', seen)) result.add(o)
    return result
  }
  const via = ex.named.get(name)
  if (via !== undefined) return origins(via.from, via.name, seen)
  if (ex.local.has(name) || name === 'default') { result.add(target); return result }
  // `export *` of our own modules first: a package's star would claim every name.
  for (const s of [...ex.stars.filter(x => x.endsWith('.ts')), ...ex.stars.filter(x => !x.endsWith('.ts'))]) {
    const found = origins(s, name, seen)
    if (found.size > 0) return found
  }
  return result
}

// ---- the checks ----

function checkImport (file: string, rule: LayerRule, layer: string, spec: string, names: string[], at: string): void {
  const target = resolveSpec(file, spec)
  if (target === undefined) return // tsc reports unresolved imports
  const banned = (dest: string): string | undefined => {
    if (dest.endsWith('.ts')) {
      if (!dest.startsWith(srcRoot + sep)) return undefined
      const to = layerOf(dest)
      if (to === layer || rule.imports.includes(to)) return undefined
      return `layer ${label(layer)} may not import ${label(to)}`
    }
    const pkg = networkPackage(dest)
    if (pkg !== undefined && !networkAllowed(rule, pkg)) return `layer ${label(layer)} may not import ${dest}: a network package (only the layers in scripts/lint.ts's table talk to sockets)`
    return undefined
  }
  const direct = banned(target)
  if (direct !== undefined) { findings.push(`${at}: ${direct}`); return }
  if (!target.endsWith('.ts')) return
  const reported = new Set<string>()
  for (const name of names) {
    for (const o of origins(target, name)) {
      const why = banned(o)
      if (why === undefined || reported.has(why)) continue
      reported.add(why)
      findings.push(`${at}: ${why} (reached through ${relative(root, target)}, which re-exports ${o.endsWith('.ts') ? relative(root, o) : o})`)
    }
  }
}

/** Names a file binds itself (imports, variables, parameters, functions, classes): a local `setTimeout` is not the global. */
function localBindings (sf: ts.SourceFile): Set<string> {
  const names = new Set<string>()
  const addBinding = (n: ts.BindingName): void => {
    if (ts.isIdentifier(n)) { names.add(n.text); return }
    for (const el of n.elements) if (!ts.isOmittedExpression(el)) addBinding(el.name)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) || ts.isParameter(node)) addBinding(node.name)
    else if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node)) && node.name !== undefined) names.add(node.name.text)
    else if (ts.isImportSpecifier(node) || ts.isNamespaceImport(node) || ts.isImportClause(node)) { if (node.name !== undefined) names.add(node.name.text) }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return names
}

function lintSrc (file: string): void {
  const rel = relative(root, file)
  const sf = parse(file)
  if (sf === undefined) return
  const at = (node: ts.Node): string => `${rel}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`
  const key = ruleKeyOf(file)
  const layer = layerOf(file)
  const rule = key !== undefined ? RULES[key] : undefined
  const inCore = layer === 'core'
  const locals = localBindings(sf)
  /** Identifiers bound to node:crypto (namespace/default import), timers or perf_hooks modules. */
  const moduleAlias = new Map<string, 'crypto' | 'timers' | 'perf'>()
  const kindOf = (spec: string): 'crypto' | 'timers' | 'perf' | undefined =>
    CRYPTO_MODULES.has(spec) ? 'crypto' : TIMER_MODULES.has(spec) ? 'timers' : PERF_MODULES.has(spec) ? 'perf' : undefined
  const bannedFrom = (kind: 'crypto' | 'timers' | 'perf', name: string): boolean =>
    kind === 'crypto' ? RANDOM_NAMES.has(name) : kind === 'timers' ? TIMER_NAMES.has(name) : name === 'performance'
  const ambient = (node: ts.Node, what: string): void => {
    findings.push(`${at(node)}: ${what} outside src/core: inject a Clock or an Rng (src/core) instead`)
  }
  /** The object of a member access, as the lint sees it: a module alias, an ambient global, or nothing. */
  const objectKind = (expr: ts.Expression): string | undefined => {
    let e = expr
    if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && ['globalThis', 'global', 'window', 'self'].includes(e.expression.text)) e = e.name
    if (!ts.isIdentifier(e)) return undefined
    const alias = moduleAlias.get(e.text)
    if (alias !== undefined) return `module:${alias}`
    if (locals.has(e.text)) return undefined
    if (e.text === 'crypto') return 'module:crypto' // the Web Crypto global
    return AMBIENT_MEMBERS[e.text] !== undefined ? e.text : undefined
  }
  const memberBanned = (obj: string, name: string): boolean => {
    if (obj.startsWith('module:')) return bannedFrom(obj.slice(7) as 'crypto' | 'timers' | 'perf', name)
    return AMBIENT_MEMBERS[obj]?.has(name) === true
  }
  const dynamicImportSpec = (e: ts.Expression | undefined): string | undefined => {
    let x = e
    while (x !== undefined && (ts.isAwaitExpression(x) || ts.isParenthesizedExpression(x))) x = x.expression
    if (x === undefined || !ts.isCallExpression(x)) return undefined
    const isImport = x.expression.kind === ts.SyntaxKind.ImportKeyword
    const isRequire = ts.isIdentifier(x.expression) && x.expression.text === 'require'
    const arg = x.arguments[0]
    return (isImport || isRequire) && arg !== undefined && ts.isStringLiteral(arg) ? arg.text : undefined
  }

  const visit = (node: ts.Node): void => {
    // ---- imports: layers, network packages, ambient names imported by name ----
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text
      const names: string[] = []
      if (ts.isImportDeclaration(node)) {
        const clause = node.importClause
        if (clause === undefined) names.push('*')
        else {
          if (clause.name !== undefined) names.push('default')
          const nb = clause.namedBindings
          if (nb !== undefined && ts.isNamespaceImport(nb)) names.push('*')
          if (nb !== undefined && ts.isNamedImports(nb)) for (const el of nb.elements) names.push((el.propertyName ?? el.name).text)
          const kind = kindOf(spec)
          if (kind !== undefined && !inCore) {
            if (clause.name !== undefined) moduleAlias.set(clause.name.text, kind)
            if (nb !== undefined && ts.isNamespaceImport(nb)) moduleAlias.set(nb.name.text, kind)
            if (nb !== undefined && ts.isNamedImports(nb)) {
              for (const el of nb.elements) {
                const n = (el.propertyName ?? el.name).text
                if (bannedFrom(kind, n)) ambient(el, `${n} from ${spec}`)
              }
            }
          }
        }
      } else {
        const clause = node.exportClause
        if (clause === undefined || ts.isNamespaceExport(clause)) names.push('*')
        else for (const el of clause.elements) names.push((el.propertyName ?? el.name).text)
        const kind = kindOf(spec)
        if (kind !== undefined && !inCore) {
          if (clause === undefined || ts.isNamespaceExport(clause)) ambient(node, `re-exporting all of ${spec}`)
          else for (const el of clause.elements) if (bannedFrom(kind, (el.propertyName ?? el.name).text)) ambient(el, `${(el.propertyName ?? el.name).text} from ${spec}`)
        }
      }
      if (rule !== undefined) checkImport(file, rule, layer, spec, names, at(node))
    }
    // dynamic import() / require()
    if (ts.isCallExpression(node)) {
      const spec = dynamicImportSpec(node)
      if (spec !== undefined) {
        if (rule !== undefined) checkImport(file, rule, layer, spec, ['*'], at(node))
        const kind = kindOf(spec)
        if (kind !== undefined && !inCore) {
          // `const { randomBytes } = await import('node:crypto')` is checked at the declaration; a bare namespace binding here
          const decl = node.parent !== undefined && ts.isAwaitExpression(node.parent) ? node.parent.parent : node.parent
          if (decl !== undefined && ts.isVariableDeclaration(decl) && ts.isIdentifier(decl.name)) moduleAlias.set(decl.name.text, kind)
        }
      }
    }
    if (!inCore) {
      // obj.member and obj['member']
      if (ts.isPropertyAccessExpression(node) || (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression))) {
        const name = ts.isPropertyAccessExpression(node) ? node.name.text : (node.argumentExpression as ts.StringLiteralLike).text
        const obj = objectKind(node.expression)
        if (obj !== undefined && memberBanned(obj, name)) ambient(node, node.getText(sf).replace(/\s+/g, ''))
      }
      // const { randomBytes } = crypto / = await import('node:crypto'); const { now } = Date
      if (ts.isVariableDeclaration(node) && ts.isObjectBindingPattern(node.name) && node.initializer !== undefined) {
        const spec = dynamicImportSpec(node.initializer)
        const kind = spec !== undefined ? kindOf(spec) : undefined
        const obj = kind !== undefined ? `module:${kind}` : objectKind(node.initializer)
        if (obj !== undefined) {
          for (const el of node.name.elements) {
            const prop = el.propertyName ?? el.name
            const n = ts.isIdentifier(prop) || ts.isStringLiteral(prop) ? prop.text : undefined
            if (n !== undefined && memberBanned(obj, n)) ambient(el, `${n} destructured from ${node.initializer.getText(sf).slice(0, 60)}`)
          }
        }
      }
      // the timer globals, called or passed around
      if (ts.isIdentifier(node) && (node.text === 'setTimeout' || node.text === 'setInterval') && !locals.has(node.text)) {
        const p = node.parent
        const isMemberName = (ts.isPropertyAccessExpression(p) && p.name === node) ||
          ((ts.isPropertyAssignment(p) || ts.isMethodDeclaration(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodSignature(p) || ts.isShorthandPropertyAssignment(p)) && p.name === node) ||
          ts.isImportSpecifier(p) || ts.isExportSpecifier(p) || ts.isBindingElement(p)
        if (!isMemberName) ambient(node, `${node.text}()`)
      }
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && ['globalThis', 'global', 'window', 'self'].includes(node.expression.text) && (node.name.text === 'setTimeout' || node.name.text === 'setInterval')) {
        ambient(node, `${node.name.text}()`)
      }
      // new Date() and Date() read the wall clock; new Date(ms) does not
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date' && !locals.has('Date') && (node.arguments === undefined || node.arguments.length === 0)) {
        findings.push(`${at(node)}: new Date() reads the wall clock outside src/core: use new Date(clock.now())`)
      }
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date' && !locals.has('Date')) {
        findings.push(`${at(node)}: Date() reads the wall clock outside src/core: use new Date(clock.now()).toString()`)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
}

const TEST_FNS = new Set(['it', 'test', 'describe', 'suite'])

function lintTest (file: string): void {
  const rel = relative(root, file)
  const sf = parse(file)
  if (sf === undefined) return
  const at = (node: ts.Node): string => `${rel}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && TEST_FNS.has(node.expression.text) && ['only', 'skip', 'todo'].includes(node.name.text)) {
      findings.push(`${at(node)}: ${node.expression.text}.${node.name.text}: every test runs, whole`)
    }
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && TEST_FNS.has(node.expression.text)) {
      for (const arg of node.arguments) {
        if (!ts.isObjectLiteralExpression(arg)) continue
        for (const p of arg.properties) {
          const n = p.name !== undefined && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? p.name.text : undefined
          if (n === 'only' || n === 'skip' || n === 'todo') findings.push(`${at(p)}: { ${n} } option: every test runs, whole`)
        }
      }
    }
    // t.skip() / t.todo() on a test context
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && ['skip', 'todo'].includes(node.expression.name.text) && ts.isIdentifier(node.expression.expression) && ['t', 'ctx', 'context'].includes(node.expression.expression.text)) {
      findings.push(`${at(node)}: ${node.expression.getText(sf)}(): every test runs, whole`)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
}

const srcFiles = walk(srcRoot)
const testFiles = walk(join(root, 'test'))
if (srcFiles.length === 0) { console.error(`lint: no TypeScript files under ${srcRoot}`); process.exit(2) }

// A folder of src/ without a rule is a finding: new code must take a place in the map.
const unruled = new Set<string>()
for (const f of srcFiles) if (ruleKeyOf(f) === undefined) unruled.add(relative(srcRoot, dirname(f)).split(sep)[0])
for (const d of [...unruled].sort()) findings.push(`src/${d}/: no layer rule: add one to RULES in scripts/lint.ts (and the table in its header and docs/architecture.md)`)

for (const f of srcFiles) lintSrc(f)
for (const f of testFiles) lintTest(f)
const files = srcFiles.length + testFiles.length
if (findings.length > 0) {
  console.error(findings.join('\n'))
  console.error(`lint: ${findings.length} finding(s) in ${files} files`)
  process.exit(1)
}
console.log(`lint: ${files} files clean`)
