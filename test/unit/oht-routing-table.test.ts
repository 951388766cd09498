import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { commonPrefixLength, compareDistance, createRoutingTable } from '../../src/oht/index.ts'

const rng = new SeededRng('routing-table')
const contact = (): { publicKey: Uint8Array, addrs: string[] } => ({ publicKey: rng.bytes(32), addrs: ['mem:x'] })

/** An id in bucket `index` of `self` (shares exactly `index` leading bits). */
function idInBucket (self: Uint8Array, index: number): Uint8Array {
  const id = rng.bytes(32)
  for (let i = 0; i < index; i++) {
    const byte = i >> 3; const mask = 0x80 >> (i & 7)
    id[byte] = (id[byte] & ~mask) | (self[byte] & mask)
  }
  const byte = index >> 3; const mask = 0x80 >> (index & 7)
  id[byte] = (id[byte] & ~mask) | (~self[byte] & mask)
  return id
}

describe('k-bucket routing table', () => {
  it('a full bucket keeps its long-lived contacts and parks newcomers as replacements', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 4 })
    const old = Array.from({ length: 4 }, () => idInBucket(self, 0))
    for (const id of old) assert.equal(table.add(id, contact(), 1), 'added')
    const newcomer = idInBucket(self, 0)
    assert.equal(table.add(newcomer, contact(), 2), 'replacement')
    assert.equal(table.has(newcomer), false)
    for (const id of old) assert.equal(table.has(id), true)
    assert.equal(table.replacementCount(0), 1)
    assert.equal(table.bucketSize(0), 4)
  })

  it('with displaceSilentAfterMs, a newcomer takes the slot of the contact silent longest, once it has been silent that long', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 3, displaceSilentAfterMs: 100 })
    const [a, b, c] = Array.from({ length: 3 }, () => idInBucket(self, 0))
    table.add(a, contact(), 10); table.add(b, contact(), 20); table.add(c, contact(), 30)
    // Nobody silent for 100 ms yet: the classic rule holds.
    const early = idInBucket(self, 0)
    assert.equal(table.add(early, contact(), 105), 'replacement')
    assert.equal(table.has(a), true)
    // a (last seen at 10) is silent for 100 ms at 110 and b is not: a yields its slot.
    table.add(b, contact(), 109) // b answers again
    const late = idInBucket(self, 0)
    assert.equal(table.add(late, contact(), 110), 'added')
    assert.equal(table.has(late), true)
    assert.equal(table.has(a), false)
    assert.equal(table.has(b), true)
    assert.equal(table.has(c), true)
    assert.equal(table.bucketSize(0), 3)
    assert.equal(table.displaced, 1)
    // The displaced contact waits as a candidate behind the fresher one: if a slot frees up,
    // the fresher candidate (early) gets it first, then a.
    assert.equal(table.replacementCount(0), 2)
    assert.equal(table.remove(c), true)
    assert.equal(table.has(early), true)
    assert.equal(table.remove(b), true)
    assert.equal(table.has(a), true)
  })

  it('classic Kademlia by default: a full bucket never displaces a silent contact', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 1 })
    const a = idInBucket(self, 2)
    table.add(a, contact(), 0)
    assert.equal(table.add(idInBucket(self, 2), contact(), 1e12), 'replacement')
    assert.equal(table.has(a), true)
    assert.equal(table.displaced, 0)
  })

  it('evicts only after maxFailures consecutive failures, promoting the freshest replacement', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 2, maxFailures: 3, failuresWithReplacement: 3 })
    const a = idInBucket(self, 1); const b = idInBucket(self, 1)
    table.add(a, contact(), 1); table.add(b, contact(), 1)
    const r1 = idInBucket(self, 1); const r2 = idInBucket(self, 1)
    table.add(r1, contact(), 2); table.add(r2, contact(), 3)
    assert.equal(table.markFailed(a), false)
    assert.equal(table.markFailed(a), false)
    // An answer in between resets the count: long-lived contacts survive a bad moment.
    table.add(a, contact(), 4)
    assert.equal(table.markFailed(a), false)
    assert.equal(table.markFailed(a), false)
    assert.equal(table.has(a), true)
    assert.equal(table.markFailed(a), true)
    assert.equal(table.has(a), false)
    assert.equal(table.has(r2), true, 'freshest replacement promoted')
    assert.equal(table.has(r1), false)
    assert.equal(table.size, 2)
  })

  it('evicts after one failure when a replacement waits, after maxFailures when none does', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 2, maxFailures: 3 })
    const a = idInBucket(self, 1); const b = idInBucket(self, 1)
    table.add(a, contact(), 1); table.add(b, contact(), 1)
    // No candidate: a dead contact still fills a slot nobody else wants.
    assert.equal(table.markFailed(a), false)
    assert.equal(table.markFailed(a), false)
    assert.equal(table.has(a), true)
    table.add(a, contact(), 2)
    const r = idInBucket(self, 1)
    assert.equal(table.add(r, contact(), 3), 'replacement')
    assert.equal(table.markFailed(b), true, 'one failure is enough with a candidate waiting')
    assert.equal(table.has(b), false)
    assert.equal(table.has(r), true)
    assert.equal(table.replacementCount(1), 0)
    // The candidate is used up: the next failure counts against maxFailures again.
    assert.equal(table.markFailed(a), false)
  })

  it('a churning replacement cache keeps each candidate\'s own id, key and addresses, and never reuses what it handed out', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 2, replacementCacheSize: 3, displaceSilentAfterMs: 1000 })
    const listed = [idInBucket(self, 0), idInBucket(self, 0)]
    for (const id of listed) table.add(id, contact(), 0)
    const handedOut = table.closest(listed[0], 2)
    const handedIds = handedOut.map(e => [...e.id])
    const handedKeys = handedOut.map(e => [...e.contact.publicKey])
    // 40 newcomers through a cache of 3: the first two displace the silent listed contacts
    // into the cache, and those are dropped as the cache churns on.
    const sent = Array.from({ length: 40 }, (_, i) => ({ id: idInBucket(self, 0), c: { publicKey: rng.bytes(32), addrs: [`mem:${i}`] } }))
    const sentBytes = sent.map(({ id, c }) => [[...id], [...c.publicKey]])
    sent.forEach(({ id, c }, i) => { table.add(id, c, 2000 + i) })
    // What the table handed out earlier is unchanged, bytes included.
    assert.deepEqual(handedOut.map(e => [...e.id]), handedIds)
    assert.deepEqual(handedOut.map(e => [...e.contact.publicKey]), handedKeys)
    // Promote everything still waiting by failing what is listed: each promoted candidate
    // carries exactly the key and address it was added with.
    const byId = new Map(sent.map(x => [x.id.join(','), x.c]))
    for (let round = 0; round < 10; round++) {
      for (const e of table.closest(self, 2)) {
        const want = byId.get([...e.id].join(','))
        if (want !== undefined) {
          assert.deepEqual([...e.contact.publicKey], [...want.publicKey])
          assert.deepEqual(e.contact.addrs, want.addrs)
        }
        table.markFailed(e.id)
      }
    }
    // The bytes handed to add() were copied, never written to.
    assert.deepEqual(sent.map(({ id, c }) => [[...id], [...c.publicKey]]), sentBytes)
  })

  it('ignores itself and contacts without addresses', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self)
    assert.equal(table.add(self, contact(), 0), 'self')
    assert.equal(table.add(rng.bytes(32), { publicKey: rng.bytes(32), addrs: [] }, 0), 'ignored')
    assert.equal(table.size, 0)
  })

  it('places contacts by common prefix length', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self)
    for (const i of [0, 3, 9, 100, 255]) {
      const id = idInBucket(self, i)
      table.add(id, contact(), 0)
      assert.equal(table.bucketIndex(id), i)
      assert.equal(commonPrefixLength(self, id), i)
      assert.equal(table.bucketSize(i), 1)
    }
  })

  it('closest(target, n) equals a brute-force sort of all contacts', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 20 })
    const all: Uint8Array[] = []
    for (let i = 0; i < 600; i++) {
      const id = i % 3 === 0 ? idInBucket(self, i % 12) : rng.bytes(32)
      if (table.add(id, contact(), 0) === 'added') all.push(id)
    }
    for (let trial = 0; trial < 30; trial++) {
      const target = trial % 2 === 0 ? rng.bytes(32) : idInBucket(self, trial % 8)
      const expected = all.slice().sort((a, b) => compareDistance(a, b, target)).slice(0, 20)
      assert.deepEqual(table.closest(target, 20).map(e => e.key), expected.map(x => Buffer.from(x).toString('hex')))
    }
    const expectedSelf = all.slice().sort((a, b) => compareDistance(a, b, self)).slice(0, 7)
    assert.deepEqual(table.closest(self, 7).map(e => e.key), expectedSelf.map(x => Buffer.from(x).toString('hex')))
  })

  it('closest(target, n) stays exact for every n, any target depth, and after removals', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 8 })
    let all: Uint8Array[] = []
    for (let i = 0; i < 160; i++) { // 8 per bucket: full, no replacement to promote
      const id = idInBucket(self, i % 20)
      if (table.add(id, contact(), 0) === 'added') all.push(id)
    }
    const check = (): void => {
      for (let trial = 0; trial < 40; trial++) {
        const target = trial % 4 === 0 ? rng.bytes(32) : idInBucket(self, rng.int(24))
        for (const n of [1, 5, 8, 13, 28, 60, 500]) {
          const expected = all.slice().sort((a, b) => compareDistance(a, b, target)).slice(0, n)
          assert.deepEqual(table.closest(target, n).map(e => e.key), expected.map(x => Buffer.from(x).toString('hex')))
        }
      }
    }
    check()
    // Empty the deepest buckets: the table's own depth must follow.
    const deep = all.filter(id => table.bucketIndex(id) >= 15)
    for (const id of deep) table.remove(id)
    all = all.filter(id => table.bucketIndex(id) < 15)
    assert.equal(table.deepestBucket, 14)
    check()
  })

  it('closest() stays exact when ids share long prefixes (ties beyond the packed sort key)', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 20 })
    const base = rng.bytes(32)
    const all: Uint8Array[] = []
    for (let i = 0; i < 60; i++) {
      const id = rng.bytes(32)
      id.set(base.subarray(0, 5 + (i % 3)), 0) // 40-56 shared leading bits
      if (table.add(id, contact(), 0) === 'added') all.push(id)
    }
    for (let trial = 0; trial < 20; trial++) {
      const target = rng.bytes(32)
      if (trial % 2 === 0) target.set(base.subarray(0, 5), 0)
      for (const n of [1, 7, 20]) {
        const expected = all.slice().sort((a, b) => compareDistance(a, b, target)).slice(0, n)
        assert.deepEqual(table.closest(target, n).map(e => e.key), expected.map(x => Buffer.from(x).toString('hex')))
      }
    }
  })

  it('seeing a contact again moves it to the most-recently-seen end', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self, { k: 3 })
    const ids = [idInBucket(self, 2), idInBucket(self, 2), idInBucket(self, 2)]
    ids.forEach((id, i) => table.add(id, contact(), i))
    assert.equal(table.oldest(2)?.key, Buffer.from(ids[0]).toString('hex'))
    table.add(ids[0], contact(), 10)
    assert.equal(table.oldest(2)?.key, Buffer.from(ids[1]).toString('hex'))
    assert.equal(table.get(ids[0])?.lastSeen, 10)
  })
})
