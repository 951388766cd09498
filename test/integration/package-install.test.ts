/**
 * The package as another project gets it: `npm pack` (which builds dist/ through `prepare`),
 * `npm install <tarball>` in a fresh project, then a plain `node app.mjs` (no loader: tsx is
 * not even installed there) that imports 'oht' and its layer entries and runs a put/get
 * between two TCP nodes; TypeScript compiles a program against the shipped types and rejects
 * a wrong call; the installed `oht` command runs the compiled CLI.
 *
 * It packs a copy of the checkout (the files a build reads, node_modules linked), so the
 * checkout's own dist/ is never rebuilt under other tests. npm takes the dependencies from its
 * cache where it can (--prefer-offline); all network traffic is the app's, on 127.0.0.1.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const ROOT = new URL('../..', import.meta.url).pathname
/** What `npm pack` needs from the checkout: the build's inputs and the shipped files. */
const COPY = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'CHANGELOG.md', 'src', 'bin', 'scripts', 'docs', 'contrib', 'examples']

interface Run { code: number | null, stdout: string, stderr: string }

/** A clean environment: no npm_* of an enclosing `npm test`, no loader, node first on PATH. */
function cleanEnv (extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('npm_') || k.startsWith('OHT_') || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? '/usr/bin:/bin'}`
  env.npm_config_update_notifier = 'false'
  return { ...env, ...extra }
}

async function run (cmd: string, args: string[], cwd: string, env = cleanEnv(), timeoutMs = 300_000): Promise<Run> {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (d: Buffer) => out.push(d))
  child.stderr.on('data', (d: Buffer) => err.push(d))
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  clearTimeout(timer)
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

const APP = `
import { createNode, immutableKey, isCodedError } from 'oht'
import { startTestnet, parseBootstrapPhase } from 'oht/tor'
import { createOhtNode } from 'oht/oht'
import { createOni } from 'oht/oni'
import { createSimulation, VirtualClock } from 'oht/netsim'
import { generateIdentity } from 'oht/crypto'
import { systemClock } from 'oht/core'
import { createOverlayNode } from 'oht/net'

const entries = { startTestnet, parseBootstrapPhase, createOhtNode, createOni, createSimulation, VirtualClock, generateIdentity, createOverlayNode, immutableKey, isCodedError }
const missing = Object.entries(entries).filter(([, v]) => typeof v !== 'function').map(([k]) => k)
let deep = 'importable'
try { await import('oht/dist/cli/main.js') } catch (err) { deep = err.code }

const a = await createNode({ transport: 'tcp' })
const b = await createNode({ transport: 'tcp', bootstrap: a.multiaddrs })
const value = new TextEncoder().encode('hello from an installed package ' + systemClock.now())
const put = await b.put(value)
const got = await a.get(put.key)
await b.stop()
await a.stop()
console.log(JSON.stringify({ missing, deep, stored: put.stored, same: got !== undefined && Buffer.from(got.value).equals(Buffer.from(value)) }))
`

const TYPED = `
import { createNode, type OhtSdkNode, type GetResult } from 'oht'
import { launchTor, type LaunchTorInit } from 'oht/tor'
const init: LaunchTorInit = { bootstrapStallMs: 30_000 }
void init; void launchTor
const node: OhtSdkNode = await createNode({ transport: 'tcp' })
const r: GetResult | undefined = await node.get(new Uint8Array(32))
const n: number | undefined = r?.seq
void n
await node.stop()
`

// A string where the SDK wants bytes: the types must reject it.
const WRONG = `
import { createNode } from 'oht'
const node = await createNode({ transport: 'tcp' })
await node.put('a string, not bytes')
`

const TSCONFIG = (file: string): string => JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] },
  files: [file]
})

describe('the package: pack, install in another project, import with plain node, types', () => {
  let base: string
  let tarball: string
  let app: string
  let version: string

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'oht-pkg-'))
    version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  })
  after(async () => { await rm(base, { recursive: true, force: true }) })

  it('npm pack builds dist/ and ships dist/, bin/ and docs, not the sources or tests', async () => {
    const copy = join(base, 'checkout')
    await mkdir(copy)
    for (const f of COPY) {
      if (await stat(join(ROOT, f)).then(() => true, () => false)) await cp(join(ROOT, f), join(copy, f), { recursive: true })
    }
    await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
    const packed = await run('npm', ['pack', '--pack-destination', base, '--json'], copy)
    assert.equal(packed.code, 0, packed.stderr)
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
    tarball = join(base, info[0].filename)
    const files = info[0].files.map(f => f.path)
    for (const f of ['package.json', 'README.md', 'bin/oht.js', 'bin/entry.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/build-stamp.json', 'dist/tor/index.d.ts', 'docs/daemon.md']) {
      assert.ok(files.includes(f), `${f} is not in the tarball`)
    }
    assert.deepEqual(files.filter(f => /^(src|test|bench|scripts)\//.test(f)), [], 'sources or tests in the tarball')
    assert.ok(files.some(f => f.endsWith('.js.map')), 'source maps')
  })

  it('npm install <tarball> in a fresh project installs it without tsx', async () => {
    assert.ok(tarball !== undefined, 'needs the tarball')
    app = join(base, 'app')
    await mkdir(app)
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'some-app', private: true, type: 'module' }, null, 2))
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> }
    const tsVersion = lock.packages['node_modules/typescript']?.version as string
    const typesVersion = lock.packages['node_modules/@types/node']?.version as string
    const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `typescript@${tsVersion}`, `@types/node@${typesVersion}`], app)
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.equal(await stat(join(app, 'node_modules', 'tsx')).then(() => true, () => false), false, 'tsx was installed: the package must not need it')
    assert.equal(await stat(join(app, 'node_modules', 'oht', 'dist', 'index.js')).then(() => true, () => false), true)
  })

  it('a plain `node app.mjs` imports oht and its layers and runs a TCP put/get', async () => {
    await writeFile(join(app, 'app.mjs'), APP)
    const r = await run(process.execPath, ['app.mjs'], app, cleanEnv(), 120_000)
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { missing: string[], deep: string, stored: number, same: boolean }
    assert.deepEqual(out.missing, [])
    assert.equal(out.deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'only the declared entries are importable')
    assert.ok(out.stored >= 1)
    assert.equal(out.same, true)
  })

  it('TypeScript compiles against the shipped types, and rejects a wrong call', async () => {
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
    await writeFile(join(app, 'typed.ts'), TYPED)
    await writeFile(join(app, 'tsconfig.typed.json'), TSCONFIG('typed.ts'))
    const ok = await run(process.execPath, [tsc, '-p', 'tsconfig.typed.json'], app)
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    await writeFile(join(app, 'wrong.ts'), WRONG)
    await writeFile(join(app, 'tsconfig.wrong.json'), TSCONFIG('wrong.ts'))
    const bad = await run(process.execPath, [tsc, '-p', 'tsconfig.wrong.json'], app)
    assert.notEqual(bad.code, 0)
    assert.match(bad.stdout, /wrong\.ts\(4,16\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'Uint8Array/)
  })

  it('the installed oht command runs the compiled CLI', async () => {
    const bin = join(app, 'node_modules', '.bin', 'oht')
    const v = await run(bin, ['--version'], app, cleanEnv({ OHT_ENTRY: 'explain' }))
    assert.equal(v.code, 0, v.stderr)
    assert.equal(v.stdout, `oht ${version} (node ${process.version})\n`)
    assert.match(v.stderr, /running dist \(installed package \(no src\/\)\)/)
    const help = await run(bin, ['--help'], app)
    assert.equal(help.code, 0)
    assert.match(help.stdout, /Usage: oht \[global flags\] <command>/)
  })
})
