import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { commonPrefixLength, compareDistance, xorDistance } from '../../src/oht/index.ts'

const big = (b: Uint8Array): bigint => BigInt('0x' + (Buffer.from(b).toString('hex') || '0'))

describe('XOR metric', () => {
  const rng = new SeededRng('distance')
  const ids = Array.from({ length: 200 }, () => rng.bytes(32))

  it('xorDistance equals the BigInt XOR of the ids', () => {
    for (let i = 0; i + 1 < ids.length; i++) assert.equal(big(xorDistance(ids[i], ids[i + 1])), big(ids[i]) ^ big(ids[i + 1]))
  })

  it('compareDistance orders exactly like BigInt distances, ties included', () => {
    const target = rng.bytes(32)
    for (let i = 0; i + 1 < ids.length; i++) {
      const a = ids[i]; const b = ids[i + 1]
      const da = big(a) ^ big(target); const db = big(b) ^ big(target)
      assert.equal(Math.sign(compareDistance(a, b, target)), da < db ? -1 : da > db ? 1 : 0)
      assert.equal(compareDistance(a, a, target), 0)
    }
    // Ids differing only in the last bit: float-based metrics get this wrong.
    const x = new Uint8Array(32); const y = new Uint8Array(32); y[31] = 1
    assert.ok(compareDistance(x, y, new Uint8Array(32)) < 0)
  })

  it('commonPrefixLength is the bucket index: 256 minus the bit length of the distance', () => {
    for (let i = 0; i + 1 < ids.length; i++) {
      const d = big(ids[i]) ^ big(ids[i + 1])
      assert.equal(commonPrefixLength(ids[i], ids[i + 1]), 256 - d.toString(2).length)
    }
    // Crafted prefixes of every length.
    for (let bits = 0; bits < 256; bits += 7) {
      const a = rng.bytes(32); const b = a.slice()
      b[bits >> 3] ^= 0x80 >> (bits & 7)
      assert.equal(commonPrefixLength(a, b), bits)
    }
    assert.equal(commonPrefixLength(ids[0], ids[0]), 256)
  })
})
