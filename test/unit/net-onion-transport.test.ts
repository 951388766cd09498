/**
 * onion3 transport specifics, against a SOCKS stand-in: stream isolation by SOCKS username,
 * checksum validation before anything is dialled, and onion-only mode never touching TCP.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { onionAddressFromPublicKey } from '../../src/crypto/index.ts'
import { createNetNode, libp2pKeyFromSeed, listTransports, torConnector, type NetLibp2p } from '../../src/net/index.ts'
import { startFakeTor, type FakeTor } from '../helpers/net-fake-tor.ts'

describe('onion3 transport', { timeout: 20_000 }, () => {
  let tor: FakeTor
  let server: NetLibp2p
  let serverOnion = ''
  const nodes: NetLibp2p[] = []
  let dummy: Server
  let dummyAccepted = 0

  before(async () => {
    tor = await startFakeTor()
    const seed = new Uint8Array(randomBytes(32))
    serverOnion = onionAddressFromPublicKey(libp2pKeyFromSeed(seed).publicKey.raw)
    server = await createNetNode({ seed, onionOnly: true, onion: { connect: torConnector({ socksPort: tor.socksPort, retries: 0 }), publish: tor.publisher(serverOnion) } })
    nodes.push(server)
    dummy = createServer((s) => { dummyAccepted++; s.destroy() })
    await new Promise<void>((resolve) => { dummy.listen(0, '127.0.0.1', resolve) })
  })

  after(async () => {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    await tor.stop()
    await new Promise<void>((resolve) => { dummy.close(() => { resolve() }) })
  })

  async function client (isolation?: 'per-peer' | 'none' | ((t: { address: string }) => string)): Promise<NetLibp2p> {
    const n = await createNetNode({ seed: new Uint8Array(randomBytes(32)), onionOnly: true, onion: { connect: torConnector({ socksPort: tor.socksPort, retries: 0 }), isolation } })
    nodes.push(n)
    return n
  }

  it('publishes the service under the node\'s own onion address and listens only there', () => {
    assert.deepEqual(server.getMultiaddrs().map(a => a.decapsulateCode(421).toString()), [`/onion3/${serverOnion}:4001`])
    assert.ok(tor.services.has(`${serverOnion}:4001`))
    assert.deepEqual(listTransports(server), ['@oht/onion3'])
  })

  it('isolates circuits per peer: the SOCKS username is the target onion address', async () => {
    const c = await client()
    await c.dial(server.getMultiaddrs()[0])
    const last = tor.connects.at(-1)
    assert.equal(last?.host, `${serverOnion}.onion`)
    assert.equal(last?.username, serverOnion)
  })

  it('uses a caller-chosen isolation key when given one', async () => {
    const c = await client((t) => `epoch-7/${t.address}`)
    await c.dial(server.getMultiaddrs()[0])
    assert.equal(tor.connects.at(-1)?.username, `epoch-7/${serverOnion}`)
  })

  it('validates the onion checksum before anything reaches the SOCKS port', async () => {
    const c = await client()
    const before = tor.connects.length
    const i = 30
    const broken = serverOnion.slice(0, i) + (serverOnion[i] === 'a' ? 'b' : 'a') + serverOnion.slice(i + 1)
    await assert.rejects(c.dial(multiaddr(`/onion3/${broken}:4001`)))
    assert.equal(tor.connects.length, before)
  })

  it('in onion-only mode refuses to dial TCP, so a TCP listener is never contacted', async () => {
    const c = await client()
    const port = (dummy.address() as { port: number }).port
    await assert.rejects(c.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`)))
    await assert.rejects(c.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${server.peerId.toString()}`)))
    assert.equal(dummyAccepted, 0)
  })
})

describe('a peer announcing an onion address of another key', { timeout: 20_000 }, () => {
  it('is disconnected after identify and its claimed address is not stored', async () => {
    const stolen = onionAddressFromPublicKey(libp2pKeyFromSeed(new Uint8Array(32).fill(11)).publicKey.raw)
    const id = `${process.pid}-${Date.now()}`
    const liar = await createNetNode({ seed: new Uint8Array(randomBytes(32)), tcp: false, memory: { listen: [`/memory/liar-${id}`] }, announce: [`/memory/liar-${id}`, `/onion3/${stolen}:4001`] })
    const mismatches: string[] = []
    let resolveSeen: () => void = () => {}
    const seen = new Promise<void>((resolve) => { resolveSeen = resolve })
    const honest = await createNetNode({
      seed: new Uint8Array(randomBytes(32)), tcp: false, memory: { listen: [] },
      onOnionMismatch: (peer, addr) => { mismatches.push(`${peer.toString()} ${addr.toString()}`); resolveSeen() }
    })
    try {
      await honest.dial(multiaddr(`/memory/liar-${id}/p2p/${liar.peerId.toString()}`))
      await seen
      for (let i = 0; i < 50 && honest.getConnections(liar.peerId).length > 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
      assert.equal(honest.getConnections(liar.peerId).length, 0, 'the liar was disconnected')
      assert.ok(mismatches.some(m => m.startsWith(liar.peerId.toString()) && m.includes(stolen)))
      const stored = await honest.peerStore.get(liar.peerId).then(p => p.addresses.map(a => a.multiaddr.toString()), () => [])
      assert.ok(!stored.some(a => a.includes(stolen)), 'the stolen onion address was not stored')
    } finally {
      await honest.stop()
      await liar.stop()
    }
  })
})
