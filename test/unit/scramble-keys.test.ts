/**
 * Replay filters and epoch key rings: no false negatives, a false-positive rate within its
 * bound at capacity, a full filter refusing rather than forgetting, keys rotating on global
 * epochs with their overlap window, and destroyed keys gone with their filters.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { EpochKeyRing, ReplayFilter } from '../../src/scramble-routing/index.ts'

const HOUR = 3_600_000

describe('scramble replay filter', () => {
  it('never misses a replay: 20,000 tags added, every one is then reported as a replay', () => {
    const rng = new SeededRng('fn')
    const f = new ReplayFilter(rng.bytes(16), { capacity: 20_000 })
    const tags = Array.from({ length: 20_000 }, () => rng.bytes(16))
    for (const t of tags) assert.notEqual(f.checkAndAdd(t), 'full')
    for (const t of tags) assert.equal(f.checkAndAdd(t), 'replay')
  })

  it('false positives at capacity stay near the configured rate (1e-3 asked, < 3e-3 measured on 50,000 fresh tags)', () => {
    const rng = new SeededRng('fp')
    const f = new ReplayFilter(rng.bytes(16), { capacity: 20_000, falsePositiveRate: 0.001 })
    for (let i = 0; i < 20_000; i++) f.checkAndAdd(rng.bytes(16))
    let fp = 0
    for (let i = 0; i < 50_000; i++) {
      // The filter is full now, so fresh tags come back 'full' and are not added: only false
      // positives come back 'replay'.
      if (f.checkAndAdd(rng.bytes(16)) === 'replay') fp++
    }
    assert.ok(fp / 50_000 < 0.003, `false-positive rate ${fp / 50_000}`)
  })

  it('a full filter refuses new tags (it never forgets one) and still recognises replays', () => {
    const rng = new SeededRng('full')
    const f = new ReplayFilter(rng.bytes(16), { capacity: 10 })
    const tags = Array.from({ length: 10 }, () => rng.bytes(16))
    for (const t of tags) assert.equal(f.checkAndAdd(t), 'fresh')
    assert.equal(f.checkAndAdd(rng.bytes(16)), 'full')
    assert.equal(f.checkAndAdd(tags[3]), 'replay')
    assert.equal(f.size, 10)
  })

  it('positions are keyed: two filters with different salts set different bits for one tag', () => {
    const rng = new SeededRng('salt')
    const tag = rng.bytes(16)
    const a = new ReplayFilter(rng.bytes(16), { capacity: 100, exactTags: 0 })
    const b = new ReplayFilter(rng.bytes(16), { capacity: 100, exactTags: 0 })
    a.checkAndAdd(tag)
    const wordsA = (a as unknown as { words: Uint32Array }).words
    b.checkAndAdd(tag)
    const wordsB = (b as unknown as { words: Uint32Array }).words
    assert.notDeepEqual(wordsA, wordsB)
  })

  it('keeps the first tags exactly (no bits allocated) and moves them into the Bloom filter past the budget, replays still caught', () => {
    const rng = new SeededRng('exact')
    const f = new ReplayFilter(rng.bytes(16), { capacity: 100_000, exactTags: 1000 })
    const tags = Array.from({ length: 1500 }, () => rng.bytes(16))
    for (const t of tags.slice(0, 1000)) assert.equal(f.checkAndAdd(t), 'fresh')
    assert.equal(f.bytes, 0, 'no filter memory while exact')
    for (const t of tags.slice(1000)) assert.equal(f.checkAndAdd(t), 'fresh')
    assert.ok(f.bytes > 0, 'the Bloom filter exists now')
    for (const t of tags) assert.equal(f.checkAndAdd(t), 'replay', 'tags from before and after the move are replays')
    assert.equal(f.size, 1500)
  })

  it('refuses silly sizes', () => {
    assert.throws(() => new ReplayFilter(new Uint8Array(16), { capacity: 0 }), /capacity/)
    assert.throws(() => new ReplayFilter(new Uint8Array(16), { falsePositiveRate: 1 }), /false-positive/)
  })
})

describe('scramble epoch key ring', () => {
  it('holds the current and next epoch keys, accepts the previous one through the overlap, then destroys it', async () => {
    const start = 100 * HOUR + 50 * 60_000 // 10 minutes before an epoch boundary
    const clock = new FakeClock(start)
    const ring = new EpochKeyRing(clock, new SeededRng('ring'), { epochMs: HOUR, overlapMs: 15 * 60_000, replay: { capacity: 100 } })
    ring.refresh()
    assert.deepEqual(ring.published().map(k => k.epoch), [100, 101])
    const old = ring.key(100)
    assert.ok(old !== undefined)
    await clock.advance(10 * 60_000 + 14 * 60_000) // epoch 101, 14 minutes in
    assert.deepEqual(ring.accepting().map(k => k.epoch), [101, 100, 102], 'current first, then previous (overlap), then next')
    assert.deepEqual(ring.published().map(k => k.epoch), [101, 102])
    old.filter.checkAndAdd(new Uint8Array(16).fill(1))
    await clock.advance(60_001) // past the overlap
    assert.deepEqual(ring.accepting().map(k => k.epoch), [101, 102])
    assert.equal(ring.key(100), undefined)
    assert.equal(old.filter.size, 0, 'its replay filter was wiped with it')
  })

  it('epochs are global: two rings on one clock agree on the epoch and rotate together', () => {
    const clock = new FakeClock(1_700_000_000_000)
    const a = new EpochKeyRing(clock, new SeededRng('a'))
    const b = new EpochKeyRing(clock, new SeededRng('b'))
    assert.equal(a.epochAt(), b.epochAt())
    assert.notDeepEqual(a.published()[0].publicKey, b.published()[0].publicKey, 'but their keys differ')
  })

  it('a destroyed ring refuses further use', () => {
    const ring = new EpochKeyRing(new FakeClock(), new SeededRng('d'))
    ring.refresh()
    ring.destroy()
    assert.throws(() => ring.accepting(), (err: unknown) => (err as { code?: string }).code === 'SCRAMBLE_NOT_STARTED')
  })

  it('refuses an overlap longer than the epoch', () => {
    assert.throws(() => new EpochKeyRing(new FakeClock(), new SeededRng('o'), { epochMs: 60_000, overlapMs: 120_000 }), /overlapMs/)
  })
})
