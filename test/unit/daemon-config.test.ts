import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, parseConfigText, validateConfig } from '../../src/daemon/config.ts'
import { DaemonError } from '../../src/daemon/errors.ts'
import { defaultStateDir, resolvePaths } from '../../src/daemon/paths.ts'

const STATE = '/var/lib/oht'

function fails (raw: unknown, pattern: RegExp): void {
  assert.throws(() => validateConfig(raw, 'oht.toml', STATE), (err: unknown) => {
    assert.ok(err instanceof DaemonError)
    assert.equal(err.code, 'DAEMON_CONFIG')
    assert.match(err.message, pattern)
    return true
  })
}

describe('daemon config validation', () => {
  it('gives documented defaults for an empty config', () => {
    const c = validateConfig({}, 'defaults', STATE)
    assert.equal(c.node.transport, 'tor')
    assert.equal(c.tor.mode, 'launch')
    assert.equal(c.node.onionPort, 4001)
    assert.equal(c.node.maxValueBytes, 65_536)
    assert.equal(c.identity.keyFile, join(STATE, 'identity.key'))
    assert.equal(c.api.socket, join(STATE, 'run', 'api.sock'))
    assert.equal(c.api.tokenFile, join(STATE, 'api.token'))
    assert.equal(c.endpoints.keepOnShutdown, false)
    assert.equal(c.log.level, 'info')
    assert.deepEqual(c.oni, { enabled: false, socksPort: 0, probeIntervalMs: 60_000 })
  })

  it('reads [oni] and names its bad fields', () => {
    const c = parseConfigText('[oni]\nenabled = true\nsocks_port = 9150\nprobe_interval_ms = 30000\n', '/etc/oht.toml', STATE)
    assert.deepEqual(c.oni, { enabled: true, socksPort: 9150, probeIntervalMs: 30_000 })
    fails({ oni: { enabled: 'yes' } }, /oht\.toml: oni\.enabled must be true or false/)
    fails({ oni: { socks_port: 70000 } }, /oni\.socks_port must be between 0 and 65535, got 70000/)
    fails({ oni: { socks_port: 1.5 } }, /oni\.socks_port must be a whole number/)
    fails({ oni: { probe_interval_ms: 10 } }, /oni\.probe_interval_ms must be between 1000 and 3600000/)
    fails({ oni: { socks: 1 } }, /oni\.socks is not a known setting/)
    fails({ oni: true }, /oni must be a table/)
    fails({ node: { transport: 'local' }, oni: { enabled: true } }, /oni\.enabled needs node\.transport = "tor"/)
  })

  it('parses a full TOML file and resolves relative paths against the state dir', () => {
    const c = parseConfigText(`
[identity]
master_key_file = "master.key"
name = "Universe.Router.Multiverse"
[tor]
mode = "attach"
control = "127.0.0.1:9051"
socks_port = 9050
[tor.torrc]
TestingTorNetwork = 1
[node]
transport = "tor"
onion_port = 5001
bootstrap = ["/onion3/abc:4001/p2p/x"]
[api]
socket = "/run/oht/api.sock"
[endpoints]
keep_on_shutdown = true
[log]
level = "debug"
`, '/etc/multiverse/oht.toml', STATE)
    assert.equal(c.identity.masterKeyFile, join(STATE, 'master.key'))
    assert.equal(c.identity.name, 'universe.router.multiverse')
    assert.deepEqual(c.tor.control, { host: '127.0.0.1', port: 9051 })
    assert.equal(c.tor.socksPort, 9050)
    assert.equal(c.tor.torrc.TestingTorNetwork, 1)
    assert.equal(c.node.onionPort, 5001)
    assert.equal(c.api.socket, '/run/oht/api.sock')
    assert.equal(c.endpoints.keepOnShutdown, true)
    assert.equal(c.log.level, 'debug')
  })

  it('parses JSON by file extension', () => {
    const c = parseConfigText('{"node":{"transport":"local"}}', '/x/oht.json', STATE)
    assert.equal(c.node.transport, 'local')
    assert.equal(c.tor.mode, 'none')
  })

  it('names the bad field in every error', () => {
    fails({ tor: { mode: 'sometimes' } }, /oht\.toml: tor\.mode must be one of "launch", "attach", "none", got "sometimes"/)
    fails({ node: { onion_port: 70000 } }, /node\.onion_port must be between 1 and 65535, got 70000/)
    fails({ node: { onion_port: 'x' } }, /node\.onion_port must be a whole number/)
    fails({ node: { transprot: 'tor' } }, /node\.transprot is not a known setting/)
    fails({ nodes: {} }, /nodes is not a known setting/)
    fails({ tor: 'launch' }, /\[tor\] must be a table|tor must be a table/)
    fails({ tor: { mode: 'attach' } }, /tor\.control must be set when tor\.mode is "attach"/)
    fails({ tor: { control: '10.0.0.1:9051', mode: 'attach' } }, /tor\.control must be "127\.0\.0\.1:<port>" \(loopback only\)/)
    fails({ identity: { name: 'a.b' } }, /identity\.master_key_file must be set too/)
    fails({ identity: { master_key_file: 'm', name: 'bad..path' } }, /identity\.name must be a dotted key-tree path/)
    fails({ node: { bootstrap: ['not-a-multiaddr'] } }, /node\.bootstrap\[0\] must be a multiaddr/)
    fails({ node: { listen: [1] } }, /node\.listen must be a list of non-empty strings/)
    fails({ endpoints: { keep_on_shutdown: 'yes' } }, /endpoints\.keep_on_shutdown must be true or false/)
    fails({ node: { transport: 'tor' }, tor: { mode: 'none' } }, /tor\.mode cannot be "none" with node\.transport = "tor"/)
    fails({ api: { socket: '/' + 'x'.repeat(120) } }, /api\.socket is too long/)
    fails([], /top level must be a table/)
  })

  it('reports a syntax error with the file name, line and column', () => {
    assert.throws(() => parseConfigText('[tor\nmode = ', '/etc/oht.toml', STATE), /: \/etc\/oht\.toml:1:\d+: not valid TOML/)
    assert.throws(() => parseConfigText('{', '/etc/oht.json', STATE), /: \/etc\/oht\.json:1:2: not valid JSON/)
  })

  it('loads files: a missing default is fine, a missing explicit file is an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-cfg-'))
    try {
      const d = await loadConfig(join(dir, 'absent.toml'), dir, false)
      assert.equal(d.node.transport, 'tor')
      await assert.rejects(loadConfig(join(dir, 'absent.toml'), dir, true), (err: unknown) => err instanceof DaemonError && err.code === 'DAEMON_CONFIG_MISSING')
      await writeFile(join(dir, 'oht.toml'), '[node]\ntransport = "tcp"\n')
      assert.equal((await loadConfig(join(dir, 'oht.toml'), dir, true)).node.transport, 'tcp')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('daemon paths', () => {
  it('follows flag > env > XDG > HOME precedence', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-paths-'))
    try {
      const env = { HOME: '/home/u', XDG_DATA_HOME: '', XDG_CONFIG_HOME: dir }
      assert.equal(defaultStateDir(env), '/home/u/.local/share/multiverse/oht')
      assert.equal(defaultStateDir({ HOME: '/home/u', XDG_DATA_HOME: '/data' }), '/data/multiverse/oht')
      // relative XDG values are ignored, as the XDG spec says
      assert.equal(defaultStateDir({ HOME: '/home/u', XDG_DATA_HOME: 'rel' }), '/home/u/.local/share/multiverse/oht')
      assert.equal(resolvePaths({ env }).configFile, undefined)
      await writeFile(join(dir, 'x'), '')
      const { mkdir } = await import('node:fs/promises')
      await mkdir(join(dir, 'multiverse'))
      await writeFile(join(dir, 'multiverse', 'oht.json'), '{}')
      assert.equal(resolvePaths({ env }).configFile, join(dir, 'multiverse', 'oht.json'))
      await writeFile(join(dir, 'multiverse', 'oht.toml'), '')
      assert.equal(resolvePaths({ env }).configFile, join(dir, 'multiverse', 'oht.toml'))
      const p = resolvePaths({ env: { ...env, OHT_CONFIG: '/e.toml', OHT_STATE_DIR: '/e-state', OHT_SOCKET: '/e.sock' } })
      assert.equal(p.configFile, '/e.toml')
      assert.equal(p.configExplicit, true)
      assert.equal(p.stateDir, '/e-state')
      assert.equal(p.socketOverride, '/e.sock')
      const f = resolvePaths({ config: '/f.toml', stateDir: '/f-state', socket: '/f.sock', env: { ...env, OHT_CONFIG: '/e.toml', OHT_STATE_DIR: '/e-state' } })
      assert.equal(f.configFile, '/f.toml')
      assert.equal(f.stateDir, '/f-state')
      assert.equal(f.socketOverride, '/f.sock')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
