/**
 * `oht daemon` start-up as a person meets it, with real processes: its own tor (launched, for a
 * private network whose only authority is a closed port on 127.0.0.1, so it never gets past
 * the first bootstrap steps and never leaves loopback). Ctrl-C while it waits exits 130 and
 * logs a stop, not an error; a tor that makes no progress fails the start with exit 7 and a
 * message that says why; either way the tor it launched is gone.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('../..', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'oht.js')
const DEAD_AUTHORITY = `nowhere orport=1 no-v2 v3ident=${'B'.repeat(40)} 127.0.0.1:1 ${'A'.repeat(40)}`

interface Exit { code: number | null, logs: Array<Record<string, unknown>>, text: string[] }

async function torsMentioning (needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmd.startsWith('tor\0') && cmd.includes(needle)) pids.push(Number(entry))
  }
  return pids
}

/** Runs `oht daemon` until it exits; `onLog` may signal it (the child is passed). */
async function daemon (env: Record<string, string>, onLog: (entry: Record<string, unknown>, kill: (s: NodeJS.Signals) => void) => void): Promise<Exit> {
  const child = spawn(process.execPath, [BIN, 'daemon'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  const logs: Array<Record<string, unknown>> = []
  const text: string[] = []
  let buf = ''
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 120_000)
  child.stderr.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      let entry: Record<string, unknown> | undefined
      try { entry = JSON.parse(line) as Record<string, unknown> } catch { text.push(line) }
      if (entry !== undefined) { logs.push(entry); onLog(entry, (s) => child.kill(s)) }
    }
  })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, logs, text }
}

describe('oht daemon start-up with its own tor (real processes, loopback only)', () => {
  let base: string
  const envFor = async (name: string, torSettings: string): Promise<Record<string, string>> => {
    const dir = join(base, name)
    const config = join(dir, 'oht.toml')
    await mkdir(dir)
    await writeFile(config, `[tor]\nmode = "launch"\n${torSettings}\n[tor.torrc]\nTestingTorNetwork = 1\nDirAuthority = "${DEAD_AUTHORITY}"\n`)
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_') && !k.startsWith('XDG_')) env[k] = v
    Object.assign(env, { HOME: dir, OHT_CONFIG: config, OHT_STATE_DIR: join(dir, 'state') })
    const init = spawn(process.execPath, [BIN, 'init'], { env, stdio: 'ignore' })
    assert.equal(await new Promise(resolve => init.on('exit', resolve)), 0)
    return env
  }

  before(async () => { base = await mkdtemp(join(tmpdir(), 'oht-dstart-')) })
  after(async () => { await rm(base, { recursive: true, force: true }) })

  it('SIGINT while tor bootstraps: exit 130, logged as a stop (no error line), its tor gone', async () => {
    const env = await envFor('sigint', 'bootstrap_stall_ms = 0')
    let sent = false
    const r = await daemon(env, (entry, kill) => {
      // The first bootstrap report means tor runs and the daemon is waiting on it.
      if (entry.msg === 'tor bootstrap' && !sent) { sent = true; kill('SIGINT') }
    })
    assert.ok(sent, `never saw tor bootstrap progress: ${JSON.stringify(r.logs)}`)
    assert.equal(r.code, 130, JSON.stringify(r.logs))
    assert.deepEqual(r.logs.filter(l => l.level === 'error'), [])
    const msgs = r.logs.map(l => l.msg)
    assert.ok(msgs.includes('start interrupted'), msgs.join(', '))
    assert.equal(msgs.at(-1), 'stopped')
    assert.deepEqual(r.text.filter(t => t.trim() !== ''), [], 'no error line besides the JSON log')
    assert.deepEqual(await torsMentioning(env.OHT_STATE_DIR), [])
  })

  it('a tor with no bootstrap progress: exit 7 after the stall time, saying where it is stuck and why', async () => {
    const env = await envFor('stall', 'bootstrap_stall_ms = 3000')
    const t0 = performance.now()
    const r = await daemon(env, () => {})
    const ms = performance.now() - t0
    assert.equal(r.code, 7)
    const last = r.text.at(-1) ?? ''
    assert.match(last, /^oht daemon: tor is not usable: tor made no bootstrap progress for 3 s: stuck at \d+ %/)
    assert.match(last, /private Tor network/)
    assert.ok(ms < 90_000, `took ${ms} ms`)
    assert.deepEqual(await torsMentioning(env.OHT_STATE_DIR), [])
  })
})
