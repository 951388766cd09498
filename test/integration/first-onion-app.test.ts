/**
 * docs/first-onion-app.md, run as written: its command blocks are read from the page at test
 * time (never copied here) and run in order in one bash, from the root of this checkout, with a
 * fresh HOME. The page starts its own private Tor network and two daemons and stops them in its
 * last step; whatever it leaves behind (a failing run) is ended here: bash runs in its own
 * process group, and the network it started under HOME is stopped by its recorded PIDs.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { stopTestnetDir } from '../../src/tor/testnet/index.ts'
import { readmeBlocks, readmeScript } from '../helpers/readme.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const DOC = join(ROOT, 'docs', 'first-onion-app.md')
const TIMEOUT_MS = 12 * 60_000

function groupAlive (pgid: number): boolean {
  try { process.kill(-pgid, 0); return true } catch { return false }
}

describe('docs/first-onion-app.md: every command block, as written', () => {
  let home: string
  let pgid: number | undefined
  before(async () => { home = await mkdtemp(join(tmpdir(), 'oht-first-app-')) })
  after(async () => {
    if (pgid !== undefined && groupAlive(pgid)) {
      process.kill(-pgid, 'SIGTERM')
      for (let i = 0; i < 100 && groupAlive(pgid); i++) await new Promise(resolve => setTimeout(resolve, 100))
      if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL')
    }
    await stopTestnetDir(join(home, 'onion-net')).catch(() => {})
    await rm(home, { recursive: true, force: true })
  })

  it('runs the walk-through in order and every step succeeds', async () => {
    const text = await readFile(DOC, 'utf8')
    const sections = [...text.matchAll(/^## (.*)$/gm)].map(m => m[1].trim())
    const blocks = readmeBlocks(text, sections)
    const runnable = blocks.filter(b => b.kind === 'shell' && b.skip === undefined)
    assert.ok(runnable.length >= 10, `the walk-through has ${runnable.length} shell blocks`)
    const { script, lineMap } = readmeScript(runnable)
    const file = join(home, '.first-app.sh')
    await writeFile(file, script)
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_') && !k.startsWith('XDG_') && !k.startsWith('npm_')) env[k] = v
    Object.assign(env, { HOME: home, TMPDIR: home, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`, OHT_README_APP: home })
    const child = spawn('bash', [file], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    pgid = child.pid
    let output = ''
    const keep = (d: Buffer): void => { output = (output + d.toString()).slice(-60_000) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => { if (pgid !== undefined) process.kill(-pgid, 'SIGKILL') }, TIMEOUT_MS)
    const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
    clearTimeout(timer)
    if (code !== 0) {
      const m = /readme-test: failed at script line (\d+) \(exit (\d+)\): (.*)/.exec(output)
      const where = m !== null ? `docs/first-onion-app.md:${lineMap.get(Number(m[1])) ?? '?'} (${m[3]}, exit ${m[2]})` : `exit ${String(code)}`
      const logs = await Promise.all(['me.log', 'friend.log'].map(async f => `--- ~/${f} (tail) ---\n${(await readFile(join(home, f), 'utf8').catch(() => '')).slice(-2500)}`))
      assert.fail(`a step failed at ${where}\n--- output (tail) ---\n${output.slice(-8000)}\n${logs.join('\n')}`)
    }
    assert.match(output, /readme-test: every block ran/)
    // What the page promises along the way.
    assert.match(output, /refused by the validator, as it should be/)
    assert.match(output, /<title>Guest book<\/title>/)
    assert.match(output, /"likes":\s*3/)
  })
})
