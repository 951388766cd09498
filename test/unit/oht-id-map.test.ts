import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { idEqualsAt, IdMap, idPrefix, idPrefixAt } from '../../src/oht/id-map.ts'
import { decodeResponse, encodeResponse } from '../../src/oht/index.ts'
import { wireIdBytes, wireIdOffset } from '../../src/oht/codec.ts'

const rng = new SeededRng('id-map')

describe('IdMap', () => {
  it('finds ids by value, also in place inside a larger buffer, and keeps ids sharing 48 bits apart', () => {
    const map = new IdMap<number>()
    const a = rng.bytes(32)
    const b = a.slice(); b[31] ^= 1 // same first 48 bits: the same bucket, a different id
    map.set(a, 1); map.set(b, 2)
    assert.equal(map.size, 2)
    assert.equal(map.get(a.slice()), 1)
    assert.equal(map.get(b), 2)
    const frame = new Uint8Array(100)
    frame.set(b, 40)
    assert.equal(idPrefixAt(frame, 40), idPrefix(b))
    assert.equal(idEqualsAt(b, frame, 40), true)
    assert.equal(idEqualsAt(a, frame, 40), false)
    assert.equal(map.getAt(frame, 40), 2)
    frame[40 + 31] ^= 1
    assert.equal(map.getAt(frame, 40), 1)
    frame[40] ^= 0x80
    assert.equal(map.getAt(frame, 40), undefined)
    assert.equal(map.delete(a), true)
    assert.equal(map.get(a), undefined)
    assert.equal(map.get(b), 2)
  })

  it('reads the ids of received contacts where they lie in the frame', () => {
    const sent = [0, 1, 2].map(() => ({ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs: ['sim:x'] } }))
    const res = decodeResponse(encodeResponse({ type: 'nodes', contacts: sent }))
    assert.ok(res.type === 'nodes')
    res.contacts.forEach((w, i) => {
      assert.equal(idEqualsAt(sent[i].id, wireIdBytes(w), wireIdOffset(w)), true)
      assert.deepEqual([...w.id], [...sent[i].id])
    })
    assert.equal(wireIdBytes(sent[0]), sent[0].id)
    assert.equal(wireIdOffset(sent[0]), 0)
  })
})
