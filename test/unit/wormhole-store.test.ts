/** The session stores: memory, and files in a state directory (0600, atomic, optionally sealed with a passphrase). */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile, rename } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { SeededRng, isCodedError } from '../../src/core/index.ts'
import { createFileSessionStore, createMemorySessionStore } from '../../src/wormhole/index.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const rng = new SeededRng('store')
const SCRYPT_FAST = { N: 2 ** 10, r: 8, p: 1 }
const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wormhole-store-'))
  dirs.push(d)
  return join(d, 'state')
}

describe('memory session store', () => {
  it('copies values in and out, lists by prefix, deletes, counts writes', async () => {
    const s = createMemorySessionStore()
    const v = Uint8Array.of(1, 2, 3)
    await s.put('session.aa', v)
    v[0] = 9
    const got = await s.get('session.aa')
    assert.deepEqual(got, Uint8Array.of(1, 2, 3))
    got![1] = 7
    assert.deepEqual(await s.get('session.aa'), Uint8Array.of(1, 2, 3))
    await s.put('group.bb', v)
    assert.deepEqual(await s.list('session.'), ['session.aa'])
    await s.delete('session.aa')
    assert.equal(await s.get('session.aa'), undefined)
    assert.equal(s.writes, 2)
    await assert.rejects(s.put('../evil', v), code('WORMHOLE_BAD_ARGUMENT'))
    await assert.rejects(s.put('UPPER', v), code('WORMHOLE_BAD_ARGUMENT'))
  })
})

describe('file session store', () => {
  it('writes 0600 files atomically in a 0700 directory and reads them back', async () => {
    const dir = await tempDir()
    const s = await createFileSessionStore({ dir }, { rng })
    await s.put('session.abc', Uint8Array.of(5, 6, 7))
    await s.put('session.abc', Uint8Array.of(8, 9))
    assert.deepEqual(await s.get('session.abc'), Uint8Array.of(8, 9))
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(dir, 'session.abc.state'))).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(dir), ['session.abc.state'])
    assert.deepEqual(await s.list(''), ['session.abc'])
    await s.delete('session.abc')
    assert.equal(await s.get('session.abc'), undefined)
    await s.close()
    await assert.rejects(s.get('session.abc'), code('WORMHOLE_CLOSED'))
  })

  it('removes a temp file a crash left behind, and keeps the state from before it', async () => {
    const dir = await tempDir()
    const s = await createFileSessionStore({ dir }, { rng })
    await s.put('prekeys', Uint8Array.of(1))
    // A crash after writing the temp file of the next state, before the rename.
    await writeFile(join(dir, 'prekeys.state.tmp-0011223344'), 'half written', { mode: 0o600 })
    const s2 = await createFileSessionStore({ dir }, { rng })
    assert.deepEqual(await s2.get('prekeys'), Uint8Array.of(1))
    assert.deepEqual(await readdir(dir), ['prekeys.state'])
  })

  it('refuses damaged files, files of another name, and lax permissions', async () => {
    const dir = await tempDir()
    const s = await createFileSessionStore({ dir }, { rng })
    await s.put('session.a1', Uint8Array.of(1, 2, 3, 4))
    await s.put('session.b2', Uint8Array.of(9, 9, 9, 9))
    const path = join(dir, 'session.a1.state')
    const bytes = await readFile(path)
    bytes[7] ^= 1
    await writeFile(path, bytes, { mode: 0o600 })
    await assert.rejects(s.get('session.a1'), code('WORMHOLE_STORE_CORRUPT'))
    await writeFile(path, 'garbage', { mode: 0o600 })
    await assert.rejects(s.get('session.a1'), code('WORMHOLE_STORE_CORRUPT'))
    // b2's file put in a1's place: the name is bound, so it is refused.
    await rename(join(dir, 'session.b2.state'), path)
    await assert.rejects(s.get('session.a1'), code('WORMHOLE_STORE_CORRUPT'))
    await chmod(path, 0o644)
    await assert.rejects(s.get('session.a1'), code('WORMHOLE_STORE_PERMISSIONS'))
    await chmod(dir, 0o755)
    await assert.rejects(createFileSessionStore({ dir }, { rng }), code('WORMHOLE_STORE_PERMISSIONS'))
  })

  it('seals every file with a passphrase: no plaintext on disk, the wrong passphrase refused', async () => {
    const dir = await tempDir()
    const secret = new TextEncoder().encode('ratchet state with a recognisable plaintext marker')
    const s = await createFileSessionStore({ dir, passphrase: 'correct horse', scrypt: SCRYPT_FAST }, { rng })
    await s.put('session.cafe', secret)
    const raw = await readFile(join(dir, 'session.cafe.state'))
    assert.ok(!raw.includes(Buffer.from('recognisable')))
    assert.equal((await stat(join(dir, 'store.key'))).mode & 0o777, 0o600)
    await s.close()
    const again = await createFileSessionStore({ dir, passphrase: 'correct horse' }, { rng })
    assert.deepEqual(await again.get('session.cafe'), secret)
    await assert.rejects(createFileSessionStore({ dir, passphrase: 'wrong' }, { rng }), code('WORMHOLE_WRONG_PASSPHRASE'))
    await assert.rejects(createFileSessionStore({ dir }, { rng }), code('WORMHOLE_PASSPHRASE_REQUIRED'))
  })

  it('reads state written before a passphrase was set, and seals it on the next write', async () => {
    const dir = await tempDir()
    const plain = await createFileSessionStore({ dir }, { rng })
    const v = new TextEncoder().encode('plain marker text')
    await plain.put('session.01', v)
    const sealed = await createFileSessionStore({ dir, passphrase: 'pw', scrypt: SCRYPT_FAST }, { rng })
    assert.deepEqual(await sealed.get('session.01'), v)
    await sealed.put('session.01', v)
    assert.ok(!(await readFile(join(dir, 'session.01.state'))).includes(Buffer.from('marker')))
  })
})
