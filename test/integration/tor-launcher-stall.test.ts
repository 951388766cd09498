/**
 * A launched tor that makes no bootstrap progress is given up after bootstrapStallMs with a
 * TOR_BOOTSTRAP_STALLED that says where it is stuck and why, instead of a silent wait for the
 * whole bootstrap timeout. Real tor processes that reach nothing but 127.0.0.1: one with
 * DisableNetwork, one for a private network whose only authority is a closed loopback port.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { launchTor, TorError } from '../../src/tor/index.ts'

const DEAD_AUTHORITY = `nowhere orport=1 no-v2 v3ident=${'B'.repeat(40)} 127.0.0.1:1 ${'A'.repeat(40)}`

async function torsMentioning (needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(needle)) pids.push(Number(entry))
  }
  return pids
}

async function stalled (torrc: Record<string, string | number>, stallMs: number): Promise<{ err: TorError, ms: number }> {
  const t0 = performance.now()
  try {
    await launchTor({ torrc, bootstrapStallMs: stallMs, bootstrapTimeoutMs: 120_000, onProgress: () => {} })
  } catch (err) {
    assert.ok(err instanceof TorError, String(err))
    return { err, ms: performance.now() - t0 }
  }
  assert.fail('launchTor bootstrapped with no network')
}

describe('tor launcher: bootstrap stall detection (real tor, loopback only)', () => {
  it('a private network whose authority does not answer: stalled, well before the bootstrap timeout, and says so', async () => {
    const { err, ms } = await stalled({ TestingTorNetwork: 1, DirAuthority: DEAD_AUTHORITY }, 3_000)
    assert.equal(err.code, 'TOR_BOOTSTRAP_STALLED')
    assert.match(err.message, /^tor made no bootstrap progress for 3 s: stuck at \d+ % \(/)
    assert.match(err.message, /set up for a private Tor network \(1 DirAuthority lines\) and none of those authorities gave it a consensus/)
    assert.ok(ms < 60_000, `gave up after ${ms} ms`)
  })

  it('DisableNetwork: stalled, and the message names the setting', async () => {
    const { err } = await stalled({ DisableNetwork: 1 }, 2_000)
    assert.equal(err.code, 'TOR_BOOTSTRAP_STALLED')
    assert.match(err.message, /DisableNetwork is set in its torrc/)
  })

  it('the tor it launched is gone after the stall', async () => {
    const before = await torsMentioning('oht-tor-')
    await stalled({ DisableNetwork: 1 }, 1_500)
    const after = await torsMentioning('oht-tor-')
    assert.deepEqual(after.filter(p => !before.includes(p)), [])
  })
})
