/**
 * README.md's Quick start and Using it, run as written: the command blocks are extracted from
 * the file at test time (never copied here), run in order in one bash with a fresh HOME, the
 * `oht` of this checkout on the PATH (bin/oht.js; no npm link), and JavaScript blocks run with
 * plain `node` in a project where `import … from 'oht'` resolves to this checkout's built
 * package. The private Tor network is the one the README itself starts (`oht testnet up`).
 * Sections added later under Using it are picked up the same way. Blocks marked
 * `readme-test: skip (why)` are counted and printed with their reason.
 *
 * Clean-up: bash runs in its own process group, which is ended at the end (a daemon the
 * README left running goes with it); every private network the README started under HOME is
 * stopped by its recorded PIDs.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { chooseEntry } from '../../bin/entry.js'
import { stopTestnetDir } from '../../src/tor/testnet/index.ts'
import { readmeBlocks, readmeScript, type ReadmeBlock } from '../helpers/readme.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const SCRIPT_TIMEOUT_MS = 9 * 60_000

/** Directories under `dir` (a few levels down) that hold a private network's state.json. */
async function testnetDirs (dir: string, depth = 3): Promise<string[]> {
  const out: string[] = []
  let entries
  try { entries = await readdir(dir, { withFileTypes: true }) } catch { return out }
  if (entries.some(e => e.isFile() && e.name === 'state.json')) out.push(dir)
  if (depth > 0) for (const e of entries) if (e.isDirectory()) out.push(...await testnetDirs(join(dir, e.name), depth - 1))
  return out
}

function groupAlive (pgid: number): boolean {
  try { process.kill(-pgid, 0); return true } catch { return false }
}

describe('README.md: every command block of Quick start and Using it, as written', () => {
  let home: string
  let blocks: ReadmeBlock[]
  let pgid: number | undefined

  before(async () => {
    blocks = readmeBlocks(await readFile(join(ROOT, 'README.md'), 'utf8'))
    home = await mkdtemp(join(tmpdir(), 'oht-readme-'))
    // JavaScript blocks import 'oht' from the built package: build it if src/ moved on.
    if (chooseEntry({ root: ROOT, env: {}, tsxAvailable: () => true }).mode !== 'dist') {
      const b = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'build.ts')], { cwd: ROOT, encoding: 'utf8' })
      assert.equal(b.status, 0, `npm run build failed:\n${b.stdout}${b.stderr}`)
    }
  })

  after(async () => {
    if (pgid !== undefined && groupAlive(pgid)) {
      process.kill(-pgid, 'SIGTERM')
      for (let i = 0; i < 100 && groupAlive(pgid); i++) await new Promise(resolve => setTimeout(resolve, 100))
      if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL')
    }
    for (const d of await testnetDirs(home)) await stopTestnetDir(d).catch(() => {})
    await rm(home, { recursive: true, force: true })
  })

  it('runs them in order and every one succeeds', async (t) => {
    const runnable = blocks.filter(b => b.skip === undefined && b.kind !== 'other')
    const skipped = blocks.filter(b => b.skip !== undefined)
    const other = blocks.filter(b => b.skip === undefined && b.kind === 'other')
    const summary = [
      `README.md: ${runnable.length} blocks run (${runnable.filter(b => b.kind === 'shell').length} sh, ${runnable.filter(b => b.kind === 'module').length} js), ${skipped.length} skipped, ${other.length} not runnable`,
      ...skipped.map(b => `  skipped README.md:${b.line} (${b.heading}): ${b.skip as string}`),
      ...other.map(b => `  not runnable README.md:${b.line} (${b.heading}): a ${b.lang === '' ? 'plain' : b.lang} block`)
    ]
    for (const line of summary) t.diagnostic(line)
    process.stdout.write(summary.join('\n') + '\n')
    assert.ok(runnable.some(b => b.section === 'Using it' && /\boht daemon\b/.test(b.code)), 'Using it runs a daemon')
    assert.ok(runnable.some(b => b.kind === 'module'), 'the SDK example runs')

    const bin = join(home, '.readme-bin')
    await mkdir(bin)
    await symlink(join(ROOT, 'bin', 'oht.js'), join(bin, 'oht'))
    const app = join(home, '.readme-app')
    await mkdir(join(app, 'node_modules'), { recursive: true })
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }))
    await symlink(ROOT, join(app, 'node_modules', 'oht'))
    const { script, lineMap } = readmeScript(blocks)
    await writeFile(join(home, '.readme.sh'), script)

    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_') && !k.startsWith('XDG_') && !k.startsWith('npm_')) env[k] = v
    Object.assign(env, {
      HOME: home,
      TMPDIR: home,
      PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      OHT_README_APP: app
    })
    const child = spawn('bash', [join(home, '.readme.sh')], { cwd: home, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    pgid = child.pid
    let output = ''
    const keep = (d: Buffer): void => { output = (output + d.toString()).slice(-40_000) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => { if (pgid !== undefined) process.kill(-pgid, 'SIGKILL') }, SCRIPT_TIMEOUT_MS)
    const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
    clearTimeout(timer)
    if (code !== 0) {
      const m = /readme-test: failed at script line (\d+) \(exit (\d+)\): (.*)/.exec(output)
      const where = m !== null ? `README.md:${lineMap.get(Number(m[1])) ?? '?'} (${m[3]}, exit ${m[2]})` : `exit ${String(code)}`
      const log = await readFile(join(home, 'oht-daemon.log'), 'utf8').catch(() => '')
      assert.fail(`a README command failed at ${where}\n--- output (tail) ---\n${output.slice(-6000)}${log !== '' ? `\n--- ~/oht-daemon.log (tail) ---\n${log.slice(-3000)}` : ''}`)
    }
    assert.match(output, /readme-test: every block ran/)
  })
})
