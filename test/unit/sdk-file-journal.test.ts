/**
 * The file journal keeps a writer's own records: atomically (a crash between write and rename
 * leaves the old version), 0600, optionally sealed, bounded, and a damaged file is set aside
 * with an error naming it, never dropped in silence.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { createOhtNode, immutableKey, mutableKey, signMutable, type OwnRecordEntry } from '../../src/oht/index.ts'
import { createFileJournal, JOURNAL_FILE, type FileJournal } from '../../src/sdk/file-journal.ts'
import { makeIdentity, MemoryBus } from './oht-helpers.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const FAST = { N: 2 ** 10, r: 8, p: 1 }
const HOUR = 3_600_000
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const rng = new SeededRng('file-journal')
const writer = makeIdentity(rng)

function immutableEntry (value: string, expiresAt = 10 * HOUR): OwnRecordEntry {
  const v = bytes(value)
  const key = immutableKey(v)
  return { id: Buffer.from(key).toString('hex'), key, expiresAt, record: { kind: 'immutable', value: v, ttlMs: HOUR } }
}

function mutableEntry (salt: string, seq: number, value: string, expiresAt = 10 * HOUR): OwnRecordEntry {
  const record = signMutable(writer, { salt: bytes(salt), seq, ttlMs: HOUR, value: bytes(value) })
  const key = mutableKey(writer.publicKey, bytes(salt))
  return { id: Buffer.from(key).toString('hex'), key, expiresAt, seq, record }
}

describe('file journal', () => {
  let dir = ''
  let n = 0
  const clock = new FakeClock()
  const open: FileJournal[] = []
  const fresh = async (): Promise<string> => { const d = join(dir, String(++n)); await mkdir(d, { mode: 0o700 }); return join(d, JOURNAL_FILE) }
  const journal = (path: string, extra: Partial<Parameters<typeof createFileJournal>[0]> = {}, beforeRename?: (tmp: string) => Promise<void>): FileJournal => {
    const j = createFileJournal({ path, scrypt: FAST, ...extra }, { clock, ...(beforeRename !== undefined ? { beforeRename } : {}) })
    open.push(j)
    return j
  }

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-journal-')) })
  after(async () => {
    for (const j of open) await j.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps entries across instances in a 0600 file, with no temp file left', async () => {
    const path = await fresh()
    const a = journal(path)
    assert.deepEqual(await a.load(), [])
    await a.save(immutableEntry('hello'))
    await a.save(mutableEntry('motd', 3, 'third'))
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    const got = await journal(path).load()
    assert.equal(got.length, 2)
    const imm = got.find(e => e.record?.kind === 'immutable')
    const mut = got.find(e => e.record?.kind === 'mutable')
    assert.equal(new TextDecoder().decode(imm?.record?.value), 'hello')
    assert.equal(mut?.seq, 3)
    assert.deepEqual(mut?.record, mutableEntry('motd', 3, 'third').record, 'the signed record comes back byte for byte')
    assert.deepEqual((await readdir(join(path, '..'))).sort(), [JOURNAL_FILE])
  })

  it('journals any record kind field by field (bytes, numbers, booleans, strings), bounded and typed', async () => {
    const path = await fresh()
    const key = new Uint8Array(32).fill(7)
    const record = { kind: 'value', namespace: 'set', key, writer: new Uint8Array(32).fill(1), id: bytes('a'), seq: 4, ttlMs: HOUR, deleted: false, value: bytes('v'), signature: new Uint8Array(64).fill(2) } as unknown as OwnRecordEntry['record']
    await journal(path).save({ id: 'set:a', key, expiresAt: HOUR, seq: 4, record })
    assert.deepEqual((await journal(path).load())[0].record, record)
    const bad = await fresh()
    await writeFile(bad, JSON.stringify({ format: 'oht-own-records', version: 1, entries: [{ id: 'x', key: 'ab'.repeat(32), expiresAt: 1, record: { kind: 'value', value: [1, 2, 3] } }] }))
    await assert.rejects(journal(bad).load(), { code: 'OHT_JOURNAL_CORRUPT', message: /record field value has an unknown type/ })
  })

  it('never lets a seq go backwards, and keeps only the seq once a record expired', async () => {
    const path = await fresh()
    const j = journal(path)
    await j.save(mutableEntry('s', 7, 'seven'))
    await j.save(mutableEntry('s', 4, 'four'))
    const [e] = await journal(path).load()
    assert.equal(e.seq, 7)
    await j.expire(e.id)
    const text = await readFile(path, 'utf8')
    assert.ok(!text.includes(Buffer.from('four').toString('base64')), 'the expired value is gone from the file')
    const [after] = await journal(path).load()
    assert.equal(after.record, undefined)
    assert.equal(after.seq, 7)
    // an immutable record has no seq: expiry forgets it entirely
    await j.save(immutableEntry('short'))
    await j.expire(immutableEntry('short').id)
    assert.equal((await journal(path).load()).length, 1)
  })

  it('seals with a passphrase: nothing readable in the file, a wrong passphrase refused, the file left in place', async () => {
    const path = await fresh()
    const j = journal(path, { passphrase: 'correct horse' })
    await j.load()
    const e = mutableEntry('secret-name', 1, 'a private value')
    await j.save(e)
    const text = await readFile(path, 'utf8')
    for (const needle of ['a private value', Buffer.from('a private value').toString('base64'), e.id]) assert.ok(!text.includes(needle), `the file does not contain ${needle}`)
    assert.equal(new TextDecoder().decode((await journal(path, { passphrase: 'correct horse' }).load())[0].record?.value), 'a private value')
    await assert.rejects(journal(path, { passphrase: 'wrong' }).load(), { code: 'OHT_JOURNAL_PASSPHRASE' })
    await assert.rejects(journal(path).load(), { code: 'OHT_JOURNAL_PASSPHRASE', message: /is sealed: give its passphrase/ })
    assert.equal(await readFile(path, 'utf8'), text, 'a passphrase problem does not touch the file')
  })

  it('a plain journal opened with a passphrase is sealed by its next write', async () => {
    const path = await fresh()
    await journal(path).save(immutableEntry('plain first'))
    const j = journal(path, { passphrase: 'now sealed' })
    assert.equal((await j.load()).length, 1)
    await j.save(immutableEntry('second'))
    assert.ok(!(await readFile(path, 'utf8')).includes(Buffer.from('plain first').toString('base64')))
    assert.equal((await journal(path, { passphrase: 'now sealed' }).load()).length, 2)
  })

  it('a damaged file is moved aside and named in the error, never silently emptied', async () => {
    const cases: Array<[string, (path: string) => Promise<void>]> = [
      ['not JSON', async (p) => { await writeFile(p, '{"format":"oht-own-records","version":1,"entr', { mode: 0o600 }) }],
      ['a bad key', async (p) => { await writeFile(p, JSON.stringify({ format: 'oht-own-records', version: 1, entries: [{ id: 'x', key: 'abcd', expiresAt: 1, seq: 1 }] })) }],
      ['an unknown version', async (p) => { await writeFile(p, JSON.stringify({ format: 'oht-own-records', version: 9, entries: [] })) }],
      ['a tampered sealed box', async (p) => {
        const j = journal(p, { passphrase: 'pw' })
        await j.save(immutableEntry('x'))
        const doc = JSON.parse(await readFile(p, 'utf8'))
        const ct = Buffer.from(doc.sealed.box.ciphertext, 'base64')
        ct[0] ^= 1
        doc.sealed.box.ciphertext = ct.toString('base64')
        await writeFile(p, JSON.stringify(doc))
      }]
    ]
    for (const [what, damage] of cases) {
      const path = await fresh()
      await damage(path)
      const original = await readFile(path, 'utf8')
      const err = await journal(path, { passphrase: 'pw' }).load().then(() => undefined, (e: unknown) => e as Error & { code: string })
      assert.equal(err?.code, 'OHT_JOURNAL_CORRUPT', `${what}: ${String(err)}`)
      assert.ok(err?.message.includes(path), `${what}: the error names the file`)
      const aside = (await readdir(join(path, '..'))).filter(f => f.startsWith(`${JOURNAL_FILE}.corrupt-`))
      assert.equal(aside.length, 1, `${what}: set aside`)
      assert.ok(err?.message.includes(aside[0]), `${what}: the error says where it went`)
      assert.equal(await readFile(join(path, '..', aside[0]), 'utf8'), original, `${what}: kept as it was`)
      await assert.rejects(stat(path), { code: 'ENOENT' })
    }
  })

  it('is bounded: a save past the entry or byte limit is refused and changes nothing', async () => {
    const path = await fresh()
    const j = journal(path, { maxEntries: 3 })
    for (let i = 0; i < 3; i++) await j.save(immutableEntry(`v${i}`))
    await assert.rejects(j.save(immutableEntry('v3')), { code: 'OHT_JOURNAL_FULL' })
    await j.save(immutableEntry('v1')) // an existing entry may still be rewritten
    assert.equal((await journal(path).load()).length, 3)
    const small = await fresh()
    const s = journal(small, { maxBytes: 400 })
    await s.save(immutableEntry('fits'))
    await assert.rejects(s.save(immutableEntry('x'.repeat(400))), { code: 'OHT_JOURNAL_FULL', message: /over its limit of 400/ })
    assert.equal((await journal(small).load()).length, 1)
    // a file far beyond what the limits allow is refused unread
    const huge = await fresh()
    await writeFile(huge, ' '.repeat(20_000))
    await assert.rejects(journal(huge, { maxEntries: 2, maxBytes: 100 }).load(), { code: 'OHT_JOURNAL_FULL' })
  })

  it('a failed write fails the save and leaves neither the file nor memory holding the entry', async () => {
    const path = await fresh()
    let fail = false
    const j = journal(path, {}, async () => { if (fail) throw new Error('disk gone') })
    await j.save(immutableEntry('kept'))
    fail = true
    await assert.rejects(j.save(immutableEntry('lost')), { code: 'OHT_JOURNAL_IO' })
    fail = false
    await j.save(immutableEntry('later'))
    const values = (await journal(path).load()).map(e => new TextDecoder().decode(e.record?.value)).sort()
    assert.deepEqual(values, ['kept', 'later'])
    assert.deepEqual((await readdir(join(path, '..'))).sort(), [JOURNAL_FILE], 'the failed temp file was removed')
  })

  it('a process killed between write and rename leaves the previous version; the next load removes its temp file', async () => {
    const path = await fresh()
    const script = join(dir, 'crash.mts')
    await writeFile(script, [
      `import { createFileJournal } from ${JSON.stringify(join(ROOT, 'src/sdk/file-journal.ts'))}`,
      `import { systemClock } from ${JSON.stringify(join(ROOT, 'src/core/index.ts'))}`,
      'let writes = 0',
      `const j = createFileJournal({ path: ${JSON.stringify(path)} }, { clock: systemClock, beforeRename: async () => { if (++writes === 2) process.kill(process.pid, 'SIGKILL') } })`,
      "const key = (b: number) => new Uint8Array(32).fill(b)",
      "await j.save({ id: 'first', key: key(1), expiresAt: 9e15, seq: 1 })",
      "await j.save({ id: 'second', key: key(2), expiresAt: 9e15, seq: 2 })",
      "console.log('not reached')"
    ].join('\n'))
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.signal, 'SIGKILL', r.stderr)
    assert.ok(!r.stdout.includes('not reached'))
    const left = await readdir(join(path, '..'))
    assert.ok(left.some(f => f.endsWith('.tmp')), `the crash left its temp file: ${left.join(', ')}`)
    const got = await journal(path).load()
    assert.deepEqual(got.map(e => [e.id, e.seq]), [['first', 1]], 'the version before the crash, whole')
    assert.deepEqual(await readdir(join(path, '..')), [JOURNAL_FILE])
  })

  it('saves arriving together share writes (group commit), each resolving once durable', async () => {
    const path = await fresh()
    const j = journal(path)
    await j.load()
    await Promise.all(Array.from({ length: 50 }, async (_, i) => { await j.save(mutableEntry(`k${i}`, i, `v${i}`)) }))
    assert.ok(j.writes < 10, `50 saves took ${j.writes} writes`)
    assert.equal((await journal(path).load()).length, 50)
  })

  it('behind the engine: a node restarted on the same file with no peers serves its records and continues its seq', async () => {
    const path = await fresh()
    const clk = new FakeClock()
    const bus = new MemoryBus(clk)
    const id = makeIdentity(new SeededRng('engine-file'))
    const make = (j: FileJournal) => createOhtNode({ addrs: ['mem:w'] }, { identity: id, net: bus.endpoint({ publicKey: id.publicKey, addrs: ['mem:w'] }), clock: clk, rng: new SeededRng('w'), journal: j })
    const j1 = journal(path, { passphrase: 'pw' })
    const first = make(j1)
    await first.start()
    await first.putMutable({ salt: bytes('motd'), value: bytes('one') })
    await first.putMutable({ salt: bytes('motd'), value: bytes('two') })
    const imm = await first.putImmutable(bytes('kept'))
    await first.stop()
    await j1.close()
    const second = make(journal(path, { passphrase: 'pw' }))
    await second.start()
    assert.equal(new TextDecoder().decode((await second.get(imm.key))?.value), 'kept')
    const got = await second.get(mutableKey(id.publicKey, bytes('motd')))
    assert.equal(got?.seq, 1)
    assert.equal((await second.putMutable({ salt: bytes('motd'), value: bytes('three') })).seq, 2)
    await second.stop()
  })
})
