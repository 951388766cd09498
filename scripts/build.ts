/**
 * `npm run build` (and `prepare`, so `npm pack` and installs from a checkout build too):
 * compiles src/ to dist/ with tsconfig.build.json (JS, .d.ts, source maps) and writes
 * dist/build-stamp.json, whose mtime is the moment the build started. bin/oht.js runs dist/
 * only while no file under src/ is newer than that stamp, so an edit after a build falls back
 * to the sources (tsx) instead of running stale code.
 *
 * The new tree is compiled beside dist/ and swapped in with two renames: an `oht` started
 * during a build sees the old dist/, no dist/ (and runs the sources) or the new one, never a
 * half-written tree.
 *
 * Usage: node --import tsx scripts/build.ts
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const started = new Date()
const dist = join(root, 'dist')
const next = join(root, `dist.tmp-${process.pid}`)
const old = join(root, `dist.old-${process.pid}`)

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
rmSync(next, { recursive: true, force: true })
const t0 = performance.now()
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next], { cwd: root, stdio: 'inherit' })
if (r.status !== 0) {
  rmSync(next, { recursive: true, force: true })
  console.error(`build: tsc failed (exit ${String(r.status ?? r.signal)}); dist/ left as it was`)
  process.exit(1)
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
const stamp = join(next, 'build-stamp.json')
writeFileSync(stamp, JSON.stringify({ version: pkg.version, node: process.version, startedAt: started.toISOString() }, null, 2) + '\n')
utimesSync(stamp, started, started)

let hadDist = true
try { renameSync(dist, old) } catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  hadDist = false
}
renameSync(next, dist)
if (hadDist) rmSync(old, { recursive: true, force: true })
console.log(`build: dist/ from src/ in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
