/**
 * bin/oht.js's choice between dist/ and the sources, and package.json's exports: every public
 * layer of src/ has an entry, and every entry points at a layer that exists.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseEntry, newestMtime } from '../../bin/entry.js'

const ROOT = new URL('../..', import.meta.url).pathname

/** Layers that are composition roots or re-exported by the package entry, not subpaths. */
const NOT_SUBPATHS = new Set(['cli', 'daemon', 'sdk'])

async function layout (dir: string, parts: { src?: boolean, dist?: boolean, stamp?: boolean }): Promise<void> {
  if (parts.src === true) {
    await mkdir(join(dir, 'src', 'cli'), { recursive: true })
    await writeFile(join(dir, 'src', 'cli', 'main.ts'), '')
    await writeFile(join(dir, 'src', 'index.ts'), '')
  }
  if (parts.dist === true) {
    await mkdir(join(dir, 'dist', 'cli'), { recursive: true })
    await writeFile(join(dir, 'dist', 'cli', 'main.js'), '')
  }
  if (parts.stamp === true) await writeFile(join(dir, 'dist', 'build-stamp.json'), '{}')
}

/** Sets the mtime of everything under `dir` (and itself) to `t`. */
async function touchTree (dir: string, t: Date): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) await touchTree(p, t)
    else await utimes(p, t, t)
  }
  await utimes(dir, t, t)
}

describe('bin/oht.js entry choice', () => {
  let base: string
  let n = 0
  const fresh = async (): Promise<string> => { const d = join(base, String(n++)); await mkdir(d); return d }
  const yes = (): boolean => true
  const no = (): boolean => false
  const T1 = new Date('2026-01-01T00:00:00Z')
  const T2 = new Date('2026-01-02T00:00:00Z')

  before(async () => { base = await mkdtemp(join(tmpdir(), 'oht-entry-')) })
  after(async () => { await rm(base, { recursive: true, force: true }) })

  it('an installed package (no src/) runs dist/, with or without tsx', async () => {
    const dir = await fresh()
    await layout(dir, { dist: true })
    assert.equal(chooseEntry({ root: dir, env: {}, tsxAvailable: no }).mode, 'dist')
    assert.equal(chooseEntry({ root: dir, env: {}, tsxAvailable: yes }).file, join(dir, 'dist', 'cli', 'main.js'))
  })

  it('a checkout runs dist/ while the stamp is newer than every source, and the sources once one is newer', async () => {
    const dir = await fresh()
    await layout(dir, { src: true, dist: true, stamp: true })
    await touchTree(join(dir, 'src'), T1)
    await utimes(join(dir, 'dist', 'build-stamp.json'), T2, T2)
    assert.equal(chooseEntry({ root: dir, env: {}, tsxAvailable: yes }).mode, 'dist')
    const later = new Date(T2.getTime() + 1000)
    await utimes(join(dir, 'src', 'index.ts'), later, later)
    const c = chooseEntry({ root: dir, env: {}, tsxAvailable: yes })
    assert.equal(c.mode, 'src')
    assert.equal(c.file, join(dir, 'src', 'cli', 'main.ts'))
    assert.match(c.reason, /src\/ changed after the last build/)
  })

  it('a file added to a source directory (directory mtime) makes dist/ stale too', async () => {
    const dir = await fresh()
    await layout(dir, { src: true, dist: true, stamp: true })
    await touchTree(join(dir, 'src'), T1)
    await utimes(join(dir, 'dist', 'build-stamp.json'), T2, T2)
    const later = new Date(T2.getTime() + 1000)
    await utimes(join(dir, 'src', 'cli'), later, later)
    assert.equal(chooseEntry({ root: dir, env: {}, tsxAvailable: yes }).mode, 'src')
  })

  it('no stamp (a dist/ not made by npm run build) counts as not built', async () => {
    const dir = await fresh()
    await layout(dir, { src: true, dist: true })
    assert.equal(chooseEntry({ root: dir, env: {}, tsxAvailable: yes }).mode, 'src')
  })

  it('stale dist/ without tsx runs dist/ with a warning; nothing runnable is an error that says what to do', async () => {
    const stale = await fresh()
    await layout(stale, { src: true, dist: true })
    const c = chooseEntry({ root: stale, env: {}, tsxAvailable: no })
    assert.equal(c.mode, 'dist')
    assert.match(c.warning ?? '', /npm run build/)
    const none = await fresh()
    await layout(none, { src: true })
    assert.throws(() => chooseEntry({ root: none, env: {}, tsxAvailable: no }), /npm ci && npm run build/)
  })

  it('OHT_ENTRY forces a mode and refuses one that is not there or unknown', async () => {
    const dir = await fresh()
    await layout(dir, { src: true, dist: true, stamp: true })
    await touchTree(join(dir, 'src'), T1)
    await utimes(join(dir, 'dist', 'build-stamp.json'), T2, T2)
    assert.equal(chooseEntry({ root: dir, env: { OHT_ENTRY: 'src' }, tsxAvailable: yes }).mode, 'src')
    assert.throws(() => chooseEntry({ root: dir, env: { OHT_ENTRY: 'src' }, tsxAvailable: no }), /needs tsx/)
    const srcOnly = await fresh()
    await layout(srcOnly, { src: true })
    assert.throws(() => chooseEntry({ root: srcOnly, env: { OHT_ENTRY: 'dist' }, tsxAvailable: yes }), /npm run build/)
    assert.throws(() => chooseEntry({ root: dir, env: { OHT_ENTRY: 'fast' }, tsxAvailable: yes }), /must be "dist" or "src"/)
  })

  it('newestMtime sees files deep in the tree and is 0 for a missing dir', async () => {
    const dir = await fresh()
    await mkdir(join(dir, 'a', 'b'), { recursive: true })
    await writeFile(join(dir, 'a', 'b', 'f'), '')
    await touchTree(dir, T1)
    await utimes(join(dir, 'a', 'b', 'f'), T2, T2)
    assert.equal(newestMtime(dir), T2.getTime())
    assert.equal(newestMtime(join(dir, 'missing')), 0)
  })
})

describe('package.json', () => {
  let pkg: { exports: Record<string, unknown>, files: string[], bin: Record<string, string>, engines: { node: string }, dependencies: Record<string, string>, devDependencies: Record<string, string>, scripts: Record<string, string> }
  before(async () => { pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) })

  it('exports every public layer of src/ as oht/<layer>, and nothing that does not exist', async () => {
    const layers: string[] = []
    for (const e of await readdir(join(ROOT, 'src'), { withFileTypes: true })) {
      if (e.isDirectory() && await stat(join(ROOT, 'src', e.name, 'index.ts')).then(() => true, () => false)) layers.push(e.name)
    }
    const missing = layers.filter(l => !NOT_SUBPATHS.has(l) && pkg.exports[`./${l}`] === undefined)
    assert.deepEqual(missing, [], `add these layers to package.json "exports" (or to NOT_SUBPATHS here if they are internal): ${missing.join(', ')}`)
    for (const [key, target] of Object.entries(pkg.exports)) {
      if (key === './package.json') continue
      const t = target as { types: string, default: string }
      const layer = key === '.' ? '' : key.slice(2)
      assert.equal(t.default, `./dist/${layer === '' ? '' : layer + '/'}index.js`, key)
      assert.equal(t.types, `./dist/${layer === '' ? '' : layer + '/'}index.d.ts`, key)
      await stat(join(ROOT, 'src', layer, 'index.ts'))
    }
  })

  it('ships dist/ and bin/, builds on prepare, and needs tsx only for development', () => {
    assert.ok(pkg.files.includes('dist') && pkg.files.includes('bin'))
    assert.equal(pkg.bin.oht, './bin/oht.js')
    assert.match(pkg.scripts.prepare, /build/)
    assert.equal(pkg.dependencies.tsx, undefined)
    assert.ok(pkg.devDependencies.tsx !== undefined)
    assert.ok(pkg.devDependencies.typescript !== undefined)
  })

  it('engines names the majors the CI runs (20, 22, 24)', () => {
    assert.match(pkg.engines.node, /\^20\.19\.0/)
    assert.match(pkg.engines.node, /\^22/)
    assert.match(pkg.engines.node, />=24/)
  })
})
