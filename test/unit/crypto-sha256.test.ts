import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { fromHex, SeededRng, toHex } from '../../src/core/index.ts'
import { sha256 } from '../../src/crypto/index.ts'
import { hmacSha256Into, hmacSha256Key, sha256Into } from '../../src/crypto/sha256.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const sha = (d: Uint8Array): string => toHex(sha256Into(d, new Uint8Array(32)))
const hmac = (k: Uint8Array, d: Uint8Array): string => toHex(hmacSha256Into(hmacSha256Key(k), d, new Uint8Array(32)))

describe('SHA-256 in JavaScript', () => {
  it('gives the FIPS 180-4 example digests', () => {
    assert.equal(sha(text('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    assert.equal(sha(text('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    assert.equal(sha(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1')
  })

  it('agrees with node:crypto for every length from 0 to 300 bytes (one, two and many blocks, every padding case)', () => {
    const rng = new SeededRng('sha256-lengths')
    for (let n = 0; n <= 300; n++) {
      const d = rng.bytes(n)
      assert.equal(sha(d), createHash('sha256').update(d).digest('hex'), `${n} bytes`)
    }
  })

  it('sha256(...parts) hashes the concatenation, small inputs in JavaScript and large ones natively', () => {
    const rng = new SeededRng('sha256-parts')
    for (const sizes of [[0], [32], [512], [513], [32, 0], [32, 32, 64], [300, 212], [300, 213], [70000], [1, 70000]]) {
      const parts = sizes.map(n => rng.bytes(n))
      const h = createHash('sha256')
      for (const p of parts) h.update(p)
      assert.equal(toHex(sha256(...parts)), h.digest('hex'), sizes.join('+'))
    }
  })

  it('writes at an offset, leaves the rest of the output alone and refuses a short output', () => {
    const out = new Uint8Array(40).fill(7)
    sha256Into(text('abc'), out, 4)
    assert.equal(toHex(out.subarray(4, 36)), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    assert.deepEqual([...out.subarray(0, 4)], [7, 7, 7, 7])
    assert.deepEqual([...out.subarray(36)], [7, 7, 7, 7])
    assert.throws(() => sha256Into(text('abc'), new Uint8Array(31)), RangeError)
    assert.throws(() => hmacSha256Into(hmacSha256Key(text('k')), text('abc'), new Uint8Array(32), 1), RangeError)
  })
})

describe('HMAC-SHA256 from key midstates', () => {
  it('gives the RFC 4231 test-case MACs (short key, short key and data, key longer than a block)', () => {
    assert.equal(hmac(new Uint8Array(20).fill(0x0b), text('Hi There')), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')
    assert.equal(hmac(text('Jefe'), text('what do ya want for nothing?')), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
    assert.equal(
      hmac(new Uint8Array(131).fill(0xaa), text('Test Using Larger Than Block-Size Key - Hash Key First')),
      '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'
    )
    assert.equal(hmac(fromHex('0102030405060708090a0b0c0d0e0f10111213141516171819'), new Uint8Array(50).fill(0xcd)), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b')
  })

  it('agrees with createHmac for keys of 0 to 200 bytes and messages of 0 to 200 bytes', () => {
    const rng = new SeededRng('hmac-lengths')
    for (const kl of [0, 1, 31, 32, 33, 63, 64, 65, 128, 200]) {
      for (let n = 0; n <= 200; n += 13) {
        const k = rng.bytes(kl)
        const d = rng.bytes(n)
        assert.equal(hmac(k, d), createHmac('sha256', k).update(d).digest('hex'), `key ${kl}, message ${n}`)
      }
    }
  })

  it('does not change the caller\'s key and refuses a midstate of the wrong size', () => {
    const key = new Uint8Array(100).fill(3)
    hmacSha256Key(key)
    assert.deepEqual([...key], new Array(100).fill(3))
    assert.throws(() => hmacSha256Key(key, new Int32Array(8)), RangeError)
  })
})
