/**
 * Runs the test tiers in order (unit, fuzz, netsim, integration) with node's test runner and prints
 * a plain closing line `N passed, N failed`. Files are found here, not by shell globs (Node 20
 * does not expand quoted globs), and the count of files run is printed so nothing runs silently
 * short.
 *
 * Integration tests need the `tor` binary. Without it they are not run and a loud message says
 * so, except under CI=true where a missing tor fails the run.
 *
 * Usage: node --import tsx scripts/run-tests.ts [unit|fuzz|netsim|integration ...]
 */
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const tiers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'fuzz', 'netsim', 'integration']

function find (dir: string, out: string[] = []): string[] {
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return out }
  for (const e of entries) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) find(p, out)
    else if (p.endsWith('.test.ts')) out.push(p)
  }
  return out.sort()
}

function torAvailable (): boolean {
  const r = spawnSync('tor', ['--version'], { encoding: 'utf8' })
  return r.status === 0
}

let passed = 0
let failed = 0
let filesRun = 0
let problems = 0

async function runTier (tier: string): Promise<void> {
  const files = find(join(root, 'test', tier))
  if (files.length === 0) { console.log(`\n== ${tier}: no test files`); return }
  if (tier === 'integration' && !torAvailable()) {
    if (process.env.CI === 'true') {
      console.error('\n!! tor is not installed, and under CI=true that is a failure. Install it: apt-get install -y tor')
      problems++
      return
    }
    console.error(`\n${'!'.repeat(78)}\n!! tor is not installed: ${files.length} integration test files NOT RUN.\n!! Install it (apt-get install -y tor) to run them.\n${'!'.repeat(78)}`)
    return
  }
  // Integration tests run one file at a time: each brings up real tor processes.
  const concurrency = tier === 'integration' ? '1' : '2'
  console.log(`\n== ${tier}: ${files.length} files`)
  filesRun += files.length
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files.map(f => relative(root, f))]
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  let tail = ''
  child.stdout.on('data', (d: Buffer) => {
    process.stdout.write(d)
    tail = (tail + d.toString()).slice(-4000)
  })
  const code = await new Promise<number>((resolve) => child.on('close', (c) => { resolve(c ?? 1) }))
  const p = /ℹ pass (\d+)/.exec(tail)
  const f = /ℹ fail (\d+)/.exec(tail)
  // Tests cancelled because a hook of their suite failed did not pass: count them as failed.
  const c = /ℹ cancelled (\d+)/.exec(tail)
  const tierFailed = (f != null ? Number(f[1]) : 0) + (c != null ? Number(c[1]) : 0)
  passed += p != null ? Number(p[1]) : 0
  failed += tierFailed
  if (code !== 0 && tierFailed === 0) problems++
}

for (const tier of tiers) await runTier(tier)
console.log(`\nfiles run: ${filesRun}`)
console.log(`${passed} passed, ${failed} failed`)
if (passed === 0) { console.error('no test ran'); process.exit(1) }
process.exit(failed > 0 || problems > 0 ? 1 : 0)
