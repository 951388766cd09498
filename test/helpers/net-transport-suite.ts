/**
 * Transport behaviour tests, written once and run against every transport the node has:
 * TCP and memory in test/unit, onion3 against a SOCKS stand-in in test/unit and against real
 * tor on the private Tor network in test/integration. A fixture makes listening nodes and a
 * dialling node; the suite checks what any transport must do for the OHT.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { NetLibp2p } from '../../src/net/index.ts'

export interface TransportFixture {
  /** A node listening on the transport under test. */
  listener(): Promise<NetLibp2p>
  /** A node that can dial the transport under test. */
  dialer(): Promise<NetLibp2p>
  /** Protocol name every announced listen address must contain ('tcp', 'memory', 'onion3'). */
  protocol: string
  /** Releases everything the fixture started (the nodes it made are stopped by the suite). */
  close(): Promise<void>
}

const ECHO = '/oht-test/echo/1.0.0'

async function echoHandler (stream: import('@libp2p/interface').Stream): Promise<void> {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
}

async function roundTrip (node: NetLibp2p, peer: Multiaddr | import('@libp2p/interface').PeerId, payload: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
  const stream = await node.dialProtocol(peer, ECHO, { signal })
  const chunks: Uint8Array[] = []
  const reading = (async () => {
    for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray())
  })()
  for (let off = 0; off < payload.byteLength; off += 16_384) {
    if (!stream.send(payload.subarray(off, off + 16_384))) await stream.onDrain({ signal })
  }
  await stream.close({ signal })
  await reading
  return Buffer.concat(chunks)
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

export function transportSuite (name: string, setup: () => Promise<TransportFixture>, opts: { timeoutMs?: number } = {}): void {
  const timeout = opts.timeoutMs ?? 10_000
  describe(`transport behaviour: ${name}`, { timeout: timeout * 8 }, () => {
    let fx: TransportFixture
    let server: NetLibp2p
    let client: NetLibp2p
    const extra: NetLibp2p[] = []
    let addr: Multiaddr

    before(async () => {
      fx = await setup()
      server = await fx.listener()
      client = await fx.dialer()
      await server.handle(ECHO, echoHandler, { maxInboundStreams: 64 })
      await client.handle(ECHO, echoHandler, { maxInboundStreams: 64 })
      const listenAddr = server.getMultiaddrs().find(a => a.getComponents().some(c => c.name === fx.protocol))
      assert.ok(listenAddr, `listener announces a ${fx.protocol} address`)
      addr = listenAddr
    })

    after(async () => {
      await Promise.allSettled([server?.stop(), client?.stop(), ...extra.map(n => n.stop())])
      await fx?.close()
    })

    it(`announces only ${name} listen addresses carrying its peer id`, () => {
      const addrs = server.getMultiaddrs()
      assert.ok(addrs.length > 0)
      for (const a of addrs) {
        assert.ok(a.getComponents().some(c => c.name === fx.protocol), `${a.toString()} is a ${fx.protocol} address`)
        assert.equal(a.getComponents().at(-1)?.value, server.peerId.toString())
      }
    })

    it('dials, upgrades with noise + yamux and answers a ping', { timeout }, async () => {
      const conn = await client.dial(addr, { signal: AbortSignal.timeout(timeout) })
      assert.equal(conn.remotePeer.toString(), server.peerId.toString())
      assert.equal(conn.encryption, '/noise')
      assert.equal(conn.multiplexer, '/yamux/1.0.0')
      const rtt = await client.services.ping.ping(addr, { signal: AbortSignal.timeout(timeout) })
      assert.equal(typeof rtt, 'number')
    })

    it('carries 512 KiB through one stream intact', { timeout }, async () => {
      const payload = new Uint8Array(randomBytes(512 * 1024))
      const echoed = await roundTrip(client, addr, payload, AbortSignal.timeout(timeout))
      assert.equal(echoed.byteLength, payload.byteLength)
      assert.equal(sha(echoed), sha(payload))
    })

    it('runs 16 concurrent streams over a single reused connection', { timeout }, async () => {
      const payloads = Array.from({ length: 16 }, (_, i) => new Uint8Array(randomBytes(1024 + i * 100)))
      const echoed = await Promise.all(payloads.map(p => roundTrip(client, addr, p, AbortSignal.timeout(timeout))))
      echoed.forEach((e, i) => { assert.equal(sha(e), sha(payloads[i])) })
      assert.equal(client.getConnections(server.peerId).length, 1)
    })

    it('lets the listener open streams back on the inbound connection', { timeout }, async () => {
      await client.dial(addr, { signal: AbortSignal.timeout(timeout) })
      const payload = new Uint8Array(randomBytes(4096))
      const echoed = await roundTrip(server, client.peerId, payload, AbortSignal.timeout(timeout))
      assert.equal(sha(echoed), sha(payload))
      assert.equal(server.getConnections(client.peerId).length, 1, 'no new connection was needed')
    })

    it('never takes the key that answered for the peer the address names', { timeout }, async () => {
      const other = await fx.dialer()
      extra.push(other)
      const wrong = addr.decapsulateCode(421).encapsulate(`/p2p/${other.peerId.toString()}`)
      const third = await fx.dialer()
      extra.push(third)
      // Either the dial is refused (TCP, onion3: noise checks the expected key), or the
      // connection is attributed to the key that really answered (memory transport).
      const outcome = await third.dial(wrong, { signal: AbortSignal.timeout(timeout) }).then(c => c, (err: Error) => err)
      if (outcome instanceof Error) {
        assert.equal(third.getConnections(other.peerId).length, 0)
      } else {
        assert.equal(outcome.remotePeer.toString(), server.peerId.toString())
      }
      assert.equal(third.getConnections(other.peerId).length, 0, 'no connection is filed under the claimed peer')
    })

    it('fails dials once the listener has stopped', { timeout }, async () => {
      const gone = await fx.listener()
      const goneAddr = gone.getMultiaddrs().find(a => a.getComponents().some(c => c.name === fx.protocol))
      assert.ok(goneAddr)
      await gone.stop()
      const fresh = await fx.dialer()
      extra.push(fresh)
      await assert.rejects(fresh.dial(goneAddr, { signal: AbortSignal.timeout(timeout) }))
    })
  })
}
