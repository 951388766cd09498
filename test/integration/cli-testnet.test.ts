/**
 * `oht testnet` from a shell, with real tor: up prints env to eval, status says whether every
 * tor runs (exit 1 when one is down), up on a running network's dir prints its env again, and
 * up on a stopped network's dir starts it again, in the same dir.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readTestnetState, stopTestnetDir } from '../../src/tor/testnet/index.ts'
import { pidAlive } from '../../src/tor/index.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'oht.js')

interface Run { code: number | null, stdout: string, stderr: string }

async function oht (args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (d: Buffer) => out.push(d))
  child.stderr.on('data', (d: Buffer) => err.push(d))
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 240_000)
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  clearTimeout(timer)
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

function exports (stdout: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of stdout.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)) env[m[1]] = m[2]
  return env
}

describe('oht testnet up / status / down on one dir (real tor)', () => {
  let base: string | undefined
  after(async () => {
    if (base === undefined) return
    await stopTestnetDir(join(base, 'net')).catch(() => {})
    await rm(base, { recursive: true, force: true })
  })

  it('up, status 0, up again (same network), down, status 1, up restarts it in the same dir', async () => {
    base = await mkdtemp(join(tmpdir(), 'oht-clitn-'))
    const dir = join(base, 'net')
    const up = await oht(['testnet', 'up', '--dir', dir, '--clients', '1'])
    assert.equal(up.code, 0, up.stderr)
    const env = exports(up.stdout)
    assert.equal(env.OHT_TESTNET_DIR, dir)
    assert.match(env.OHT_TESTNET_CLIENT0_CONTROL_PORT, /^\d+$/)
    assert.match(up.stderr, /stop it with: oht testnet down --dir /)

    const status = await oht(['testnet', 'status', '--dir', dir])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(status.stdout.trim().split('\n').length, 6)

    const again = await oht(['testnet', 'up', '--dir', dir])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /already running in /)
    assert.deepEqual(exports(again.stdout), env)

    const down = await oht(['testnet', 'down', '--dir', dir])
    assert.equal(down.code, 0, down.stderr)
    const old = await readTestnetState(dir)
    const survivors = old.nodes.filter(n => pidAlive(n.pid))
    assert.deepEqual(survivors.map(n => `${n.name} ${n.pid}`), [], `tors outlived testnet down (${down.stderr.trim()})`)
    const stopped = await oht(['testnet', 'status', '--dir', dir, '--json'])
    assert.equal(stopped.code, 1)
    assert.equal(JSON.parse(stopped.stdout).running, false)
    assert.match(stopped.stderr, /6 of 6 tors are not running .*: start the network again with: oht testnet up --dir /)

    const restarted = await oht(['testnet', 'up', '--dir', dir])
    assert.equal(restarted.code, 0, restarted.stderr)
    assert.match(restarted.stderr, /6 of 6 tors in .* were down; starting the network again/)
    const fresh = await readTestnetState(dir)
    assert.equal(fresh.dir, dir)
    assert.equal(fresh.nodes.length, 6)
    assert.deepEqual(fresh.nodes.filter(n => !pidAlive(n.pid)).map(n => n.name), [])
    assert.ok(fresh.nodes.every(n => !old.nodes.some(o => o.pid === n.pid)), 'new tors')
    assert.equal((await oht(['testnet', 'status', '--dir', dir])).code, 0)
    assert.equal((await oht(['testnet', 'down', '--dir', dir])).code, 0)
  })
})
