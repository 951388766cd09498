/**
 * Project lint, on the TypeScript AST:
 *  1. Time and randomness enter src/ only through src/core (Clock, Rng): Date.now(),
 *     new Date() without arguments, performance.now(), Math.random(), AbortSignal.timeout(),
 *     setTimeout(), setInterval() are banned elsewhere, because the simulator must control them.
 *  2. Layers import downwards only (DESIGN.md): oht/ wormhole/ scramble-routing/ doa/ never
 *     import net/, netsim/, tor/ or libp2p; tor/ never imports oht/ or netsim/; netsim/ never
 *     imports tor/, net/ or oht/ (except netsim/world/, see LAYER_EXCEPTIONS); core/ imports
 *     no other layer.
 *  3. No focused tests (`.only`) under test/.
 * Exits 1 and prints file:line for every finding.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import ts from 'typescript'

const root = new URL('..', import.meta.url).pathname
const findings: string[] = []

function walk (dir: string, out: string[] = []): string[] {
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return out }
  for (const e of entries) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

const BANNED_ACCESS = new Set(['Date.now', 'Math.random', 'AbortSignal.timeout', 'performance.now'])
const BANNED_CALLS = new Set(['setTimeout', 'setInterval'])

const LAYER_RULES: Record<string, string[]> = {
  core: ['crypto', 'tor', 'oht', 'netsim', 'net', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  crypto: ['tor', 'oht', 'netsim', 'net', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  tor: ['oht', 'netsim', 'net', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  netsim: ['tor', 'oht', 'net', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  oht: ['tor', 'netsim', 'net', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  net: ['netsim', 'oni', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon'],
  wormhole: ['tor', 'netsim', 'net', 'oni', 'doa', 'cli', 'daemon'],
  'scramble-routing': ['tor', 'netsim', 'net', 'oni', 'doa', 'cli', 'daemon'],
  doa: ['tor', 'netsim', 'net', 'oni', 'cli', 'daemon'],
  oni: ['netsim', 'wormhole', 'scramble-routing', 'doa', 'cli', 'daemon']
}
// Sub-folders allowed one import their layer's rule forbids, and nothing else:
// netsim/world/ is the OHT-on-simulator world (real OHT nodes on simulated hosts, for the
// scenarios of the layers above), so it alone in netsim/ may import oht/.
const LAYER_EXCEPTIONS: Record<string, Record<string, string[]>> = {
  netsim: { world: ['oht'] }
}
function layerAllows (layer: string, sub: string | undefined, target: string): boolean {
  return sub !== undefined && LAYER_EXCEPTIONS[layer]?.[sub]?.includes(target) === true
}

const NO_LIBP2P = new Set(['core', 'crypto', 'tor', 'netsim', 'oht', 'wormhole', 'scramble-routing', 'doa'])

function lintSource (file: string): void {
  const rel = relative(root, file)
  const parts = rel.split(sep)
  const inSrc = parts[0] === 'src'
  const layer = inSrc ? parts[1] : undefined
  const text = readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true)
  const at = (node: ts.Node): string => `${rel}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`

  const visit = (node: ts.Node): void => {
    if (inSrc && layer !== 'core') {
      if (ts.isPropertyAccessExpression(node) && BANNED_ACCESS.has(node.getText(sf).replace(/\s+/g, ''))) {
        findings.push(`${at(node)}: ${node.getText(sf)} outside src/core: inject a Clock or Rng`)
      }
      if (ts.isCallExpression(node)) {
        const callee = node.expression.getText(sf).replace(/^globalThis\./, '')
        if (BANNED_CALLS.has(callee)) findings.push(`${at(node)}: ${callee}() outside src/core: use clock.${callee}()`)
      }
      if (ts.isNewExpression(node) && node.expression.getText(sf) === 'Date' && (node.arguments === undefined || node.arguments.length === 0)) {
        findings.push(`${at(node)}: new Date() reads the wall clock: use new Date(clock.now())`)
      }
    }
    if (inSrc && layer !== undefined && (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text
      if (spec.startsWith('.')) {
        const target = relative(join(root, 'src'), join(file, '..', spec)).split(sep)[0]
        if (LAYER_RULES[layer]?.includes(target) === true && !layerAllows(layer, parts.length > 3 ? parts[2] : undefined, target)) findings.push(`${at(node)}: layer ${layer}/ may not import ${target}/ (DESIGN.md: imports point down)`)
      } else if (NO_LIBP2P.has(layer) && (spec === 'libp2p' || spec.startsWith('@libp2p/') || spec.startsWith('@chainsafe/'))) {
        findings.push(`${at(node)}: layer ${layer}/ may not import ${spec}: only net/ speaks libp2p`)
      }
    }
    if (parts[0] === 'test' && ts.isPropertyAccessExpression(node) && node.name.text === 'only' && ['it', 'test', 'describe'].includes(node.expression.getText(sf))) {
      findings.push(`${at(node)}: focused test (.only)`)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
}

const files = [...walk(join(root, 'src')), ...walk(join(root, 'test'))]
for (const f of files) lintSource(f)
if (findings.length > 0) {
  console.error(findings.join('\n'))
  console.error(`lint: ${findings.length} finding(s) in ${files.length} files`)
  process.exit(1)
}
console.log(`lint: ${files.length} files clean`)
