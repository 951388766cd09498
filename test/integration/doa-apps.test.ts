/**
 * Decentralized onion apps end to end on a private Tor network, with real `oht daemon`
 * processes and the real `oht` CLI: the author publishes the template app, names it, and stops;
 * two other daemons install it by name and host it at onion endpoints; a third party fetches its
 * UI with `curl --socks5-hostname` at a host's onion address and checks every byte against the
 * signed manifest; ops from two users converge; tor's proposal-279 name plugin, driven on its
 * stdin like tor would, resolves the name to a host's onion address.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'
import { parseAppKey, visitApp } from '../../src/doa/index.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'oht.js')
const TEMPLATE = join(ROOT, 'examples', 'template-app')
const START_TIMEOUT_MS = 300_000
const CLI_TIMEOUT_MS = 180_000

interface CliRun { code: number | null, stdout: string, stderr: string }
interface DaemonProc { child: ChildProcess, logs: string[], exited: Promise<number | null> }

function envFor (base: string, stateDir: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_')) env[k] = v
  return { ...env, HOME: base, XDG_CONFIG_HOME: join(base, 'config'), XDG_DATA_HOME: join(base, 'data'), OHT_STATE_DIR: stateDir }
}

function run (cmd: string, args: string[], env: Record<string, string>, timeoutMs = CLI_TIMEOUT_MS): Promise<CliRun & { raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} timed out`)) }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      const raw = Buffer.concat(out)
      resolve({ code, stdout: raw.toString(), stderr: Buffer.concat(err).toString(), raw })
    })
  })
}

const cli = async (args: string[], env: Record<string, string>): Promise<CliRun> => await run(process.execPath, [BIN, ...args], env)

async function ok (args: string[], env: Record<string, string>): Promise<string> {
  const r = await cli(args, env)
  assert.equal(r.code, 0, `oht ${args.join(' ')} → ${r.code}: ${r.stderr}`)
  return r.stdout
}

async function startDaemon (env: Record<string, string>, args: string[]): Promise<DaemonProc> {
  const child = spawn(process.execPath, [BIN, 'daemon', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  const logs: string[] = []
  const exited = new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code) }) })
  let buf = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`daemon not ready after ${START_TIMEOUT_MS} ms:\n${logs.join('\n')}`)) }, START_TIMEOUT_MS)
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        logs.push(line)
        if (line.includes('"msg":"ready"')) { clearTimeout(timer); resolve() }
      }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`daemon exited (${code}) before ready:\n${logs.join('\n')}`)) })
  })
  try { await ready } catch (err) { child.kill('SIGKILL'); throw err }
  return { child, logs, exited }
}

async function stopDaemon (d: DaemonProc | undefined): Promise<number | null> {
  if (d === undefined || d.child.exitCode !== null) return d?.child.exitCode ?? null
  d.child.kill('SIGTERM')
  const timer = setTimeout(() => { d.child.kill('SIGKILL') }, 30_000)
  try { return await d.exited } finally { clearTimeout(timer) }
}

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last: ${String(last)})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, 1_000))
  }
}

describe('decentralized onion apps over a private Tor network', () => {
  let net: Testnet
  let base: string
  const daemons: Array<DaemonProc | undefined> = []
  const env: Array<Record<string, string>> = []
  let appKey: string
  let zone: string
  const onions: string[] = []

  const multiaddrOf = async (i: number): Promise<string> => {
    const s = JSON.parse(await ok(['status', '--json'], env[i])) as { addrs: string[] }
    const a = s.addrs.find(x => x.startsWith('/onion3/'))
    assert.ok(a !== undefined, `daemon ${i} announces an onion address`)
    return a
  }

  before(async () => {
    // Clients 0-2 host the daemons (author, host B, host C); client 3 is a visitor's tor.
    net = await testnet({ clients: 4 })
    base = await mkdtemp(join(tmpdir(), 'oht-doa-int-'))
    for (const n of ['author', 'b', 'c']) {
      const e = envFor(base, join(base, n))
      env.push(e)
      await ok(['init'], e)
    }
    daemons[0] = await startDaemon(env[0], ['--tor-control', `127.0.0.1:${net.clients[0].controlPort}`])
    const a = await multiaddrOf(0)
    daemons[1] = await startDaemon(env[1], ['--tor-control', `127.0.0.1:${net.clients[1].controlPort}`, '--bootstrap', a])
    const b = await multiaddrOf(1)
    daemons[2] = await startDaemon(env[2], ['--tor-control', `127.0.0.1:${net.clients[2].controlPort}`, '--bootstrap', `${a},${b}`])
    // Everyone knows everyone before the author leaves (three nodes, one network).
    for (const i of [1, 2]) {
      await until(`daemon ${i} has two peers`, 120_000, async () => {
        const peers = (JSON.parse(await ok(['peers', '--json'], env[i])) as { peers: unknown[] }).peers
        return peers.length >= 2 ? true : undefined
      })
    }
  })

  after(async () => {
    for (const d of daemons) await stopDaemon(d)
    await net?.stop()
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })

  it('the author publishes the template app, registers its name, and stops', async () => {
    const dir = join(base, 'guestbook')
    await cp(TEMPLATE, dir, { recursive: true })
    const pub = JSON.parse(await ok(['app', 'publish', dir, '--json'], env[0])) as { appKey: string, release: number, minStored: number }
    assert.equal(pub.release, 1)
    assert.ok(pub.minStored >= 2, `chunks stored on ${pub.minStored} nodes`)
    appKey = pub.appKey
    const reg = JSON.parse(await ok(['name', 'register', 'guestbook', 'guestbook', '--json'], env[0])) as { zone: string, target: { key: string } }
    assert.equal(`doa:${reg.target.key}`, appKey)
    zone = (await ok(['name', 'zone'], env[0])).trim()
    assert.equal(zone, reg.zone)
    assert.equal(await stopDaemon(daemons[0]), 0)
    daemons[0] = undefined
  })

  it('two daemons install it by name while the author is away, and host it at onion endpoints', async () => {
    for (const i of [1, 2]) {
      await ok(['name', 'pet', 'add', 'author', zone], env[i])
      const r = JSON.parse(await ok(['app', 'install', 'guestbook.author', '--json'], env[i])) as { appKey: string, release: number, grants: string[] }
      assert.equal(r.appKey, appKey)
      assert.equal(r.release, 1)
      assert.deepEqual(r.grants, ['api', 'state:read', 'state:write', 'ui'])
      const h = JSON.parse(await ok(['app', 'host', 'guestbook', '--json'], env[i])) as { onion: string, announcedTo: number }
      assert.match(h.onion, /^[a-z2-7]{56}$/)
      onions.push(h.onion)
    }
    assert.notEqual(onions[0], onions[1])
    // Both are in the host set each of them sees.
    const hosts = JSON.parse(await ok(['app', 'hosts', 'guestbook', '--json'], env[2])) as { hosts: Array<{ onion?: string }> }
    assert.deepEqual(hosts.hosts.map(h => h.onion).sort(), [...onions].sort())
  })

  it('a third party fetches the UI with curl --socks5-hostname at a host\'s onion address, every byte checked against the manifest', async () => {
    const socks = `127.0.0.1:${net.clients[3].socksPort}`
    const curl = async (onion: string, path: string): Promise<{ status: number, body: Buffer }> => {
      // Onion services need a moment after publishing; tor says so with SOCKS errors: retry.
      return await until(`curl http://${onion}.onion${path}`, 120_000, async () => {
        const r = await run('curl', ['-sS', '--max-time', '60', '--socks5-hostname', socks, '-w', '\n%{http_code}', `http://${onion}.onion${path}`], process.env as Record<string, string>, 90_000)
        if (r.code !== 0) return undefined
        const nl = r.raw.lastIndexOf(0x0a)
        return { status: Number(r.raw.subarray(nl + 1).toString()), body: r.raw.subarray(0, nl) }
      })
    }
    for (const onion of onions) {
      const page = await curl(onion, '/')
      assert.equal(page.status, 200)
      assert.equal(page.body.toString(), await readFile(join(TEMPLATE, 'ui', 'index.html'), 'utf8'))
      // The visitor trusts nothing the host says: manifest, index and chunks through the same
      // onion address, checked against the app key it asked for; then every file served.
      const site = await visitApp(parseAppKey(appKey), async (path) => {
        const r = await curl(onion, path)
        return { status: r.status, headers: {}, body: new Uint8Array(r.body) }
      })
      assert.equal(site.manifest.manifest.name, 'guestbook')
      site.check('/', new Uint8Array(page.body))
      for (const f of ['app.js', 'style.css']) {
        const r = await curl(onion, `/${f}`)
        assert.equal(r.status, 200)
        site.check(`/${f}`, new Uint8Array(r.body))
      }
      const state = await curl(onion, '/api/state')
      assert.equal(state.status, 200)
      assert.equal((JSON.parse(state.body.toString()) as { state: { signatures: number } }).state.signatures, 0)
    }
  })

  it('ops from two users converge on one state at both hosts', async () => {
    await ok(['app', 'op', 'guestbook', JSON.stringify({ type: 'sign', name: 'bea', message: 'hello from B' })], env[1])
    await ok(['app', 'op', 'guestbook', JSON.stringify({ type: 'sign', name: 'cai', message: 'hello from C' })], env[2])
    const states = await until('both hosts see both ops', 180_000, async () => {
      const s = await Promise.all([1, 2].map(async i => JSON.parse(await ok(['app', 'state', 'guestbook', '--json'], env[i])) as { stateHash: string, ops: number, state: { signatures: number, entries: Array<{ name: string }> } }))
      return s.every(x => x.ops === 2) ? s : undefined
    })
    assert.equal(states[0].stateHash, states[1].stateHash)
    assert.deepEqual(states[0].state.entries.map(e => e.name).sort(), ['bea', 'cai'])
    // A refused op says why and changes nothing.
    const bad = await cli(['app', 'op', 'guestbook', JSON.stringify({ type: 'sign', name: '', message: 'x' })], env[1])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /a name is 1\.\.40 characters/)
  })

  it('tor\'s proposal-279 name plugin, driven on stdin/stdout, resolves guestbook.author.doa to a host\'s onion address', async () => {
    const child = spawn(process.execPath, [BIN, 'name', 'tor-plugin'], { env: { ...env[1], TOR_NS_PROTO_VERSION: '1', TOR_NS_PLUGIN_OPTIONS: 'tld=doa;timeout=120' }, stdio: ['pipe', 'pipe', 'pipe'] })
    const lines: string[] = []
    let buf = ''
    const got = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        let nl
        while ((nl = buf.indexOf('\n')) !== -1) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1) }
        if (lines.some(l => l.startsWith('RESOLVED 2'))) resolve()
      })
    })
    const exited = new Promise<number | null>((resolve) => { child.on('exit', resolve) })
    child.stdin.write('RESOLVE 1 guestbook.author.doa\n')
    child.stdin.write('RESOLVE 2 nothing.author.doa\n')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 150_000)
    await got
    child.stdin.end()
    assert.equal(await exited, 0)
    clearTimeout(timer)
    assert.equal(lines[0], 'INIT 1 0')
    const one = lines.find(l => l.startsWith('RESOLVED 1 '))
    assert.ok(one !== undefined, lines.join('\n'))
    const m = /^RESOLVED 1 0 ([a-z2-7]{56})\.onion$/.exec(one)
    assert.ok(m !== null && onions.includes(m[1]), `${one} names one of the hosts ${onions.join(', ')}`)
    assert.match(lines.find(l => l.startsWith('RESOLVED 2 ')) ?? '', /^RESOLVED 2 3 "/)
  })
})
