/**
 * RFC 9498 (The GNU Name System), Appendix A.1, the two EDKEY test vectors: zone key from its
 * private seed, the label-derived key zk' (the RRBLOCK's ZKDF field), the storage key
 * q = SHA-512(zk'), and the RRBLOCK signature, which the RFC's deterministic EdDSA variant
 * (nonce = SHA-256(second half of SHA-512(d) || h)) must reproduce byte for byte.
 *
 * RRBLOCK layout (§5.3): u32 size | u32 zone type (0x00010014 = EDKEY) | ZKDF(zk, label) [32] |
 * signature [64] | expiration [8] | BDATA. The signature covers (§5.3):
 * u32 (16 + |BDATA|) | u32 purpose 15 | expiration | BDATA.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fromHex, toHex } from '../../src/core/index.ts'
import { identityFromSeed, sha512, verifySignature } from '../../src/crypto/index.ts'
import { deriveLabelPublicKey, deriveLabelSigner } from '../../src/doa/index.ts'

const hex = (s: string): Uint8Array => fromHex(s.replace(/\s+/g, ''))

const ZONE_SEED = hex('5a f7 02 0e e1 91 60 32 88 32 35 2b bc 6a 68 a8 d7 1a 7c be 1b 92 99 69 a7 c6 6d 41 5a 0d 8f 65')
const ZONE_ID = hex('00 01 00 14 3c f4 b9 24 03 20 22 f0 dc 50 58 14 53 b8 5d 93 b0 47 b6 3d 44 6c 58 45 cb 48 44 5d db 96 68 8f')

interface Vector { label: string, q: string, rrblock: string }

const VECTORS: Vector[] = [
  {
    label: 'testdelegation',
    q: `ab aa ba c0 e1 24 94 59 75 98 83 95 aa c0 24 1e 55 59 c4 1c 40 74 e2 55 7b 9f e6 d1 54 b6 14 fb
        cd d4 7f c7 f5 1d 78 6d c2 e0 b1 ec e7 60 37 c0 a1 57 8c 38 4e c6 1d 44 56 36 a9 4e 88 03 29 e9`,
    rrblock: `00 00 00 b0 00 01 00 14 9b f2 33 19 8c 6d 53 bb db ac 49 5c ab d9 10 49 a6 84 af 3f 40 51 ba ca
      b0 dc f2 1c 8c f2 7a 1a f4 27 a9 98 be 90 91 f3 bd 44 19 c2 86 06 81 fa 0f c8 46 5c 35 e2 10 91
      f0 87 fd 8d dc a8 78 51 53 d6 d9 bd 73 4f 08 9c 26 b6 52 da ea b4 73 25 71 e5 d9 2b c9 96 3d ad
      d8 be 55 31 87 26 52 00 00 1c ee 8b 3a 4e b5 80 16 c7 0f d2 9a 62 38 9e 9b 04 9a 09 31 ba ba 46
      a1 73 bb 56 f6 bf 56 16 18 ba a1 69 0f ae fa 1c c4 24 75 55 4d 47 96 98 39 8d f6 f0 42 0b 9e c2
      6f b0 43 cf 1e fc 34 bd 2e a0 c6 4a 7d ef d6 ac`
  },
  {
    // "天下無敵": labels are UTF-8 in NFC.
    label: new TextDecoder().decode(hex('e5 a4 a9 e4 b8 8b e7 84 a1 e6 95 b5')),
    q: `ba f8 21 77 ee c0 81 e0 74 a7 da 47 ff c6 48 77 58 fb 0d f0 1a 6c 7f bb 52 fc 8a 31 be f0 29 af
        74 aa 0d c1 5a b8 e2 fa 7a 54 b4 f5 f6 37 f6 15 8f a7 f0 3c 3f ce be 78 d3 f9 d6 40 aa c0 d1 ed`,
    rrblock: `00 00 01 00 00 01 00 14 74 f9 00 68 f1 67 69 53 52 a8 a6 c2 eb 98 48 98 c5 3a cc a0 98 04 70 c6
      c8 12 64 cb dd 78 ad 11 36 47 fb d2 27 cb 62 bf bf 28 6a cb 82 fc f3 64 67 3c dd 18 a7 a7 1e b3
      44 8e 71 72 35 89 a6 4a 43 59 11 fe 14 f3 26 e9 48 48 21 16 78 74 19 dd ce f6 1a c2 2e 66 7a 0b
      99 4a c4 cb 6d a5 49 05 00 1c ee 8b 3a 4e b5 80 8e 45 6d e7 7d 37 2f 82 f4 0b a0 4c 04 ca ac 4c
      04 f2 8a 2b 5f 34 1d fc 73 59 8c 18 2a 9e 06 5e e1 02 bc 7b a5 f1 cb e2 48 a3 d4 6e 56 3c 47 1d
      8d 10 0b 36 40 9e 37 31 89 94 bf fd d4 c8 d0 ff 68 00 de a3 1b 81 09 b1 eb fb 21 71 f8 77 b8 6d
      c2 53 1a b2 5e bb 88 62 7f 93 74 56 d9 d7 a8 75 e5 f4 98 57 da 14 1c 61 52 ae 88 d0 6e 9a 47 fb
      fd f3 b5 f7 db 99 e4 47 93 4e 31 66 d1 15 bf 16 63 4e 5f 51 b8 87 fb 70 3b d4 4a 42 9b d3 32 ab`
  }
]

function parseRrblock (bytes: Uint8Array): { zkdf: Uint8Array, signature: Uint8Array, signed: Uint8Array } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  assert.equal(dv.getUint32(0), bytes.byteLength, 'RRBLOCK size field')
  assert.equal(dv.getUint32(4), 0x00010014, 'zone type EDKEY')
  const zkdf = bytes.subarray(8, 40)
  const signature = bytes.subarray(40, 104)
  const expiration = bytes.subarray(104, 112)
  const bdata = bytes.subarray(112)
  const signed = new Uint8Array(16 + bdata.byteLength)
  const sv = new DataView(signed.buffer)
  sv.setUint32(0, 16 + bdata.byteLength)
  sv.setUint32(4, 15)
  signed.set(expiration, 8)
  signed.set(bdata, 16)
  return { zkdf, signature, signed }
}

describe('doa zone keys against the RFC 9498 EDKEY test vectors (Appendix A.1)', () => {
  const zone = identityFromSeed(ZONE_SEED)

  it('the zone key of the vectors\' private seed is their zone identifier', () => {
    assert.equal(toHex(zone.publicKey), toHex(ZONE_ID.subarray(4)))
  })

  for (const v of VECTORS) {
    describe(`label ${JSON.stringify(v.label)}`, () => {
      const block = parseRrblock(hex(v.rrblock))

      it('derives zk\' = the RRBLOCK\'s ZKDF(zk, label), and q = SHA-512(zk\')', () => {
        const derived = deriveLabelPublicKey(zone.publicKey, v.label)
        assert.equal(toHex(derived), toHex(block.zkdf))
        assert.equal(toHex(sha512(derived)), toHex(hex(v.q)))
      })

      it('signs the RRBLOCK exactly as the RFC does (deterministic nonce), and the signature verifies as plain Ed25519', () => {
        const signer = deriveLabelSigner(zone, v.label)
        try {
          assert.equal(toHex(signer.publicKey), toHex(block.zkdf))
          assert.equal(toHex(signer.sign(block.signed)), toHex(block.signature))
          assert.equal(verifySignature(block.zkdf, block.signed, block.signature), true)
          const flipped = block.signed.slice()
          flipped[20] ^= 1
          assert.equal(verifySignature(block.zkdf, flipped, block.signature), false)
        } finally {
          signer.destroy()
        }
      })
    })
  }
})
