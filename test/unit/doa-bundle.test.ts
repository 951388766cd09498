import assert from 'node:assert/strict'
import { mkdtemp, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fromHex, isCodedError, SeededRng, toHex } from '../../src/core/index.ts'
import { generateIdentity, sha256 } from '../../src/crypto/index.ts'
import {
  assembleBundle, chunkBundle, createAppCache, decodeIndex, fetchBundle, merkleProof, merkleRoot, packFiles,
  readDirectoryFiles, signManifest, unpackBundle, utf8, verifyChunk, verifyMerkleProof, writeFilesToDirectory,
  type AppManifest, type BundleFile
} from '../../src/doa/index.ts'

const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })
async function tmp (): Promise<string> { const d = await mkdtemp(join(tmpdir(), 'doa-bundle-')); dirs.push(d); return d }

const rng = new SeededRng('doa-bundle')
function files (n = 5, size = 50_000): BundleFile[] {
  return Array.from({ length: n }, (_, i) => ({ path: `dir${i % 2}/file-${i}.bin`, data: rng.bytes(size + i) }))
}

describe('doa merkle tree', () => {
  // The leaves and roots of Certificate Transparency's reference merkle tree tests (RFC 6962).
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex)
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'
  ]
  it('gives the RFC 6962 reference roots', () => {
    assert.equal(toHex(merkleRoot([])), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    roots.forEach((r, i) => assert.equal(toHex(merkleRoot(leaves.slice(0, i + 1))), r, `${i + 1} leaves`))
  })
  it('proves every leaf of trees of 1..17 leaves and refuses wrong leaves, indexes and paths', () => {
    for (let n = 1; n <= 17; n++) {
      const ls = Array.from({ length: n }, (_, i) => sha256(Uint8Array.of(i)))
      const root = merkleRoot(ls)
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(ls, i)
        assert.ok(verifyMerkleProof(root, n, i, ls[i], proof), `n=${n} i=${i}`)
        if (n > 1) {
          assert.equal(verifyMerkleProof(root, n, i, ls[(i + 1) % n], proof), false)
          assert.equal(verifyMerkleProof(root, n, (i + 1) % n, ls[i], proof), false)
        }
        if (proof.length > 0) {
          const bad = proof.map(p => p.slice()); bad[0][0] ^= 1
          assert.equal(verifyMerkleProof(root, n, i, ls[i], bad), false)
        }
      }
    }
  })
})

describe('doa bundles', () => {
  it('packs deterministically whatever the input order, and unpacks to the same files', () => {
    const fs = files()
    const a = packFiles(fs)
    const b = packFiles([...fs].reverse())
    assert.deepEqual(a, b)
    const back = unpackBundle(a)
    assert.deepEqual(back.map(f => f.path), [...fs].map(f => f.path).sort())
    for (const f of back) assert.deepEqual(f.data, fs.find(x => x.path === f.path)?.data)
  })

  it('refuses unsafe and colliding paths', () => {
    for (const p of ['../x', '/etc/passwd', 'a//b', 'a/./b', 'a\\b', 'a\u0000b', '', 'x'.repeat(256), 'e\u0301']) {
      assert.throws(() => packFiles([{ path: p, data: new Uint8Array(1) }]), (e: unknown) => isCodedError(e, 'DOA_BAD_BUNDLE'), JSON.stringify(p))
    }
    assert.throws(() => packFiles([{ path: 'A.txt', data: new Uint8Array(1) }, { path: 'a.txt', data: new Uint8Array(1) }]), (e: unknown) => isCodedError(e, 'DOA_BAD_BUNDLE'))
    assert.throws(() => packFiles([{ path: 'a', data: new Uint8Array(1) }, { path: 'a', data: new Uint8Array(2) }]), (e: unknown) => isCodedError(e, 'DOA_BAD_BUNDLE'))
    assert.throws(() => packFiles([{ path: 'a', data: new Uint8Array(11) }], { maxFileBytes: 10 }), (e: unknown) => isCodedError(e, 'DOA_TOO_LARGE'))
  })

  it('refuses a bundle with a flipped byte in its header, and one with a path made unsafe', () => {
    const b = packFiles(files(3, 10))
    for (let i = 0; i < 40; i++) {
      const bad = b.slice(); bad[i] ^= 0xff
      try {
        const out = unpackBundle(bad)
        // A flip inside a path byte may still be a valid path: then it must show as a changed path.
        assert.notDeepEqual(out.map(f => f.path), unpackBundle(b).map(f => f.path), `flip at ${i} went unnoticed`)
      } catch (e) { assert.ok(isCodedError(e) && e.code.startsWith('DOA_'), String(e)) }
    }
    const evil = packFiles([{ path: 'aa/b', data: new Uint8Array(1) }])
    evil.set(utf8('../b'), 11)
    assert.throws(() => unpackBundle(evil), (e: unknown) => isCodedError(e, 'DOA_BAD_BUNDLE'))
  })

  it('verifies chunks one by one: a flipped byte in any chunk or in the index is refused, and so is a reordering', () => {
    const bundle = packFiles(files(6, 40_000))
    const c = chunkBundle(bundle)
    assert.ok(c.chunks.length >= 4)
    assert.equal(c.ref.chunks, c.chunks.length)
    const keys = decodeIndex(c.index, c.ref)
    assert.deepEqual(assembleBundle(c.ref, keys, c.chunks), bundle)
    for (let i = 0; i < c.chunks.length; i++) {
      for (const pos of [0, c.chunks[i].byteLength >> 1, c.chunks[i].byteLength - 1]) {
        const bad = c.chunks[i].slice(); bad[pos] ^= 1
        assert.throws(() => verifyChunk(c.ref, keys, i, bad), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
      }
    }
    for (let i = 0; i < c.index.byteLength; i++) {
      const bad = c.index.slice(); bad[i] ^= 1
      assert.throws(() => decodeIndex(bad, c.ref), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'), `index byte ${i}`)
    }
    const swapped = [c.chunks[1], c.chunks[0], ...c.chunks.slice(2)]
    assert.throws(() => assembleBundle(c.ref, keys, swapped), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    // A reordered index is a different index: it no longer hashes to the manifest's key nor gives its root.
    const keysSwapped = [keys[1], keys[0], ...keys.slice(2)]
    assert.notEqual(toHex(merkleRoot(keysSwapped)), c.ref.root)
  })

  it('fetches a bundle in parallel from a source, refusing forged and missing chunks', async () => {
    const bundle = packFiles(files(8, 30_000))
    const c = chunkBundle(bundle)
    const store = new Map<string, Uint8Array>([[toHex(sha256(c.index)), c.index], ...c.chunks.map(ch => [toHex(sha256(ch)), ch] as [string, Uint8Array])])
    let inFlight = 0
    let maxInFlight = 0
    const progress: number[] = []
    const source = {
      getImmutable: async (k: Uint8Array) => {
        inFlight++; maxInFlight = Math.max(maxInFlight, inFlight)
        await new Promise(resolve => setImmediate(resolve))
        inFlight--
        return store.get(toHex(k))
      }
    }
    assert.deepEqual(await fetchBundle(c.ref, source, { concurrency: 3, onChunk: (d) => progress.push(d) }), bundle)
    assert.equal(maxInFlight, 3)
    assert.deepEqual(progress, c.chunks.map((_, i) => i + 1))
    // A hostile holder answers chunk 2 with other bytes.
    const forged = { getImmutable: async (k: Uint8Array) => toHex(k) === toHex(c.keys[2]) ? c.chunks[3] : store.get(toHex(k)) }
    await assert.rejects(fetchBundle(c.ref, forged), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    const missing = { getImmutable: async (k: Uint8Array) => toHex(k) === toHex(c.keys[1]) ? undefined : store.get(toHex(k)) }
    await assert.rejects(fetchBundle(c.ref, missing), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
  })

  it('reads a directory, follows links inside it and refuses links escaping it', async () => {
    const d = await tmp()
    await mkdir(join(d, 'app', 'js'), { recursive: true })
    await writeFile(join(d, 'app', 'index.html'), '<p>hi</p>')
    await writeFile(join(d, 'app', 'js', 'main.js'), 'export const x = 1')
    await writeFile(join(d, 'secret'), 'do not ship')
    await symlink(join(d, 'app', 'index.html'), join(d, 'app', 'home.html'))
    const fs = await readDirectoryFiles(join(d, 'app'))
    assert.deepEqual(fs.map(f => f.path), ['home.html', 'index.html', 'js/main.js'])
    await symlink(join(d, 'secret'), join(d, 'app', 'leak'))
    await assert.rejects(readDirectoryFiles(join(d, 'app')), (e: unknown) => isCodedError(e, 'DOA_BAD_BUNDLE'))
    const out = join(d, 'out')
    await writeFilesToDirectory(fs, out)
    assert.equal(await readFile(join(out, 'js', 'main.js'), 'utf8'), 'export const x = 1')
    assert.equal((await stat(join(out, 'index.html'))).mode & 0o777, 0o644)
  })
})

describe('doa app cache', () => {
  const author = generateIdentity()
  function release (n: number): { signed: ReturnType<typeof signManifest>, code: Uint8Array } {
    const code = packFiles([{ path: 'reducer.js', data: utf8(`export function reduce (s) { return ${n} }`) }])
    const m: AppManifest = { doa: 1, name: 'counter', version: `1.0.${n}`, author: toHex(author.publicKey), release: n, entry: { ui: null, reducer: 'reducer.js', validator: null }, bundles: { code: chunkBundle(code).ref, assets: null }, capabilities: [] }
    return { signed: signManifest(m, author), code }
  }

  it('installs releases, pins, rolls back, lists, and refuses what was altered on disk', async () => {
    const dir = await tmp()
    const cache = createAppCache(dir)
    for (const n of [1, 2, 3]) { const r = release(n); await cache.install(r.signed, { code: r.code }) }
    assert.equal((await cache.open(author.publicKey)).manifest.manifest.release, 3)
    assert.deepEqual(await cache.list(), [{ appKey: toHex(author.publicKey), name: 'counter', current: 3, pinned: false, releases: [1, 2, 3] }])
    assert.equal(await cache.rollback(author.publicKey), 2)
    assert.equal((await cache.open(author.publicKey)).manifest.manifest.release, 2)
    await cache.pin(author.publicKey, 1)
    const r4 = release(4)
    await cache.install(r4.signed, { code: r4.code })
    assert.equal((await cache.open(author.publicKey)).manifest.manifest.release, 1, 'a pinned app stays on its release')
    assert.equal((await cache.open(author.publicKey, 4)).code?.[0].path, 'reducer.js')
    await assert.rejects(cache.open(author.publicKey, 9), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
    // Someone edits the cached code on disk.
    const f = join(dir, 'apps', toHex(author.publicKey), '4', 'code.bundle')
    const bytes = new Uint8Array(await readFile(f)); bytes[bytes.byteLength - 2] ^= 1
    await writeFile(f, bytes)
    await assert.rejects(cache.open(author.publicKey, 4), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    // A bundle that does not match the manifest is not installed at all.
    const r5 = release(5)
    await assert.rejects(cache.install(r5.signed, { code: release(6).code }), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
    assert.equal((await stat(join(dir, 'apps', toHex(author.publicKey), 'state.json'))).mode & 0o777, 0o600)
  })
})
