/**
 * The tor launcher's failure paths and clean-up, with real tor processes. Every tor here is
 * configured for a private network whose only directory authority is a closed port on
 * 127.0.0.1, so it never connects anywhere else and never bootstraps past the first steps. Each test
 * points TMPDIR at a fresh directory so it can check that nothing is left behind in it: no
 * process whose command line mentions it, no file in it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { attachTor, launchTor, pidAlive, publishOnion, TorError } from '../../src/tor/index.ts'
import type { TorProcess } from '../../src/tor/index.ts'

// Tor opens no SOCKS listener under DisableNetwork, so a dead loopback authority it is.
const OFFLINE = {
  TestingTorNetwork: 1,
  DirAuthority: `nowhere orport=1 no-v2 v3ident=${'B'.repeat(40)} 127.0.0.1:1 ${'A'.repeat(40)}`
}

async function processesMentioning (needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(needle)) pids.push(Number(entry))
  }
  return pids
}

/** Runs `fn` with TMPDIR set to a fresh dir, then asserts nothing of it survived. */
async function inFreshTmp (fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'oht-launcher-test-'))
  const saved = process.env.TMPDIR
  process.env.TMPDIR = root
  try {
    await fn(root)
    assert.deepEqual(await processesMentioning(root), [], 'a tor process is still running')
    assert.deepEqual(await readdir(root), [], 'the launcher left files behind')
  } finally {
    if (saved === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = saved
    await rm(root, { recursive: true, force: true })
  }
}

function isCode (code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String(err)}`)
    return true
  }
}

describe('tor launcher', () => {
  it('a missing tor binary is TOR_NOT_INSTALLED and says how to install it', async () => {
    await inFreshTmp(async () => {
      await assert.rejects(launchTor({ torPath: '/nonexistent/bin/tor', torrc: OFFLINE }), (err: unknown) => {
        assert.ok(err instanceof TorError)
        assert.equal(err.code, 'TOR_NOT_INSTALLED')
        assert.match(err.message, /apt-get install -y tor/)
        return true
      })
    })
  })

  it('a bad torrc fails with TOR_LAUNCH_FAILED naming tor\'s warning and leaves nothing behind', async () => {
    await inFreshTmp(async () => {
      await assert.rejects(launchTor({ torrc: { ...OFFLINE, NoSuchTorOption: 1 } }), (err: unknown) => {
        assert.ok(err instanceof TorError)
        assert.equal(err.code, 'TOR_LAUNCH_FAILED')
        assert.match(err.message, /NoSuchTorOption/)
        return true
      })
    })
  })

  it('a SOCKS port already in use fails with TOR_LAUNCH_FAILED naming the bind error', async () => {
    const busy = createServer()
    await new Promise<void>((resolve) => { busy.listen(0, '127.0.0.1', resolve) })
    const port = (busy.address() as { port: number }).port
    try {
      await inFreshTmp(async () => {
        await assert.rejects(launchTor({ torrc: OFFLINE, socksPort: port, waitForBootstrap: false }), (err: unknown) => {
          assert.ok(err instanceof TorError)
          assert.equal(err.code, 'TOR_LAUNCH_FAILED')
          assert.match(err.message, new RegExp(`Address already in use|${port}`))
          return true
        })
      })
    } finally {
      await new Promise<void>((resolve) => { busy.close(() => { resolve() }) })
    }
  })

  it('a started tor is authenticated and owned by us; stop() ends it and removes its temp dir', async () => {
    await inFreshTmp(async (root) => {
      const tor = await launchTor({ torrc: OFFLINE, waitForBootstrap: false })
      try {
        assert.ok(tor.dataDir.startsWith(root))
        assert.match(await tor.control.getInfoOne('version'), /^\d+\.\d+\.\d+/)
        const owner = await tor.control.getConf(['__OwningControllerProcess'])
        assert.deepEqual(owner.get('__OwningControllerProcess'), [String(process.pid)])
        assert.equal((await stat(tor.torrcPath)).mode & 0o777, 0o600)
        assert.equal((await stat(tor.cookiePath)).mode & 0o077, 0, 'control cookie readable by others')
        assert.equal((await stat(tor.dataDir)).mode & 0o777, 0o700)
        assert.ok(tor.socksPort !== undefined && tor.socksPort > 0)
        const listeners = await tor.control.getInfoOne('net/listeners/control')
        assert.match(listeners, /^"?127\.0\.0\.1:\d+"?$/, 'control port must listen on 127.0.0.1 only')
      } finally {
        await tor.stop()
      }
      assert.equal(pidAlive(tor.pid), false)
      await tor.stop() // a second stop is harmless
    })
  })

  it('attachTor reaches a running tor over its unix control socket and authenticates', async () => {
    await inFreshTmp(async (root) => {
      const sockDir = join(root, 'sock')
      await mkdir(sockDir, { mode: 0o700 })
      const path = join(sockDir, 'control')
      const tor = await launchTor({ torrc: { ...OFFLINE, ControlSocket: path }, waitForBootstrap: false })
      try {
        const control = await attachTor({ path }, { cookiePath: tor.cookiePath })
        try {
          assert.match(await control.getInfoOne('version'), /^\d+\.\d+\.\d+/)
        } finally {
          await control.close()
        }
      } finally {
        await tor.stop()
        await rm(sockDir, { recursive: true, force: true })
      }
    })
  })

  it('killing tor mid-session gives callers TOR_CONTROL_CLOSED', async () => {
    await inFreshTmp(async () => {
      const tor: TorProcess = await launchTor({ torrc: OFFLINE, waitForBootstrap: false })
      try {
        process.kill(tor.pid, 'SIGKILL')
        await tor.exited
        await assert.rejects(tor.control.getInfoOne('version'), isCode('TOR_CONTROL_CLOSED'))
        assert.equal(tor.control.closed, true)
      } finally {
        await tor.stop()
      }
    })
  })

  it('publishOnion fails fast with TOR_CONTROL_CLOSED when tor dies before the descriptor is out', async () => {
    await inFreshTmp(async () => {
      const tor = await launchTor({ torrc: OFFLINE, waitForBootstrap: false })
      try {
        const started = performance.now()
        const publishing = publishOnion(tor.control, { ports: [{ virtualPort: 80, target: '127.0.0.1:9' }], timeoutMs: 30_000 })
        // This tor can never upload (no network): kill it once ADD_ONION has gone through.
        while ((await tor.control.listOnions('current')).length === 0) await new Promise((resolve) => { setImmediate(resolve) })
        process.kill(tor.pid, 'SIGKILL')
        await assert.rejects(publishing, isCode('TOR_CONTROL_CLOSED'))
        assert.ok(performance.now() - started < 10_000, 'waited for the deadline instead of failing fast')
      } finally {
        await tor.stop()
      }
    })
  })

  it('aborting while tor bootstraps kills it and leaves nothing behind', async () => {
    await inFreshTmp(async () => {
      const ac = new AbortController()
      const seen: number[] = []
      // With no reachable authority bootstrap stays below 100 %: abort on the first report.
      await assert.rejects(launchTor({ torrc: OFFLINE, signal: ac.signal, onProgress: (p) => { seen.push(p.percent); ac.abort() } }), isCode('CORE_ABORTED'))
      assert.ok(seen.length > 0 && seen[0] < 100)
    })
  })

  it('a bootstrap that does not finish in time is TOR_BOOTSTRAP_FAILED and leaves nothing behind', async () => {
    await inFreshTmp(async () => {
      await assert.rejects(launchTor({ torrc: OFFLINE, bootstrapTimeoutMs: 800 }), (err: unknown) => {
        assert.ok(err instanceof TorError)
        assert.equal(err.code, 'TOR_BOOTSTRAP_FAILED')
        assert.match(err.message, /bootstrapping in time/)
        return true
      })
    })
  })

  it('refuses torrc options the launcher owns, before starting anything', async () => {
    await inFreshTmp(async () => {
      await assert.rejects(launchTor({ torrc: { ControlPort: 9051 } }), isCode('TOR_BAD_CONFIG'))
      await assert.rejects(launchTor({ torrc: { Nickname: 'a\nControlPort 1' } }), isCode('TOR_BAD_CONFIG'))
    })
  })
})
