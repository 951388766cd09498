import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { main } from '../../src/cli/main.ts'
import { readAll, type CliIo } from '../../src/cli/io.ts'
import { EXIT } from '../../src/cli/errors.ts'
import { formatGatewayStatus, type GatewayView } from '../../src/cli/commands/gateway.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'
import { startApiServer, type ApiBackend, type ApiServer } from '../../src/daemon/api-server.ts'

async function run (argv: string[], env: Record<string, string | undefined>): Promise<{ code: number, stdout: string, stderr: string }> {
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

const dns = (q: number, blocked: number): { queries: number, local: number, blocked: number, forwarded: number, failed: number, limited: number, malformed: number } =>
  ({ queries: q, local: 1, blocked, forwarded: q - 1 - blocked, failed: 0, limited: 0, malformed: 0 })

function sample (): Extract<GatewayView, { enabled: true }> {
  return {
    enabled: true,
    state: 'active',
    interface: 'br-vms',
    address: '10.152.152.10',
    firewall: { table: 'oht_gateway', rules: 'active', present: true, reapplied: 0, dropped: { input: { packets: 2, bytes: 120 }, forward: { packets: 5, bytes: 420 } } },
    tor: { mode: 'launch', connected: true, transPort: 9040, transListening: true, dnsPort: 45123 },
    dns: { listen: ['10.152.152.10:9053'], totals: dns(30, 4) },
    blocklist: { file: '/etc/multiverse/blocklist.hosts', names: 150_000, skipped: 3 },
    connections: { open: 1, total: 12, failed: 1 },
    bytes: { up: 5000, down: 900_000 },
    vms: [
      { address: '10.152.152.11', name: 'work.vm', connections: { open: 1, total: 10, failed: 0 }, bytesUp: 4000, bytesDown: 800_000, circuits: ['11', '14'], dns: dns(20, 3), dropped: { packets: 5, bytes: 420 } },
      { address: '10.152.152.12', connections: { open: 0, total: 2, failed: 1 }, bytesUp: 1000, bytesDown: 100_000, circuits: [], dns: dns(10, 1), dropped: { packets: 0, bytes: 0 } }
    ]
  }
}

describe('oht gateway status: text', () => {
  it('prints the summary and one aligned line per VM', () => {
    const lines = formatGatewayStatus(sample()).split('\n')
    assert.equal(lines[0], 'gateway    active on br-vms (10.152.152.10)')
    assert.equal(lines[1], 'firewall   table inet oht_gateway: active, 7 packets dropped')
    assert.equal(lines[2], 'tor        connected, TransPort 10.152.152.10:9040, DNSPort 45123')
    assert.equal(lines[3], 'dns        10.152.152.10:9053: 30 queries, 1 local, 4 blocked, 25 via tor, 0 failed')
    assert.match(lines[4], /^blocklist {2}\/etc\/multiverse\/blocklist\.hosts: 150000 names$/)
    assert.match(lines[6], /^VM\s+NAME\s+OPEN\s+TOTAL\s+FAILED\s+BYTES_UP\s+BYTES_DOWN\s+DNS\s+BLOCKED\s+DROPPED\s+CIRCUITS$/)
    assert.deepEqual(lines[7].split(/\s+/), ['10.152.152.11', 'work.vm', '1', '10', '0', '4000', '800000', '20', '3', '5', '11,14'])
    assert.deepEqual(lines[8].split(/\s+/), ['10.152.152.12', '-', '0', '2', '1', '1000', '100000', '10', '1', '0', '-'])
    assert.equal(lines[7].indexOf('800000'), lines[6].indexOf('BYTES_DOWN'))
  })

  it('says loudly when tor is away or the rules are missing', () => {
    const s = sample()
    s.tor = { ...s.tor, connected: false, transListening: false }
    s.firewall = { ...s.firewall, present: false }
    s.vms = []
    const text = formatGatewayStatus(s)
    assert.match(text, /NOT connected \(inside traffic is blocked\)/)
    assert.match(text, /active \(NOT in the kernel\)/)
    assert.match(text, /\(no VM seen yet\)/)
  })
})

describe('oht gateway against the daemon API (in process)', () => {
  let dir: string
  let env: Record<string, string>
  let daemon: Daemon
  let apiDir: string
  let api: ApiServer
  let envOn: Record<string, string>
  let reloads = 0

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-gw-cli-'))
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    assert.equal((await run(['init'], env)).code, 0)
    const config = validateConfig({ node: { transport: 'local' } }, 'test', env.OHT_STATE_DIR)
    daemon = createDaemon({ config, stateDir: env.OHT_STATE_DIR }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await daemon.start()

    apiDir = await mkdtemp(join(tmpdir(), 'oht-gw-cli-on-'))
    const socketPath = join(apiDir, 'run', 'api.sock')
    const tokenFile = join(apiDir, 'api.token')
    await writeFile(tokenFile, 'd'.repeat(64) + '\n', { mode: 0o600 })
    envOn = { HOME: apiDir, XDG_CONFIG_HOME: join(apiDir, 'config'), OHT_STATE_DIR: join(apiDir, 'state'), OHT_SOCKET: socketPath, OHT_TOKEN_FILE: tokenFile }
    const unused = (): never => { throw new Error('not used by this test') }
    const backend: ApiBackend = {
      status: unused, identityInfo: unused, peers: unused, put: unused, get: unused, listEndpoints: unused, addEndpoint: unused, removeEndpoint: unused, metrics: unused, oni: unused,
      gateway: async () => sample(),
      reloadGateway: async () => { reloads++; return { names: 150_001, skipped: 3 } }
    }
    api = await startApiServer({ socketPath, token: 'd'.repeat(64), clock: systemClock, log: createJsonLog(() => {}, systemClock) }, backend)
  })

  after(async () => {
    await daemon.stop()
    await api.close()
    await rm(dir, { recursive: true, force: true })
    await rm(apiDir, { recursive: true, force: true })
  })

  it('--help documents both subcommands', async () => {
    const r = await run(['gateway', '--help'], env)
    assert.equal(r.code, EXIT.OK)
    assert.match(r.stdout, /oht gateway status \[--json\]/)
    assert.match(r.stdout, /oht gateway reload \[--json\]/)
    assert.match((await run(['gateway', 'status', '--help'], env)).stdout, /per VM/)
    assert.match((await run(['--help'], env)).stdout, /\n {2}gateway\s+/)
  })

  it('gateway not enabled: one line saying how to enable it, exit 1', async () => {
    for (const argv of [['gateway', 'status'], ['gateway', 'status', '--json'], ['gateway', 'reload']]) {
      const r = await run(argv, env)
      assert.equal(r.code, EXIT.FAILURE)
      assert.equal(r.stdout, '')
      assert.match(r.stderr.trim(), /^oht gateway (status|reload): the gateway is not enabled in this daemon: set enabled = true and interface = .* under \[gateway\]/)
    }
  })

  it('prints the status, --json as the daemon sent it, and reloads', async () => {
    const t = await run(['gateway', 'status'], envOn)
    assert.equal(t.code, EXIT.OK, t.stderr)
    assert.equal(t.stdout, formatGatewayStatus(sample()) + '\n')
    const j = await run(['gateway', 'status', '--json'], envOn)
    assert.deepEqual(JSON.parse(j.stdout), sample())
    const r = await run(['gateway', 'reload'], envOn)
    assert.equal(r.code, EXIT.OK)
    assert.equal(r.stdout, 'blocklist reloaded: 150001 names (3 lines skipped)\n')
    assert.equal(reloads, 1)
  })
})
