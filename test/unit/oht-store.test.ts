import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FakeClock, HOUR, MINUTE, SECOND } from '../../src/core/index.ts'
import { createMemoryStore, immutableKey, recordCost } from '../../src/oht/index.ts'
import { errorCode, singleNode } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const entry = (clock: FakeClock, s: string, lifeMs: number, source?: string) => {
  const value = text(s)
  return { key: immutableKey(value), record: { kind: 'immutable' as const, ttlMs: lifeMs, value }, expiresAt: clock.now() + lifeMs, storedAt: clock.now(), refreshedAt: clock.now(), source }
}

describe('memory record store', () => {
  it('purges a record when its lifetime ends and zeroes its bytes', async () => {
    const clock = new FakeClock()
    let expired = 0
    const store = createMemoryStore({ clock, onExpire: () => { expired++ } })
    const held = store.put(entry(clock, 'short-lived secret', 10 * SECOND))
    const bytes = held.record.value
    await clock.advance(10 * SECOND - 1)
    assert.equal(store.size, 1)
    await clock.advance(1)
    assert.equal(store.size, 0, 'purged by the store timer without any read')
    assert.equal(expired, 1)
    assert.ok(bytes.every(b => b === 0), 'value bytes zeroed')
    assert.equal(store.bytes, 0)
  })

  it('keeps its own copy: the caller can reuse its buffer', () => {
    const clock = new FakeClock()
    const store = createMemoryStore({ clock })
    const e = entry(clock, 'abc', MINUTE)
    store.put(e)
    e.record.value.fill(9)
    assert.deepEqual(store.get(e.key)?.record.value, text('abc'))
  })

  it('runs ONE timer for any number of records, earliest expiry first', async () => {
    const clock = new FakeClock()
    const store = createMemoryStore({ clock, granularityMs: 1 })
    for (let i = 0; i < 500; i++) store.put(entry(clock, `r${i}`, (1 + ((i * 7919) % 500)) * SECOND))
    assert.equal(clock.pending, 1)
    await clock.advance(250 * SECOND)
    assert.equal(store.size, 250)
    assert.ok(clock.pending <= 1)
    await clock.advance(250 * SECOND)
    assert.equal(store.size, 0)
    assert.equal(clock.pending, 0, 'no timer left once the store is empty')
  })

  it('replacing or deleting a record zeroes the old bytes; touch() extends life', async () => {
    const clock = new FakeClock()
    const store = createMemoryStore({ clock })
    const a = store.put(entry(clock, 'same key', MINUTE))
    const key = a.key.slice()
    const old = a.record.value
    const b = store.put(entry(clock, 'same key', MINUTE))
    assert.ok(old.every(x => x === 0))
    store.touch(b, clock.now() + HOUR, clock.now())
    await clock.advance(2 * MINUTE)
    assert.equal(store.size, 1, 'extended record outlives its first expiry')
    const cur = store.get(key)?.record.value ?? new Uint8Array(1)
    assert.equal(store.delete(key), true)
    assert.ok(cur.every(b => b === 0))
  })

  it('tracks usage per source peer', () => {
    const clock = new FakeClock()
    const store = createMemoryStore({ clock })
    store.put(entry(clock, 'aaaa', MINUTE, 'p1'))
    store.put(entry(clock, 'bb', MINUTE, 'p1'))
    store.put(entry(clock, 'c', MINUTE, 'p2'))
    // A record costs what keeping it costs (recordCost: overhead + key + wire bytes), not only its value.
    const cost = (valueBytes: number): number => recordCost(1 + 8 + 4 + valueBytes)
    assert.deepEqual(store.usage('p1'), { records: 2, bytes: cost(4) + cost(2) })
    assert.deepEqual(store.usage('p2'), { records: 1, bytes: cost(1) })
    store.delete(immutableKey(text('aaaa')))
    assert.deepEqual(store.usage('p1'), { records: 1, bytes: cost(2) })
  })

  it('a node purges expired records and stop() wipes everything and cancels every timer', async () => {
    const { node, peer, clock } = await singleNode({ ttl: { minMs: SECOND, maxMs: HOUR } })
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: 30 * SECOND, value: text('brief') })), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('long') })), 'stored')
    const brief = node.store.get(immutableKey(text('brief')))?.record.value ?? new Uint8Array(1)
    const long = node.store.get(immutableKey(text('long')))?.record.value ?? new Uint8Array(1)
    await clock.advance(31 * SECOND)
    assert.equal(node.store.get(immutableKey(text('brief'))), undefined)
    assert.ok(brief.every(b => b === 0))
    assert.equal(node.store.size, 1)
    await node.stop()
    assert.equal(node.store.size, 0)
    assert.ok(long.every(b => b === 0), 'stop() zeroed the remaining values')
    assert.equal(clock.pending, 0, 'no timer left behind')
    assert.equal(node.routingTable.size, 0)
  })
})
