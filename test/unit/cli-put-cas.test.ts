/**
 * `oht put` against a real daemon in process (local transport): the outcome says how many
 * holders the record reached ("stored 1 of 20: only this node holds it"), mutable puts show
 * their seq, and `--cas N` writes only at seq N, exiting 8 with nothing written otherwise.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { main } from '../../src/cli/main.ts'
import { readAll, type CliIo } from '../../src/cli/io.ts'
import { EXIT } from '../../src/cli/errors.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], env: Record<string, string>): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = {
    stdout: { write: (c: string | Uint8Array) => { out.push(Buffer.from(c).toString()); return true } },
    stderr: { write: (c: string | Uint8Array) => { err.push(Buffer.from(c).toString()); return true } },
    readStdin: async (max) => await readAll(Readable.from([]), max),
    env,
    clock: systemClock,
    signal: new AbortController().signal
  }
  const code = await main(argv, io)
  return { code, stdout: out.join(''), stderr: err.join('') }
}

describe('oht put: holders reached, seq and --cas', () => {
  let dir: string
  let env: Record<string, string>
  let daemon: Daemon

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-cli-cas-'))
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    assert.equal((await run(['init'], env)).code, 0)
    const config = validateConfig({ node: { transport: 'local' } }, 'test', env.OHT_STATE_DIR)
    daemon = createDaemon({ config, stateDir: env.OHT_STATE_DIR }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await daemon.start()
  })

  after(async () => {
    await daemon.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('says when only this node holds the record, on stderr, with the key alone on stdout', async () => {
    const r = await run(['put', 'hello'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/)
    assert.equal(r.stderr, 'stored 1 of 20: only this node holds it\n')
    const j = JSON.parse((await run(['put', 'hello json', '--json'], env)).stdout)
    assert.deepEqual([j.stored, j.wanted, j.storedHere, j.onlyHere, j.summary], [1, 20, true, true, 'stored 1 of 20: only this node holds it'])
  })

  it('--cas N writes at seq N only; otherwise exit 8, one line, nothing written', async () => {
    const first = await run(['put', 'motd', 'v1'], env)
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, /; seq 0\n$/)
    const key = first.stdout.trim()
    const second = await run(['put', 'motd', 'v2', '--cas', '0', '--json'], env)
    assert.equal(second.code, 0, second.stderr)
    assert.equal(JSON.parse(second.stdout).seq, 1)
    const stale = await run(['put', 'motd', 'v3', '--cas', '0'], env)
    assert.equal(stale.code, EXIT.CONFLICT)
    assert.equal(stale.code, 8)
    assert.equal(stale.stdout, '')
    assert.match(stale.stderr, /^oht put: compare-and-swap failed: the current seq is 1, expected 0 \(nothing was written\)\n$/)
    assert.equal((await run(['get', key], env)).stdout, 'v2')
  })

  it('refuses --cas on immutable records and a --cas that is not a seq (exit 2)', async () => {
    const imm = await run(['put', 'plain', '--cas', '0'], env)
    assert.equal(imm.code, EXIT.USAGE)
    assert.match(imm.stderr, /--cas applies to mutable records/)
    const bad = await run(['put', 'motd', 'x', '--cas', 'one'], env)
    assert.equal(bad.code, EXIT.USAGE)
    assert.match(bad.stderr, /--cas must be a seq/)
    assert.match((await run(['put', '--help'], env)).stdout, /--cas <seq>/)
    assert.match((await run(['--help'], env)).stdout, /^ {2}8 {4}oht put --cas N/m)
  })
})
