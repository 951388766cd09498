/**
 * Interop: a stock js-libp2p node (libp2p + @libp2p/tcp + noise + yamux + identify + ping,
 * none of our code) connects to an OHT node over TCP, pings it and learns its protocols.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import '../../src/net/polyfill.ts' // Node 20 lacks Promise.withResolvers, which libp2p needs
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { randomBytes } from 'node:crypto'
import { createNode, type OhtSdkNode } from '../../src/index.ts'
import { OHT_KAD_PROTOCOL } from '../../src/net/index.ts'

describe('a stock js-libp2p node and an OHT node', { timeout: 60_000 }, () => {
  let oht: OhtSdkNode
  let stock: Libp2p<{ identify: Identify, ping: Ping }>

  before(async () => {
    oht = await createNode({ transport: 'tcp', seed: new Uint8Array(randomBytes(32)) })
    stock = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() }
    })
  })

  after(async () => {
    await stock?.stop()
    await oht?.stop()
  })

  it('connects over TCP, pings the OHT node and sees its OHT protocol', async () => {
    const addr = multiaddr(oht.multiaddrs[0])
    const rtt = await stock.services.ping.ping(addr, { signal: AbortSignal.timeout(10_000) })
    assert.equal(typeof rtt, 'number')
    const conn = stock.getConnections()[0]
    assert.ok(conn)
    assert.equal(conn.encryption, '/noise')
    const peer = await stock.peerStore.get(conn.remotePeer)
    assert.deepEqual(peer.id.publicKey?.raw, oht.publicKey, 'the PeerId is the OHT identity key')
    // identify runs right after the connection opens; wait for its protocols to land
    for (let i = 0; i < 50 && !(await stock.peerStore.get(conn.remotePeer)).protocols.includes(OHT_KAD_PROTOCOL); i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    assert.ok((await stock.peerStore.get(conn.remotePeer)).protocols.includes(OHT_KAD_PROTOCOL))
  })
})
