/**
 * Files that must survive a failed write whole: the API token and the routing table. The
 * failure is real: a child process whose file-size limit is 0 (ulimit -f 0), so its first
 * written byte fails with EFBIG (node ignores SIGXFSZ) and the process exits, as with a full
 * disk, or a crash between creating the file and writing it.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureToken } from '../../src/daemon/token.ts'
import { loadTableFile, saveTableFile } from '../../src/net/table-file.ts'

const root = new URL('../..', import.meta.url).pathname

/** Runs `code` (an ES module body) in a node child whose file-size limit is 0 bytes. */
async function runWithNoFileSpace (code: string): Promise<{ signal: NodeJS.Signals | null, code: number | null }> {
  const child = spawn('bash', ['-c', 'ulimit -f 0; exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, code], { cwd: root, stdio: 'ignore' })
  return await new Promise((resolve) => child.once('exit', (c, s) => { resolve({ code: c, signal: s }) }))
}

describe('state files survive a crash mid-write', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-state-files-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('a daemon that fails while writing its API token leaves no token file, and the next start makes a good one', async () => {
    const path = join(dir, 'state', 'api.token')
    const r = await runWithNoFileSpace(`import { ensureToken } from './src/daemon/token.ts'; await ensureToken(${JSON.stringify(path)})`)
    assert.notEqual(r.code, 0, 'the child failed writing')
    assert.ok(!(await readdir(join(dir, 'state'))).includes('api.token'), 'no empty or partial token at the real path')
    const token = await ensureToken(path)
    assert.match(token, /^[0-9a-f]{64}$/)
    assert.equal((await readFile(path, 'utf8')).trim(), token)
  })

  it('two daemons creating the token at once end up with the same token', async () => {
    const path = join(dir, 'race', 'api.token')
    const tokens = await Promise.all(Array.from({ length: 8 }, async () => await ensureToken(path)))
    assert.equal(new Set(tokens).size, 1)
    assert.deepEqual((await readdir(join(dir, 'race'))).sort(), ['api.token'], 'no temp files left behind')
  })

  it('concurrent routing-table saves never share a temp file: every save succeeds and the file is one whole table', async () => {
    const path = join(dir, 'table', 'routing-table.json')
    const contacts = (i: number): Array<{ publicKey: Uint8Array, addrs: string[] }> =>
      Array.from({ length: 50 }, (_, j) => ({ publicKey: new Uint8Array(32).fill((i * 50 + j) % 256), addrs: [`/ip4/127.0.0.1/tcp/${4000 + i}`] }))
    const results = await Promise.allSettled(Array.from({ length: 16 }, async (_, i) => { await saveTableFile(path, contacts(i), i) }))
    assert.deepEqual(results.filter(r => r.status === 'rejected').map(r => String((r as PromiseRejectedResult).reason)), [])
    const loaded = await loadTableFile(path)
    assert.equal(loaded.length, 50)
    const port = loaded[0].addrs[0]
    assert.ok(loaded.every(c => c.addrs[0] === port), 'one save, not a mix of several')
    assert.deepEqual(await readdir(join(dir, 'table')), ['routing-table.json'])
  })

  it('a node that fails while saving its routing table keeps the previous table', async () => {
    const path = join(dir, 'crash-table', 'routing-table.json')
    await saveTableFile(path, [{ publicKey: new Uint8Array(32).fill(1), addrs: ['/ip4/127.0.0.1/tcp/4001'] }], 1)
    const r = await runWithNoFileSpace(`import { saveTableFile } from './src/net/table-file.ts'; await saveTableFile(${JSON.stringify(path)}, [{ publicKey: new Uint8Array(32).fill(2), addrs: ['/ip4/127.0.0.1/tcp/4002'] }], 2)`)
    assert.notEqual(r.code, 0, 'the child failed writing')
    const loaded = await loadTableFile(path)
    assert.deepEqual(loaded.map(c => c.addrs[0]), ['/ip4/127.0.0.1/tcp/4001'])
  })
})
