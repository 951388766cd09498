import assert from 'node:assert/strict'
import { hkdfSync } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, chmod, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fromHex, isCodedError, toHex } from '../../src/core/index.ts'
import {
  deriveChildSeed, generateIdentity, identityFromSeed, isValidOnionAddress, onionAddressFromPublicKey,
  parseOnionAddress, readKeyFile, torKeyBlob, verifySignature, writeKeyFile, sealWithPassphrase, openWithPassphrase
} from '../../src/crypto/index.ts'

// RFC 8032 §7.1 test 1 and test 2 keys; their v3 onion addresses as tor computes them
// (tor's own test_build_address uses the test-1 public key).
const RFC8032_1 = {
  seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  onion: '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid',
  // SHA-512(seed), clamped: the form tor's ADD_ONION ED25519-V3 key takes.
  expandedB64: 'MHyDhk8oM8tCei7xwAoBPP3/J2jZgMCjpSDwBpBN6U+bTwr+KAt0aneGhOdUQlAgV7dHOgPwj5b1o46Sh+Afjw=='
}
const SCRYPT_FAST = { N: 2 ** 10, r: 8, p: 1 }

describe('identity', () => {
  it('derives the RFC 8032 public key and tor\'s onion address from the test seed', () => {
    const id = identityFromSeed(fromHex(RFC8032_1.seed))
    assert.equal(toHex(id.publicKey), RFC8032_1.pub)
    assert.equal(id.onion, RFC8032_1.onion)
    assert.equal(onionAddressFromPublicKey(id.publicKey), RFC8032_1.onion)
  })

  it('gives the RFC 8032 test-1 signature of the empty message', () => {
    const id = identityFromSeed(fromHex(RFC8032_1.seed))
    const sig = id.sign(new Uint8Array(0))
    assert.equal(toHex(sig), 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
    assert.ok(verifySignature(id.publicKey, new Uint8Array(0), sig))
  })

  it('produces the expanded secret key tor takes', () => {
    const id = identityFromSeed(fromHex(RFC8032_1.seed))
    assert.equal(Buffer.from(id.expandedSecretKey()).toString('base64'), RFC8032_1.expandedB64)
    assert.equal(torKeyBlob(id), 'ED25519-V3:' + RFC8032_1.expandedB64)
  })

  it('rejects tampered messages, signatures and malformed keys without throwing', () => {
    const id = generateIdentity()
    const msg = new TextEncoder().encode('hello')
    const sig = id.sign(msg)
    assert.equal(verifySignature(id.publicKey, new TextEncoder().encode('hellO'), sig), false)
    const bad = Uint8Array.from(sig); bad[10] ^= 1
    assert.equal(verifySignature(id.publicKey, msg, bad), false)
    assert.equal(verifySignature(new Uint8Array(31), msg, sig), false)
    assert.equal(verifySignature(id.publicKey, msg, sig.subarray(0, 63)), false)
  })

  it('verifies each signature against the key given, whatever keys were imported before', () => {
    const a = generateIdentity()
    const b = generateIdentity()
    const msg = new TextEncoder().encode('hello')
    const sigA = a.sign(msg)
    assert.equal(verifySignature(a.publicKey, msg, sigA), true)
    assert.equal(verifySignature(b.publicKey, msg, sigA), false)
    // The same array holding another key afterwards: keys are imported by value, not by array.
    const key = Uint8Array.from(a.publicKey)
    assert.equal(verifySignature(key, msg, sigA), true)
    key.set(b.publicKey)
    assert.equal(verifySignature(key, msg, sigA), false)
    assert.equal(verifySignature(key, msg, b.sign(msg)), true)
    // More keys than the import cache holds: an evicted key still verifies.
    for (let i = 0; i < 1100; i++) {
      const other = identityFromSeed(Uint8Array.from({ length: 32 }, (_, j) => (i * 7 + j) & 0xff))
      assert.equal(verifySignature(other.publicKey, msg, sigA), false)
    }
    assert.equal(verifySignature(a.publicKey, msg, sigA), true)
  })

  it('cannot sign once destroyed, and its seed is zeroed', () => {
    const id = generateIdentity()
    id.destroy()
    assert.ok(id.seed.every(b => b === 0))
    assert.throws(() => id.sign(new Uint8Array(1)), (e) => isCodedError(e, 'CRYPTO_DESTROYED'))
  })

  it('rejects seeds that are not 32 bytes', () => {
    assert.throws(() => identityFromSeed(new Uint8Array(31)), (e) => isCodedError(e, 'CRYPTO_BAD_SEED'))
  })
})

describe('onion addresses', () => {
  it('parses with or without .onion, any case, and subdomains', () => {
    const p = parseOnionAddress(RFC8032_1.onion.toUpperCase() + '.ONION')
    assert.equal(p.address, RFC8032_1.onion)
    assert.equal(toHex(p.publicKey), RFC8032_1.pub)
    assert.equal(parseOnionAddress(`www.${RFC8032_1.onion}.onion`).address, RFC8032_1.onion)
  })

  it('names the problem of a wrong address', () => {
    const a = RFC8032_1.onion
    assert.throws(() => parseOnionAddress(a.slice(1)), (e) => isCodedError(e, 'CRYPTO_ONION_LENGTH'))
    assert.throws(() => parseOnionAddress('expyuzz4wqqyqhjn.onion'), (e) => isCodedError(e, 'CRYPTO_ONION_LENGTH') && /v2/.test((e as Error).message))
    assert.throws(() => parseOnionAddress(a.slice(0, 55) + '1'), (e) => isCodedError(e, 'CRYPTO_ONION_BASE32'))
    // flip one character of the key part: checksum no longer matches
    const flipped = (a[0] === 'a' ? 'b' : 'a') + a.slice(1)
    assert.throws(() => parseOnionAddress(flipped), (e) => isCodedError(e, 'CRYPTO_ONION_CHECKSUM'))
    // version byte 0x04 with a matching alphabet: last two characters encode the version
    const v4 = a.slice(0, 54) + 'ie'
    assert.throws(() => parseOnionAddress(v4), (e) => isCodedError(e, 'CRYPTO_ONION_VERSION') || isCodedError(e, 'CRYPTO_ONION_CHECKSUM'))
    assert.equal(isValidOnionAddress(a), true)
    assert.equal(isValidOnionAddress(flipped), false)
  })

  it('round-trips random keys', () => {
    for (let i = 0; i < 50; i++) {
      const id = generateIdentity()
      assert.deepEqual(parseOnionAddress(id.onion).publicKey, id.publicKey)
    }
  })
})

describe('key tree', () => {
  const master = fromHex('00'.repeat(31) + '01')
  it('is deterministic per (master, path) and independent across paths', () => {
    const a = deriveChildSeed(master, 'universe.router.multiverse')
    assert.deepEqual(a, deriveChildSeed(master, 'Universe.Router.Multiverse'))
    assert.notDeepEqual(a, deriveChildSeed(master, 'universe2.router.multiverse'))
    assert.notDeepEqual(a, deriveChildSeed(fromHex('00'.repeat(31) + '02'), 'universe.router.multiverse'))
    assert.equal(identityFromSeed(a).onion, identityFromSeed(deriveChildSeed(master, 'universe.router.multiverse')).onion)
  })

  it('pins the derivation (HKDF-SHA256, salt "multiverse/oht key-tree v1", info = path)', () => {
    // Changing the derivation would change every VM's onion address: pin one value.
    assert.equal(toHex(deriveChildSeed(master, 'universe.router.multiverse')), '7917c1052ecf072e29b34073d05d9e567bab3681251ec86ce8af61de9be59359')
    assert.equal(toHex(deriveChildSeed(master, 'a.b')), Buffer.from(hkdfSync('sha256', master, 'multiverse/oht key-tree v1', 'a.b', 32)).toString('hex'))
  })

  it('rejects malformed paths', () => {
    for (const bad of ['', 'a..b', '.a', 'a.', 'a b', 'x'.repeat(64), 'ü.router']) {
      assert.throws(() => deriveChildSeed(master, bad), (e) => isCodedError(e, 'CRYPTO_BAD_KEY_PATH'), bad)
    }
  })
})

describe('key files', () => {
  let dir: string
  after(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  it('writes 0600 files that read back to the same identity', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-keys-'))
    const id = generateIdentity()
    const path = join(dir, 'sub', 'identity.key')
    await writeKeyFile(path, id)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    const back = await readKeyFile(path)
    assert.equal(back.onion, id.onion)
  })

  it('seals with a passphrase; the file holds no plaintext seed; a wrong passphrase is a clear error', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'oht-keys-'))
    const id = generateIdentity()
    const path = join(dir, 'sealed.key')
    await writeKeyFile(path, id, { passphrase: 'correct horse', scrypt: SCRYPT_FAST })
    const text = await readFile(path, 'utf8')
    assert.ok(!text.includes(Buffer.from(id.seed).toString('base64')))
    assert.equal((await readKeyFile(path, { passphrase: 'correct horse' })).onion, id.onion)
    await assert.rejects(readKeyFile(path, { passphrase: 'wrong' }), (e) => isCodedError(e, 'CRYPTO_WRONG_PASSPHRASE'))
    await assert.rejects(readKeyFile(path), (e) => isCodedError(e, 'CRYPTO_PASSPHRASE_REQUIRED'))
  })

  it('detects corruption: bad JSON, tampered ciphertext, swapped onion, wrong seed length', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'oht-keys-'))
    const id = generateIdentity()
    const path = join(dir, 'c.key')
    const put = async (s: string): Promise<void> => { await writeFile(path, s, { mode: 0o600 }); await chmod(path, 0o600) }
    await put('{not json')
    await assert.rejects(readKeyFile(path), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_CORRUPT'))
    await writeKeyFile(path, id, { passphrase: 'pw', scrypt: SCRYPT_FAST })
    const json = JSON.parse(await readFile(path, 'utf8'))
    const ct = Buffer.from(json.sealed.ciphertext, 'base64'); ct[0] ^= 1
    await put(JSON.stringify({ ...json, sealed: { ...json.sealed, ciphertext: ct.toString('base64') } }))
    await assert.rejects(readKeyFile(path, { passphrase: 'pw' }), (e) => isCodedError(e, 'CRYPTO_WRONG_PASSPHRASE'))
    await put(JSON.stringify({ ...json, onion: generateIdentity().onion }))
    await assert.rejects(readKeyFile(path, { passphrase: 'pw' }), (e) => isCodedError(e, 'CRYPTO_WRONG_PASSPHRASE'))
    await writeKeyFile(path, id)
    const plain = JSON.parse(await readFile(path, 'utf8'))
    await put(JSON.stringify({ ...plain, onion: generateIdentity().onion }))
    await assert.rejects(readKeyFile(path), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_CORRUPT'))
    await put(JSON.stringify({ ...plain, seed: Buffer.alloc(16).toString('base64') }))
    await assert.rejects(readKeyFile(path), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_CORRUPT'))
    await put(JSON.stringify({ ...json, sealed: { ...json.sealed, N: 2 ** 30 } }))
    await assert.rejects(readKeyFile(path, { passphrase: 'pw' }), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_CORRUPT'))
  })

  it('refuses files readable by others, missing files and oversized files', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'oht-keys-'))
    const path = join(dir, 'open.key')
    await writeKeyFile(path, generateIdentity())
    await chmod(path, 0o644)
    await assert.rejects(readKeyFile(path), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_PERMISSIONS') && (e as Error).message.includes('chmod 600'))
    await assert.rejects(readKeyFile(join(dir, 'nope.key')), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_MISSING'))
    const big = join(dir, 'big.key')
    await writeFile(big, 'x'.repeat(70_000), { mode: 0o600 })
    await assert.rejects(readKeyFile(big), (e) => isCodedError(e, 'CRYPTO_KEY_FILE_TOO_LARGE'))
  })

  it('sealing authenticates its associated data', () => {
    const box = sealWithPassphrase(new Uint8Array([1, 2, 3]), 'pw', new Uint8Array([9]), SCRYPT_FAST)
    assert.deepEqual(openWithPassphrase(box, 'pw', new Uint8Array([9])), new Uint8Array([1, 2, 3]))
    assert.throws(() => openWithPassphrase(box, 'pw', new Uint8Array([8])), (e) => isCodedError(e, 'CRYPTO_WRONG_PASSPHRASE'))
  })
})
