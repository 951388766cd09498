/**
 * A writer never loses its own records: with a journal, a restarted node serves what it wrote
 * even with no peers, republishes it once it has peers, and never reuses a mutable seq.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { createMemoryJournal, createOhtNode, mutableKey, type OhtNode } from '../../src/oht/index.ts'
import { makeIdentity, MemoryBus, testnet } from './oht-helpers.ts'

const HOUR = 3_600_000
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('own-record journal', () => {
  it('a node restarted with no peers serves its own records and continues its seq above the last', async () => {
    const clock = new FakeClock()
    const bus = new MemoryBus(clock)
    const rng = new SeededRng('journal')
    const identity = makeIdentity(rng)
    const journal = createMemoryJournal()
    const make = (): OhtNode => createOhtNode({ addrs: ['mem:w'] }, { identity, net: bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:w'] }), clock, rng: rng.fork('w'), journal })
    const first = make()
    await first.start()
    for (let i = 0; i < 3; i++) await first.putMutable({ salt: text('motd'), value: text(`v${i}`), ttlMs: 10 * HOUR })
    const imm = await first.putImmutable(text('hello'), { ttlMs: 10 * HOUR })
    await first.stop() // wipes the store and forgets everything in memory

    const second = make()
    await second.start()
    const key = mutableKey(identity.publicKey, text('motd'))
    const got = await second.get(key)
    assert.equal(got?.seq, 2)
    assert.equal(new TextDecoder().decode(got?.value), 'v2')
    assert.equal(new TextDecoder().decode((await second.get(imm.key))?.value), 'hello')
    const next = await second.putMutable({ salt: text('motd'), value: text('v3') })
    assert.equal(next.seq, 3, 'the seq continues above the last one written before the restart')
    await second.stop()
  })

  it('keeps a mutable seq after the record expired, so the next write still goes above it', async () => {
    const clock = new FakeClock()
    const bus = new MemoryBus(clock)
    const rng = new SeededRng('journal-expire')
    const identity = makeIdentity(rng)
    const journal = createMemoryJournal()
    const node = createOhtNode({ addrs: ['mem:w'], maintenanceIntervalMs: 60_000 }, { identity, net: bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:w'] }), clock, rng: rng.fork('w'), journal })
    await node.start()
    await node.putMutable({ salt: text('s'), value: text('a'), seq: 41, ttlMs: 2 * 60_000 })
    await clock.advance(10 * 60_000)
    await node.stop()
    const e = journal.entries()
    assert.equal(e.length, 1)
    assert.equal(e[0].record, undefined, 'the expired value is dropped from the journal')
    assert.equal(e[0].seq, 41)
    const again = createOhtNode({ addrs: ['mem:w'] }, { identity, net: bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:w'] }), clock, rng: rng.fork('w2'), journal })
    await again.start()
    assert.equal(await again.get(mutableKey(identity.publicKey, text('s'))), undefined)
    assert.equal((await again.putMutable({ salt: text('s'), value: text('b') })).seq, 42)
    await again.stop()
  })

  it('republishes the journal to the network once the restarted node has peers', async () => {
    const t = await testnet({ size: 12, seed: 'journal-net', init: { k: 4 } })
    const rng = new SeededRng('journal-writer')
    const identity = makeIdentity(rng)
    const journal = createMemoryJournal()
    const make = (): OhtNode => createOhtNode({ addrs: ['mem:writer'], k: 4 }, { identity, net: t.bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:writer'] }), clock: t.clock, rng: rng.fork('w'), journal })
    const w1 = make()
    await w1.start()
    // Written while alone: only the journal and the local store have it.
    const put = await w1.putImmutable(text('written offline'), { ttlMs: 10 * HOUR })
    assert.equal(put.stored, 1)
    await w1.stop()
    const w2 = make()
    await w2.start()
    await w2.bootstrap([t.nodes[0].contact])
    await t.advance(5_000)
    const holders = t.nodes.filter(n => n.store.get(put.key) !== undefined).length
    assert.ok(holders >= 3, `republished to ${holders} peers after bootstrap`)
    const reader = t.nodes[7]
    assert.equal(new TextDecoder().decode((await reader.get(put.key))?.value), 'written offline')
    await w2.stop()
    await t.stop()
  })
})
