/**
 * PeerNet over real onion services on a private Tor network (one network for the file, 3 tor
 * clients): the shared compliance suite with each endpoint a libp2p node in onion-only mode,
 * reachable only at its own onion address; then two onion-only overlay nodes, where PeerNet
 * rides the connection the DHT opened while joining (no second rendezvous).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { systemClock } from '../../src/core/index.ts'
import {
  createLibp2pPeerNet, createNetNode, createOverlayNode, ed25519FromPeerId, torConnector, torPublisher,
  type Libp2pPeerNet, type NetLibp2p, type OverlayNode
} from '../../src/net/index.ts'
import type { PeerContact } from '../../src/oht/index.ts'
import type { TorControl } from '../../src/tor/index.ts'
import { peerNetSuite } from '../helpers/peer-net-suite.ts'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'

let tn: Testnet
const controls: TorControl[] = []
let clientTurn = 0

before(async () => { tn = await testnet({ clients: 3 }) })
after(async () => {
  await Promise.allSettled(controls.map(async c => { await c.close() }))
  await tn?.stop()
})

async function control (client: number): Promise<TorControl> {
  const c = await tn.clients[client].control()
  controls.push(c)
  return c
}

interface Endpoint { node: NetLibp2p, peers: Libp2pPeerNet, contact: PeerContact }

/** A libp2p node listening only on its own onion service, with a PeerNet. */
async function onionEndpoint (): Promise<Endpoint> {
  const client = clientTurn++ % tn.clients.length
  const seed = new Uint8Array(randomBytes(32))
  const node = await createNetNode({
    seed,
    onionOnly: true,
    onion: { connect: torConnector({ socksPort: tn.clients[client].socksPort }), publish: torPublisher({ control: await control(client), seed }) }
  })
  const peers = createLibp2pPeerNet({ onionOnly: true, identifyWaitMs: 10_000 }, { libp2p: node, clock: systemClock })
  await peers.start()
  const contact = { publicKey: ed25519FromPeerId(node.peerId) as Uint8Array, addrs: node.getMultiaddrs().map(a => a.decapsulateCode(421).toString()) }
  assert.ok(contact.addrs.length > 0 && contact.addrs.every(a => a.startsWith('/onion3/')), `onion addresses only: ${contact.addrs.join(' ')}`)
  return { node, peers, contact }
}

async function stop (e: Endpoint): Promise<void> {
  await e.peers.stop()
  await e.node.stop()
}

peerNetSuite('libp2p over onion services (private Tor network)', async () => {
  const made: Endpoint[] = []
  return {
    endpoint: async () => { const e = await onionEndpoint(); made.push(e); return { net: e.peers, contact: e.contact } },
    run: async (f) => await f(),
    sleep: async (ms) => { await systemClock.sleep(ms) },
    unreachable: async () => { const e = await onionEndpoint(); await stop(e); return e.contact },
    // a removed onion service: tor reports it gone, or the deadline passes first
    unreachableCodes: ['OHT_PEER_UNREACHABLE', 'CORE_TIMEOUT'],
    close: async () => { await Promise.allSettled(made.map(stop)) }
  }
}, { timeoutMs: 120_000, stallMs: 3_000 })

describe('PeerNet on onion-only overlay nodes', { timeout: 300_000 }, () => {
  const nodes: OverlayNode[] = []

  async function overlay (client: number, bootstrap: string[]): Promise<OverlayNode> {
    const seed = new Uint8Array(randomBytes(32))
    const n = await createOverlayNode({
      seed,
      onionOnly: true,
      onion: { connect: torConnector({ socksPort: tn.clients[client].socksPort }), publish: torPublisher({ control: await control(client), seed }) },
      bootstrap,
      oht: { requestTimeout: { initialMs: 20_000, minMs: 2_000, maxMs: 45_000 } }
    })
    nodes.push(n)
    return n
  }

  after(async () => { await Promise.allSettled(nodes.map(async n => { await n.stop() })) })

  it('a request and a stream after joining ride the DHT\'s onion connection: no new dial', async () => {
    const a = await overlay(0, [])
    const b = await overlay(1, a.multiaddrs)
    assert.equal(b.joined.via, 'bootstrap')
    a.peers.handle('/it/whoami/1', async (from) => from.publicKey)
    a.peers.handleStream('/it/count/1', async (s) => {
      let n = 0
      for await (const _m of s) n++
      await s.send(Uint8Array.of(n))
      await s.close()
    })
    const dialsBefore = b.net.stats.dials + b.peers.stats.dials
    const whoami = await b.peers.request(a.contact, '/it/whoami/1', new Uint8Array(0), { timeoutMs: 60_000 })
    assert.deepEqual(Buffer.from(whoami), Buffer.from(b.contact.publicKey), 'the handler saw the key b proved over the onion connection')
    const s = await b.peers.openStream(a.contact, '/it/count/1', { timeoutMs: 60_000 })
    for (let i = 0; i < 50; i++) await s.send(new Uint8Array(1000))
    await s.close()
    const replies: number[] = []
    for await (const m of s) replies.push(m[0])
    assert.deepEqual(replies, [50])
    assert.equal(b.net.stats.dials + b.peers.stats.dials, dialsBefore, 'no new rendezvous')
    assert.equal(b.libp2p.getConnections(a.libp2p.peerId).length, 1)
  })
})
