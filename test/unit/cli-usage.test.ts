/**
 * The CLI as a person meets it: global flags before or after the command, --version, oht init
 * writing a commented default config, oht status --wait for a daemon started in the
 * background, status lines for tor reconnects and joins that keep failing, and
 * oht testnet status exiting non-zero when its tors are down.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Readable } from 'node:stream'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { main, takeGlobalFlags } from '../../src/cli/main.ts'
import { readAll, type CliIo } from '../../src/cli/io.ts'
import { EXIT } from '../../src/cli/errors.ts'
import { formatStatus, type DaemonStatus } from '../../src/cli/commands/status.ts'
import { DEFAULT_CONFIG_TOML } from '../../src/daemon/config.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], env: Record<string, string | undefined>, signal = new AbortController().signal): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = {
    stdout: { write: (c: string | Uint8Array) => { out.push(Buffer.from(c).toString()); return true } },
    stderr: { write: (c: string | Uint8Array) => { err.push(Buffer.from(c).toString()); return true } },
    readStdin: async (max) => await readAll(Readable.from([]), max),
    env,
    clock: systemClock,
    signal
  }
  const code = await main(argv, io)
  return { code, stdout: out.join(''), stderr: err.join('') }
}

describe('global flags anywhere', () => {
  it('takeGlobalFlags takes only global flags, with their values, up to the first word', () => {
    assert.deepEqual(takeGlobalFlags(['--state-dir', '/x', '--json', 'put', 'v'], 0), { tokens: ['--state-dir', '/x', '--json'], next: 3 })
    assert.deepEqual(takeGlobalFlags(['--config=/c.toml', 'status'], 0), { tokens: ['--config=/c.toml'], next: 1 })
    assert.deepEqual(takeGlobalFlags(['status'], 0), { tokens: [], next: 0 })
    assert.throws(() => takeGlobalFlags(['--ttl', '1h', 'put'], 0), /--ttl is not a flag every command takes/)
    assert.throws(() => takeGlobalFlags(['--state-dir'], 0), /--state-dir needs a value/)
  })

  it('oht --state-dir X id and oht id --state-dir X read the same identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-usage-'))
    try {
      const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') }
      const state = join(dir, 'state')
      const init = await run(['--state-dir', state, 'init', '--json'], env)
      assert.equal(init.code, 0, init.stderr)
      const onion = JSON.parse(init.stdout).onion as string
      const before = await run(['--state-dir', state, '--json', 'id'], env)
      const after = await run(['id', '--state-dir', state, '--json'], env)
      assert.equal(before.code, 0, before.stderr)
      assert.equal(JSON.parse(before.stdout).onion, onion)
      assert.equal(JSON.parse(after.stdout).onion, onion)
      // A state dir given twice (before and after) is a usage error, not a silent pick.
      const twice = await run(['--state-dir', state, 'id', '--state-dir', join(dir, 'other')], env)
      assert.equal(twice.code, EXIT.USAGE)
      assert.match(twice.stderr, /--state-dir given twice/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('help, subcommands and bad placement', async () => {
    const env = { HOME: '/nonexistent' }
    const top = await run(['--json', '--help'], env)
    assert.equal(top.code, 0)
    assert.match(top.stdout, /Usage: oht \[global flags\] <command>/)
    const put = await run(['--help', 'put'], env)
    assert.equal(put.code, 0)
    assert.match(put.stdout, /^oht put: /)
    const sub = await run(['testnet', '--help'], env)
    assert.equal(sub.code, 0)
    assert.match(sub.stdout, /Subcommands:/)
    const subHelp = await run(['--help', 'testnet', 'up'], env)
    assert.match(subHelp.stdout, /^oht testnet up: /)
    const own = await run(['--ttl', '1h', 'put', 'x'], env)
    assert.equal(own.code, EXIT.USAGE)
    assert.match(own.stderr, /--ttl is not a flag every command takes; a command's own flags go after it/)
    const nothing = await run(['--json'], env)
    assert.equal(nothing.code, EXIT.USAGE)
  })

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    const r = await run(['--version'], {})
    assert.equal(r.code, 0)
    assert.equal(r.stdout, `oht ${pkg.version} (node ${process.version})\n`)
  })
})

describe('oht init writes a commented default config', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-init-cfg-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes $XDG_CONFIG_HOME/multiverse/oht.toml once, 0600, and never replaces one', async () => {
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    const file = join(dir, 'config', 'multiverse', 'oht.toml')
    const r = await run(['init', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.equal(out.configFile, file)
    assert.equal(out.configWritten, true)
    assert.equal(await readFile(file, 'utf8'), DEFAULT_CONFIG_TOML)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    await writeFile(file, '[log]\nlevel = "debug"\n')
    const again = await run(['init', '--force', '--json'], env)
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout).configWritten, false)
    assert.equal(await readFile(file, 'utf8'), '[log]\nlevel = "debug"\n')
  })

  it('writes a --config file that does not exist yet, and refuses another extension', async () => {
    const env = { HOME: dir, OHT_STATE_DIR: join(dir, 'state2') }
    const file = join(dir, 'etc', 'node.toml')
    const r = await run(['init', '--config', file], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /default config written to .*node\.toml/)
    assert.equal(await readFile(file, 'utf8'), DEFAULT_CONFIG_TOML)
    const bad = await run(['init', '--config', join(dir, 'etc', 'node.yml')], { ...env, OHT_STATE_DIR: join(dir, 'state3') })
    assert.equal(bad.code, EXIT.CONFIG)
    assert.match(bad.stderr, /node\.yml: the name must end in \.toml or \.json/)
  })

  it('an existing identity: nothing written, not even the config', async () => {
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config4'), OHT_STATE_DIR: join(dir, 'state4') }
    assert.equal((await run(['init'], env)).code, 0)
    await rm(join(dir, 'config4'), { recursive: true })
    const r = await run(['init'], env)
    assert.equal(r.code, EXIT.FAILURE)
    assert.match(r.stderr, /nothing changed/)
    await assert.rejects(stat(join(dir, 'config4', 'multiverse', 'oht.toml')))
  })
})

describe('oht status', () => {
  let dir: string
  let env: Record<string, string>
  let daemon: Daemon | undefined

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-status-'))
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    assert.equal((await run(['init'], env)).code, 0)
  })
  after(async () => {
    await daemon?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('--wait with no daemon gives up after the wait with exit 4; a bad duration is a usage error', async () => {
    const r = await run(['status', '--wait', '300ms'], env)
    assert.equal(r.code, EXIT.UNAVAILABLE)
    assert.match(r.stderr, /no daemon answers on .*api\.sock/)
    const bad = await run(['status', '--wait', 'soon'], env)
    assert.equal(bad.code, EXIT.USAGE)
  })

  it('--wait returns once a daemon started later is running', async () => {
    const waiting = run(['status', '--wait', '30s', '--json'], env)
    await systemClock.sleep(400)
    const config = validateConfig({ node: { transport: 'local' } }, 'test', env.OHT_STATE_DIR)
    daemon = createDaemon({ config, stateDir: env.OHT_STATE_DIR }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await daemon.start()
    const r = await waiting
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).phase, 'running')
  })

  it('a daemon whose joins fail counts them in /v1/status', async () => {
    const state = join(dir, 'joining')
    assert.equal((await run(['init'], { ...env, OHT_STATE_DIR: state })).code, 0)
    const config = validateConfig({ node: { transport: 'local', bootstrap: ['/ip4/127.0.0.1/tcp/9/p2p/12D3KooWnobody'] }, api: { socket: join(dir, 'j.sock') } }, 'test', state)
    const d = createDaemon({ config, stateDir: state }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await d.start()
    try {
      const s = d.status() as DaemonStatus
      assert.equal(s.join?.failures, 1)
      assert.equal(s.join?.bootstrap, 1)
      assert.match(s.join?.lastError ?? '', /the local transport has no network/)
      assert.match(formatStatus(s), /^join {7}failing: 1 try at joining through 1 bootstrap peer, last: the local transport has no network/m)
    } finally {
      await d.stop()
    }
  })

  it('shows tor bootstrap progress, tor reconnects that keep failing and joins that keep failing', () => {
    const base: DaemonStatus = {
      version: '0.1.0', phase: 'recovering', pid: 1, uptimeMs: 5000, transport: 'tor', socket: '/s', identity: null, addrs: [],
      tor: { mode: 'launch', connected: false, bootstrapPercent: 14, bootstrapSummary: 'Handshaking with a relay', restarts: 2, circuits: { built: 1, failed: 0 }, lastError: 'tor made no bootstrap progress for 30 s', reconnectAttempts: 3 },
      node: { peers: 0, recordsStored: 0, lookups: 0 },
      join: { bootstrap: 2, failures: 4, lastError: 'no bootstrap peer answered' },
      endpoints: []
    }
    const text = formatStatus(base)
    assert.match(text, /^tor {8}launch, NOT connected, bootstrap 14 % \(Handshaking with a relay\),/m)
    assert.match(text, /^tor {8}getting tor back is failing: 3 tries so far, last: tor made no bootstrap progress for 30 s$/m)
    assert.match(text, /^join {7}failing: 4 tries at joining through 2 bootstrap peers, last: no bootstrap peer answered; retrying in the background$/m)
    const healthy = formatStatus({ ...base, phase: 'running', tor: { ...base.tor!, connected: true, bootstrapPercent: 100, reconnectAttempts: undefined, lastError: undefined }, join: { bootstrap: 2, failures: 0 } })
    assert.doesNotMatch(healthy, /failing|Handshaking/)
    assert.match(healthy, /bootstrap 100 %,/)
  })
})

describe('oht testnet status', () => {
  it('exits 1 and says how to restart when a recorded tor is not running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-tnstatus-'))
    try {
      // A pid that existed and has exited: our own finished child.
      const gone = spawnSync(process.execPath, ['-e', '0']).pid as number
      await mkdir(join(dir, 'nodes'))
      const node = (name: string, role: string, pid: number): unknown => ({ name, role, nickname: name, pid, controlPort: 1, cookiePath: '/c', dataDir: '/d', torrcPath: join(dir, 'nodes', name, 'torrc') })
      await writeFile(join(dir, 'state.json'), JSON.stringify({ dir, createdDir: false, torVersion: 'Tor 0', detached: true, authorities: [], nodes: [node('auth0', 'authority', process.pid), node('client0', 'client', gone)], timings: {} }))
      const r = await run(['testnet', 'status', '--dir', dir, '--json'], {})
      assert.equal(r.code, 1)
      const s = JSON.parse(r.stdout)
      assert.equal(s.running, false)
      assert.deepEqual(s.nodes.map((n: { running: boolean }) => n.running), [true, false])
      assert.match(r.stderr, /1 of 2 tors are not running \(client0\): start the network again with: oht testnet up --dir /)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
