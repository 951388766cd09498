import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock, toHex } from '../../src/core/index.ts'
import { deriveChildSeed, generateIdentity, identityFromSeed, sha256, writeKeyFile } from '../../src/crypto/index.ts'
import { main, COMMANDS } from '../../src/cli/main.ts'
import { readAll, type CliIo } from '../../src/cli/io.ts'
import { EXIT } from '../../src/cli/errors.ts'
import { createDaemon, createJsonLog, defaultNodeFactory, validateConfig, type Daemon } from '../../src/daemon/index.ts'

interface Run { code: number, stdout: string, stderr: string, stdoutBytes: Buffer }

async function run (argv: string[], env: Record<string, string | undefined>, stdin: Uint8Array = new Uint8Array(0)): Promise<Run> {
  const out: Buffer[] = []
  const err: string[] = []
  const io: CliIo = {
    stdout: { write: (c: string | Uint8Array) => { out.push(Buffer.from(c)); return true } },
    stderr: { write: (c: string | Uint8Array) => { err.push(Buffer.from(c).toString()); return true } },
    readStdin: async (max) => await readAll(Readable.from([Buffer.from(stdin)]), max),
    env,
    clock: systemClock,
    signal: new AbortController().signal
  }
  const code = await main(argv, io)
  const stdoutBytes = Buffer.concat(out)
  return { code, stdout: stdoutBytes.toString(), stderr: err.join(''), stdoutBytes }
}

function oneLine (r: Run, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(lines.length, 1, `one stderr line, got: ${r.stderr}`)
  assert.match(lines[0], pattern)
}

describe('oht CLI against a daemon (local transport, in process)', () => {
  let dir: string
  let env: Record<string, string>
  let daemon: Daemon

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-cli-'))
    env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), OHT_STATE_DIR: join(dir, 'state') }
    const init = await run(['init'], env)
    assert.equal(init.code, 0, init.stderr)
    const config = validateConfig({ node: { transport: 'local' } }, 'test', env.OHT_STATE_DIR)
    daemon = createDaemon({ config, stateDir: env.OHT_STATE_DIR }, { clock: systemClock, log: createJsonLog(() => {}, systemClock), createNode: defaultNodeFactory })
    await daemon.start()
  })

  after(async () => {
    await daemon.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const records = async (): Promise<number> => JSON.parse((await run(['status', '--json'], env)).stdout).node.recordsStored

  it('init refuses to replace an identity and changes nothing', async () => {
    const before = await readFile(join(env.OHT_STATE_DIR, 'identity.key'), 'utf8')
    const r = await run(['init'], env)
    assert.equal(r.code, EXIT.FAILURE)
    oneLine(r, /an identity already exists at .*identity\.key; nothing changed \(use --force/)
    assert.equal(await readFile(join(env.OHT_STATE_DIR, 'identity.key'), 'utf8'), before)
  })

  it('init --from-master --name derives a reproducible identity (the key tree)', async () => {
    const master = generateIdentity()
    const masterFile = join(dir, 'master.key')
    await writeKeyFile(masterFile, master)
    const expected = identityFromSeed(deriveChildSeed(master.seed, 'universe.router.multiverse'))
    const one = await run(['init', '--from-master', masterFile, '--name', 'universe.router.multiverse', '--json'], { ...env, OHT_STATE_DIR: join(dir, 'vm1') })
    const two = await run(['init', '--from-master', masterFile, '--name', 'universe.router.multiverse', '--json'], { ...env, OHT_STATE_DIR: join(dir, 'vm2') })
    const other = await run(['init', '--from-master', masterFile, '--name', 'universe.desktop.multiverse', '--json'], { ...env, OHT_STATE_DIR: join(dir, 'vm3') })
    assert.equal(one.code, 0, one.stderr)
    assert.equal(JSON.parse(one.stdout).onion, expected.onion)
    assert.equal(JSON.parse(two.stdout).onion, expected.onion)
    assert.notEqual(JSON.parse(other.stdout).onion, expected.onion)
    const bad = await run(['init', '--from-master', masterFile, '--name', 'bad..name'], { ...env, OHT_STATE_DIR: join(dir, 'vm4') })
    assert.equal(bad.code, EXIT.USAGE)
    oneLine(bad, /--name: bad label/)
    master.destroy()
    expected.destroy()
  })

  it('id prints the same onion address the daemon serves', async () => {
    const id = await run(['id'], env)
    const status = JSON.parse((await run(['status', '--json'], env)).stdout)
    assert.equal(id.code, 0)
    assert.equal(id.stdout.trim(), status.identity.address)
    assert.equal(id.stdout.trim(), `${daemon.onion}.onion`)
  })

  it('put prints SHA-256(value) and get prints the value back', async () => {
    const put = await run(['put', 'hello from the cli'], env)
    assert.equal(put.code, 0, put.stderr)
    assert.equal(put.stdout.trim(), toHex(sha256(Buffer.from('hello from the cli'))))
    const get = await run(['get', put.stdout.trim()], env)
    assert.equal(get.code, 0)
    assert.equal(get.stdout, 'hello from the cli')
  })

  it('put - reads bytes from stdin and get returns them byte for byte', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13])
    const put = await run(['put', '-', '--ttl', '10m'], env, bytes)
    assert.equal(put.code, 0, put.stderr)
    const get = await run(['get', put.stdout.trim().toUpperCase()], env)
    assert.deepEqual(get.stdoutBytes, bytes)
  })

  it('put <name> <value> is a mutable record readable with get --name, later puts win', async () => {
    const a = await run(['put', 'motd', 'first', '--json'], env)
    const b = await run(['put', '--mutable', '--salt', 'motd', 'second', '--json'], env)
    const pa = JSON.parse(a.stdout)
    const pb = JSON.parse(b.stdout)
    assert.equal(pa.key, pb.key)
    assert.equal(pb.seq, pa.seq + 1)
    const byName = await run(['get', '--name', 'motd'], env)
    assert.equal(byName.stdout, 'second')
    const byAuthor = await run(['get', '--name', 'motd', '--author', `${daemon.onion}.onion`, '--json'], env)
    assert.equal(JSON.parse(byAuthor.stdout).key, pa.key)
  })

  it('bad input: one clear stderr line, a usage exit code, nothing stored', async () => {
    const n = await records()
    const cases: Array<[string[], number, RegExp, Uint8Array?]> = [
      [['put', 'v', '--bogus'], EXIT.USAGE, /^oht put: unknown flag --bogus \(see oht put --help\)$/],
      [['get', 'not-a-key'], EXIT.USAGE, /^oht get: malformed key "not-a-key": a key is 64 hex characters/],
      [['get', 'ab'.repeat(33)], EXIT.USAGE, /^oht get: malformed key/],
      [['put', '-'], EXIT.USAGE, /^stdin holds more than 65536 bytes|oht put: stdin holds more than 65536 bytes/, new Uint8Array(65_537)],
      [['put', 'x'.repeat(65_537)], EXIT.USAGE, /^oht put: the value is 65537 bytes; a record holds at most 65536 bytes$/],
      [['put', 'v', '--ttl', 'forever'], EXIT.USAGE, /^oht put: --ttl must be a duration such as 90s/],
      [['put', 'v', '--salt', 's'], EXIT.USAGE, /^oht put: --salt applies to mutable records: add --mutable$/],
      [['put'], EXIT.USAGE, /^oht put: missing <value\|name>/],
      [['get', '--author', 'abc', '--name', 'n'], EXIT.USAGE, /^oht get: --author "abc" is not a valid onion address/],
      [['frobnicate'], EXIT.USAGE, /^oht: unknown command "frobnicate" \(see oht --help\)$/],
      [['testnet', 'sideways'], EXIT.USAGE, /^oht testnet: unknown subcommand "sideways"/],
      [['testnet', 'down'], EXIT.USAGE, /^oht testnet down: needs --dir <dir>/],
      [['daemon', '--transport', 'carrier-pigeon'], EXIT.USAGE, /^oht daemon: --transport must be tor, tcp or local/]
    ]
    for (const [argv, code, pattern, stdin] of cases) {
      const r = await run(argv, env, stdin)
      assert.equal(r.code, code, `${argv.join(' ').slice(0, 60)}: ${r.stderr}`)
      oneLine(r, pattern)
      assert.equal(r.stdout, '', 'nothing on stdout')
    }
    assert.equal(await records(), n, 'nothing was stored')
  })

  it('get of an absent key exits 6', async () => {
    const r = await run(['get', 'c'.repeat(64)], env)
    assert.equal(r.code, EXIT.NOT_FOUND)
    oneLine(r, /no record under c{64}/)
  })

  it('without a daemon: exit 4 and a hint to start one', async () => {
    const r = await run(['status'], { ...env, OHT_STATE_DIR: join(dir, 'nobody') })
    assert.equal(r.code, EXIT.UNAVAILABLE)
    oneLine(r, /^oht status: no daemon answers on .*nobody\/run\/api\.sock: start one with "oht daemon"/)
  })

  it('a wrong token is refused (exit 5); a token file open to others is refused before use', async () => {
    const wrong = join(dir, 'wrong.token')
    await writeFile(wrong, 'a'.repeat(64) + '\n', { mode: 0o600 })
    const r = await run(['status'], { ...env, OHT_TOKEN_FILE: wrong })
    assert.equal(r.code, EXIT.AUTH)
    oneLine(r, /the daemon refused our token/)
    await chmod(wrong, 0o644)
    const open = await run(['put', 'x'], { ...env, OHT_TOKEN_FILE: wrong })
    assert.equal(open.code, EXIT.AUTH)
    oneLine(open, /accessible to other users \(mode 644\): run chmod 600/)
  })

  it('an invalid config exits 3 and names the field', async () => {
    const cfg = join(dir, 'bad.toml')
    await writeFile(cfg, '[node]\ntransport = "pigeon"\n')
    const r = await run(['status', '--config', cfg], env)
    assert.equal(r.code, EXIT.CONFIG)
    oneLine(r, /bad\.toml:2:1: node\.transport must be one of "tor", "tcp", "local", got "pigeon"/)
    const missing = await run(['status', '--config', join(dir, 'absent.toml')], env)
    assert.equal(missing.code, EXIT.CONFIG)
  })

  it('every command and subcommand has --help on stdout with exit 0 and the exit codes', async () => {
    const top = await run(['--help'], env)
    assert.equal(top.code, 0)
    for (const c of COMMANDS) assert.ok(top.stdout.includes(`  ${c.name}`), c.name)
    for (const c of COMMANDS) {
      const paths = c.subcommands === undefined ? [[c.name]] : [[c.name], ...c.subcommands.map(s => [c.name, s.name])]
      for (const p of paths) {
        const r = await run([...p, '--help'], env)
        assert.equal(r.code, 0, p.join(' '))
        assert.match(r.stdout, /Usage:/)
        assert.match(r.stdout, /Exit codes:/)
      }
    }
    const none = await run([], env)
    assert.equal(none.code, EXIT.USAGE)
  })

  it('status and peers print JSON with --json', async () => {
    const s = JSON.parse((await run(['status', '--json'], env)).stdout)
    assert.equal(s.phase, 'running')
    const p = JSON.parse((await run(['peers', '--json'], env)).stdout)
    assert.deepEqual(p.peers, [])
    const m = await run(['metrics'], env)
    assert.match(m.stdout, /^oht_up 1$/m)
  })
})
