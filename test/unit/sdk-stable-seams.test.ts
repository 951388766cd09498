/**
 * The SDK node's seams for upper layers stay the same objects for the node's life: `dht` is
 * the engine's interface (here over the local transport, records of every kind), `peers` keeps
 * its handlers, and a node with no network says so with a typed error instead of hanging.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { OhtError } from '../../src/oht/index.ts'
import { createNode } from '../../src/sdk/index.ts'

describe('SDK stable seams', () => {
  it('local: dht serves every record kind; peers refuses with OHT_PEER_UNREACHABLE; both end with the node', async () => {
    const node = await createNode({ transport: 'local' })
    const key = new SeededRng('k').bytes(32)
    await node.dht.putValue(key, { kind: 'mailbox', id: new Uint8Array([1]), value: new TextEncoder().encode('m') })
    const got = await node.dht.getValues(key, { kind: 'mailbox' })
    assert.equal(got.values.length, 1)
    node.peers.handle('/t/1', async (_f, b) => b)
    await assert.rejects(node.peers.request(node.contact, '/t/1', new Uint8Array(1)), (e: unknown) => e instanceof OhtError && e.code === 'OHT_PEER_UNREACHABLE')
    assert.throws(() => node.peers.handle('/t/1', async (_f, b) => b), /already has a handler/)
    const events: string[] = []
    const stop = new AbortController()
    const watching = (async () => { for await (const e of node.dht.watch(key, { kind: 'mailbox', signal: stop.signal })) events.push(e.type) })()
    await new Promise(resolve => setTimeout(resolve, 50))
    await node.stop()
    await watching // the watch ends with the node, it does not hang
    assert.ok(events.includes('record'), 'the catch-up delivered the stored value')
    assert.throws(() => node.dht.watch(key), /stopped/)
  })

  it('tcp: handlers installed on the stable PeerNet answer peers', async () => {
    const a = await createNode({ transport: 'tcp' })
    const b = await createNode({ transport: 'tcp', bootstrap: a.multiaddrs })
    try {
      a.peers.handle('/echo/1', async (_from, body) => body)
      const r = await b.peers.request(a.contact, '/echo/1', new TextEncoder().encode('ping'), { timeoutMs: 10_000 })
      assert.equal(new TextDecoder().decode(r), 'ping')
      const put = await b.dht.putImmutable(new TextEncoder().encode('x'))
      assert.equal(new TextDecoder().decode((await a.dht.get(put.key))?.value), 'x')
    } finally {
      await b.stop(); await a.stop()
    }
  })
})
