/**
 * The private Tor network as users get it from the shell: `testnet up` (detached from the
 * process that started it), `env`, `status`, `down`. One network for the file.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { attachTor, countHsDirs, pidAlive, readTestnetState, stopTestnetDir } from '../../src/tor/index.ts'
import type { TestnetState } from '../../src/tor/index.ts'

const run = promisify(execFile)
const CLI = new URL('../../src/tor/testnet/cli.ts', import.meta.url).pathname

async function cli (...args: string[]): Promise<{ stdout: string, stderr: string }> {
  return await run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 240_000 })
}

describe('testnet CLI: up, env, status, down', () => {
  let root: string
  let dir: string
  let upOut: string
  let state: TestnetState

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'oht-testnet-cli-'))
    dir = join(root, 'net')
    upOut = (await cli('up', '--dir', dir, '--clients', '1')).stdout
    state = await readTestnetState(dir)
  })

  after(async () => {
    // If a test failed before `down`, stop what `up` started.
    await stopTestnetDir(dir).catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  it('up leaves every tor running after the CLI process has exited, pids recorded in a 0600 state file', async () => {
    assert.equal(state.nodes.length, 3 + 2 + 1)
    assert.equal(state.detached, true)
    for (const n of state.nodes) assert.ok(pidAlive(n.pid), `${n.name} (pid ${n.pid}) is not running`)
    assert.equal((await stat(join(dir, 'state.json'))).mode & 0o777, 0o600)
    const client = state.nodes.find(n => n.role === 'client')
    assert.ok(client?.socksPort !== undefined)
    assert.match(upOut, new RegExp(`^export OHT_TESTNET_CLIENT0_SOCKS_PORT=${client.socksPort}$`, 'm'))
  })

  it('is usable: the client bootstrapped and sees every relay as an HSDir', async () => {
    const client = state.nodes.find(n => n.role === 'client')
    assert.ok(client !== undefined)
    const control = await attachTor({ port: client.controlPort }, { cookiePath: client.cookiePath })
    try {
      assert.match(await control.getInfoOne('status/bootstrap-phase'), /PROGRESS=100/)
      assert.equal(countHsDirs(await control.getInfoOne('ns/all')), 5)
      // Owner-less on purpose (it outlives `up`), and everything on loopback.
      const owner = (await control.getConf(['__OwningControllerProcess'])).get('__OwningControllerProcess') ?? []
      assert.deepEqual(owner.filter(v => v !== ''), [])
      for (const key of ['net/listeners/control', 'net/listeners/socks']) {
        for (const addr of (await control.getInfoOne(key)).split(' ')) assert.match(addr, /^"?127\.0\.0\.1:\d+"?$/)
      }
    } finally {
      await control.close()
    }
  })

  it('authority fingerprints in every DirAuthority line match the keys tor uses', async () => {
    for (const [i, a] of state.authorities.entries()) {
      const written = await readFile(join(dir, 'nodes', `auth${i}`, 'fingerprint'), 'utf8')
      assert.equal(written.trim().split(' ')[1], a.fingerprint)
    }
  })

  it('env prints the same network as shell variables and as JSON', async () => {
    const env = (await cli('env', '--dir', dir)).stdout
    assert.match(env, new RegExp(`^export OHT_TESTNET_DIR=${dir}$`, 'm'))
    assert.match(env, /^export OHT_TESTNET_CLIENT0_COOKIE=\S+control_auth_cookie$/m)
    const json = JSON.parse((await cli('env', '--dir', dir, '--json')).stdout) as TestnetState
    assert.deepEqual(json.nodes.map(n => n.pid), state.nodes.map(n => n.pid))
    const status = (await cli('status', '--dir', dir)).stdout
    assert.equal(status.trim().split('\n').filter(l => l.endsWith(' running')).length, 6)
  })

  it('down stops exactly the recorded tors', async () => {
    const { stderr } = await cli('down', '--dir', dir)
    assert.match(stderr, /stopped 6 tor processes/)
    for (const n of state.nodes) assert.equal(pidAlive(n.pid), false, `${n.name} (pid ${n.pid}) survived down`)
  })

  it('explains bad usage with exit status 2', async () => {
    await assert.rejects(cli('env'), (err: unknown) => {
      const e = err as { code?: number, stderr?: string }
      assert.equal(e.code, 2)
      assert.match(e.stderr ?? '', /needs --dir/)
      return true
    })
  })
})
