/**
 * The passphrase key (scrypt once, then XChaCha20-Poly1305 per box) and the XChaCha20-Poly1305
 * built from noble's HChaCha20 and node:crypto's ChaCha20-Poly1305: byte for byte what noble's
 * audited xchacha20poly1305 gives, and any change to key, nonce, AAD or box is refused.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { SeededRng } from '../../src/core/index.ts'
import { derivePassphraseKey, xchachaDecrypt, xchachaEncrypt } from '../../src/crypto/index.ts'

const FAST = { N: 2 ** 10, r: 8, p: 1 }

describe('XChaCha20-Poly1305 on node:crypto', () => {
  it('gives the same bytes as noble\'s xchacha20poly1305 for every length, and opens both', () => {
    const rng = new SeededRng('xchacha')
    for (const len of [0, 1, 15, 16, 63, 64, 65, 1000, 100_000]) {
      const key = rng.bytes(32)
      const nonce = rng.bytes(24)
      const aad = rng.bytes(len % 40)
      const pt = rng.bytes(len)
      const ours = xchachaEncrypt(key, nonce, aad, pt)
      const noble = xchacha20poly1305(key, nonce, aad).encrypt(pt)
      assert.deepEqual(ours, noble, `length ${len}`)
      assert.deepEqual(xchachaDecrypt(key, nonce, aad, noble), pt)
      assert.deepEqual(xchacha20poly1305(key, nonce, aad).decrypt(ours), pt)
    }
  })

  it('refuses a changed box, key, nonce or AAD', () => {
    const rng = new SeededRng('xchacha-tamper')
    const key = rng.bytes(32)
    const nonce = rng.bytes(24)
    const aad = new TextEncoder().encode('aad')
    const box = xchachaEncrypt(key, nonce, aad, rng.bytes(100))
    const flipped = box.slice(); flipped[3] ^= 1
    const other = (b: Uint8Array): Uint8Array => { const c = b.slice(); c[0] ^= 0x80; return c }
    for (const [k, n, a, b] of [[key, nonce, aad, flipped], [other(key), nonce, aad, box], [key, other(nonce), aad, box], [key, nonce, new Uint8Array(0), box]] as const) {
      assert.throws(() => xchachaDecrypt(k, n, a, b), { code: 'CRYPTO_WRONG_PASSPHRASE' })
    }
    assert.throws(() => xchachaDecrypt(key, nonce, aad, box.subarray(0, 10)), { code: 'CRYPTO_KEY_FILE_CORRUPT' })
  })
})

describe('derivePassphraseKey', () => {
  it('seals many boxes under fresh nonces; the stored salt and the passphrase open them again', () => {
    const k = derivePassphraseKey('pass phrase', { params: FAST })
    const aad = new TextEncoder().encode('ctx')
    const a = k.seal(new TextEncoder().encode('one'), aad)
    const b = k.seal(new TextEncoder().encode('one'), aad)
    assert.notEqual(a.nonce, b.nonce, 'a fresh nonce per box')
    const again = derivePassphraseKey('pass phrase', { salt: k.salt, params: k.params })
    assert.equal(new TextDecoder().decode(again.open(a, aad, 100)), 'one')
    const wrong = derivePassphraseKey('other', { salt: k.salt, params: k.params })
    assert.throws(() => wrong.open(a, aad, 100), { code: 'CRYPTO_WRONG_PASSPHRASE' })
    assert.throws(() => again.open(a, aad, 1), { code: 'CRYPTO_KEY_FILE_CORRUPT' }, 'larger than the caller allows: refused before decoding')
    k.destroy()
    assert.throws(() => k.seal(new Uint8Array(1), aad), { code: 'CRYPTO_DESTROYED' })
    assert.throws(() => derivePassphraseKey(''), { code: 'CRYPTO_PASSPHRASE_REQUIRED' })
  })
})
