import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { compareDistance, type LookupEvent } from '../../src/oht/index.ts'
import { testnet, type Testnet } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('a 30-node in-memory network', () => {
  let t: Testnet
  before(async () => { t = await testnet({ size: 30, seed: 'net-30' }) })
  after(async () => { await t.stop() })

  it('fills every routing table through bootstrap', () => {
    for (const n of t.nodes) assert.ok(n.routingTable.size >= 20, `node has only ${n.routingTable.size} contacts`)
  })

  it('put/get of an immutable record reaches k nodes and reads back from any node', async () => {
    const put = await t.nodes[3].putImmutable(text('hello onion'))
    assert.ok(put.stored >= 20, `stored on ${put.stored} nodes`)
    assert.deepEqual(put.errors, [])
    for (const i of [0, 17, 29]) {
      const got = await t.nodes[i].get(put.key)
      assert.ok(got !== undefined, `node ${i} found nothing`)
      assert.equal(str(got.value), 'hello onion')
    }
  })

  it('mutable records: the highest seq wins and default seq follows the highest seen', async () => {
    const a = await t.nodes[5].putMutable({ salt: text('profile'), value: text('v1') })
    const b = await t.nodes[5].putMutable({ salt: text('profile'), value: text('v2') })
    assert.equal(a.seq, 0)
    assert.equal(b.seq, 1)
    assert.ok(b.stored >= 20)
    const got = await t.nodes[22].get(b.key)
    assert.equal(got?.seq, 1)
    assert.equal(str(got?.value ?? new Uint8Array()), 'v2')
    assert.ok((got?.responses ?? 0) >= 10)
  })

  it('a lookup finds the true k closest nodes to a random target', async () => {
    const target = new Uint8Array(32).fill(0x5a)
    const truth = t.nodes.filter(n => n !== t.nodes[8]).map(n => n.id).sort((x, y) => compareDistance(x, y, target)).slice(0, 20)
    const events: LookupEvent[] = []
    for await (const e of t.nodes[8].lookup(target)) events.push(e)
    const last = events.at(-1)
    assert.equal(last?.type, 'final-peers')
    const found = last.type === 'final-peers' ? last.peers : []
    const idsFound = found.map(c => t.nodes.find(n => n.contact.publicKey === c.publicKey || Buffer.compare(n.contact.publicKey, c.publicKey) === 0)?.id)
    assert.deepEqual(idsFound.map(x => Buffer.from(x ?? []).toString('hex')), truth.map(x => Buffer.from(x).toString('hex')))
    assert.ok(events.some(e => e.type === 'query') && events.some(e => e.type === 'peer-response'))
  })

  it('findClosest with disjoint paths also returns the k closest', async () => {
    const target = new Uint8Array(32).fill(0xa5)
    const truth = t.nodes.filter(n => n !== t.nodes[9]).map(n => Buffer.from(n.id).toString('hex'))
      .sort((x, y) => compareDistance(Buffer.from(x, 'hex'), Buffer.from(y, 'hex'), target)).slice(0, 20)
    const events: LookupEvent[] = []
    for await (const e of t.nodes[9].lookup(target, { disjointPaths: 3 })) events.push(e)
    const paths = new Set(events.filter(e => e.type === 'query').map(e => e.type === 'query' ? e.path : -1))
    assert.deepEqual([...paths].sort(), [0, 1, 2])
    const last = events.at(-1)
    assert.ok(last?.type === 'final-peers')
    const found = last.peers.map(c => Buffer.from(t.nodes.find(n => Buffer.compare(n.contact.publicKey, c.publicKey) === 0)?.id ?? []).toString('hex'))
    assert.deepEqual(found, truth)
  })
})
