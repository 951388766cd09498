/**
 * What a stalled bootstrap tells the user, from the bootstrap-phase text tor reports (the
 * first one recorded from a tor that could not finish handshakes with public relays), and
 * what the daemon adds when its own launched tor stalls.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { generateIdentity, writeKeyFile } from '../../src/crypto/index.ts'
import { describeBootstrapStall } from '../../src/tor/bootstrap-stall.ts'
import { TorError } from '../../src/tor/errors.ts'
import { createDaemon, createJsonLog, validateConfig } from '../../src/daemon/index.ts'

const PUBLIC_STALL = 'WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY="Handshaking with a relay" WARNING="DONE" REASON=DONE COUNT=14 RECOMMENDATION=warn HOSTID="BD6A829255CB08E66FBE7D3748363586E46B3810" HOSTADDR="171.25.193.9:80"'
const STARTING = 'NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"'

describe('describeBootstrapStall', () => {
  it('public network: where it is stuck, the last failed relay, and what to try', () => {
    const m = describeBootstrapStall({ stalledMs: 30_000, phase: PUBLIC_STALL, torrc: {}, problems: [] })
    assert.match(m, /^tor made no bootstrap progress for 30 s: stuck at 14 % \(Handshaking with a relay\)/)
    assert.match(m, /its last attempt to reach 171\.25\.193\.9:80 failed: the connection was closed during the handshake \(14 failed connections so far\)/)
    assert.match(m, /trying the public Tor network, which this machine does not seem to reach/)
    assert.match(m, /bridges \(UseBridges 1 and Bridge lines\)/)
    assert.match(m, /run a private Tor network/)
  })

  it('bridges, a private network, DisableNetwork: each names its own cause', () => {
    const bridges = describeBootstrapStall({ stalledMs: 30_000, phase: STARTING, torrc: { UseBridges: 1, Bridge: ['obfs4 192.0.2.1:443 X', 'obfs4 192.0.2.2:443 Y'] }, problems: [] })
    assert.match(bridges, /none of its 2 bridges completed a handshake/)
    const priv = describeBootstrapStall({ stalledMs: 30_000, phase: 'WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" REASON=CONNECTREFUSED HOSTADDR="127.0.0.1:1"', torrc: { TestingTorNetwork: 1, DirAuthority: ['a', 'b', 'c'] }, problems: [] })
    assert.match(priv, /stuck at 5 % \(Connecting to a relay\); its last attempt to reach 127\.0\.0\.1:1 failed: the connection was refused/)
    assert.match(priv, /private Tor network \(3 DirAuthority lines\)/)
    const off = describeBootstrapStall({ stalledMs: 31_400, phase: STARTING, torrc: { disablenetwork: '1' }, problems: ['[warn] something'] })
    assert.match(off, /for 31 s: stuck at 0 % \(Starting\); tor said: \[warn\] something; DisableNetwork is set/)
    assert.doesNotMatch(describeBootstrapStall({ stalledMs: 1, phase: STARTING, torrc: { DisableNetwork: 0 }, problems: [] }), /DisableNetwork is set/)
  })
})

describe('daemon: a launched tor that stalls, and Ctrl-C while starting', () => {
  const setup = async (): Promise<{ dir: string, logs: Array<Record<string, unknown>>, log: ReturnType<typeof createJsonLog> }> => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-stall-'))
    await writeKeyFile(join(dir, 'identity.key'), generateIdentity())
    const logs: Array<Record<string, unknown>> = []
    return { dir, logs, log: createJsonLog((l) => logs.push(JSON.parse(l)), systemClock, 'debug') }
  }

  it('on the public network the daemon says how to run on a private one; with DirAuthority lines it does not', async () => {
    for (const [torrc, hint] of [[{}, true], [{ DirAuthority: 'x' }, false]] as const) {
      const { dir, log } = await setup()
      try {
        const config = validateConfig({ tor: { mode: 'launch', torrc } }, 'test', dir)
        const daemon = createDaemon({ config, stateDir: dir }, {
          clock: systemClock,
          log,
          createNode: async () => { throw new Error('no node without tor') },
          launchTor: async () => { throw new TorError('TOR_BOOTSTRAP_STALLED', 'tor made no bootstrap progress for 30 s') }
        })
        await assert.rejects(daemon.start(), (err: Error) => {
          assert.match(err.message, /^tor is not usable: tor made no bootstrap progress for 30 s/)
          if (hint) assert.match(err.message, /No public Tor network here\? .*oht testnet up --dir ~\/oht-net.*oht daemon --testnet ~\/oht-net/)
          else assert.doesNotMatch(err.message, /oht testnet/)
          return true
        })
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
  })

  it('aborting start logs a stop, not an error, and tears down what it started', async () => {
    const { dir, logs, log } = await setup()
    try {
      const config = validateConfig({}, 'test', dir)
      const controller = new AbortController()
      let launched!: () => void
      const launching = new Promise<void>((resolve) => { launched = resolve })
      const daemon = createDaemon({ config, stateDir: dir }, {
        clock: systemClock,
        log,
        createNode: async () => { throw new Error('unreachable') },
        launchTor: async (init) => {
          launched()
          await new Promise((_resolve, reject) => { init.signal?.addEventListener('abort', () => { reject(init.signal?.reason) }, { once: true }) })
          throw new Error('unreachable')
        }
      })
      const started = daemon.start({ signal: controller.signal })
      await launching
      controller.abort()
      await assert.rejects(started)
      assert.equal(daemon.phase, 'stopped')
      assert.deepEqual(logs.filter(l => l.level === 'error'), [])
      const msgs = logs.map(l => l.msg)
      assert.ok(msgs.includes('start interrupted'), msgs.join(', '))
      assert.equal(msgs.at(-1), 'stopped')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
