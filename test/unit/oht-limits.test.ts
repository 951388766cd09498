import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FakeClock, HOUR } from '../../src/core/index.ts'
import { createRateLimiter, recordCost } from '../../src/oht/index.ts'
import { errorCode, singleNode } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('per-peer limits', () => {
  it('token bucket: a burst, then the sustained rate, per peer', async () => {
    const clock = new FakeClock()
    const rl = createRateLimiter(clock, { ratePerSecond: 10, burst: 5 })
    let ok = 0
    for (let i = 0; i < 20; i++) if (rl.take('a')) ok++
    assert.equal(ok, 5)
    assert.equal(rl.take('b'), true, 'another peer has its own bucket')
    await clock.advance(1000)
    ok = 0
    for (let i = 0; i < 20; i++) if (rl.take('a')) ok++
    assert.equal(ok, 5, 'refilled to the burst size, not beyond')
    await clock.advance(300)
    ok = 0
    for (let i = 0; i < 20; i++) if (rl.take('a')) ok++
    assert.equal(ok, 3)
  })

  it('a peer over its request rate gets OHT_RATE_LIMITED; others are unaffected', async () => {
    const { node, peer, other, clock } = await singleNode({ limits: { requestsPerSecondPerPeer: 10, burst: 20 } })
    const codes: string[] = []
    for (let i = 0; i < 30; i++) codes.push(errorCode(await peer.send(node.contact, { type: 'ping', addrs: [] })))
    assert.equal(codes.filter(c => c === 'pong').length, 20)
    assert.equal(codes.filter(c => c === 'OHT_RATE_LIMITED').length, 10)
    assert.equal(errorCode(await other.send(node.contact, { type: 'ping', addrs: [] })), 'pong')
    await clock.advance(1000)
    assert.equal(errorCode(await peer.send(node.contact, { type: 'ping', addrs: [] })), 'pong')
    assert.equal(node.stats.rateLimited, 10)
    await node.stop()
  })

  it('a peer over its record or byte quota gets OHT_QUOTA; others can still store', async () => {
    // Bytes are counted as what a record costs to keep (recordCost), not only its value:
    // this quota holds exactly one 1,000-byte immutable record (1 + 8 + 4 bytes of framing).
    const { node, peer, other } = await singleNode({ limits: { maxRecordsPerPeer: 3, maxBytesPerPeer: recordCost(13 + 1000) } })
    for (let i = 0; i < 3; i++) assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text(`r${i}`) })), 'stored')
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('r3') })), 'OHT_QUOTA')
    assert.equal(errorCode(await other.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: new Uint8Array(1000).fill(7) })), 'stored')
    assert.equal(errorCode(await other.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: new Uint8Array(1).fill(8) })), 'OHT_QUOTA', 'byte quota')
    assert.equal(node.store.usage(Buffer.from(node.routingTable.contacts().find(e => Buffer.compare(e.contact.publicKey, peer.identity.publicKey) === 0)?.id ?? []).toString('hex')).records, 3)
    await node.stop()
  })

  it('the whole store has a ceiling too', async () => {
    const { node, peer, other } = await singleNode({ limits: { maxStoreRecords: 2 } })
    assert.equal(errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('1') })), 'stored')
    assert.equal(errorCode(await other.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('2') })), 'stored')
    assert.equal(errorCode(await other.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value: text('3') })), 'OHT_QUOTA')
    await node.stop()
  })

  it('the byte limit counts what a record costs to keep, so tiny values cannot fill the heap past it', async () => {
    // 64 KiB of store: a few hundred 8-byte records, not the 8,192 that counting values alone allowed.
    const limit = 64 * 1024
    const { node, peer } = await singleNode({ limits: { maxStoreBytes: limit, maxStoreRecords: 1_000_000, maxRecordsPerPeer: 1_000_000, maxBytesPerPeer: 1 << 30, requestsPerSecondPerPeer: 1e9, burst: 1e9 } })
    let stored = 0
    for (let i = 0; i < 10_000; i++) {
      const value = new Uint8Array(8)
      new DataView(value.buffer).setUint32(0, i)
      if (errorCode(await peer.put(node.contact, { kind: 'immutable', ttlMs: HOUR, value })) !== 'stored') break
      stored++
    }
    assert.equal(stored, Math.floor(limit / recordCost(13 + 8)))
    assert.ok(node.store.bytes <= limit)
    assert.ok(stored < limit / 8 / 10, `${stored} records fit in ${limit} bytes`)
    await node.stop()
  })
})
