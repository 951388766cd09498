/**
 * The primitives as the wormhole layer wires them, against their RFC vectors: X25519 (RFC 7748),
 * Ed25519 (RFC 8032, through the identity the layer signs with), HKDF-SHA256 (RFC 5869),
 * HMAC-SHA256 (RFC 4231) and ChaCha20-Poly1305 (RFC 8439).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fromHex, toHex, isCodedError } from '../../src/core/index.ts'
import { identityFromSeed, verifySignature } from '../../src/crypto/index.ts'
import { aeadOpen, aeadSeal, hkdf, hmacSha256, x25519, X25519KeyPair } from '../../src/wormhole/index.ts'

describe('X25519 (RFC 7748)', () => {
  it('gives the §5.2 scalar-multiplication vectors, the second with the top bit of u set', () => {
    assert.equal(toHex(x25519(fromHex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), fromHex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))),
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552')
    assert.equal(toHex(x25519(fromHex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), fromHex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))),
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957')
  })

  it('gives the §6.1 Diffie-Hellman public keys and shared secret', () => {
    const alice = X25519KeyPair.fromPrivate(fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
    const bob = X25519KeyPair.fromPrivate(fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'))
    assert.equal(toHex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    assert.equal(toHex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
    assert.equal(toHex(alice.dh(bob.publicKey)), shared)
    assert.equal(toHex(bob.dh(alice.publicKey)), shared)
  })

  it('refuses low-order points (all-zero shared secret) and malformed keys with WORMHOLE_BAD_KEY', () => {
    const k = X25519KeyPair.fromPrivate(fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
    for (const u of [new Uint8Array(32), Uint8Array.from([1, ...new Array(31).fill(0)]), fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')]) {
      assert.throws(() => k.dh(u), (e: unknown) => isCodedError(e, 'WORMHOLE_BAD_KEY'))
    }
    assert.throws(() => k.dh(new Uint8Array(31)), (e: unknown) => isCodedError(e, 'WORMHOLE_BAD_KEY'))
  })

  it('wipes the private key on destroy and refuses to be used after', () => {
    const k = X25519KeyPair.fromPrivate(fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
    const priv = k.privateKey
    k.destroy()
    assert.ok(priv.every(b => b === 0))
    assert.throws(() => k.dh(new Uint8Array(32).fill(9)), (e: unknown) => isCodedError(e, 'WORMHOLE_CLOSED'))
  })
})

describe('Ed25519 (RFC 8032 §7.1) through the signing identity', () => {
  const vectors = [
    { seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', msg: '', sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b' },
    { seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', msg: '72', sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00' },
    { seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', msg: 'af82', sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a' }
  ]
  for (const [i, v] of vectors.entries()) {
    it(`test ${i + 1}: public key, signature, verification, and a flipped bit refused`, () => {
      const id = identityFromSeed(fromHex(v.seed))
      assert.equal(toHex(id.publicKey), v.pub)
      const sig = id.sign(fromHex(v.msg))
      assert.equal(toHex(sig), v.sig)
      assert.ok(verifySignature(id.publicKey, fromHex(v.msg), sig))
      const bad = Uint8Array.from(sig); bad[0] ^= 1
      assert.equal(verifySignature(id.publicKey, fromHex(v.msg), bad), false)
    })
  }
})

describe('HKDF-SHA256 (RFC 5869) and HMAC-SHA256 (RFC 4231)', () => {
  it('gives RFC 5869 test cases 1 and 3', () => {
    const ikm = new Uint8Array(22).fill(0x0b)
    assert.equal(toHex(hkdf(ikm, fromHex('000102030405060708090a0b0c'), fromHex('f0f1f2f3f4f5f6f7f8f9'), 42)),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865')
    assert.equal(toHex(hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 42)),
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8')
  })

  it('gives RFC 4231 test case 2', () => {
    assert.equal(toHex(hmacSha256(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'))),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
  })
})

describe('ChaCha20-Poly1305 (RFC 8439 §2.8.2)', () => {
  const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
  const nonce = fromHex('070000004041424344454647')
  const aad = fromHex('50515253c0c1c2c3c4c5c6c7')
  const pt = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
  const expected = 'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
    '1ae10b594f09e26a7e902ecbd0600691'

  it('gives the RFC ciphertext and tag and opens it again', () => {
    const sealed = aeadSeal(key, nonce, pt, aad)
    assert.equal(toHex(sealed), expected)
    assert.deepEqual(aeadOpen(key, nonce, sealed, aad), pt)
  })

  it('refuses any flipped bit of ciphertext, tag or associated data with WORMHOLE_DECRYPT_FAILED', () => {
    const sealed = fromHex(expected)
    for (const i of [0, 57, sealed.byteLength - 17, sealed.byteLength - 1]) {
      const bad = Uint8Array.from(sealed); bad[i] ^= 0x80
      assert.throws(() => aeadOpen(key, nonce, bad, aad), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED'))
    }
    const badAad = Uint8Array.from(aad); badAad[3] ^= 1
    assert.throws(() => aeadOpen(key, nonce, sealed, badAad), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED'))
    assert.throws(() => aeadOpen(key, nonce, sealed.subarray(0, 10), aad), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED'))
  })
})
