/**
 * Record kinds: each kind's policy is enforced by the holder (TTL clamp, value size, per-key and
 * per-writer quotas), an unknown kind is refused with a typed error, and multi-value keys hold a
 * bounded, merged set of signed values from several writers.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DAY, HOUR, MINUTE, SeededRng } from '../../src/core/index.ts'
import {
  createRecordKinds, decodeRequest, decodeResponse, encodeRequest, encodeResponse, OhtError, signValue, type ValueRecord
} from '../../src/oht/index.ts'
import { errorCode, makeIdentity, singleNode, testnet } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const idOf = (i: number): Uint8Array => text(`v${i}`)

describe('record kinds', () => {
  it('the registry has the built-in kinds, applies policy changes and refuses bad definitions', () => {
    const kinds = createRecordKinds({ policy: { mailbox: { ttlMaxMs: 14 * DAY } } })
    assert.deepEqual(kinds.list().map(k => k.name), ['immutable', 'mutable', 'set', 'mailbox'])
    assert.equal(kinds.byName('mailbox')?.policy.ttlMaxMs, 14 * DAY)
    assert.equal(kinds.byCode(2)?.name, 'set')
    assert.throws(() => kinds.valueKind('nope'), (e: unknown) => e instanceof OhtError && e.code === 'OHT_UNKNOWN_KIND')
    assert.throws(() => createRecordKinds({ policy: { nope: {} } }), /unknown kind/)
    assert.throws(() => createRecordKinds({ kinds: [{ code: 2, name: 'dup', shape: 'value' }] }), /registered twice/)
    const more = createRecordKinds({ kinds: [{ code: 16, name: 'forum-op', shape: 'value', policy: { maxValuesPerWriter: 5 } }] })
    assert.equal(more.valueKind('forum-op').policy.maxValuesPerWriter, 5)
  })

  it('a holder clamps each kind\'s TTL to that kind\'s bounds: 30 days for a mailbox, 7 for a set', async () => {
    const { node, peer, rng } = await singleNode()
    const writer = makeIdentity(rng)
    const key = rng.bytes(32)
    const mail = signValue(writer, { namespace: 'mailbox', kindCode: 3, key, id: text('m'), seq: 1, ttlMs: 90 * DAY, value: text('hi') })
    const res = await peer.put(node.contact, mail, { key })
    assert.equal(res.type, 'stored')
    assert.equal(res.type === 'stored' ? res.grantedMs : 0, 30 * DAY)
    const set = signValue(writer, { namespace: 'set', kindCode: 2, key, id: text('s'), seq: 1, ttlMs: 90 * DAY, value: text('hi') })
    const res2 = await peer.put(node.contact, set, { key })
    assert.equal(res2.type === 'stored' ? res2.grantedMs : 0, 7 * DAY)
    const imm = await peer.put(node.contact, { kind: 'immutable', ttlMs: 90 * DAY, value: text('x') })
    assert.equal(imm.type === 'stored' ? imm.grantedMs : 0, 7 * DAY)
    await node.stop()
  })

  it('a node with a policy of its own enforces it (value size, TTL), and refuses an unknown kind with OHT_UNKNOWN_KIND', async () => {
    const { node, peer, rng } = await singleNode({ kinds: { set: { maxValueBytes: 100, ttlMaxMs: HOUR } } })
    const writer = makeIdentity(rng)
    const key = rng.bytes(32)
    const big = signValue(writer, { namespace: 'set', kindCode: 2, key, id: text('a'), seq: 1, ttlMs: DAY, value: new Uint8Array(101) })
    assert.equal(errorCode(await peer.put(node.contact, big, { key })), 'OHT_VALUE_TOO_LARGE')
    const ok = signValue(writer, { namespace: 'set', kindCode: 2, key, id: text('a'), seq: 1, ttlMs: DAY, value: new Uint8Array(100) })
    const res = await peer.put(node.contact, ok, { key })
    assert.equal(res.type === 'stored' ? res.grantedMs : 0, HOUR)
    // A frame naming kind 9, which nobody registered: a typed refusal, not a crash or a BAD_FRAME.
    const token = await peer.token(node.contact, key)
    const frame = encodeRequest({ type: 'put', addrs: [], token, key, remainingMs: HOUR, record: ok })
    // version, type, addrs (count 0), token, key, remainingMs, flags: the record's kind byte follows.
    const kindAt = 2 + 1 + 32 + 32 + 8 + 1
    assert.equal(frame[kindAt], 2)
    frame[kindAt] = 9
    const answer = decodeResponse(await peer.net.request(node.contact, frame))
    assert.equal(errorCode(answer), 'OHT_UNKNOWN_KIND')
    assert.throws(() => decodeRequest(frame), (e: unknown) => e instanceof OhtError && e.code === 'OHT_UNKNOWN_KIND')
    await node.stop()
  })

  it('values: a signature binds the value to its key and kind; a higher seq replaces; a tombstone deletes and blocks resurrection', async () => {
    const { node, peer, rng } = await singleNode()
    const w = makeIdentity(rng)
    const key = rng.bytes(32)
    const other = rng.bytes(32)
    const v1 = signValue(w, { namespace: 'set', kindCode: 2, key, id: text('x'), seq: 1, ttlMs: HOUR, value: text('one') })
    // Sent under another key, it is read as a value of that key, and the signature (which covers its key) fails.
    assert.equal(errorCode(await peer.put(node.contact, v1, { key: other })), 'OHT_BAD_SIGNATURE')
    // The same bytes presented as a mailbox value do not verify (the kind code is signed).
    assert.equal(errorCode(await peer.put(node.contact, { ...v1, namespace: 'mailbox' }, { key })), 'OHT_BAD_SIGNATURE')
    assert.equal(errorCode(await peer.put(node.contact, v1, { key })), 'stored')
    const v2 = signValue(w, { namespace: 'set', kindCode: 2, key, id: text('x'), seq: 2, ttlMs: HOUR, value: text('two') })
    assert.equal(errorCode(await peer.put(node.contact, v2, { key })), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, v1, { key })), 'OHT_SEQ_STALE')
    assert.equal(new TextDecoder().decode((node.store.values(key, 2)[0].record as ValueRecord).value), 'two')
    const del = signValue(w, { namespace: 'set', kindCode: 2, key, id: text('x'), seq: 3, ttlMs: HOUR, deleted: true })
    assert.equal(errorCode(await peer.put(node.contact, del, { key })), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, v2, { key })), 'OHT_SEQ_STALE', 'an outdated replica cannot bring it back')
    const held = node.store.values(key, 2)
    assert.equal(held.length, 1)
    assert.equal((held[0].record as ValueRecord).deleted, true)
    await node.stop()
  })

  it('2 writers x 500 values under one key: each writer is bounded by its quota, the key by its own, nobody else is crowded out', async () => {
    const { node, peer, rng } = await singleNode({ kinds: { set: { maxValuesPerWriter: 300, maxValuesPerKey: 450 } }, limits: { requestsPerSecondPerPeer: 1e6, burst: 1e6 } })
    const a = makeIdentity(rng)
    const b = makeIdentity(rng)
    const key = rng.bytes(32)
    const codes = { a: new Map<string, number>(), b: new Map<string, number>() }
    for (let i = 0; i < 500; i++) {
      for (const [name, w] of [['a', a], ['b', b]] as const) {
        const v = signValue(w, { namespace: 'set', kindCode: 2, key, id: idOf(i), seq: 1, ttlMs: HOUR, value: text(`${name}${i}`) })
        const c = errorCode(await peer.put(node.contact, v, { key }))
        codes[name].set(c, (codes[name].get(c) ?? 0) + 1)
      }
    }
    const held = node.store.values(key, 2)
    assert.equal(held.length, 450, 'the key holds at most its quota')
    const byA = node.store.writerCount(key, 2, a.publicKey)
    const byB = node.store.writerCount(key, 2, b.publicKey)
    assert.ok(byA <= 300 && byB <= 300, `per writer ${byA}, ${byB}`)
    assert.equal(byA + byB, 450)
    assert.ok(byB >= 150, 'the second writer still got the room the first left')
    assert.equal((codes.a.get('stored') ?? 0) + (codes.b.get('stored') ?? 0), 450)
    assert.equal((codes.a.get('OHT_QUOTA') ?? 0) + (codes.b.get('OHT_QUOTA') ?? 0), 550, 'every refusal says why')
    await node.stop()
  })

  it('putValue/getValues over a network: values of several writers merged, paged past one frame, deletes honoured', async () => {
    const t = await testnet({ size: 12, seed: 'values', init: { k: 5 } })
    const key = new SeededRng('values-key').bytes(32)
    const [w1, w2, reader] = [t.nodes[1], t.nodes[2], t.nodes[9]]
    // ~200 KB of values: several VALUES pages per holder.
    const blob = new Uint8Array(4000).fill(1)
    for (let i = 0; i < 25; i++) await w1.putValue(key, { id: idOf(i), value: blob, ttlMs: HOUR })
    for (let i = 0; i < 25; i++) await w2.putValue(key, { id: idOf(i), value: text(`w2-${i}`), ttlMs: HOUR })
    const first = await w1.putValue(key, { id: idOf(0), value: text('changed') })
    assert.ok(first.stored >= 4, `stored at ${first.stored} of ${first.wanted}`)
    await w2.deleteValue(key, { id: idOf(3) })
    const got = await reader.getValues(key)
    assert.equal(got.values.length, 49)
    assert.ok(got.holders >= 4)
    const mine = got.values.filter(v => Buffer.compare(v.writer, w1.contact.publicKey) === 0)
    assert.equal(mine.length, 25)
    assert.equal(new TextDecoder().decode(mine.find(v => Buffer.compare(v.id, idOf(0)) === 0)?.value), 'changed')
    const withDeleted = await reader.getValues(key, { includeDeleted: true })
    assert.equal(withDeleted.values.filter(v => v.deleted).length, 1)
    await t.stop()
  })

  it('holders re-replicate a value set to newcomers among its closest, in PUT_MANY batches', async () => {
    const t = await testnet({ size: 10, seed: 'values-repl', init: { k: 4, replicateIntervalMs: 10 * MINUTE, republishIntervalMs: 100 * HOUR } })
    const key = new SeededRng('repl-key').bytes(32)
    for (let i = 0; i < 30; i++) await t.nodes[1].putValue(key, { id: idOf(i), value: text(`v${i}`), ttlMs: 10 * HOUR })
    const before = t.nodes.filter(n => n.store.values(key, 2).length === 30).length
    // Newcomers join; replication brings them the whole set without the writer.
    for (let i = 0; i < 20; i++) await t.join()
    await t.nodes[1].stop()
    await t.advance(40 * MINUTE, 60_000)
    const full = t.nodes.filter(n => n.store.values(key, 2).length === 30)
    assert.ok(before >= 3)
    assert.ok(full.length >= 4, `${full.length} nodes hold the whole set after replication`)
    const got = await t.nodes[t.nodes.length - 1].getValues(key)
    assert.equal(got.values.length, 30)
    await t.stop()
  })

  it('encodes and decodes every new frame, and refuses a VALUES frame whose values belong to another key', () => {
    const rng = new SeededRng('frames')
    const w = makeIdentity(rng)
    const key = rng.bytes(32)
    const v = signValue(w, { namespace: 'mailbox', kindCode: 3, key, id: text('frag-1'), seq: 7, ttlMs: DAY, value: text('payload') })
    const token = rng.bytes(32)
    const pm = decodeRequest(encodeRequest({ type: 'put-many', addrs: ['a'], token, key, kind: 3, items: [{ remainingMs: 5, record: v }] }))
    assert.equal(pm.type, 'put-many')
    if (pm.type === 'put-many') assert.equal(new TextDecoder().decode(pm.items[0].record.value), 'payload')
    const wq = decodeRequest(encodeRequest({ type: 'watch', addrs: [], key, kind: 1, leaseMs: 60_000, cancel: true }))
    assert.deepEqual(wq.type === 'watch' ? [wq.kind, wq.leaseMs, wq.cancel] : [], [1, 60_000, true])
    const vr = encodeResponse({ type: 'values', token, contacts: [], kind: 3, total: 1, next: 0, digest: new Uint8Array(32), records: [v] })
    const back = decodeResponse(vr, {}, key)
    assert.equal(back.type === 'values' ? back.records[0].seq : -1, 7)
    assert.throws(() => decodeResponse(vr), (e: unknown) => e instanceof OhtError && e.code === 'OHT_BAD_FRAME')
    const sm = decodeResponse(encodeResponse({ type: 'stored-many', results: [{ grantedMs: 9 }, { code: 'OHT_QUOTA' }] }))
    assert.deepEqual(sm.type === 'stored-many' ? sm.results : [], [{ grantedMs: 9 }, { code: 'OHT_QUOTA' }])
  })
})
