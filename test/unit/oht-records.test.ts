import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, MINUTE, HOUR, DAY } from '../../src/core/index.ts'
import { immutableKey, mutableKey, signMutable, type MutableRecord } from '../../src/oht/index.ts'
import { errorCode, makeIdentity, singleNode, testnet } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('storing-node record checks', () => {
  it('rejects a mutable record whose signature does not verify (OHT_BAD_SIGNATURE)', async () => {
    const { node, peer, rng } = await singleNode()
    const good = signMutable(peer.identity, { seq: 1, ttlMs: HOUR, value: text('x') })
    const sig = good.signature.slice(); sig[5] ^= 1
    assert.equal(errorCode(await peer.put(node.contact, { ...good, signature: sig })), 'OHT_BAD_SIGNATURE')
    // Signed by someone else's key but claiming ours: also a bad signature.
    const forged: MutableRecord = { ...signMutable(peer.identity, { seq: 1, ttlMs: HOUR, value: text('x') }), publicKey: makeIdentity(rng).publicKey }
    assert.equal(errorCode(await peer.put(node.contact, forged)), 'OHT_BAD_SIGNATURE')
    assert.equal(node.store.size, 0)
    assert.equal(errorCode(await peer.put(node.contact, good)), 'stored')
    await node.stop()
  })

  it('rejects a record sent under a key it does not hash to (OHT_KEY_MISMATCH)', async () => {
    const { node, peer } = await singleNode()
    const rec = { kind: 'immutable' as const, ttlMs: HOUR, value: text('content') }
    assert.equal(errorCode(await peer.put(node.contact, rec, { key: immutableKey(text('other')) })), 'OHT_KEY_MISMATCH')
    const m = signMutable(peer.identity, { salt: text('a'), seq: 1, ttlMs: HOUR, value: text('v') })
    assert.equal(errorCode(await peer.put(node.contact, m, { key: mutableKey(peer.identity.publicKey, text('b')) })), 'OHT_KEY_MISMATCH')
    assert.equal(node.store.size, 0)
    await node.stop()
  })

  it('rejects a lower or equal seq with different content (OHT_SEQ_STALE) and accepts a same-write refresh', async () => {
    const { node, peer } = await singleNode()
    const v5 = signMutable(peer.identity, { seq: 5, ttlMs: HOUR, value: text('five') })
    assert.equal(errorCode(await peer.put(node.contact, v5)), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 4, ttlMs: HOUR, value: text('four') }))), 'OHT_SEQ_STALE')
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 5, ttlMs: HOUR, value: text('other five') }))), 'OHT_SEQ_STALE')
    assert.equal(errorCode(await peer.put(node.contact, v5)), 'stored', 'the same signed write is a refresh')
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 6, ttlMs: HOUR, value: text('six') }))), 'stored')
    const held = node.store.get(mutableKey(peer.identity.publicKey))
    assert.equal(held?.record.kind === 'mutable' ? held.record.seq : -1, 6)
    await node.stop()
  })

  it('compare-and-swap: a PUT whose cas differs from the stored seq is rejected (OHT_CAS_MISMATCH)', async () => {
    const { node, peer } = await singleNode()
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 5, ttlMs: HOUR, value: text('a') }))), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 6, ttlMs: HOUR, value: text('b') }), { cas: 4 })), 'OHT_CAS_MISMATCH')
    assert.equal(errorCode(await peer.put(node.contact, signMutable(peer.identity, { seq: 6, ttlMs: HOUR, value: text('b') }), { cas: 5 })), 'stored')
    await node.stop()
  })

  it('rejects values over the configured limit (OHT_VALUE_TOO_LARGE)', async () => {
    const { node, peer } = await singleNode({ maxValueBytes: 1024 })
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: new Uint8Array(1025).fill(1) })), 'OHT_VALUE_TOO_LARGE')
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: new Uint8Array(1024).fill(1) })), 'stored')
    await assert.rejects(node.putImmutable(new Uint8Array(1025)), (e) => isCodedError(e, 'OHT_VALUE_TOO_LARGE'))
    await node.stop()
  })

  it('clamps the writer-chosen TTL to the node policy and honours a shorter remaining lifetime', async () => {
    const { node, peer, clock } = await singleNode({ ttl: { minMs: MINUTE, maxMs: DAY } })
    const granted = async (ttlMs: number, remainingMs?: number): Promise<number> => {
      const res = await peer.put(node.contact, { kind: 'immutable', ttlMs, value: text(`ttl ${ttlMs} ${remainingMs ?? ''}`) }, { remainingMs: remainingMs ?? ttlMs })
      assert.equal(res.type, 'stored')
      return res.type === 'stored' ? res.grantedMs : -1
    }
    assert.equal(await granted(1), MINUTE)
    assert.equal(await granted(30 * DAY), DAY)
    assert.equal(await granted(HOUR), HOUR)
    assert.equal(await granted(HOUR, 10 * MINUTE), 10 * MINUTE)
    assert.equal(await granted(HOUR, 1), MINUTE)
    const key = immutableKey(text(`ttl ${30 * DAY} `))
    assert.equal(node.store.get(key)?.expiresAt, clock.now() + DAY)
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('dead') }, { remainingMs: 0 })), 'OHT_EXPIRED')
    await node.stop()
  })

  it('get() skips records with bad signatures and returns the highest valid seq', async () => {
    const t = await testnet({ size: 12, seed: 'forged' })
    const writer = t.nodes[1]
    const put = await writer.putMutable({ value: text('genuine'), seq: 3 })
    assert.ok(put.stored >= 10)
    // One holder is corrupted: it now serves a seq-99 record with a broken signature.
    const holder = t.nodes.find(n => n !== writer && n.store.get(put.key) !== undefined)
    assert.ok(holder !== undefined)
    const held = holder.store.get(put.key)?.record as MutableRecord
    const sig = held.signature.slice(); sig[0] ^= 0xff
    holder.store.put({ key: put.key, record: { ...held, seq: 99, value: text('forged'), signature: sig }, expiresAt: t.clock.now() + HOUR, storedAt: t.clock.now(), refreshedAt: t.clock.now() })
    for (const reader of [t.nodes[0], t.nodes[7], holder]) {
      const got = await reader.get(put.key)
      assert.equal(got?.seq, 3)
      assert.equal(new TextDecoder().decode(got?.value), 'genuine')
    }
    await t.stop()
  })

  it('putMutable with a stale cas fails before writing (OHT_CAS_MISMATCH)', async () => {
    const t = await testnet({ size: 8, seed: 'cas' })
    const w = t.nodes[2]
    const a = await w.putMutable({ value: text('a') })
    assert.equal(a.seq, 0)
    await assert.rejects(w.putMutable({ value: text('b'), cas: 7 }), (e) => isCodedError(e, 'OHT_CAS_MISMATCH'))
    const b = await w.putMutable({ value: text('b'), cas: 0 })
    assert.equal(b.seq, 1)
    assert.equal((await t.nodes[5].get(b.key))?.seq, 1)
    await t.stop()
  })
})
