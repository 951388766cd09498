import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, SECOND } from '../../src/core/index.ts'
import { compareDistance, decodeResponse, encodeRequest } from '../../src/oht/index.ts'
import { testnet } from './oht-helpers.ts'

describe('unresponsive peers', () => {
  it('a lookup completes past silent peers after their timeouts and returns only live peers, the closest first', async () => {
    const t = await testnet({ size: 24, seed: 'silent', init: { requestTimeout: { initialMs: 2 * SECOND, minMs: 500, maxMs: 5 * SECOND } } })
    const silent = t.nodes.slice(10, 16)
    for (const n of silent) t.bus.silent.add(n.contact.addrs[0])
    const target = new Uint8Array(32).fill(0x33)
    const asker = t.nodes[2]
    const live = t.nodes.filter(n => n !== asker && !silent.includes(n)).map(n => n.id).sort((a, b) => compareDistance(a, b, target)).slice(0, 20)
    let done = false
    const p = asker.findClosest(target).then((r) => { done = true; return r })
    await t.advance(30 * SECOND, 500)
    assert.ok(done, 'lookup did not finish')
    const found = (await p).map(c => Buffer.from(t.nodes.find(n => Buffer.compare(n.contact.publicKey, c.publicKey) === 0)?.id ?? []).toString('hex'))
    const hex = live.map(id => Buffer.from(id).toString('hex'))
    // Kademlia's guarantee: peers are ranked by what the k closest answers reveal, so with s
    // silent peers among them the first k - s live ones are exact.
    assert.deepEqual(found.slice(0, 20 - silent.length), hex.slice(0, 20 - silent.length))
    for (const id of found) assert.ok(hex.includes(id), 'a silent peer was returned')
    assert.ok(asker.stats.timeouts >= 1)
    await t.stop()
  })

  it('peers that keep failing leave the routing table; peers that answer stay', async () => {
    const t = await testnet({ size: 12, seed: 'evict', init: { maxFailures: 2, requestTimeout: { initialMs: SECOND, minMs: 100, maxMs: 2 * SECOND } } })
    const dead = t.nodes[7]
    const asker = t.nodes[1]
    assert.ok(asker.routingTable.has(dead.id))
    t.bus.silent.add(dead.contact.addrs[0])
    for (let i = 0; i < 3; i++) {
      const p = asker.findClosest(dead.id)
      await t.advance(10 * SECOND, 250)
      await p
    }
    assert.equal(asker.routingTable.has(dead.id), false, 'dead peer evicted')
    assert.ok(asker.routingTable.has(t.nodes[3].id), 'live peers kept')
    await t.stop()
  })

  it('bootstrap with no reachable peer fails with OHT_NO_PEERS; aborting a lookup rejects it', async () => {
    const t = await testnet({ size: 3, seed: 'boot', bootstrap: false })
    await assert.rejects(t.nodes[0].bootstrap([{ publicKey: new Uint8Array(32).fill(1), addrs: ['mem:nowhere'] }]), (e) => isCodedError(e, 'OHT_NO_PEERS'))
    assert.deepEqual(await t.nodes[0].bootstrap([]), { peers: 0 })
    await t.nodes[1].bootstrap([t.nodes[0].contact])
    t.bus.silent.add(t.nodes[0].contact.addrs[0])
    const ac = new AbortController()
    const p = t.nodes[1].findClosest(new Uint8Array(32), { signal: ac.signal })
    ac.abort()
    await assert.rejects(p, (e) => isCodedError(e, 'CORE_ABORTED'))
    await t.stop()
  })

  it('a stopped node refuses API calls with OHT_NOT_STARTED and answers requests with an error frame', async () => {
    const t = await testnet({ size: 3, seed: 'stopped' })
    await t.nodes[2].stop()
    await assert.rejects(t.nodes[2].get(new Uint8Array(32)), (e) => isCodedError(e, 'OHT_NOT_STARTED'))
    await assert.rejects(t.nodes[2].putImmutable(new Uint8Array(3)), (e) => isCodedError(e, 'OHT_NOT_STARTED'))
    const res = await t.bus.endpoint(t.nodes[0].contact).request(t.nodes[2].contact, encodeRequest({ type: 'ping', addrs: [] }))
    const decoded = decodeResponse(res)
    assert.equal(decoded.type === 'error' ? decoded.code : decoded.type, 'OHT_NOT_STARTED')
    await t.stop()
  })
})
