/**
 * The project lint guards what it claims to: the real scripts/lint.ts runs on a temp copy of
 * src/ (clean), then on the same copy with one forbidden construct planted per file, and every
 * plant must be reported at its own file and line with the right finding.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const ROOT = new URL('../..', import.meta.url).pathname
const LINT = join(ROOT, 'scripts', 'lint.ts')

function lint (root: string): { code: number | null, out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', LINT, '--root', root], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

/** One planted file: its lines, and the findings expected at given lines (1-based). */
interface Plant { file: string, lines: string[], expect: Array<[line: number, finding: RegExp]> }

const PLANTS: Plant[] = [
  // ---- layers ----
  { file: 'src/oht/plant-layer.ts', lines: ["import { createOverlayNode } from '../net/index.ts'", 'export const x = createOverlayNode'], expect: [[1, /layer oht\/ may not import net\//]] },
  { file: 'src/oht/plant-dynamic.ts', lines: ['export async function f (): Promise<unknown> {', "  return await import('../netsim/index.ts')", '}'], expect: [[2, /layer oht\/ may not import netsim\//]] },
  { file: 'src/oht/plant-export-from.ts', lines: ["export { startTestnet } from '../tor/testnet/index.ts'"], expect: [[1, /layer oht\/ may not import tor\//]] },
  { file: 'src/crypto/plant-up.ts', lines: ["import type { OhtNode } from '../oht/index.ts'", 'export type X = OhtNode'], expect: [[1, /layer crypto\/ may not import oht\//]] },
  { file: 'src/daemon/plant-net.ts', lines: ["import { createOverlayNode } from '../net/index.ts'", 'export const y = createOverlayNode'], expect: [[1, /layer daemon\/ may not import net\//]] },
  { file: 'src/newlayer/thing.ts', lines: ['export const z = 1'], expect: [] },
  // re-exports followed: daemon may import sdk, sdk may import net, daemon may not reach net through sdk
  { file: 'src/sdk/plant-reexport.ts', lines: ["export { createOverlayNode } from '../net/index.ts'", "export * from '../net/onion-addr.ts'", "import { contactFromMultiaddr } from '../net/index.ts'", 'export { contactFromMultiaddr as contact }', 'export const own = 1'], expect: [] },
  {
    file: 'src/daemon/plant-via-sdk.ts',
    lines: [
      "import { createOverlayNode } from '../sdk/plant-reexport.ts'",
      "import { isOnion3 } from '../sdk/plant-reexport.ts'",
      "import { contact } from '../sdk/plant-reexport.ts'",
      "import { own } from '../sdk/plant-reexport.ts'",
      "import * as all from '../sdk/plant-reexport.ts'",
      'export const w = [createOverlayNode, isOnion3, contact, own, all]'
    ],
    expect: [
      [1, /layer daemon\/ may not import net\/ \(reached through src\/sdk\/plant-reexport\.ts, which re-exports src\/net\/overlay-node\.ts\)/],
      [2, /layer daemon\/ may not import net\/ \(reached through src\/sdk\/plant-reexport\.ts, which re-exports src\/net\/onion-addr\.ts\)/],
      [3, /layer daemon\/ may not import net\/ \(reached through src\/sdk\/plant-reexport\.ts/],
      [5, /layer daemon\/ may not import net\/ \(reached through src\/sdk\/plant-reexport\.ts/]
    ]
  },
  // ---- network packages ----
  { file: 'src/oht/plant-multiaddr.ts', lines: ["import { multiaddr } from '@multiformats/multiaddr'", 'export const m = multiaddr'], expect: [[1, /layer oht\/ may not import @multiformats\/multiaddr: a network package/]] },
  { file: 'src/sdk/plant-libp2p.ts', lines: ["import { createLibp2p } from 'libp2p'", 'export const l = createLibp2p'], expect: [[1, /layer sdk\/ may not import libp2p: a network package/]] },
  { file: 'src/oht/plant-socket.ts', lines: ["import { createConnection } from 'node:net'", "import { createSocket } from 'dgram'", "import * as http from 'node:http'", "import { lookup } from 'node:dns/promises'", 'export const s = [createConnection, createSocket, http, lookup]'], expect: [[1, /may not import node:net/], [2, /may not import dgram/], [3, /may not import node:http/], [4, /may not import node:dns\/promises/]] },
  { file: 'src/tor/plant-http.ts', lines: ["import { request } from 'node:https'", 'export const r = request'], expect: [[1, /layer tor\/ may not import node:https/]] },
  { file: 'src/net/plant-reexport-pkg.ts', lines: ["export { multiaddr } from '@multiformats/multiaddr'"], expect: [] },
  { file: 'src/sdk/plant-pkg-via-net.ts', lines: ["import { multiaddr } from '../net/plant-reexport-pkg.ts'", 'export const n = multiaddr'], expect: [[1, /layer sdk\/ may not import @multiformats\/multiaddr: a network package .*reached through src\/net\/plant-reexport-pkg\.ts/]] },
  // ---- ambient time and randomness ----
  {
    file: 'src/oht/plant-ambient.ts',
    lines: [
      "import { randomBytes, createHash } from 'node:crypto'",
      "import * as nc from 'node:crypto'",
      "import { setTimeout as sleep } from 'node:timers/promises'",
      "import { performance as perf } from 'node:perf_hooks'",
      'export async function f (): Promise<unknown[]> {',
      '  const a = nc.randomUUID()',
      '  const b = crypto.getRandomValues(new Uint8Array(4))',
      "  const { randomInt } = await import('node:crypto')",
      '  const c = process.hrtime.bigint()',
      '  const d = performance.now()',
      '  const e = Date.now()',
      '  const g = new Date()',
      '  setTimeout(() => {}, 1)',
      '  const h = globalThis.setInterval',
      "  const i = crypto['randomUUID']()",
      '  const { now } = Date',
      '  const j = Math.random()',
      '  const k = AbortSignal.timeout(5)',
      '  const { generateKeyPairSync: gen } = nc',
      '  const ok = [createHash, new Date(0), Date.UTC(2020, 0)]',
      '  return [randomBytes, sleep, perf, a, b, randomInt, c, d, e, g, h, i, now, j, k, gen, ok]',
      '}'
    ],
    expect: [
      [1, /randomBytes from node:crypto outside src\/core/],
      [3, /setTimeout from node:timers\/promises outside src\/core/],
      [4, /performance from node:perf_hooks outside src\/core/],
      [6, /nc\.randomUUID outside src\/core/],
      [7, /crypto\.getRandomValues outside src\/core/],
      [8, /randomInt destructured from await import\('node:crypto'\)/],
      [9, /process\.hrtime outside src\/core/],
      [10, /performance\.now outside src\/core/],
      [11, /Date\.now outside src\/core/],
      [12, /new Date\(\) reads the wall clock/],
      [13, /setTimeout\(\) outside src\/core/],
      [14, /setInterval\(\) outside src\/core/],
      [15, /crypto\['randomUUID'\] outside src\/core/],
      [16, /now destructured from Date/],
      [17, /Math\.random outside src\/core/],
      [18, /AbortSignal\.timeout outside src\/core/],
      [19, /generateKeyPairSync destructured from nc/]
    ]
  },
  // ---- tests run whole ----
  {
    file: 'test/unit/plant.test.ts',
    lines: [
      "import { describe, it } from 'node:test'",
      // Spelled in pieces so that no grep for focused or skipped tests mistakes this file for one.
      ['describe', "only('a', () => {})"].join('.'),
      ['it', "skip('b', () => {})"].join('.'),
      "it('c', { todo: true }, () => {})",
      ['it(\'d\', (t) => { t', "skip('later') })"].join('.')
    ],
    expect: [[2, /describe\.only/], [3, /it\.skip/], [4, /\{ todo \} option/], [5, /t\.skip\(\)/]]
  }
]

describe('scripts/lint.ts', { timeout: 240_000 }, () => {
  let dir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-lint-'))
    await cp(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
    await mkdir(join(dir, 'test', 'unit'), { recursive: true })
  })
  after(async () => { if (dir !== '') await rm(dir, { recursive: true, force: true }) })

  it('passes the copied tree as it is', () => {
    const r = lint(dir)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /files clean/)
  })

  it('fails on every kind of forbidden import and ambient source, each at its file and line', async () => {
    for (const p of PLANTS) {
      await mkdir(join(dir, dirname(p.file)), { recursive: true })
      await writeFile(join(dir, p.file), p.lines.join('\n') + '\n')
    }
    const r = lint(dir)
    assert.equal(r.code, 1, r.out)
    const lines = r.out.split('\n')
    for (const p of PLANTS) {
      for (const [line, finding] of p.expect) {
        const at = `${p.file}:${line}: `
        assert.ok(lines.some(l => l.startsWith(at) && finding.test(l)), `expected ${at}${finding.source}\n--- lint said:\n${r.out}`)
      }
    }
    assert.ok(lines.some(l => l.startsWith('src/newlayer/: no layer rule')), r.out)
    // lines that break no rule stay unreported
    for (const ok of ['src/sdk/plant-reexport.ts', 'src/net/plant-reexport-pkg.ts', 'src/oht/plant-ambient.ts:2:', 'src/oht/plant-ambient.ts:5:', 'src/oht/plant-ambient.ts:20:', 'src/daemon/plant-via-sdk.ts:4:']) {
      assert.ok(!lines.some(l => l.startsWith(ok)), `${ok} is not a finding\n${r.out}`)
    }
  })
})
