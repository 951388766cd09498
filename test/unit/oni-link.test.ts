import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { cryptoRng, systemClock } from '../../src/core/index.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import { encodeFrame, FrameDecoder, FRAME_AUTH, FRAME_PACKET, FRAME_PING, FRAME_PONG, linkAuthMessage } from '../../src/oni/link-frame.ts'
import { acceptLink, openLink, type PeerLink } from '../../src/oni/link.ts'
import { isOniError } from '../../src/oni/errors.ts'

async function socketPair (): Promise<{ a: Socket, b: Socket, close: () => Promise<void> }> {
  let accepted: (s: Socket) => void = () => {}
  const got = new Promise<Socket>((resolve) => { accepted = resolve })
  const server = createServer((s) => { accepted(s) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = connect((server.address() as { port: number }).port, '127.0.0.1')
  const b = await got
  return { a, b, close: async () => { a.destroy(); b.destroy(); await new Promise<void>((resolve) => server.close(() => { resolve() })) } }
}

describe('oni link frames', () => {
  it('decodes frames split at any byte boundary', () => {
    const frames = [encodeFrame(FRAME_PACKET, new Uint8Array(300).fill(7)), encodeFrame(FRAME_PING, new Uint8Array(8).fill(1)), encodeFrame(FRAME_PACKET, new Uint8Array(0))]
    const all = Uint8Array.from(frames.flatMap(f => [...f]))
    for (let cut = 1; cut < all.length; cut += 37) {
      const d = new FrameDecoder()
      const got = [...d.push(all.slice(0, cut)), ...d.push(all.slice(cut))]
      assert.deepEqual(got.map(f => [f.type, f.payload.byteLength]), [[FRAME_PACKET, 300], [FRAME_PING, 8], [FRAME_PACKET, 0]])
      assert.equal(d.buffered, 0)
    }
  })

  it('rejects unknown types and oversized frames before buffering them', () => {
    assert.throws(() => new FrameDecoder().push(Uint8Array.of(9, 0, 1, 0)), (e) => isOniError(e, 'ONI_FRAME_MALFORMED'))
    assert.throws(() => new FrameDecoder(1500).push(Uint8Array.of(FRAME_PACKET, 0x05, 0xdd)), (e) => isOniError(e, 'ONI_FRAME_MALFORMED'))
    assert.throws(() => new FrameDecoder().push(Uint8Array.of(FRAME_PING, 0, 9)), (e) => isOniError(e, 'ONI_FRAME_MALFORMED'))
  })
})

describe('oni link handshake', () => {
  it('binds the link to the client key and carries packets both ways', async () => {
    const server = generateIdentity()
    const client = generateIdentity()
    const { a, b, close } = await socketPair()
    try {
      const [cl, sl] = await Promise.all([
        openLink(a, client, server.publicKey, { clock: systemClock }),
        acceptLink(b, server, cryptoRng, { clock: systemClock })
      ])
      assert.deepEqual(sl.peerPublicKey, client.publicKey)
      assert.equal(sl.direction, 'inbound')
      const recv = (l: PeerLink): Promise<Uint8Array> => new Promise((resolve) => { l.onPacket(resolve) })
      const p1 = recv(sl)
      cl.send(Uint8Array.of(1, 2, 3))
      assert.deepEqual([...await p1], [1, 2, 3])
      const p2 = recv(cl)
      sl.send(Uint8Array.of(4, 5))
      assert.deepEqual([...await p2], [4, 5])
      assert.equal(cl.stats.packetsOut, 1)
      assert.equal(sl.stats.packetsIn, 1)
    } finally {
      await close()
    }
  })

  it('refuses a client that signs for another server key', async () => {
    const server = generateIdentity()
    const client = generateIdentity()
    const other = generateIdentity()
    const { a, b, close } = await socketPair()
    try {
      const accepted = acceptLink(b, server, cryptoRng, { clock: systemClock })
      void openLink(a, client, other.publicKey, { clock: systemClock }).catch(() => {})
      await assert.rejects(accepted, (e) => isOniError(e, 'ONI_LINK_AUTH'))
    } finally {
      await close()
    }
  })

  it('refuses an AUTH that claims a key it cannot sign for', async () => {
    const server = generateIdentity()
    const victim = generateIdentity()
    const { a, b, close } = await socketPair()
    try {
      const accepted = acceptLink(b, server, cryptoRng, { clock: systemClock })
      const auth = new Uint8Array(97)
      auth[0] = 1
      auth.set(victim.publicKey, 1)
      a.write(encodeFrame(FRAME_AUTH, auth))
      await assert.rejects(accepted, (e) => isOniError(e, 'ONI_LINK_AUTH'))
    } finally {
      await close()
    }
  })

  it('delivers a packet that arrived in the same read as AUTH, before a listener was attached', async () => {
    const server = generateIdentity()
    const client = generateIdentity()
    const { a, b, close } = await socketPair()
    try {
      const accepted = acceptLink(b, server, cryptoRng, { clock: systemClock })
      // A hand-made client: read the challenge, then send AUTH and a PACKET in one write.
      const challenge = await new Promise<Uint8Array>((resolve) => {
        const d = new FrameDecoder()
        a.once('data', (chunk: Buffer) => { resolve(d.push(new Uint8Array(chunk))[0].payload) })
      })
      const nonce = challenge.subarray(1)
      const auth = new Uint8Array(97)
      auth[0] = 1
      auth.set(client.publicKey, 1)
      auth.set(client.sign(linkAuthMessage(server.publicKey, nonce, client.publicKey)), 33)
      a.write(Buffer.concat([encodeFrame(FRAME_AUTH, auth), encodeFrame(FRAME_PACKET, Uint8Array.of(42, 43))]))
      const link = await accepted
      await new Promise((resolve) => setImmediate(resolve))
      const got = await new Promise<Uint8Array>((resolve) => { link.onPacket(resolve) })
      assert.deepEqual([...got], [42, 43])
    } finally {
      await close()
    }
  })

  it('answers a PING with a PONG carrying the same bytes', async () => {
    const server = generateIdentity()
    const client = generateIdentity()
    const { a, b, close } = await socketPair()
    try {
      const [, sl] = await Promise.all([openLink(a, client, server.publicKey, { clock: systemClock }), acceptLink(b, server, cryptoRng, { clock: systemClock })])
      assert.equal(sl.closed, false)
      // openLink's PeerLink owns socket a now; watch the raw bytes from the server side.
      const pong = new Promise<Uint8Array>((resolve) => {
        const d = new FrameDecoder()
        a.on('data', (chunk: Buffer) => { for (const f of d.push(new Uint8Array(chunk))) if (f.type === FRAME_PONG) resolve(f.payload) })
      })
      a.write(encodeFrame(FRAME_PING, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)))
      assert.deepEqual([...await pong], [1, 2, 3, 4, 5, 6, 7, 8])
    } finally {
      await close()
    }
  })
})
