/**
 * 20 OHT nodes on libp2p over TCP on 127.0.0.1: records put at one node are found from the
 * others, mutable records update, and a restarted node rejoins from its saved routing table
 * without any bootstrap address.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createOverlayNode } from '../../src/net/index.ts'
import { overlayTestnet, type OverlayTestnet } from '../helpers/net-overlay.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array | undefined): string | undefined => b === undefined ? undefined : new TextDecoder().decode(b)

describe('OHT over libp2p TCP, 20 nodes on loopback', { timeout: 180_000 }, () => {
  let net: OverlayTestnet

  before(async () => { net = await overlayTestnet({ size: 20 }) })
  after(async () => { await net?.stop() })

  it('every node joins and knows most of the network', () => {
    for (const [i, n] of net.nodes.entries()) {
      if (i > 0) assert.equal(n.joined.via, 'bootstrap')
      assert.ok(n.oht.routingTable.size >= 10, `node ${i} knows ${n.oht.routingTable.size} peers`)
      assert.ok(n.multiaddrs.every(a => a.startsWith('/ip4/127.0.0.1/tcp/')), 'loopback only')
    }
  })

  it('an immutable record put at one node is found from every other node', async () => {
    const value = new Uint8Array(randomBytes(2000))
    const put = await net.nodes[3].oht.putImmutable(value)
    assert.ok(put.stored >= 15, `stored at ${put.stored} of ${put.attempted}`)
    for (const [i, n] of net.nodes.entries()) {
      if (i === 3) continue
      const got = await n.oht.get(put.key)
      assert.ok(got, `node ${i} found the record`)
      assert.deepEqual(got.value, value)
    }
  })

  it('a mutable record updated at its writer is read back with the new seq elsewhere', async () => {
    const salt = text('profile')
    const v1 = await net.nodes[5].oht.putMutable({ salt, value: text('v1') })
    assert.ok(v1.stored >= 15)
    assert.equal(str((await net.nodes[12].oht.get(v1.key))?.value), 'v1')
    const v2 = await net.nodes[5].oht.putMutable({ salt, value: text('v2') })
    assert.ok((v2.seq ?? 0) > (v1.seq ?? 0), 'seq increases')
    assert.deepEqual(v2.key, v1.key)
    for (const i of [0, 9, 12, 19]) {
      const got = await net.nodes[i].oht.get(v2.key)
      assert.equal(str(got?.value), 'v2', `node ${i} sees v2`)
      assert.equal(got?.seq, v2.seq)
    }
  })

  it('RPCs reuse connections: once peers have met, lookups dial almost never', async () => {
    const totals = (): { dials: number, requests: number } => {
      let dials = 0; let requests = 0
      for (const n of net.nodes) { dials += n.net.stats.dials; requests += n.net.stats.requestsOut }
      return { dials, requests }
    }
    // Joining and the records above introduced the peers to each other: the dials happened then.
    const before = totals()
    for (let i = 0; i < 40; i++) await net.nodes[i % net.nodes.length].oht.findClosest(randomBytes(32))
    const after = totals()
    const requests = after.requests - before.requests
    const dials = after.dials - before.dials
    assert.ok(requests >= 100, `only ${requests} requests in 40 lookups`)
    assert.ok(dials * 5 < requests, `${dials} dials for ${requests} requests: connections are not reused`)
  })

  it('a restarted node rejoins from its saved routing table, with no bootstrap address', async () => {
    const i = 7
    const old = net.nodes[i]
    const knew = old.oht.routingTable.size
    await old.stop()
    const saved = JSON.parse(await readFile(net.tablePath(i), 'utf8')) as { contacts: unknown[] }
    assert.equal(saved.contacts.length, knew, 'every routing-table contact was saved')
    const reborn = await createOverlayNode({ seed: net.seeds[i], tablePath: net.tablePath(i), bootstrap: [] })
    net.nodes[i] = reborn
    assert.equal(reborn.joined.via, 'saved-table')
    assert.ok(reborn.joined.peers >= 10, `rejoined with ${reborn.joined.peers} peers`)
    assert.deepEqual(reborn.contact.publicKey, old.contact.publicKey, 'same identity')
    const value = text('after restart')
    const put = await net.nodes[1].oht.putImmutable(value)
    assert.equal(str((await reborn.oht.get(put.key))?.value), 'after restart')
  })
})
