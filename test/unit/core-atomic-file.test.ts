/**
 * writeFileAtomic: the order of operations that makes a write crash-safe (data synced before
 * the rename, the directory synced after it), unique temp names, publish-once, and cleanup on
 * failure. The fs is the real one, wrapped to record what is called.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs/promises'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { writeFileAtomic, type AtomicFs } from '../../src/core/index.ts'

/** The real fs, recording each call (and each handle's sync) with the basename it touched. */
function recordingFs (log: string[]): AtomicFs {
  const name = (p: unknown): string => basename(String(p)).replace(/\.tmp-[0-9a-f]{12}$/, '.tmp')
  return {
    open: (async (path: string, flags: string, mode?: number) => {
      const fh = await fs.open(path, flags, mode)
      log.push(`open ${name(path)} ${flags}`)
      const sync = fh.sync.bind(fh)
      fh.sync = async () => { log.push(`sync ${name(path)}`); await sync() }
      return fh
    }) as AtomicFs['open'],
    rename: (async (a: string, b: string) => { log.push(`rename ${name(a)} ${name(b)}`); await fs.rename(a, b) }) as AtomicFs['rename'],
    link: (async (a: string, b: string) => { log.push(`link ${name(a)} ${name(b)}`); await fs.link(a, b) }) as AtomicFs['link'],
    rm: (async (p: string, o?: Parameters<typeof fs.rm>[1]) => { log.push(`rm ${name(p)}`); await fs.rm(p, o) }) as AtomicFs['rm']
  }
}

describe('writeFileAtomic', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-atomic-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('syncs the data before the rename and the directory after it', async () => {
    const log: string[] = []
    const path = join(dir, 'state.json')
    await writeFileAtomic(path, '{"a":1}\n', { fs: recordingFs(log) })
    assert.deepEqual(log, ['open state.json.tmp wx', 'sync state.json.tmp', 'rename state.json.tmp state.json', `open ${basename(dir)} r`, `sync ${basename(dir)}`])
    assert.equal(await readFile(path, 'utf8'), '{"a":1}\n')
    assert.equal((await stat(path)).mode & 0o777, 0o600)
  })

  it('replace: false links instead of renaming and fails with EEXIST, leaving the first file', async () => {
    const log: string[] = []
    const path = join(dir, 'token')
    await writeFileAtomic(path, 'first', { replace: false, fs: recordingFs(log) })
    assert.deepEqual(log.slice(2, 4), ['link token.tmp token', 'rm token.tmp'])
    await assert.rejects(writeFileAtomic(path, 'second', { replace: false }), (err: unknown) => (err as NodeJS.ErrnoException).code === 'EEXIST')
    assert.equal(await readFile(path, 'utf8'), 'first')
    assert.deepEqual((await readdir(dir)).filter(f => f.startsWith('token')), ['token'], 'the temp file of the loser is gone')
  })

  it('a failed rename leaves the old file and no temp file', async () => {
    const sub = join(dir, 'fail')
    await fs.mkdir(sub)
    const path = join(sub, 'x')
    await writeFile(path, 'old')
    const failing: AtomicFs = { ...recordingFs([]), rename: (async () => { throw Object.assign(new Error('EIO'), { code: 'EIO' }) }) as AtomicFs['rename'] }
    await assert.rejects(writeFileAtomic(path, 'new', { fs: failing }), /EIO/)
    assert.equal(await readFile(path, 'utf8'), 'old')
    assert.deepEqual(await readdir(sub), ['x'])
  })

  it('many writers at once: every write succeeds and the file is one of them, whole', async () => {
    const path = join(dir, 'many')
    const bodies = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000))
    await Promise.all(bodies.map(async b => { await writeFileAtomic(path, b) }))
    assert.ok(bodies.includes(await readFile(path, 'utf8')))
    assert.deepEqual((await readdir(dir)).filter(f => f.startsWith('many')), ['many'])
  })
})
