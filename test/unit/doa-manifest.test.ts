import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, toHex } from '../../src/core/index.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import {
  buildReleaseRecord, canonicalJson, chunkBundle, checkManifest, openManifest, packFiles, parseJson, releaseRecordKey,
  signManifest, utf8, verifyReleaseRecord, type AppManifest
} from '../../src/doa/index.ts'
import { recordKey, signMutable } from '../../src/oht/index.ts'

const author = generateIdentity()

function manifest (over: Partial<AppManifest> = {}): AppManifest {
  const code = chunkBundle(packFiles([{ path: 'reducer.js', data: utf8('export function reduce (s) { return s }') }])).ref
  const assets = chunkBundle(packFiles([{ path: 'index.html', data: utf8('<h1>hi</h1>') }])).ref
  return {
    doa: 1,
    name: 'chat',
    version: '1.2.3-beta.1+build.5',
    author: toHex(author.publicKey),
    release: 3,
    description: 'a chat',
    entry: { ui: 'index.html', reducer: 'reducer.js', validator: null },
    bundles: { code, assets },
    capabilities: ['ui', 'state:write', 'state:read'],
    ...over
  }
}

describe('doa manifest', () => {
  it('round-trips through its signed encoding with capabilities in canonical order', () => {
    const signed = signManifest(manifest(), author)
    const opened = openManifest(signed.bytes, author.publicKey)
    assert.deepEqual(opened.manifest, signed.manifest)
    assert.deepEqual(opened.manifest.capabilities, ['state:read', 'state:write', 'ui'])
    // Deterministic: field order of the input does not change the bytes.
    const shuffled = JSON.parse(JSON.stringify(manifest())) as Record<string, unknown>
    const reordered = Object.fromEntries(Object.entries(shuffled).reverse()) as unknown as AppManifest
    assert.deepEqual(signManifest(reordered, author).bytes, signed.bytes)
  })

  it('refuses the signed manifest with any single byte flipped', () => {
    const { bytes } = signManifest(manifest(), author)
    const codes = new Set<string>()
    for (let i = 0; i < bytes.byteLength; i++) {
      const bad = bytes.slice()
      bad[i] ^= 0x01
      assert.throws(() => openManifest(bad, author.publicKey), (err: unknown) => {
        assert.ok(isCodedError(err) && err.code.startsWith('DOA_'), `byte ${i}: ${String(err)}`)
        codes.add(err.code)
        return true
      }, `flipping byte ${i} was accepted`)
    }
    assert.ok(codes.has('DOA_BAD_SIGNATURE'))
    assert.ok(codes.has('DOA_BAD_MANIFEST'))
  })

  it('refuses a manifest signed by another key for this app', () => {
    const other = generateIdentity()
    const forged = signManifest(manifest({ author: toHex(other.publicKey) }), other)
    assert.throws(() => openManifest(forged.bytes, author.publicKey), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
    assert.throws(() => signManifest(manifest(), other), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
  })

  it('checks every field rule with a message naming the field', () => {
    const cases: Array<[Partial<AppManifest> | Record<string, unknown>, RegExp]> = [
      [{ name: 'Chat!' }, /app name/],
      [{ version: '1.2' }, /semantic version/],
      [{ author: 'xyz' }, /author/],
      [{ release: -1 }, /release/],
      [{ capabilities: ['fs:write'] as never }, /unknown capability/],
      [{ capabilities: ['ui', 'ui'] as never }, /twice/],
      [{ capabilities: [] }, /entry.ui needs/],
      [{ entry: { ui: '../etc/passwd', reducer: null, validator: null } }, /entry.ui/],
      [{ extra: 1 } as Record<string, unknown>, /unknown field/]
    ]
    for (const [over, re] of cases) {
      assert.throws(() => checkManifest({ ...manifest(), ...over }), (e: unknown) => isCodedError(e, 'DOA_BAD_MANIFEST') && re.test((e as Error).message), JSON.stringify(over))
    }
  })

  it('verifies a release record into its manifest, and only for the right app and seq', () => {
    const signed = signManifest(manifest(), author)
    const rec = buildReleaseRecord(signed, author, 3_600_000)
    assert.deepEqual(recordKey(rec), releaseRecordKey(author.publicKey))
    assert.equal(rec.seq, 3)
    assert.deepEqual(verifyReleaseRecord(author.publicKey, rec).manifest, signed.manifest)
    const other = generateIdentity()
    assert.throws(() => verifyReleaseRecord(other.publicKey, rec), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
    // The author re-signs the record at another seq: the manifest says release 3.
    const wrongSeq = signMutable(author, { salt: rec.salt, seq: 4, ttlMs: rec.ttlMs, value: rec.value })
    assert.throws(() => verifyReleaseRecord(author.publicKey, wrongSeq), (e: unknown) => isCodedError(e, 'DOA_BAD_MANIFEST'))
    // An impersonator publishes under its own key a manifest claiming the real author.
    const impostor = signMutable(other, { salt: rec.salt, seq: 3, ttlMs: rec.ttlMs, value: rec.value })
    assert.throws(() => verifyReleaseRecord(author.publicKey, impostor), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
    const tampered = { ...rec, value: rec.value.slice() }
    tampered.value[20] ^= 1
    assert.throws(() => verifyReleaseRecord(author.publicKey, tampered), (e: unknown) => isCodedError(e, 'DOA_BAD_SIGNATURE'))
  })
})

describe('doa canonical JSON', () => {
  it('sorts keys, refuses what JSON would silently change, and bounds depth', () => {
    assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 0.5, y: -2 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":-2,"z":0.5}}')
    for (const bad of [undefined, NaN, Infinity, () => 1, new Date(0), { a: undefined }, [1, , 3], 10n]) {
      assert.throws(() => canonicalJson(bad), (e: unknown) => isCodedError(e, 'DOA_BAD_JSON'), String(bad))
    }
    const cyc: Record<string, unknown> = {}
    cyc.self = cyc
    assert.throws(() => canonicalJson(cyc), (e: unknown) => isCodedError(e, 'DOA_BAD_JSON'))
    assert.throws(() => parseJson('['.repeat(100) + ']'.repeat(100)), (e: unknown) => isCodedError(e, 'DOA_BAD_JSON'))
    assert.throws(() => parseJson('{"a":'), (e: unknown) => isCodedError(e, 'DOA_BAD_JSON'))
  })
})
