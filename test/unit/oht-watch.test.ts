/**
 * Watch: holders push new writes to watchers one one-way trip after storing them; a watcher
 * resubscribes when its holders leave and catches up on what it missed; limits hold.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MINUTE, SeededRng } from '../../src/core/index.ts'
import { mutableKey, OhtError, type OhtNode, type WatchEvent } from '../../src/oht/index.ts'
import { errorCode, makeIdentity, singleNode, testnet } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)

/** Collects a watch's events in the background until `stop` aborts. */
function collect (node: OhtNode, key: Uint8Array, kind?: string): { events: WatchEvent[], values: () => string[], stop: AbortController } {
  const stop = new AbortController()
  const events: WatchEvent[] = []
  void (async () => {
    for await (const e of node.watch(key, { kind, signal: stop.signal })) events.push(e)
  })()
  return {
    events,
    stop,
    values: () => events.flatMap(e => e.type === 'record' && e.record.kind !== 'immutable' ? [str(e.record.value)] : [])
  }
}

describe('watch', () => {
  it('delivers a new record to 3 watchers one one-way trip after a holder stored it', async () => {
    const t = await testnet({ size: 16, seed: 'watch', init: { k: 5 } })
    const writer = t.nodes[3]
    const key = mutableKey(writer.contact.publicKey, text('status'))
    await writer.putMutable({ salt: text('status'), value: text('v0') })
    const watchers = [t.nodes[7], t.nodes[11], t.nodes[14]].map(n => collect(n, key))
    await t.advance(2_000, 100)
    for (const w of watchers) {
      assert.deepEqual(w.values(), ['v0'], 'catch-up delivered what was there')
      assert.ok(w.events.some(e => e.type === 'holders' && e.count >= 1))
    }
    t.bus.latencyMs = 100
    const put = writer.putMutable({ salt: text('status'), value: text('v1') })
    await t.advance(5_000, 50)
    await put
    // Each watcher saw the write exactly once, pushed by a holder (not found by polling).
    for (const w of watchers) {
      assert.deepEqual(w.values(), ['v0', 'v1'])
      const last = w.events.filter(e => e.type === 'record').at(-1)
      assert.equal(last?.type === 'record' ? last.via : '', 'notify')
    }
    const received = t.nodes.reduce((s, n) => s + n.stats.notificationsReceived, 0)
    assert.ok(received >= 3)
    for (const w of watchers) w.stop.abort()
    await t.stop()
  })

  it('the push arrives within one one-way trip of the store at the holder', async () => {
    const { node: holder, peer, clock, bus } = await singleNode({}, 'watch-latency')
    // A node (not a raw peer) watches through the holder; the bus adds 200 ms to every request.
    const watcherId = makeIdentity(new SeededRng('watcher'))
    const { createOhtNode } = await import('../../src/oht/index.ts')
    const watcher = createOhtNode({ addrs: ['mem:watcher'] }, { identity: watcherId, net: bus.endpoint({ publicKey: watcherId.publicKey, addrs: ['mem:watcher'] }), clock, rng: new SeededRng('w') })
    await watcher.start()
    await watcher.bootstrap([holder.contact])
    const writer = makeIdentity(new SeededRng('writer'))
    const key = mutableKey(writer.publicKey, text('k'))
    const w = collect(watcher, key)
    for (let i = 0; i < 20; i++) { await new Promise(resolve => setImmediate(resolve)); await clock.advance(10) }
    const token = await peer.token(holder.contact, key)
    bus.latencyMs = 200
    const { signMutable } = await import('../../src/oht/index.ts')
    const storedAt = clock.now()
    const pending = peer.put(holder.contact, signMutable(writer, { salt: text('k'), seq: 1, ttlMs: 60 * MINUTE, value: text('hello') }), { token })
    let seenAt = -1
    for (let i = 0; i < 100 && seenAt < 0; i++) {
      await new Promise(resolve => setImmediate(resolve))
      if (w.values().includes('hello')) seenAt = clock.now()
      else await clock.advance(10)
    }
    assert.equal(errorCode(await pending), 'stored')
    // The PUT took one trip to reach the holder (200 ms), the push one more.
    assert.ok(seenAt >= 0, 'the write arrived')
    assert.ok(seenAt - storedAt <= 2 * 200 + 20, `arrived ${seenAt - storedAt} ms after the writer sent it`)
    w.stop.abort()
    await watcher.stop()
    await holder.stop()
  })

  it('resubscribes when its holders leave, and catches up on what it missed meanwhile', async () => {
    const t = await testnet({ size: 20, seed: 'watch-churn', init: { k: 4, watch: { leaseMs: 2 * MINUTE, holders: 2 } } })
    const writer = t.nodes[2]
    const key = mutableKey(writer.contact.publicKey, text('feed'))
    await writer.putMutable({ salt: text('feed'), value: text('a') })
    const w = collect(t.nodes[17], key)
    await t.advance(2_000, 100)
    assert.deepEqual(w.values(), ['a'])
    // Every node that took the watch goes away.
    const holders = t.nodes.filter(n => n !== writer && n !== t.nodes[17] && n.store.get(key) !== undefined)
    for (const h of holders) await h.stop()
    // Written while the watcher has nobody to hear it from.
    await writer.putMutable({ salt: text('feed'), value: text('b') })
    await writer.putMutable({ salt: text('feed'), value: text('c') })
    await t.advance(3 * MINUTE, 1_000)
    // The renewal failed, the watch looked the key up again and caught up: the newest write
    // ('c', which supersedes 'b') arrived, and later writes are pushed again.
    assert.equal(w.values().at(-1), 'c')
    await writer.putMutable({ salt: text('feed'), value: text('d') })
    await t.advance(2_000, 100)
    assert.equal(w.values().at(-1), 'd')
    const last = w.events.filter(e => e.type === 'record').at(-1)
    assert.equal(last?.type === 'record' ? last.via : '', 'notify')
    w.stop.abort()
    await t.stop()
  })

  it('watches a value set: every new value once, deletes too', async () => {
    const t = await testnet({ size: 12, seed: 'watch-values', init: { k: 4 } })
    const key = new SeededRng('inbox').bytes(32)
    const w = collect(t.nodes[9], key, 'mailbox')
    await t.advance(2_000, 100)
    await t.nodes[1].putValue(key, { kind: 'mailbox', id: text('m1'), value: text('hello') })
    await t.nodes[2].putValue(key, { kind: 'mailbox', id: text('m2'), value: text('there') })
    await t.advance(2_000, 100)
    assert.deepEqual(w.values().sort(), ['hello', 'there'])
    await t.nodes[1].deleteValue(key, { kind: 'mailbox', id: text('m1') })
    await t.advance(2_000, 100)
    assert.ok(w.events.some(e => e.type === 'record' && e.record.kind === 'value' && e.record.deleted))
    w.stop.abort()
    await t.stop()
  })

  it('bounds watchers per key at a holder, and a cancelled watch is dropped there', async () => {
    const { node, peer, other } = await singleNode({ watch: { watchersPerKey: 1 } }, 'watch-limits')
    const key = new SeededRng('k').bytes(32)
    const res = await peer.send(node.contact, { type: 'watch', addrs: ['mem:peer'], key, kind: 1, leaseMs: 60_000, cancel: false })
    assert.equal(res.type, 'watching')
    assert.equal(errorCode(await other.send(node.contact, { type: 'watch', addrs: ['mem:other'], key, kind: 1, leaseMs: 60_000, cancel: false })), 'OHT_WATCH_LIMIT')
    await peer.send(node.contact, { type: 'watch', addrs: ['mem:peer'], key, kind: 1, leaseMs: 60_000, cancel: true })
    assert.equal(errorCode(await other.send(node.contact, { type: 'watch', addrs: ['mem:other'], key, kind: 1, leaseMs: 60_000, cancel: false })), 'watching')
    assert.equal(errorCode(await other.send(node.contact, { type: 'watch', addrs: ['mem:other'], key, kind: 77, leaseMs: 60_000, cancel: false })), 'OHT_UNKNOWN_KIND')
    // A NOTIFY for a key nobody here watches is refused, so the holder stops sending.
    const { signMutable } = await import('../../src/oht/index.ts')
    const w = makeIdentity(new SeededRng('x'))
    const rec = signMutable(w, { salt: text('s'), seq: 1, ttlMs: MINUTE, value: text('x') })
    assert.equal(errorCode(await peer.send(node.contact, { type: 'notify', addrs: [], key: mutableKey(w.publicKey, text('s')), record: rec })), 'OHT_NOT_WATCHING')
    assert.throws(() => node.watch(key, { kind: 'nope' }), (e: unknown) => e instanceof OhtError && e.code === 'OHT_UNKNOWN_KIND')
    await node.stop()
  })
})
