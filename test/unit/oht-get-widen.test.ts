/**
 * A GET that finds nothing among the k closest asks the 2k closest: under churn the k closest
 * can all be newcomers the record has not reached yet, with its holders just beyond them.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compareDistance, immutableKey, type OhtRecord } from '../../src/oht/index.ts'
import { testnet } from './oht-helpers.ts'

describe('GET under churn', () => {
  it('finds a record held only just beyond the k closest, with one wider lookup', async () => {
    const t = await testnet({ size: 60, seed: 'widen', init: { k: 4, alpha: 1 } })
    const value = new TextEncoder().encode('held by ranks 5 and 6 only')
    const key = immutableKey(value)
    const record: OhtRecord = { kind: 'immutable', value, ttlMs: 3_600_000 }
    const ranked = t.nodes.slice().sort((a, b) => compareDistance(a.id, b.id, key))
    const now = t.clock.now()
    for (const n of ranked.slice(4, 6)) {
      n.store.put({ key, record: { ...record, value: value.slice() }, expiresAt: now + 3_600_000, storedAt: now, refreshedAt: now, source: 'test' })
    }
    const reader = ranked[ranked.length - 1]
    const p = reader.get(key)
    await t.advance(60_000, 500)
    const got = await p
    assert.equal(new TextDecoder().decode(got?.value), 'held by ranks 5 and 6 only')
    assert.equal(reader.stats.widenedGets, 1, 'the first lookup (k closest) found nothing, the wider one did')
    // A key nobody holds costs exactly one wider lookup too, and ends in undefined.
    const missing = reader.get(immutableKey(new TextEncoder().encode('nobody has this')))
    await t.advance(60_000, 500)
    assert.equal(await missing, undefined)
    assert.equal(reader.stats.widenedGets, 2)
    await t.stop()
  })
})
