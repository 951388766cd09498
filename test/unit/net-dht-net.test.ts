/**
 * The DhtNet adapter on /oht/kad/1.0.0 between real libp2p nodes over @libp2p/memory, with a
 * fake request handler in place of the OHT engine.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FakeClock, isCodedError } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { createNetNode, createLibp2pDhtNet, type Libp2pDhtNet, type NetLibp2p } from '../../src/net/index.ts'
import type { PeerContact } from '../../src/oht/network.ts'

let seq = 0
interface Peer { node: NetLibp2p, net: Libp2pDhtNet, seed: Uint8Array, clock: FakeClock }

async function peer (init: { maxFrameBytes?: number, idleTimeoutMs?: number, onionOnly?: boolean, keepPeer?: (pk: Uint8Array) => boolean } = {}): Promise<Peer> {
  const seed = new Uint8Array(randomBytes(32))
  const node = await createNetNode({ seed, tcp: false, memory: { listen: [`/memory/dht-net-${process.pid}-${seq++}`] } })
  const clock = new FakeClock()
  const net = createLibp2pDhtNet({ maxFrameBytes: init.maxFrameBytes, idleTimeoutMs: init.idleTimeoutMs, onionOnly: init.onionOnly, identifyWaitMs: 2_000 }, { libp2p: node, clock, keepPeer: init.keepPeer })
  await net.start()
  return { node, net, seed, clock }
}

async function errorOf (p: Promise<unknown>): Promise<Error & { code?: string }> {
  try { await p } catch (err) { return err as Error } 
  assert.fail('expected a rejection')
}

describe('DhtNet over libp2p (/oht/kad/1.0.0)', { timeout: 20_000 }, () => {
  const peers: Peer[] = []
  let a: Peer
  let b: Peer
  const seen: Array<{ from: PeerContact, frame: Uint8Array }> = []

  before(async () => {
    a = await peer(); b = await peer()
    peers.push(a, b)
    b.net.handle(async (from, frame) => {
      seen.push({ from, frame })
      if (frame[0] === 0xee) throw Object.assign(new Error('no'), { code: 'OHT_TEST_REFUSED' })
      if (frame[0] === 0xdd) return new Uint8Array(5000)
      if (frame[0] === 0xcc) return await new Promise<Uint8Array>(() => {})
      return Uint8Array.from([...frame].reverse())
    })
    a.net.handle(async (_from, frame) => frame)
  })

  after(async () => {
    for (const p of peers) { await p.net.stop(); await p.node.stop() }
  })

  it('delivers a request and returns the handler\'s response', async () => {
    const reply = await a.net.request(b.net.ownContact(), Uint8Array.of(1, 2, 3))
    assert.deepEqual([...reply], [3, 2, 1])
  })

  it('authenticates `from` as the requester\'s identity key with its announced addresses', async () => {
    await a.net.request(b.net.ownContact(), Uint8Array.of(4))
    const last = seen.at(-1)
    assert.ok(last)
    assert.deepEqual(last.from.publicKey, identityFromSeed(a.seed).publicKey)
    assert.deepEqual(last.from.addrs, a.net.ownContact().addrs)
    assert.ok(last.from.addrs.length > 0)
  })

  it('reuses one long-lived connection for later requests', async () => {
    const fresh = await peer()
    peers.push(fresh)
    for (let i = 0; i < 5; i++) await fresh.net.request(b.net.ownContact(), Uint8Array.of(i))
    assert.equal(fresh.net.stats.dials, 1)
    assert.equal(fresh.net.stats.reusedConnections, 4)
    assert.equal(fresh.node.getConnections(b.node.peerId).length, 1)
  })

  it('lets the receiving side send requests back over the same connection', async () => {
    const fresh = await peer()
    peers.push(fresh)
    fresh.net.handle(async () => Uint8Array.of(42))
    await fresh.net.request(b.net.ownContact(), Uint8Array.of(9))
    const back = await b.net.request(fresh.net.ownContact(), Uint8Array.of(1))
    assert.deepEqual([...back], [42])
    assert.equal(b.net.stats.dials, 0, 'no dial was needed')
  })

  it('maps a failing remote handler to NET_REMOTE_ERROR with its code', async () => {
    const err = await errorOf(a.net.request(b.net.ownContact(), Uint8Array.of(0xee)))
    assert.equal(err.code, 'NET_REMOTE_ERROR')
    assert.match(err.message, /OHT_TEST_REFUSED/)
  })

  it('refuses to send a frame above the size limit', async () => {
    const small = await peer({ maxFrameBytes: 1024 })
    peers.push(small)
    const err = await errorOf(small.net.request(b.net.ownContact(), new Uint8Array(2048)))
    assert.equal(err.code, 'NET_FRAME_TOO_LARGE')
    assert.equal(small.node.getConnections().length, 0, 'nothing was dialled')
  })

  it('rejects a response above the requester\'s size limit', async () => {
    const small = await peer({ maxFrameBytes: 1024 })
    peers.push(small)
    const err = await errorOf(small.net.request(b.net.ownContact(), Uint8Array.of(0xdd)))
    assert.ok(isCodedError(err), String(err))
    assert.equal(err.code, 'NET_FRAME_TOO_LARGE')
  })

  it('drops an inbound request above the receiver\'s size limit without calling the handler', async () => {
    const small = await peer({ maxFrameBytes: 1024 })
    peers.push(small)
    let called = false
    small.net.handle(async () => { called = true; return Uint8Array.of(1) })
    const err = await errorOf(a.net.request(small.net.ownContact(), new Uint8Array(4096)))
    assert.ok(isCodedError(err), String(err))
    assert.equal(called, false)
  })

  it('gives up when the caller\'s signal aborts (timeouts belong to the caller)', async () => {
    const ctl = new AbortController()
    const pending = a.net.request(b.net.ownContact(), Uint8Array.of(0xcc), { signal: ctl.signal })
    setImmediate(() => { ctl.abort() })
    const err = await errorOf(pending)
    assert.equal(err.code, 'CORE_ABORTED')
  })

  it('refuses a contact whose onion address belongs to another key, before dialling', async () => {
    const liar = identityFromSeed(new Uint8Array(32).fill(3))
    const contact = { publicKey: b.net.ownContact().publicKey, addrs: [`/onion3/${liar.onion}:4001`] }
    const before = a.node.getConnections().length
    const err = await errorOf(a.net.request(contact, Uint8Array.of(1)))
    assert.equal(err.code, 'NET_ONION_MISMATCH')
    assert.equal(a.node.getConnections().length, before)
  })

  it('does not accept an address answered by another key for the contact\'s key', async () => {
    const fresh = await peer()
    peers.push(fresh)
    const impostor = { publicKey: identityFromSeed(new Uint8Array(32).fill(5)).publicKey, addrs: b.net.ownContact().addrs }
    const err = await errorOf(fresh.net.request(impostor, Uint8Array.of(1)))
    assert.equal(err.code, 'NET_DIAL_FAILED')
  })

  it('closes connections idle past the limit unless the peer is kept', async () => {
    const idle = await peer({ idleTimeoutMs: 60_000 })
    peers.push(idle)
    await idle.net.request(b.net.ownContact(), Uint8Array.of(1))
    assert.equal(idle.node.getConnections(b.node.peerId).length, 1)
    await idle.clock.advance(30_000)
    assert.equal(idle.node.getConnections(b.node.peerId).length, 1, 'still within the limit')
    await idle.clock.advance(60_000)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(idle.net.stats.idleClosed, 1)
  })

  it('keeps routing-table peers connected past the idle limit and tags them for libp2p', async () => {
    const kept = await peer({ idleTimeoutMs: 60_000, keepPeer: () => true })
    peers.push(kept)
    await kept.net.request(b.net.ownContact(), Uint8Array.of(1))
    await kept.clock.advance(200_000)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(kept.net.stats.idleClosed, 0)
    assert.equal(kept.node.getConnections(b.node.peerId).length, 1)
    const tags = (await kept.node.peerStore.get(b.node.peerId)).tags
    assert.ok(tags.has('oht-routing-table'))
  })

  it('fails with NET_NOT_STARTED after stop()', async () => {
    const gone = await peer()
    await gone.net.stop()
    await gone.node.stop()
    const err = await errorOf(gone.net.request(b.net.ownContact(), Uint8Array.of(1)))
    assert.equal(err.code, 'NET_NOT_STARTED')
  })
})
