/**
 * PeerNet behaviour tests (src/oht/peer-net.ts), written once and run against every
 * implementation: the simulator's (test/unit/netsim-peer-net.test.ts), libp2p over memory and
 * TCP (test/unit/net-peer-net.test.ts) and libp2p over onion services on the private Tor
 * network (test/integration/net-peer-net-onion.test.ts). A fixture makes endpoints and says
 * how a scenario runs (the simulator drives its virtual clock, real networks just await).
 *
 * @example
 * peerNetSuite('libp2p over TCP', async () => ({ endpoint, run: (f) => f(), sleep, unreachable, unreachableCodes, close }))
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng } from '../../src/core/index.ts'
import { OhtError, type PeerContact, type PeerNet, type PeerStream } from '../../src/oht/index.ts'

export interface PeerNetEndpoint {
  net: PeerNet
  /** How others reach this endpoint. */
  contact: PeerContact
}

export interface PeerNetFixture {
  /** A fresh endpoint with an identity of its own, reachable by the others. */
  endpoint(): Promise<PeerNetEndpoint>
  /** Runs one scenario to its end (the simulator runs its clock until the promise settles). */
  run<T>(scenario: () => Promise<T>): Promise<T>
  /** Waits `ms` of the implementation's time (virtual on the simulator); inside run() only. */
  sleep(ms: number): Promise<void>
  /** The contact of an endpoint that went away; calls to it fail with one of `unreachableCodes`. */
  unreachable(): Promise<PeerContact>
  unreachableCodes: string[]
  close(): Promise<void>
}

export interface PeerNetSuiteOptions {
  /** Budget of one test in real ms. @default 30_000 */
  timeoutMs?: number
  /** Messages of 16 KiB the back-pressure test tries to push past a reader that does not read. @default 512 */
  bulkMessages?: number
  /** Quiet time after which a sender counts as stalled, in the implementation's ms. @default 1_000 */
  stallMs?: number
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

async function errorOf (p: Promise<unknown>): Promise<Error & { code?: string, remote?: boolean }> {
  try { await p } catch (err) { return err as Error & { code?: string } }
  assert.fail('expected a rejection')
}

function assertCode (err: Error & { code?: string }, code: string | string[], what: string): void {
  const codes = Array.isArray(code) ? code : [code]
  assert.ok(codes.includes(err.code ?? ''), `${what}: expected ${codes.join(' or ')}, got ${err.code ?? 'no code'} (${err.message})`)
}

/** Reads every message until the peer closes (or the stream fails: then throws). */
async function readAll (s: PeerStream): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const m of s) out.push(m)
  return out
}

/** Message i of a deterministic sequence of varied sizes (0 .. ~3 KiB). */
function message (rng: SeededRng, i: number): Uint8Array {
  const m = rng.bytes(i % 7 === 0 ? 0 : rng.int(3000))
  const out = new Uint8Array(m.byteLength + 4)
  new DataView(out.buffer).setUint32(0, i)
  out.set(m, 4)
  return out
}

export function peerNetSuite (name: string, setup: () => Promise<PeerNetFixture>, opts: PeerNetSuiteOptions = {}): void {
  const timeout = opts.timeoutMs ?? 30_000
  const bulk = opts.bulkMessages ?? 512
  const stallMs = opts.stallMs ?? 1_000
  describe(`PeerNet behaviour: ${name}`, { timeout: timeout * 20 }, () => {
    let fx: PeerNetFixture
    let a: PeerNetEndpoint
    let b: PeerNetEndpoint
    let c: PeerNetEndpoint
    const run = async <T>(f: () => Promise<T>): Promise<T> => await fx.run(f)

    before(async () => {
      fx = await setup()
      a = await fx.endpoint()
      b = await fx.endpoint()
      c = await fx.endpoint()
      b.net.handle('/suite/echo/1', async (from, body) => {
        const out = new Uint8Array(32 + body.byteLength)
        out.set(from.publicKey, 0)
        out.set(body.slice().reverse(), 32)
        return out
      })
      b.net.handleStream('/suite/echo-stream/1', async (stream) => {
        for await (const m of stream) await stream.send(m)
        await stream.close()
      })
    })

    after(async () => { await fx?.close() })

    it('answers a request with the handler\'s response; `from` is the authenticated requester', { timeout }, async () => {
      await run(async () => {
        for (const [who, ep] of [['a', a], ['c', c]] as const) {
          const reply = await ep.net.request(b.contact, '/suite/echo/1', bytes(`hello from ${who}`))
          assert.ok(sameBytes(reply.subarray(0, 32), ep.contact.publicKey), `${who}'s key reached the handler as \`from\``)
          assert.equal(text(reply.subarray(32).reverse()), `hello from ${who}`)
        }
        const empty = await a.net.request(b.contact, '/suite/echo/1', new Uint8Array(0))
        assert.equal(empty.byteLength, 32, 'an empty request gets an answer too')
      })
    })

    it('carries a coded remote error back with its code and message; an uncoded one as OHT_PEER_FAILED without its text', { timeout }, async () => {
      b.net.handle('/suite/fail/1', async (_from, body) => {
        if (body[0] === 1) throw new OhtError('OHT_QUOTA', 'you are over your quota on this node')
        throw new Error('internal detail: /var/lib/secret-path')
      })
      await run(async () => {
        const coded = await errorOf(a.net.request(b.contact, '/suite/fail/1', Uint8Array.of(1)))
        assertCode(coded, 'OHT_QUOTA', 'coded handler error')
        assert.equal(coded.remote, true, 'marked as the peer\'s')
        assert.match(coded.message, /over your quota/)
        const plain = await errorOf(a.net.request(b.contact, '/suite/fail/1', Uint8Array.of(2)))
        assertCode(plain, 'OHT_PEER_FAILED', 'uncoded handler error')
        assert.doesNotMatch(plain.message, /secret-path/, 'no internals leak to the peer')
      })
    })

    it('refuses an unknown protocol, a request to a stream protocol and a stream to a request protocol: OHT_PROTOCOL_UNSUPPORTED', { timeout }, async () => {
      await run(async () => {
        assertCode(await errorOf(a.net.request(b.contact, '/suite/nobody-home/1', Uint8Array.of(1))), 'OHT_PROTOCOL_UNSUPPORTED', 'unknown protocol')
        assertCode(await errorOf(a.net.openStream(b.contact, '/suite/nobody-home/1')), 'OHT_PROTOCOL_UNSUPPORTED', 'unknown stream protocol')
        assertCode(await errorOf(a.net.request(b.contact, '/suite/echo-stream/1', Uint8Array.of(1))), 'OHT_PROTOCOL_UNSUPPORTED', 'request to a stream protocol')
        assertCode(await errorOf(a.net.openStream(b.contact, '/suite/echo/1')), 'OHT_PROTOCOL_UNSUPPORTED', 'stream to a request protocol')
        // unhandle: the protocol is gone for new calls
        c.net.handle('/suite/gone/1', async () => Uint8Array.of(7))
        assert.deepEqual([...await a.net.request(c.contact, '/suite/gone/1', Uint8Array.of(0))], [7])
        c.net.unhandle('/suite/gone/1')
        assertCode(await errorOf(a.net.request(c.contact, '/suite/gone/1', Uint8Array.of(0))), 'OHT_PROTOCOL_UNSUPPORTED', 'after unhandle')
      })
    })

    it('rejects malformed protocol ids and a second handler for one protocol: OHT_BAD_ARGUMENT', { timeout }, async () => {
      for (const bad of ['', 'no-slash', '/UPPER', '/a b', '/a//b', `/${'x'.repeat(130)}`, '/trailing/']) {
        assert.throws(() => { a.net.handle(bad, async () => new Uint8Array(0)) }, (err: Error & { code?: string }) => err.code === 'OHT_BAD_ARGUMENT', `handle(${JSON.stringify(bad)})`)
        await run(async () => { assertCode(await errorOf(a.net.request(b.contact, bad, new Uint8Array(0))), 'OHT_BAD_ARGUMENT', `request on ${JSON.stringify(bad)}`) })
      }
      assert.throws(() => { b.net.handle('/suite/echo/1', async () => new Uint8Array(0)) }, (err: Error & { code?: string }) => err.code === 'OHT_BAD_ARGUMENT')
      assert.throws(() => { b.net.handleStream('/suite/echo/1', async () => {}) }, (err: Error & { code?: string }) => err.code === 'OHT_BAD_ARGUMENT', 'requests and streams share one handler per protocol')
    })

    it('request too large both ways: refused before sending, refused by the receiver, and a response over either side\'s limit', { timeout }, async () => {
      let calls = 0
      c.net.handle('/suite/small/1', async (_from, body) => { calls++; return new Uint8Array(body[0] === 1 ? 3000 : body[0] === 2 ? 900 : 10) }, { maxMessageBytes: 1024 })
      await run(async () => {
        // our own limit (the default) refuses before anything is sent
        const local = await errorOf(a.net.request(c.contact, '/suite/small/1', new Uint8Array(65_537)))
        assertCode(local, 'OHT_MESSAGE_TOO_LARGE', 'over our own limit')
        assert.notEqual(local.remote, true, 'refused locally')
        // the receiver's limit is smaller: it refuses without calling the handler
        const remote = await errorOf(a.net.request(c.contact, '/suite/small/1', new Uint8Array(2000)))
        assertCode(remote, 'OHT_MESSAGE_TOO_LARGE', 'over the receiver\'s limit')
        assert.equal(calls, 0, 'the handler never saw the oversized request')
        // the handler's response is over its own side's limit
        assertCode(await errorOf(a.net.request(c.contact, '/suite/small/1', Uint8Array.of(1))), 'OHT_MESSAGE_TOO_LARGE', 'response over the responder\'s limit')
        // the response is over the requester's limit
        assertCode(await errorOf(a.net.request(c.contact, '/suite/small/1', Uint8Array.of(2), { maxMessageBytes: 512 })), 'OHT_MESSAGE_TOO_LARGE', 'response over the requester\'s limit')
        assert.equal((await a.net.request(c.contact, '/suite/small/1', Uint8Array.of(3))).byteLength, 10, 'small messages still pass')
      })
    })

    it('stream message too large both ways: refused before sending (the stream goes on); over the receiver\'s limit it ends the stream with that code at both ends', { timeout }, async () => {
      let handlerError: (Error & { code?: string }) | undefined
      let got = 0
      c.net.handleStream('/suite/small-stream/1', async (stream) => {
        try { for await (const _m of stream) got++ } catch (err) { handlerError = err as Error }
      }, { maxMessageBytes: 1024 })
      await run(async () => {
        const s = await a.net.openStream(c.contact, '/suite/small-stream/1', { maxMessageBytes: 4096 })
        assertCode(await errorOf(s.send(new Uint8Array(5000))), 'OHT_MESSAGE_TOO_LARGE', 'over our own limit')
        await s.send(new Uint8Array(100))
        await s.send(new Uint8Array(3000)) // within ours, over the receiver's
        const err = await errorOf((async () => { for (let i = 0; i < 50; i++) { await s.send(new Uint8Array(10)); await fx.sleep(100) } await readAll(s) })())
        assertCode(err, 'OHT_MESSAGE_TOO_LARGE', 'the sender learns why its stream ended')
        for (let i = 0; i < 100 && handlerError === undefined; i++) await fx.sleep(100)
        assert.ok(handlerError !== undefined, 'the receiver\'s iteration failed')
        assertCode(handlerError, 'OHT_MESSAGE_TOO_LARGE', 'receiver side')
        assert.equal(got, 1, 'the message before the oversized one was delivered')
      })
    })

    it('timeout and abort: CORE_TIMEOUT after timeoutMs, CORE_ABORTED on the signal, and the handler\'s signal aborts once the requester went away', { timeout }, async () => {
      let handlerCalls = 0
      let handlerAborted = 0
      b.net.handle('/suite/never/1', async (_from, _body, { signal }) => {
        handlerCalls++
        await new Promise<void>((resolve) => { signal?.addEventListener('abort', () => { resolve() }, { once: true }) })
        handlerAborted++
        return new Uint8Array(0)
      })
      const until = async (cond: () => boolean): Promise<void> => { for (let i = 0; i < 200 && !cond(); i++) await fx.sleep(100) }
      await run(async () => {
        // long enough for the request to arrive on every implementation, so its handler runs
        assertCode(await errorOf(a.net.request(b.contact, '/suite/never/1', Uint8Array.of(1), { timeoutMs: 4_000 })), 'CORE_TIMEOUT', 'timeoutMs')
        const ctl = new AbortController()
        const pending = a.net.request(b.contact, '/suite/never/1', Uint8Array.of(2), { signal: ctl.signal })
        pending.catch(() => {})
        await until(() => handlerCalls === 2)
        assert.equal(handlerCalls, 2, 'both requests reached the handler')
        ctl.abort()
        assertCode(await errorOf(pending), 'CORE_ABORTED', 'signal')
        assertCode(await errorOf(a.net.request(b.contact, '/suite/echo/1', Uint8Array.of(3), { signal: AbortSignal.abort() })), 'CORE_ABORTED', 'an already aborted signal')
        assertCode(await errorOf(a.net.openStream(b.contact, '/suite/echo-stream/1', { signal: AbortSignal.abort() })), 'CORE_ABORTED', 'openStream with an aborted signal')
        await until(() => handlerAborted === 2)
        assert.equal(handlerAborted, 2, 'both handlers saw their requester go away')
      })
    })

    it('a peer that went away: requests and streams fail with a code instead of hanging', { timeout }, async () => {
      const gone = await fx.unreachable()
      await run(async () => {
        assertCode(await errorOf(a.net.request(gone, '/suite/echo/1', Uint8Array.of(1), { timeoutMs: 8_000 })), fx.unreachableCodes, 'request')
        assertCode(await errorOf(a.net.openStream(gone, '/suite/echo-stream/1', { timeoutMs: 8_000 })), fx.unreachableCodes, 'openStream')
      })
    })

    it('a stream keeps order: 300 messages of varied sizes echo back in order, then both sides close', { timeout }, async () => {
      await run(async () => {
        const rng = new SeededRng('order')
        const sent = Array.from({ length: 300 }, (_, i) => message(rng, i))
        const s = await a.net.openStream(b.contact, '/suite/echo-stream/1')
        assert.ok(sameBytes(s.remote.publicKey, b.contact.publicKey), 'the opener\'s stream names the authenticated peer')
        assert.equal(s.protocol, '/suite/echo-stream/1')
        const reading = readAll(s)
        for (const m of sent) await s.send(m)
        await s.close()
        const echoed = await reading
        assert.equal(echoed.length, sent.length)
        for (let i = 0; i < sent.length; i++) assert.ok(sameBytes(echoed[i], sent[i]), `message ${i} came back intact and in place`)
        assertCode(await errorOf(s.send(Uint8Array.of(1))), 'OHT_STREAM_CLOSED', 'send after close')
      })
    })

    it('back-pressure: a sender stalls while the receiver does not read, then resumes and everything arrives in order', { timeout: timeout * 2 }, async () => {
      let release: () => void = () => {}
      const released = new Promise<void>((resolve) => { release = resolve })
      let received: Uint8Array[] = []
      let handlerDone: Promise<void> | undefined
      c.net.handleStream('/suite/slow-reader/1', async (stream) => {
        handlerDone = (async () => {
          await released
          received = await readAll(stream)
        })()
        await handlerDone
      }, { maxMessageBytes: 16_384 + 8 })
      await run(async () => {
        const s = await a.net.openStream(c.contact, '/suite/slow-reader/1', { maxMessageBytes: 16_384 + 8 })
        let sent = 0
        const payload = (i: number): Uint8Array => { const m = new Uint8Array(16_384 + 4).fill(i & 0xff); new DataView(m.buffer).setUint32(0, i); return m }
        const sending = (async () => { for (let i = 0; i < bulk; i++) { await s.send(payload(i)); sent++ } await s.close() })()
        sending.catch(() => {})
        // wait until the sender makes no more progress
        let last = -1
        while (sent !== last && sent < bulk) { last = sent; await fx.sleep(stallMs) }
        assert.ok(sent < bulk, `the sender never stalled: all ${bulk} messages (${bulk * 16} KiB) were taken with nobody reading`)
        assert.ok(sent > 0, 'the sender got nothing out at all')
        const stalledAt = sent
        release()
        await sending
        await handlerDone
        assert.equal(received.length, bulk, `all ${bulk} messages arrived once the reader read (the sender had stalled at ${stalledAt})`)
        for (let i = 0; i < bulk; i++) assert.equal(new DataView(received[i].buffer, received[i].byteOffset).getUint32(0), i, `message ${i} in order`)
      })
    })

    it('half-close: the handler\'s iteration ends after the opener\'s last message, and it can still answer', { timeout }, async () => {
      let seen: string[] = []
      c.net.handleStream('/suite/half-close/1', async (stream, from) => {
        seen = (await readAll(stream)).map(text)
        await stream.send(bytes(`got ${seen.length}`))
        await stream.send(bytes(sameBytes(from.publicKey, stream.remote.publicKey) ? 'from=remote' : 'from!=remote'))
        await stream.close()
      })
      await run(async () => {
        const s = await a.net.openStream(c.contact, '/suite/half-close/1')
        for (const m of ['one', 'two', 'three']) await s.send(bytes(m))
        await s.close()
        await s.close() // twice is harmless
        const replies = (await readAll(s)).map(text)
        assert.deepEqual(seen, ['one', 'two', 'three'])
        assert.deepEqual(replies, ['got 3', 'from=remote'])
      })
    })

    it('a side that closed still takes everything the peer sends: 4 MiB after our close(), in order', { timeout: timeout * 2 }, async () => {
      const chunk = 16_384
      const count = 256
      c.net.handleStream('/suite/after-close/1', async (stream) => {
        for await (const _m of stream) {}
        for (let i = 0; i < count; i++) { const m = new Uint8Array(chunk).fill(i & 0xff); new DataView(m.buffer).setUint32(0, i); await stream.send(m) }
        await stream.close()
      }, { maxMessageBytes: chunk })
      await run(async () => {
        const s = await a.net.openStream(c.contact, '/suite/after-close/1', { maxMessageBytes: chunk })
        await s.close()
        const got = await readAll(s)
        assert.equal(got.length, count)
        got.forEach((m, i) => { assert.equal(new DataView(m.buffer, m.byteOffset).getUint32(0), i) })
      })
    })

    it('abort from either side: the other end fails instead of hanging; local calls reject with the abort\'s error', { timeout }, async () => {
      let handlerError: (Error & { code?: string, remote?: boolean }) | undefined
      let handlerStream: PeerStream | undefined
      c.net.handleStream('/suite/abort/1', async (stream) => {
        handlerStream = stream
        try {
          for await (const m of stream) {
            if (text(m) === 'abort yourself') { stream.abort(new OhtError('OHT_QUOTA', 'the handler gave up')); return }
          }
        } catch (err) { handlerError = err as Error }
      })
      await run(async () => {
        // 1. the opener aborts while the handler waits for a message
        const s1 = await a.net.openStream(c.contact, '/suite/abort/1')
        await s1.send(bytes('hi'))
        await fx.sleep(200)
        const mine = new OhtError('OHT_BAD_ARGUMENT', 'changed my mind')
        const pendingRead = s1[Symbol.asyncIterator]().next()
        s1.abort(mine)
        assert.equal(await errorOf(pendingRead), mine, 'a pending local read rejects with the abort\'s error')
        assert.equal(await errorOf(s1.send(Uint8Array.of(1))), mine, 'a later send too')
        for (let i = 0; i < 100 && handlerError === undefined; i++) await fx.sleep(100)
        assert.ok(handlerError !== undefined, 'the handler\'s read failed')
        assertCode(handlerError, 'OHT_BAD_ARGUMENT', 'the abort\'s code reaches the peer')
        assert.equal(handlerError.remote, true)
        // 2. the handler aborts: the opener's reads and sends fail
        const s2 = await a.net.openStream(c.contact, '/suite/abort/1')
        await s2.send(bytes('abort yourself'))
        const readErr = await errorOf(readAll(s2))
        assertCode(readErr, 'OHT_QUOTA', 'the opener sees the handler\'s code')
        assertCode(await errorOf(s2.send(Uint8Array.of(1))), 'OHT_QUOTA', 'and its sends fail')
        assert.ok(handlerStream !== undefined)
      })
    })

    it('a handler that returns closes its stream; one that throws resets it with its code', { timeout }, async () => {
      c.net.handleStream('/suite/short/1', async (stream) => {
        const first = await stream[Symbol.asyncIterator]().next()
        if (!first.done && text(first.value) === 'throw') throw new OhtError('OHT_QUOTA', 'no more streams today')
        if (!first.done && text(first.value) === 'crash') throw new Error('a bug with secrets')
        await stream.send(bytes('bye'))
      })
      await run(async () => {
        const s = await a.net.openStream(c.contact, '/suite/short/1')
        await s.send(bytes('hello'))
        assert.deepEqual((await readAll(s)).map(text), ['bye'], 'the opener\'s iteration ends when the handler returns')
        await s.close()
        const t = await a.net.openStream(c.contact, '/suite/short/1')
        await t.send(bytes('throw'))
        assertCode(await errorOf(readAll(t)), 'OHT_QUOTA', 'a coded handler error')
        const u = await a.net.openStream(c.contact, '/suite/short/1')
        await u.send(bytes('crash'))
        const crash = await errorOf(readAll(u))
        assertCode(crash, 'OHT_PEER_FAILED', 'an uncoded handler error')
        assert.doesNotMatch(crash.message, /secrets/)
      })
    })

    it('many concurrent streams and requests to one peer: 24 streams and 24 requests at once (within the default cap of 32), each answered right', { timeout: timeout * 2 }, async () => {
      await run(async () => {
        const streams = await Promise.all(Array.from({ length: 24 }, async (_, k) => {
          const s = await a.net.openStream(b.contact, '/suite/echo-stream/1')
          const reading = readAll(s)
          for (let i = 0; i < 20; i++) await s.send(bytes(`${k}:${i}`))
          await s.close()
          return { k, echoed: (await reading).map(text) }
        }))
        for (const { k, echoed } of streams) assert.deepEqual(echoed, Array.from({ length: 20 }, (_, i) => `${k}:${i}`), `stream ${k}`)
        const replies = await Promise.all(Array.from({ length: 24 }, async (_, i) => await a.net.request(b.contact, '/suite/echo/1', bytes(`r${i}`))))
        replies.forEach((r, i) => { assert.equal(text(r.subarray(32).reverse()), `r${i}`) })
      })
    })

    it('a per-peer inbound cap: more concurrent streams or requests from one peer than allowed are refused with OHT_RATE_LIMITED', { timeout }, async () => {
      let release: () => void = () => {}
      const hold = new Promise<void>((resolve) => { release = resolve })
      let inRequests = 0
      c.net.handleStream('/suite/capped/1', async (stream) => { await hold; await stream.close() }, { maxInboundPerPeer: 2 })
      c.net.handle('/suite/capped-req/1', async () => { inRequests++; await hold; return Uint8Array.of(1) }, { maxInboundPerPeer: 2 })
      await run(async () => {
        const s1 = await a.net.openStream(c.contact, '/suite/capped/1')
        const s2 = await a.net.openStream(c.contact, '/suite/capped/1')
        const third = await errorOf(a.net.openStream(c.contact, '/suite/capped/1'))
        assertCode(third, 'OHT_RATE_LIMITED', 'third concurrent stream')
        // another peer has its own allowance
        const other = await b.net.openStream(c.contact, '/suite/capped/1')
        const r1 = a.net.request(c.contact, '/suite/capped-req/1', Uint8Array.of(1))
        const r2 = a.net.request(c.contact, '/suite/capped-req/1', Uint8Array.of(2))
        for (let i = 0; i < 200 && inRequests < 2; i++) await fx.sleep(100)
        assert.equal(inRequests, 2, 'two requests are in the handler')
        assertCode(await errorOf(a.net.request(c.contact, '/suite/capped-req/1', Uint8Array.of(3))), 'OHT_RATE_LIMITED', 'third concurrent request')
        release()
        await Promise.all([r1, r2])
        for (const s of [s1, s2, other]) { await s.close(); await readAll(s) }
        await fx.sleep(2_000) // the peer's side has seen our close too
        // once they ended, new ones are welcome again
        const again = await a.net.openStream(c.contact, '/suite/capped/1')
        await again.close()
        await readAll(again)
      })
    })
  })
}
