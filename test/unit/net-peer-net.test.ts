/**
 * PeerNet over real libp2p nodes: the shared compliance suite over @libp2p/memory and over
 * TCP on loopback, then what is particular to libp2p: the protocol ids on the wire, malformed
 * frames from a peer that speaks the protocol badly, a contact whose key does not answer, and
 * that one connection per peer carries the DHT and every PeerNet protocol.
 * (Over onion services on the private Tor network: test/integration/net-peer-net-onion.test.ts.)
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { systemClock } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import {
  createLibp2pDhtNet, createLibp2pPeerNet, createNetNode, createPeerConnections, ed25519FromPeerId,
  PEER_REQUEST_PROTOCOL_PREFIX, PEER_STREAM_PROTOCOL_PREFIX,
  type Libp2pPeerNet, type NetLibp2p, type NetNodeInit
} from '../../src/net/index.ts'
import type { PeerContact } from '../../src/oht/index.ts'
import { peerNetSuite, type PeerNetFixture } from '../helpers/peer-net-suite.ts'

let seq = 0
interface Node { node: NetLibp2p, peers: Libp2pPeerNet, contact: PeerContact }

function transportInit (kind: 'memory' | 'tcp'): Omit<NetNodeInit, 'seed'> {
  return kind === 'tcp'
    ? { tcp: { listen: ['/ip4/127.0.0.1/tcp/0'] } }
    : { tcp: false, memory: { listen: [`/memory/peer-net-${process.pid}-${seq++}`] } }
}

function contactOf (node: NetLibp2p): PeerContact {
  return { publicKey: ed25519FromPeerId(node.peerId) as Uint8Array, addrs: node.getMultiaddrs().map(a => a.decapsulateCode(421).toString()) }
}

async function makeNode (kind: 'memory' | 'tcp'): Promise<Node> {
  const node = await createNetNode({ seed: new Uint8Array(randomBytes(32)), ...transportInit(kind) })
  const peers = createLibp2pPeerNet({ identifyWaitMs: 2_000 }, { libp2p: node, clock: systemClock })
  await peers.start()
  return { node, peers, contact: contactOf(node) }
}

async function stopNode (n: Node): Promise<void> {
  await n.peers.stop()
  await n.node.stop()
}

function libp2pFixture (kind: 'memory' | 'tcp'): () => Promise<PeerNetFixture> {
  return async () => {
    const nodes: Node[] = []
    return {
      endpoint: async () => { const n = await makeNode(kind); nodes.push(n); return { net: n.peers, contact: n.contact } },
      run: async (f) => await f(),
      sleep: async (ms) => { await systemClock.sleep(ms) },
      unreachable: async () => { const n = await makeNode(kind); await stopNode(n); return n.contact },
      unreachableCodes: ['OHT_PEER_UNREACHABLE'],
      close: async () => { await Promise.allSettled(nodes.map(stopNode)) }
    }
  }
}

peerNetSuite('libp2p over @libp2p/memory', libp2pFixture('memory'), { stallMs: 500 })
peerNetSuite('libp2p over TCP on 127.0.0.1', libp2pFixture('tcp'), { stallMs: 500 })

async function errorOf (p: Promise<unknown>): Promise<Error & { code?: string, remote?: boolean }> {
  try { await p } catch (err) { return err as Error & { code?: string } }
  assert.fail('expected a rejection')
}

/** Writes raw bytes on a PeerNet protocol, as a broken or hostile peer would, and reads what comes back. */
async function raw (from: NetLibp2p, to: NetLibp2p, protocol: string, bytes: Uint8Array[], closeAfter = true): Promise<{ reply: Buffer, reset: boolean }> {
  const stream: Stream = await from.dialProtocol(to.peerId, protocol, { signal: AbortSignal.timeout(10_000) })
  const chunks: Uint8Array[] = []
  const reading = (async () => {
    try { for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray()); return false } catch { return true }
  })()
  for (const b of bytes) if (!stream.send(b)) await stream.onDrain()
  if (closeAfter) await stream.close().catch(() => {})
  const reset = await Promise.race([reading, systemClock.sleep(10_000).then(() => 'hung' as const)])
  assert.notEqual(reset, 'hung', 'the node answered or closed: it did not leave the stream hanging')
  return { reply: Buffer.concat(chunks), reset: reset === true }
}

describe('PeerNet over libp2p: wire and connections', { timeout: 60_000 }, () => {
  let a: Node
  let b: Node
  let calls = 0
  before(async () => {
    a = await makeNode('memory')
    b = await makeNode('memory')
    b.peers.handle('/t/echo/1', async (_from, body) => { calls++; return body })
    b.peers.handleStream('/t/stream/1', async (s) => { for await (const m of s) await s.send(m); await s.close() })
    await a.peers.request(b.contact, '/t/echo/1', Uint8Array.of(0))
  })
  after(async () => { await Promise.allSettled([a, b].map(stopNode)) })

  it('registers /oht/req/1<id> and /oht/stream/1<id> with libp2p, and removes them on unhandle', async () => {
    const protocols = b.node.getProtocols()
    assert.ok(protocols.includes(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/echo/1`), protocols.join(' '))
    assert.ok(protocols.includes(`${PEER_STREAM_PROTOCOL_PREFIX}/t/stream/1`))
    b.peers.handle('/t/temp/1', async () => new Uint8Array(0))
    for (let i = 0; i < 50 && !b.node.getProtocols().includes(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/temp/1`); i++) await systemClock.sleep(10)
    assert.ok(b.node.getProtocols().includes(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/temp/1`))
    b.peers.unhandle('/t/temp/1')
    for (let i = 0; i < 50 && b.node.getProtocols().includes(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/temp/1`); i++) await systemClock.sleep(10)
    assert.ok(!b.node.getProtocols().includes(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/temp/1`))
  })

  it('malformed requests from a peer are refused with an ERROR frame and never reach the handler; the node goes on', async () => {
    const before = calls
    const proto = `${PEER_REQUEST_PROTOCOL_PREFIX}/t/echo/1`
    const cases: Array<[string, Uint8Array[]]> = [
      ['an empty frame', [Uint8Array.of(0)]],
      ['a 5-byte varint', [Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)]],
      ['a length over the limit (64 KiB + 10)', [Uint8Array.of(0x8b, 0x80, 0x04)]],
      ['an unknown frame type', [Uint8Array.of(2, 9, 1)]],
      ['a truncated frame, then FIN', [Uint8Array.of(10, 0, 1, 2)]],
      ['an ACCEPT instead of a request', [Uint8Array.of(1, 1)]],
      ['a malformed ERROR frame', [Uint8Array.of(3, 2, 99, 65)]],
      ['no frame at all, then FIN', []]
    ]
    for (const [what, bytes] of cases) {
      const { reply, reset } = await raw(a.node, b.node, proto, bytes)
      const text = reply.toString('latin1')
      assert.ok(reset || /OHT_BAD_FRAME|OHT_MESSAGE_TOO_LARGE|OHT_STREAM_CLOSED/.test(text) || reply.byteLength === 0, `${what}: got ${reply.toString('hex')}`)
      if (what.includes('over the limit')) assert.match(text, /OHT_MESSAGE_TOO_LARGE/, 'the peer learns why')
      if (what.includes('unknown frame type')) assert.match(text, /OHT_BAD_FRAME/)
    }
    assert.equal(calls, before, 'no malformed request reached the handler')
    assert.deepEqual([...await a.peers.request(b.contact, '/t/echo/1', Uint8Array.of(5))], [5], 'the node still serves requests')
    assert.ok(b.peers.stats.badFramesIn >= 5, `bad frames counted: ${b.peers.stats.badFramesIn}`)
  })

  it('a peer that answers a stream with garbage or a request frame gets reset; the opener sees OHT_BAD_FRAME', async () => {
    // a node that speaks the stream protocol id but sends a DATA frame instead of ACCEPT
    const liar = await createNetNode({ seed: new Uint8Array(randomBytes(32)), ...transportInit('memory') })
    try {
      await liar.handle(`${PEER_STREAM_PROTOCOL_PREFIX}/t/liar/1`, async (stream) => { stream.send(Uint8Array.of(2, 0, 7)); await stream.close() })
      await liar.handle(`${PEER_REQUEST_PROTOCOL_PREFIX}/t/liar/1`, async (stream) => { stream.send(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff)); await stream.close() })
      const err = await errorOf(a.peers.openStream(contactOf(liar), '/t/liar/1', { timeoutMs: 10_000 }))
      assert.equal(err.code, 'OHT_BAD_FRAME', err.message)
      const err2 = await errorOf(a.peers.request(contactOf(liar), '/t/liar/1', Uint8Array.of(1), { timeoutMs: 10_000 }))
      assert.equal(err2.code, 'OHT_BAD_FRAME', err2.message)
    } finally {
      await liar.stop()
    }
  })

  it('a peer that ignores the stream window is reset with OHT_BAD_FRAME; a reader that does not read holds at most the window', async () => {
    let handlerError: (Error & { code?: string }) | undefined
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    b.peers.handleStream('/t/window/1', async (s) => {
      await held
      try { for await (const _m of s) {} } catch (err) { handlerError = err as Error }
    }, { maxMessageBytes: 16_384 })
    // a well-behaved sender stalls once 1 MiB (+ one message) is unread
    const s = await a.peers.openStream(b.contact, '/t/window/1', { maxMessageBytes: 16_384 })
    let sent = 0
    const sending = (async () => { for (let i = 0; i < 200; i++) { await s.send(new Uint8Array(16_384)); sent++ } await s.close() })()
    let last = -1
    while (sent !== last) { last = sent; await systemClock.sleep(300) }
    assert.ok(sent <= 1024 / 16 + 1, `the sender got ${sent} messages of 16 KiB out with nobody reading: more than the 1 MiB window`)
    release()
    await sending
    // a raw peer that floods a reader that does not read, past the window it was granted
    b.peers.handleStream('/t/noread/1', async () => { await new Promise(() => {}) }, { maxMessageBytes: 16_384 })
    const raw = await a.node.dialProtocol(b.node.peerId, `${PEER_STREAM_PROTOCOL_PREFIX}/t/noread/1`, { signal: AbortSignal.timeout(10_000) })
    const frame = new Uint8Array(3 + 1 + 16_384)
    frame.set([0x81, 0x80, 0x01, 0], 0) // varint 16385 (type byte + body), type DATA
    let reset = false
    raw.addEventListener('close', (evt) => { if ((evt as Event & { error?: Error }).error !== undefined) reset = true })
    const replies: Buffer[] = []
    raw.addEventListener('message', (evt) => { const d = (evt as unknown as { data: Uint8Array | { subarray: () => Uint8Array } }).data; replies.push(Buffer.from(d instanceof Uint8Array ? d : d.subarray())) })
    for (let i = 0; i < 80 && !reset; i++) {
      try { raw.send(frame) } catch { break }
      await systemClock.sleep(5)
    }
    for (let i = 0; i < 100 && !reset; i++) await systemClock.sleep(20)
    assert.ok(reset, 'the flooding peer was reset')
    assert.match(Buffer.concat(replies).toString('latin1'), /OHT_BAD_FRAME/, 'and told why')
    assert.equal(handlerError, undefined, 'the earlier, well-behaved stream ended cleanly')
  })

  it('a contact whose key does not answer at its address is unreachable, not served by whoever answered', async () => {
    const impostor = { publicKey: identityFromSeed(new Uint8Array(32).fill(9)).publicKey, addrs: b.contact.addrs }
    const err = await errorOf(a.peers.request(impostor, '/t/echo/1', Uint8Array.of(1), { timeoutMs: 10_000 }))
    assert.equal(err.code, 'OHT_PEER_UNREACHABLE', err.message)
    const liar = identityFromSeed(new Uint8Array(32).fill(3))
    const wrongOnion = { publicKey: b.contact.publicKey, addrs: [`/onion3/${liar.onion}:4001`] }
    assert.equal((await errorOf(a.peers.request(wrongOnion, '/t/echo/1', Uint8Array.of(1)))).code, 'OHT_PEER_UNREACHABLE', 'a contact claiming someone else\'s onion')
  })

  it('an open stream keeps its connection from idle pruning; once it ends, the connection may go', async () => {
    const clock = new (await import('../../src/core/index.ts')).FakeClock()
    const node = await createNetNode({ seed: new Uint8Array(randomBytes(32)), ...transportInit('memory') })
    const connections = createPeerConnections({ idleTimeoutMs: 60_000 }, { libp2p: node, clock })
    const peers = createLibp2pPeerNet({}, { libp2p: node, clock: systemClock, connections })
    connections.start()
    await peers.start()
    try {
      const s = await peers.openStream(b.contact, '/t/stream/1')
      await clock.advance(10 * 60_000)
      assert.equal(node.getConnections(b.node.peerId).length, 1, 'kept while the stream is open')
      await s.send(Uint8Array.of(1))
      await s.close()
      for await (const _m of s) {}
      await clock.advance(2 * 60_000)
      await clock.advance(60_000)
      assert.equal(node.getConnections(b.node.peerId).length, 0, 'closed once idle after the stream ended')
      assert.ok(connections.stats.idleClosed >= 1)
    } finally {
      await peers.stop()
      connections.stop()
      await node.stop()
    }
  })

  it('the DHT and every PeerNet protocol share one connection per peer', async () => {
    const node = await createNetNode({ seed: new Uint8Array(randomBytes(32)), ...transportInit('memory') })
    const connections = createPeerConnections({}, { libp2p: node, clock: systemClock })
    const dht = createLibp2pDhtNet({}, { libp2p: node, clock: systemClock, connections })
    const peers = createLibp2pPeerNet({}, { libp2p: node, clock: systemClock, connections })
    const bDht = createLibp2pDhtNet({}, { libp2p: b.node, clock: systemClock })
    bDht.handle(async (_from, frame) => frame)
    connections.start()
    await dht.start()
    await peers.start()
    await bDht.start()
    try {
      await dht.request(b.contact, Uint8Array.of(1))
      await peers.request(b.contact, '/t/echo/1', Uint8Array.of(2))
      const s = await peers.openStream(b.contact, '/t/stream/1')
      await s.send(Uint8Array.of(3))
      await s.close()
      for await (const _m of s) {}
      assert.equal(node.getConnections(b.node.peerId).length, 1, 'one connection')
      assert.equal(dht.stats.dials + peers.stats.dials, 1, 'dialled once in all')
      assert.equal(peers.stats.reusedConnections, 2)
    } finally {
      await peers.stop()
      await dht.stop()
      await bDht.stop()
      connections.stop()
      await node.stop()
    }
  })

  it('stop() aborts open streams at both ends and refuses new calls with OHT_NOT_STARTED', async () => {
    const n = await makeNode('memory')
    let handlerError: (Error & { code?: string }) | undefined
    b.peers.handleStream('/t/hold/1', async (s) => { try { for await (const _m of s) {} } catch (err) { handlerError = err as Error } })
    const s = await n.peers.openStream(b.contact, '/t/hold/1')
    const pending = errorOf(s[Symbol.asyncIterator]().next())
    await n.peers.stop()
    assert.equal((await pending).code, 'OHT_STREAM_CLOSED')
    for (let i = 0; i < 100 && handlerError === undefined; i++) await systemClock.sleep(20)
    assert.equal(handlerError?.code, 'OHT_STREAM_CLOSED', 'the peer\'s end failed too')
    assert.equal((await errorOf(n.peers.request(b.contact, '/t/echo/1', Uint8Array.of(1)))).code, 'OHT_NOT_STARTED')
    assert.equal(n.peers.stats.openStreams, 0)
    await n.node.stop()
  })
})
