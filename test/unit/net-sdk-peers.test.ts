/**
 * The SDK's `node.peers` (PeerNet) over TCP, exactly as README's SDK section shows it, and on
 * the overlay node's own connections: a request after the nodes met over the DHT dials
 * nothing new.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createNode, type OhtSdkNode } from '../../src/index.ts'

describe('createNode(): node.peers', { timeout: 30_000 }, () => {
  const nodes: OhtSdkNode[] = []
  after(async () => { await Promise.allSettled(nodes.map(async n => { await n.stop() })) })

  it('runs the README example: a request with its answer, and an echo stream', async () => {
    const node = await createNode({ transport: 'tcp' })
    nodes.push(node)
    const other = await createNode({ transport: 'tcp', bootstrap: node.multiaddrs })
    nodes.push(other)
    const printed: string[] = []
    const console = { log: (s: string) => { printed.push(s) } }

    // ---- as in README.md (SDK section)
    node.peers.handle('/hello/1', async (from, body) => new TextEncoder().encode(`hello, ${new TextDecoder().decode(body)}`))
    const reply = await other.peers.request(node.contact, '/hello/1', new TextEncoder().encode('bob'), { timeoutMs: 30_000 })

    node.peers.handleStream('/chat/1', async (stream) => {
      for await (const msg of stream) await stream.send(msg) // echo until the peer closes
      await stream.close()
    })
    const chat = await other.peers.openStream(node.contact, '/chat/1')
    await chat.send(new TextEncoder().encode('hi')) // waits while the peer is not reading
    await chat.close()
    for await (const msg of chat) console.log(new TextDecoder().decode(msg))
    // ----

    assert.equal(new TextDecoder().decode(reply), 'hello, bob')
    assert.deepEqual(printed, ['hi'])
    const [a, b] = [other.overlay, node.overlay]
    assert.ok(a !== undefined && b !== undefined)
    assert.equal(a.peers.stats.dials, 0, 'the nodes met while joining: PeerNet reused that connection')
    assert.equal(a.libp2p.getConnections(b.libp2p.peerId).length, 1)
  })
})
