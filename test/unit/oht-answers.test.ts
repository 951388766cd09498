import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MINUTE, SeededRng } from '../../src/core/index.ts'
import { decodeResponse, encodeRequest, type OhtNode } from '../../src/oht/index.ts'
import { testnet } from './oht-helpers.ts'

const DAY = 24 * 60 * MINUTE

describe('what NODES answers vouch for', () => {
  it('silent contacts fill an answer only up to silentInAnswers: more for our own neighbourhood than for far targets, all k for a record there', async () => {
    // Upkeep that would refresh contacts is pushed out of the way: only the clock moves.
    const t = await testnet({
      size: 40,
      seed: 'silent-fill',
      init: { k: 8, staleAfterMs: 10 * MINUTE, silentInAnswers: { near: 6, far: 2 }, probeAfterMs: DAY, refreshIntervalMs: DAY, republishIntervalMs: DAY, replicateIntervalMs: DAY }
    })
    const [a, asker] = [t.nodes[3], t.nodes[7]]
    const ask = async (target: Uint8Array, type: 'find-node' | 'get' = 'find-node'): Promise<number> => {
      const frame = encodeRequest(type === 'find-node' ? { type, addrs: asker.contact.addrs, target } : { type, addrs: asker.contact.addrs, key: target, metadataOnly: true })
      const res = decodeResponse(await t.bus.endpoint(asker.contact).request(a.contact, frame))
      assert.equal(res.type, type === 'find-node' ? 'nodes' : 'value')
      return res.type === 'nodes' || res.type === 'value' ? res.contacts.length : -1
    }
    const far = farTarget(a)
    assert.equal(await ask(a.id), 8, 'fresh contacts fill the whole answer')
    assert.equal(await ask(far), 8)
    await t.clock.advance(11 * MINUTE) // every contact but the asker is now silent
    assert.equal(await ask(a.id), 6, 'near: silent contacts up to silentInAnswers.near')
    assert.equal(await ask(far), 2, 'far: silent contacts up to silentInAnswers.far')
    assert.equal(await ask(a.id, 'get'), 8, 'a record near us: all k (writers must find every live holder)')
    assert.equal(await ask(far, 'get'), 2, 'a record far away: as any far target')
    await t.stop()
  })

  it('bootstrap into an empty table needs no separate ping: the self-lookup starts at the given peers and they enter the table', async () => {
    const t = await testnet({ size: 12, seed: 'boot-no-ping' })
    const late = await t.join()
    assert.equal(late.stats.requestsOut.ping, 0)
    assert.ok(late.routingTable.has(t.nodes[0].id), 'the bootstrap peer answered and was added')
    assert.ok(late.routingTable.size >= 8, `learned the network (${late.routingTable.size} contacts)`)
    // Already joined: a given peer is pinged, so it is contacted even if no lookup would ask it.
    const given = t.nodes[5]
    late.routingTable.remove(given.id)
    await late.bootstrap([given.contact])
    assert.equal(late.stats.requestsOut.ping, 1)
    assert.ok(late.routingTable.has(given.id))
    await t.stop()
  })
})

/** An id in `node`'s farthest bucket (first bit flipped), random below. */
function farTarget (node: OhtNode): Uint8Array {
  const id = new SeededRng('far').bytes(32)
  id[0] = (id[0] & 0x7f) | (~node.id[0] & 0x80)
  return id
}
