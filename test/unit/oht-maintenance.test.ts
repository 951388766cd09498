import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HOUR, MINUTE } from '../../src/core/index.ts'
import { compareDistance, OHT_DEFAULTS } from '../../src/oht/index.ts'
import { testnet } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const holders = (nodes: Array<{ store: { get(k: Uint8Array): unknown } }>, key: Uint8Array): number => nodes.filter(n => n.store.get(key) !== undefined).length

describe('maintenance: republish, replication, expiry', () => {
  it('OHT_DEFAULTS is read-only and is what a node without settings uses (a put without ttlMs lives ttlDefaultMs)', async () => {
    assert.ok(Object.isFrozen(OHT_DEFAULTS))
    assert.equal(OHT_DEFAULTS.ttlDefaultMs, 2 * HOUR)
    const t = await testnet({ size: 6, seed: 'defaults', init: { k: 4 } })
    const writer = t.nodes[1]
    const put = await writer.putImmutable(text('default lifetime'))
    const held = t.nodes.map(n => n.store.get(put.key)).find(r => r !== undefined)
    assert.ok(held !== undefined, 'stored somewhere')
    assert.equal(held.record.ttlMs, OHT_DEFAULTS.ttlDefaultMs)
    await t.stop()
  })

  it('the originator republishes its record while its TTL lasts, then lets it die everywhere', async () => {
    const t = await testnet({ size: 14, seed: 'republish', init: { k: 4, republishIntervalMs: 10 * MINUTE, replicateIntervalMs: 10 * HOUR, ttl: { minMs: MINUTE, maxMs: 10 * HOUR } } })
    const writer = t.nodes[3]
    const put = await writer.putImmutable(text('keep me alive'), { ttlMs: HOUR })
    assert.ok(put.stored >= 4)
    // Every copy is lost (crashed holders, say): only a republish can bring it back.
    for (const n of t.nodes) n.store.delete(put.key)
    assert.equal(holders(t.nodes, put.key), 0)
    await t.advance(12 * MINUTE, 5000)
    assert.ok(holders(t.nodes, put.key) >= 4, `republished to ${holders(t.nodes, put.key)} nodes`)
    assert.ok(writer.stats.republished >= 1)
    await t.advance(HOUR, 10_000)
    assert.equal(holders(t.nodes, put.key), 0, 'gone once the writer-chosen TTL is over')
    const count = writer.stats.republished
    await t.advance(30 * MINUTE, 10_000)
    assert.equal(writer.stats.republished, count, 'no republish after expiry')
    await t.stop()
  })

  it('holders re-replicate a record to the new k closest after the network changed', async () => {
    const t = await testnet({ size: 10, seed: 'replicate', init: { k: 4, republishIntervalMs: 10 * HOUR, replicateIntervalMs: 20 * MINUTE, ttl: { minMs: MINUTE, maxMs: 10 * HOUR } } })
    const writer = t.nodes[2]
    const put = await writer.putImmutable(text('replicate me'), { ttlMs: 5 * HOUR })
    await writer.stop() // the originator is gone: only replication keeps the record placed
    for (let i = 0; i < 14; i++) await t.join()
    const live = t.nodes.filter(n => n !== writer)
    const closest = live.slice().sort((a, b) => compareDistance(a.id, b.id, put.key)).slice(0, 4)
    const before = closest.filter(n => n.store.get(put.key) !== undefined).length
    await t.advance(45 * MINUTE, 5000)
    const after = closest.filter(n => n.store.get(put.key) !== undefined).length
    assert.ok(before < 4, `test setup: the new closest already held it (${before})`)
    assert.equal(after, 4, `only ${after} of the 4 closest hold the record after replication`)
    assert.ok(live.some(n => n.stats.replicated > 0))
    await t.stop()
  })

  it('a node refreshes stale buckets from its single maintenance timer', async () => {
    const t = await testnet({ size: 8, seed: 'refresh', init: { refreshIntervalMs: 10 * MINUTE } })
    const n = t.nodes[4]
    const lookups = n.stats.lookups
    await t.advance(25 * MINUTE, 5000)
    assert.ok(n.stats.lookups > lookups, 'refresh lookups ran')
    // One maintenance timer per node plus the store's expiry timer at most.
    assert.ok(t.clock.pending <= 2 * t.nodes.length, `${t.clock.pending} timers pending for ${t.nodes.length} nodes`)
    await t.stop()
  })
})
