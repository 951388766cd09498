/** The Reed-Solomon erasure code: any k of n fragments rebuild, fewer or corrupted ones are typed errors, never wrong data. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng, isCodedError } from '../../src/core/index.ts'
import { erasureDecode, erasureEncode, parseFragment, FRAGMENT_HEADER_BYTES, MAX_ERASURE_DATA_BYTES } from '../../src/wormhole/index.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const rng = new SeededRng('erasure')

function * subsets (n: number, k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) { yield acc.slice(); return }
  for (let i = start; i < n; i++) { acc.push(i); yield * subsets(n, k, i + 1, acc); acc.pop() }
}

describe('erasure code', () => {
  it('rebuilds a 4 KiB message from every one of the 70 4-subsets of 8 fragments, in any order', () => {
    const data = rng.bytes(4096)
    const frags = erasureEncode(data, 4, 8)
    assert.equal(frags.length, 8)
    for (const f of frags) assert.equal(f.byteLength, FRAGMENT_HEADER_BYTES + 1024)
    let count = 0
    for (const s of subsets(8, 4)) {
      const pick = s.map(i => frags[i]).reverse()
      assert.deepEqual(erasureDecode(pick), data, `subset ${s.join(',')}`)
      count++
    }
    assert.equal(count, 70)
  })

  it('is systematic: the first k fragments are the data itself', () => {
    const data = rng.bytes(1000)
    const frags = erasureEncode(data, 4, 6)
    const joined = Buffer.concat(frags.slice(0, 4).map(f => f.subarray(FRAGMENT_HEADER_BYTES)))
    assert.deepEqual(new Uint8Array(joined.subarray(0, 1000)), data)
  })

  for (const [k, n, len] of [[1, 1, 10], [1, 3, 77], [2, 3, 1], [3, 5, 1000], [5, 10, 12345], [10, 14, 65536], [16, 32, 5000], [1, 255, 50]] as const) {
    it(`rebuilds from every (or many) k-subsets with k=${k}, n=${n}, ${len} bytes`, () => {
      const data = rng.bytes(len)
      const frags = erasureEncode(data, k, n)
      let tried = 0
      for (const s of subsets(n, k)) {
        assert.deepEqual(erasureDecode(s.map(i => frags[i])), data)
        if (++tried >= 200) break
      }
      // And a random k-subset beyond the first 200.
      const idx = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5).slice(0, k)
      assert.deepEqual(erasureDecode(idx.map(i => frags[i])), data)
    })
  }

  it('handles empty data', () => {
    const frags = erasureEncode(new Uint8Array(0), 4, 8)
    assert.deepEqual(erasureDecode(frags.slice(3, 7)), new Uint8Array(0))
  })

  it('refuses k-1 fragments and duplicates that leave fewer than k distinct', () => {
    const data = rng.bytes(3000)
    const frags = erasureEncode(data, 4, 8)
    for (const s of subsets(8, 3)) assert.throws(() => erasureDecode(s.map(i => frags[i])), code('WORMHOLE_ERASURE_TOO_FEW'))
    assert.throws(() => erasureDecode([frags[1], frags[1], frags[2], frags[3]]), code('WORMHOLE_ERASURE_TOO_FEW'))
    assert.throws(() => erasureDecode([]), code('WORMHOLE_ERASURE_TOO_FEW'))
    // A duplicate among enough distinct ones is harmless.
    assert.deepEqual(erasureDecode([frags[1], frags[1], frags[2], frags[3], frags[7]]), data)
  })

  it('never returns wrong data from a corrupted shard: a typed error with exactly k, a rebuild around it with more', () => {
    const data = rng.bytes(2000)
    const frags = erasureEncode(data, 4, 8)
    for (let victim = 0; victim < 8; victim++) {
      const bad = frags.map(f => Uint8Array.from(f))
      bad[victim][FRAGMENT_HEADER_BYTES + rng.int(500)] ^= 0x5a
      const others = [0, 1, 2, 3, 4, 5, 6, 7].filter(i => i !== victim).slice(0, 3)
      assert.throws(() => erasureDecode([bad[victim], ...others.map(i => bad[i])]), code('WORMHOLE_ERASURE_CORRUPT'))
      assert.deepEqual(erasureDecode(bad), data, 'the seven good ones rebuild it')
    }
    // Two bad of eight: still four good.
    const two = frags.map(f => Uint8Array.from(f))
    two[0][FRAGMENT_HEADER_BYTES] ^= 1
    two[5][FRAGMENT_HEADER_BYTES + 3] ^= 1
    assert.deepEqual(erasureDecode(two), data)
    // A conflicting copy of one index (one good, one bad) is resolved the same way.
    const dup = Uint8Array.from(frags[2]); dup[FRAGMENT_HEADER_BYTES + 9] ^= 0xff
    assert.deepEqual(erasureDecode([dup, frags[2], frags[4], frags[6], frags[7]]), data)
  })

  it('finds the good fragments fast when the first ones are bad, whatever k is', () => {
    const data = rng.bytes(8000)
    const frags = erasureEncode(data, 16, 32).map(f => Uint8Array.from(f))
    frags[0][FRAGMENT_HEADER_BYTES] ^= 1
    frags[1][FRAGMENT_HEADER_BYTES + 7] ^= 1
    frags[9][FRAGMENT_HEADER_BYTES + 100] ^= 1
    assert.deepEqual(erasureDecode(frags), data)
    // Too many bad ones for the budget: a typed error, never wrong data.
    const ruined = frags.map((f, i) => { const g = Uint8Array.from(f); if (i % 2 === 0) g[FRAGMENT_HEADER_BYTES] ^= 0xff; return g })
    assert.throws(() => erasureDecode(ruined.slice(0, 20)), code('WORMHOLE_ERASURE_CORRUPT'))
  })

  it('ignores fragments of other messages, and rebuilds the one asked for by digest', () => {
    const a = rng.bytes(500)
    const b = rng.bytes(500)
    const fa = erasureEncode(a, 2, 4)
    const fb = erasureEncode(b, 2, 4)
    assert.deepEqual(erasureDecode([fa[0], fb[1], fa[3]]), a)
    assert.deepEqual(erasureDecode([fa[0], fb[1], fa[3], fb[2]], { digest: parseFragment(fb[0]).digest }), b)
    assert.throws(() => erasureDecode([fa[0], fb[1]]), code('WORMHOLE_ERASURE_TOO_FEW'))
  })

  it('refuses malformed fragments with typed errors', () => {
    const f = erasureEncode(rng.bytes(100), 2, 4)[0]
    assert.throws(() => parseFragment(f.subarray(0, 10)), code('WORMHOLE_TRUNCATED'))
    const v = Uint8Array.from(f); v[0] = 2
    assert.throws(() => parseFragment(v), code('WORMHOLE_BAD_VERSION'))
    const idx = Uint8Array.from(f); idx[1] = 4
    assert.throws(() => parseFragment(idx), code('WORMHOLE_MALFORMED'))
    const kz = Uint8Array.from(f); kz[2] = 0
    assert.throws(() => parseFragment(kz), code('WORMHOLE_MALFORMED'))
    const len = Uint8Array.from(f); len[7] ^= 1
    assert.throws(() => parseFragment(len), code('WORMHOLE_MALFORMED'))
    const huge = Uint8Array.from(f); huge[4] = 0xff
    assert.throws(() => parseFragment(huge), code('WORMHOLE_TOO_LARGE'))
    assert.throws(() => parseFragment(Uint8Array.from([...f, 0])), code('WORMHOLE_MALFORMED'))
    assert.throws(() => erasureEncode(rng.bytes(10), 5, 4), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => erasureEncode(rng.bytes(10), 0, 4), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => erasureEncode(rng.bytes(10), 4, 256), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => erasureEncode(new Uint8Array(MAX_ERASURE_DATA_BYTES + 1), 4, 8), code('WORMHOLE_TOO_LARGE'))
    // A header changed consistently (digest) makes a different "message" that cannot verify.
    const frags = erasureEncode(rng.bytes(100), 2, 4)
    const forged = frags.map(x => { const y = Uint8Array.from(x); y[8] ^= 1; return y })
    assert.throws(() => erasureDecode(forged), code('WORMHOLE_ERASURE_CORRUPT'))
  })
})
