/**
 * Scramble nodes over an in-memory PeerNet: delivery through 0-3 relays, what each relay sees,
 * SURB replies and their single use, replays on the wire, garbage, rate limits, key rotation
 * with its overlap window, failures and path rebuilding.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng, toHex } from '../../src/core/index.ts'
import {
  createPacket, decodeHopResponse, encodeInner, HOP_PROTOCOL, isScrambleError, MAX_MESSAGE_BYTES, PACKET_BYTES, readReport, usableKey
} from '../../src/scramble-routing/index.ts'
import { scrambleNet, str, text, type ScrambleNet } from './scramble-helpers.ts'

const HOUR = 3_600_000

async function rejectsWith (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => { assert.equal((err as { code?: string }).code, code, String(err)); return true })
}

/** Hex identity of the node listening at `addr` in this testnet. */
function who (s: ScrambleNet, addr: string): string {
  const n = s.all.find(t => t.contact.addrs[0] === addr)
  return n === undefined ? addr : toHex(n.identity.publicKey)
}

describe('scramble nodes', () => {
  for (let hops = 0; hops <= 3; hops++) {
    it(`delivers through ${hops} relay(s); each relay on the path forwards exactly once`, async () => {
      const s = await scrambleNet({ relays: 6, endpoints: 2, seed: `deliver-${hops}` })
      const [alice, bob] = s.endpoints
      const sent = await alice.node.send(text(`hello over ${hops}`), { recipient: bob.contact, hops })
      assert.equal(sent.attempts, 1)
      assert.equal(sent.path.length, hops)
      assert.deepEqual(bob.inbox.map(str), [`hello over ${hops}`])
      const onPath = new Set(sent.path.map(toHex))
      for (const r of s.relays) {
        assert.equal(r.node.stats.forwarded, onPath.has(toHex(r.identity.publicKey)) ? 1 : 0)
      }
      assert.equal(bob.node.stats.delivered, 1)
      assert.equal(alice.node.stats.sent.delivered, 1)
      await s.stop()
    })
  }

  it('what relays see: with 2+ relays none sees both ends, every hop sees different bytes, and only the full set links them', async () => {
    const s = await scrambleNet({ relays: 8, endpoints: 2, seed: 'observer' })
    const [alice, bob] = s.endpoints
    const A = toHex(alice.identity.publicKey)
    const B = toHex(bob.identity.publicKey)
    for (const hops of [2, 3]) {
      s.net.observe = true
      s.net.observed.length = 0
      const sent = await alice.node.send(text('who am I'), { recipient: bob.contact, hops })
      s.net.observe = false
      const packets = s.net.observed.filter(o => o.protocol === HOP_PROTOCOL)
      assert.equal(packets.length, hops + 1)
      // A relay's view: the peer that handed it the packet and the peer it handed it on to.
      const views = new Map<string, Set<string>>()
      for (const o of packets) {
        const to = toHex(o.to.publicKey)
        const from = toHex(o.from.publicKey)
        if (!views.has(to)) views.set(to, new Set())
        if (!views.has(from)) views.set(from, new Set())
        views.get(to)?.add(from)
        views.get(from)?.add(to)
      }
      for (const relay of sent.path.map(toHex)) {
        const v = views.get(relay) ?? new Set()
        assert.ok(!(v.has(A) && v.has(B)), `relay ${relay.slice(0, 8)} saw both ends with ${hops} hops`)
      }
      // Bitwise unlinkability: no two hops received equal bytes, or equal runs of 32 bytes.
      const seen = new Set<string>()
      for (const o of packets) {
        for (let off = 0; off + 32 <= PACKET_BYTES; off += 32) {
          const chunk = toHex(o.body.subarray(off, off + 32)) + '@' + String(off)
          assert.ok(!seen.has(chunk), 'two hops saw the same 32 bytes at the same place')
          seen.add(chunk)
        }
      }
      // Each relay sees exactly its two neighbours on the path: r1 {A, r2}, r2 {r1, r3}, r3 {r2, B}.
      // Relays off the path see nothing. Linking A to B takes every relay's view, chained.
      const chain = [A, ...sent.path.map(toHex), B]
      for (let i = 1; i < chain.length - 1; i++) {
        assert.deepEqual([...(views.get(chain[i]) ?? [])].sort(), [chain[i - 1], chain[i + 1]].sort(), `view of hop ${i}`)
      }
      for (const r of s.relays) {
        const id = toHex(r.identity.publicKey)
        if (!chain.includes(id)) assert.equal(views.get(id), undefined, 'a relay off the path saw the packet')
      }
    }
    await s.stop()
  })

  it('a SURB reply reaches the sender; a second reply is refused locally and a replayed reply packet on the wire is dropped', async () => {
    const s = await scrambleNet({ relays: 6, endpoints: 2, seed: 'surb' })
    const [alice, bob] = s.endpoints
    const replies: Array<(m: Uint8Array) => Promise<void>> = []
    bob.node.onMessage(({ message, canReply, reply }) => {
      assert.equal(canReply, true)
      bob.inbox.push(message)
      replies.push(reply)
    })
    const sent = await alice.node.send(text('ping'), { recipient: bob.contact, hops: 2, reply: true })
    assert.ok(sent.reply !== undefined)
    s.net.observe = true
    await replies[0](text('pong'))
    s.net.observe = false
    assert.equal(str(await (sent.reply as Promise<Uint8Array>)), 'pong')
    assert.equal(alice.node.stats.repliesReceived, 1)
    await rejectsWith(replies[0](text('pong again')), 'SCRAMBLE_SURB_USED')
    // Replay the reply packet exactly as bob sent it to the SURB's first hop.
    const first = s.net.observed.find(o => o.protocol === HOP_PROTOCOL && toHex(o.from.publicKey) === toHex(bob.identity.publicKey))
    assert.ok(first !== undefined)
    const firstHop = s.all.find(t => toHex(t.identity.publicKey) === toHex(first.to.publicKey))
    assert.ok(firstHop !== undefined)
    const before = firstHop.node.stats.dropped.replay
    const replayer = s.net.endpoint({ publicKey: new Uint8Array(32).fill(9), addrs: ['mem:replayer'] })
    const r = decodeHopResponse(await replayer.request(first.to, HOP_PROTOCOL, first.body))
    assert.equal(r.kind, 'dropped')
    assert.equal(firstHop.node.stats.dropped.replay, before + 1)
    assert.equal(alice.node.stats.repliesReceived, 1, 'the reply was taken once')
    await s.stop()
  })

  it('a SURB reply through 0 relays each way works too (a direct exchange)', async () => {
    const s = await scrambleNet({ relays: 0, endpoints: 2, seed: 'surb-0' })
    const [alice, bob] = s.endpoints
    bob.node.onMessage(async ({ message, reply }) => { await reply(text(str(message).toUpperCase())) })
    const sent = await alice.node.send(text('shout'), { recipient: bob.contact, hops: 0, reply: true })
    assert.equal(str(await (sent.reply as Promise<Uint8Array>)), 'SHOUT')
    await s.stop()
  })

  it('a replayed forward packet is dropped at the relay and counted; the recipient gets the message once', async () => {
    const s = await scrambleNet({ relays: 4, endpoints: 2, seed: 'replay-wire' })
    const [alice, bob] = s.endpoints
    s.net.observe = true
    await alice.node.send(text('once'), { recipient: bob.contact, hops: 1 })
    s.net.observe = false
    const toRelay = s.net.observed[0]
    const relay = s.all.find(t => toHex(t.identity.publicKey) === toHex(toRelay.to.publicKey))
    assert.ok(relay?.node.stats.forwarded === 1)
    const attacker = s.net.endpoint({ publicKey: new Uint8Array(32).fill(3), addrs: ['mem:attacker'] })
    const r = decodeHopResponse(await attacker.request(toRelay.to, HOP_PROTOCOL, toRelay.body))
    assert.equal(r.kind, 'dropped')
    assert.equal(relay.node.stats.dropped.replay, 1)
    assert.equal(bob.inbox.length, 1)
    await s.stop()
  })

  it('a relay drops garbage of every size and counts it, without throwing', async () => {
    const s = await scrambleNet({ relays: 1, endpoints: 0, seed: 'garbage' })
    const relay = s.relays[0]
    const peer = s.net.endpoint({ publicKey: new Uint8Array(32).fill(1), addrs: ['mem:g'] })
    const rng = new SeededRng('garbage-bytes')
    const inputs = [new Uint8Array(0), rng.bytes(1), rng.bytes(PACKET_BYTES - 1), rng.bytes(PACKET_BYTES), new Uint8Array(PACKET_BYTES)]
    const wrongVersion = rng.bytes(PACKET_BYTES); wrongVersion[0] = 2
    inputs.push(wrongVersion)
    const rightVersion = rng.bytes(PACKET_BYTES); rightVersion[0] = 1; rightVersion[1] = 0
    inputs.push(rightVersion)
    for (const b of inputs) assert.equal(decodeHopResponse(await peer.request(relay.contact, HOP_PROTOCOL, b)).kind, 'dropped')
    const d = relay.node.stats.dropped
    assert.equal(relay.node.stats.packetsIn, inputs.length)
    assert.equal(d.malformed + d.badMac + d.badPoint, inputs.length)
    assert.ok(d.malformed >= 4 && d.badMac >= 1, JSON.stringify(d))
    await s.stop()
  })

  it('per-peer rate limit: past the burst a peer gets busy, counted; the bucket refills on the clock', async () => {
    const s = await scrambleNet({ relays: 1, endpoints: 0, seed: 'rate', init: { perPeer: { ratePerSecond: 2, burst: 5 } } })
    const relay = s.relays[0]
    const peer = s.net.endpoint({ publicKey: new Uint8Array(32).fill(2), addrs: ['mem:r'] })
    const other = s.net.endpoint({ publicKey: new Uint8Array(32).fill(4), addrs: ['mem:o'] })
    const kinds: string[] = []
    for (let i = 0; i < 8; i++) kinds.push(decodeHopResponse(await peer.request(relay.contact, HOP_PROTOCOL, new Uint8Array(10))).kind)
    assert.deepEqual(kinds, ['dropped', 'dropped', 'dropped', 'dropped', 'dropped', 'busy', 'busy', 'busy'])
    assert.equal(relay.node.stats.dropped.rateLimited, 3)
    assert.equal(decodeHopResponse(await other.request(relay.contact, HOP_PROTOCOL, new Uint8Array(10))).kind, 'dropped', 'another peer has its own bucket')
    await s.clock.advance(1000)
    assert.equal(decodeHopResponse(await peer.request(relay.contact, HOP_PROTOCOL, new Uint8Array(10))).kind, 'dropped', 'refilled after a second')
    await s.stop()
  })

  it('key rotation: a packet built for an epoch is accepted through the overlap window after it, and refused after', async () => {
    const epochMs = HOUR
    const overlapMs = 10 * 60_000
    const s = await scrambleNet({ relays: 1, endpoints: 1, seed: 'rotation', init: { keys: { epochMs, overlapMs } } })
    // Start just before an epoch boundary so the packets' epoch ends soon.
    const toBoundary = epochMs - (s.clock.now() % epochMs)
    const relay = s.relays[0]
    const d = await s.directory.get(relay.identity.publicKey)
    assert.ok(d !== undefined)
    const key = usableKey(d, s.clock.now())
    assert.ok(key !== undefined)
    const rng = new SeededRng('rotation-packets')
    const hop = [{ nodeId: relay.identity.publicKey, publicKey: key.publicKey }]
    const body = encodeInner({ message: text('for the relay itself') })
    const early = createPacket(hop, body, rng)
    const late = createPacket(hop, body, rng)
    const sender = s.net.endpoint({ publicKey: new Uint8Array(32).fill(5), addrs: ['mem:s'] })
    await s.clock.advance(toBoundary + overlapMs - 1000) // next epoch, inside the overlap
    const r1 = decodeHopResponse(await sender.request(relay.contact, HOP_PROTOCOL, early.packet))
    assert.equal(r1.kind, 'report')
    if (r1.kind === 'report') assert.deepEqual(readReport(early.responseKeys, r1.report), { hop: 0, code: 'delivered' }, 'accepted by the old key')
    assert.deepEqual(relay.inbox.map(str), ['for the relay itself'])
    await s.clock.advance(2000) // past the overlap: the old key is destroyed
    assert.equal(decodeHopResponse(await sender.request(relay.contact, HOP_PROTOCOL, late.packet)).kind, 'dropped')
    assert.equal(relay.node.stats.dropped.badMac, 1)
    // The relay republished at the boundary: a new send uses the new epoch's key.
    const d2 = await s.directory.get(relay.identity.publicKey)
    assert.ok(d2 !== undefined && usableKey(d2, s.clock.now()) !== undefined, 'the descriptor has a key for the new epoch')
    await s.stop()
  })

  it('rebuilds the path around a relay that went offline and leaves it out of later paths', async () => {
    const s = await scrambleNet({ relays: 5, endpoints: 2, seed: 'rebuild' })
    const [alice, bob] = s.endpoints
    const down = s.relays.slice(0, 3).map(r => r.contact.addrs[0])
    for (const a of down) s.net.down.add(a)
    const sent = await alice.node.send(text('around'), { recipient: bob.contact, hops: 2 })
    assert.ok(sent.attempts >= 1 && sent.attempts <= 3)
    const downIds = new Set(down.map(a => who(s, a)))
    assert.ok(sent.path.every(id => !downIds.has(toHex(id))), 'the working path avoids the offline relays')
    assert.deepEqual(bob.inbox.map(str), ['around'])
    // Later sends go straight to live relays: the failed ones are remembered.
    for (let i = 0; i < 5; i++) {
      const again = await alice.node.send(text(`again ${i}`), { recipient: bob.contact, hops: 2 })
      assert.ok(again.path.every(id => !downIds.has(toHex(id))))
    }
    await s.stop()
  })

  it('a relay whose next hop is gone reports it; the sender retries and leaves the dead hop out, not the reporter', async () => {
    const s = await scrambleNet({ relays: 3, endpoints: 2, seed: 'blame' })
    const [alice, bob] = s.endpoints
    s.net.observe = true
    // Take one relay down after the directory listed it, so paths still pick it.
    s.net.down.add(s.relays[1].contact.addrs[0])
    let delivered = 0
    for (let i = 0; i < 6; i++) {
      try { await alice.node.send(text('x'), { recipient: bob.contact, hops: 2 }); delivered++ } catch (err) {
        assert.ok(isScrambleError(err))
      }
    }
    assert.equal(delivered, 6, 'with 2 live relays of 3, every send gets through (retry)')
    // One attempt met the dead relay as the second hop; the live first hop reported it, the
    // sender blamed that hop (not the reporter) and no later path used it.
    assert.equal(alice.node.stats.sent.attempts, 7)
    assert.equal(s.relays[0].node.stats.forwardFailures.unreachable + s.relays[2].node.stats.forwardFailures.unreachable, 1)
    assert.equal(s.relays[1].node.stats.packetsIn, 0)
    await s.stop()
  })

  it('the recipient offline ends the send at once with SCRAMBLE_RECIPIENT_UNREACHABLE', async () => {
    const s = await scrambleNet({ relays: 4, endpoints: 2, seed: 'offline' })
    const [alice, bob] = s.endpoints
    s.net.down.add(bob.contact.addrs[0])
    await rejectsWith(alice.node.send(text('x'), { recipient: bob.contact, hops: 2 }), 'SCRAMBLE_RECIPIENT_UNREACHABLE')
    assert.equal(alice.node.stats.sent.attempts, 1, 'no retry: a new path does not bring the recipient back')
    await s.stop()
  })

  it('a slow path times out per hop and the send gives up with SCRAMBLE_DELIVERY_FAILED after its attempts', async () => {
    const s = await scrambleNet({ relays: 2, endpoints: 2, seed: 'silent', init: { forwardTimeoutMs: 1000, sendTimeoutMs: 3000, maxAttempts: 2 } })
    const [alice, bob] = s.endpoints
    for (const r of s.relays) s.net.silent.add(r.contact.addrs[0])
    const p = alice.node.send(text('x'), { recipient: bob.contact, hops: 1 })
    const done = p.then(() => 'ok', (err: unknown) => (err as { code?: string }).code)
    await s.clock.advance(10_000)
    assert.equal(await done, 'SCRAMBLE_DELIVERY_FAILED')
    assert.equal(alice.node.stats.sent.attempts, 2)
    await s.stop()
  })

  it('an endpoint that did not opt in as a relay refuses to forward', async () => {
    const s = await scrambleNet({ relays: 0, endpoints: 3, seed: 'not-relay' })
    const [alice, bob, carol] = s.endpoints
    const dCarol = await s.directory.get(carol.identity.publicKey)
    const dBob = await s.directory.get(bob.identity.publicKey)
    assert.ok(dCarol !== undefined && dBob !== undefined)
    assert.equal(dCarol.relay, false)
    const now = s.clock.now()
    const built = createPacket([
      { nodeId: carol.identity.publicKey, publicKey: (usableKey(dCarol, now) as { publicKey: Uint8Array }).publicKey },
      { nodeId: bob.identity.publicKey, publicKey: (usableKey(dBob, now) as { publicKey: Uint8Array }).publicKey }
    ], new Uint8Array(4), new SeededRng('nr'))
    const peer = s.net.endpoint({ publicKey: alice.identity.publicKey.slice().fill(8), addrs: ['mem:nr'] })
    assert.equal(decodeHopResponse(await peer.request(carol.contact, HOP_PROTOCOL, built.packet)).kind, 'dropped')
    assert.equal(carol.node.stats.dropped.notRelay, 1)
    assert.equal(bob.inbox.length, 0)
    await s.stop()
  })

  it('argument errors come before any network work', async () => {
    const s = await scrambleNet({ relays: 1, endpoints: 2, seed: 'args' })
    const [alice, bob] = s.endpoints
    const before = s.net.requests
    await rejectsWith(alice.node.send(new Uint8Array(MAX_MESSAGE_BYTES + 1), { recipient: bob.contact, hops: 1 }), 'SCRAMBLE_BAD_ARGUMENT')
    await rejectsWith(alice.node.send(new Uint8Array(MAX_MESSAGE_BYTES), { recipient: bob.contact, hops: 1, reply: true }), 'SCRAMBLE_BAD_ARGUMENT')
    await rejectsWith(alice.node.send(text('x'), { recipient: bob.contact, hops: 4 }), 'SCRAMBLE_BAD_ARGUMENT')
    await rejectsWith(alice.node.send(text('x'), { recipient: bob.contact, hops: 2 }), 'SCRAMBLE_NOT_ENOUGH_RELAYS')
    assert.equal(s.net.requests, before)
    await rejectsWith(alice.node.send(text('x'), { recipient: { publicKey: new Uint8Array(32).fill(6), addrs: ['mem:nobody'] }, hops: 0 }), 'SCRAMBLE_NO_RECIPIENT_KEY')
    await s.stop()
  })

  it('a message the recipient\'s consumer refuses is reported as refused, not retried', async () => {
    const s = await scrambleNet({ relays: 3, endpoints: 2, seed: 'refuse' })
    const [alice, bob] = s.endpoints
    bob.node.onMessage(() => { throw new Error('not for me') })
    await rejectsWith(alice.node.send(text('x'), { recipient: bob.contact, hops: 1 }), 'SCRAMBLE_DELIVERY_FAILED')
    assert.equal(alice.node.stats.sent.attempts, 1)
    assert.equal(bob.node.stats.rejected, 1)
    await s.stop()
  })

  it('an unanswered SURB times out on the clock with SCRAMBLE_REPLY_TIMEOUT; stop() fails waiting replies', async () => {
    const s = await scrambleNet({ relays: 2, endpoints: 2, seed: 'reply-timeout', init: { replyTimeoutMs: 60_000 } })
    const [alice, bob] = s.endpoints
    const sent = await alice.node.send(text('anyone?'), { recipient: bob.contact, hops: 1, reply: true })
    const outcome = (sent.reply as Promise<Uint8Array>).then(() => 'ok', (err: unknown) => (err as { code?: string }).code)
    await s.clock.advance(61_000)
    assert.equal(await outcome, 'SCRAMBLE_REPLY_TIMEOUT')
    const second = await alice.node.send(text('again?'), { recipient: bob.contact, hops: 1, reply: true })
    const outcome2 = (second.reply as Promise<Uint8Array>).then(() => 'ok', (err: unknown) => (err as { code?: string }).code)
    await alice.node.stop()
    assert.equal(await outcome2, 'SCRAMBLE_NOT_STARTED')
    await rejectsWith(alice.node.send(text('x'), { recipient: bob.contact, hops: 0 }), 'SCRAMBLE_NOT_STARTED')
    await s.stop()
  })

  it('a send aborted by its signal rejects with CORE_ABORTED and forgets its SURB', async () => {
    const s = await scrambleNet({ relays: 2, endpoints: 2, seed: 'abort' })
    s.net.latencyMs = 1000
    const [alice, bob] = s.endpoints
    const controller = new AbortController()
    const p = alice.node.send(text('x'), { recipient: bob.contact, hops: 1, reply: true, signal: controller.signal })
    const outcome = p.then(() => 'ok', (err: unknown) => (err as { code?: string }).code)
    await s.clock.advance(500)
    controller.abort()
    await s.clock.advance(5000)
    assert.equal(await outcome, 'CORE_ABORTED')
    assert.equal((alice.node as unknown as { pending: Map<string, unknown> }).pending.size, 0, 'no SURB keys left waiting')
    await s.stop()
  })

  it('runs on a network with latency on the fake clock', async () => {
    const s = await scrambleNet({ relays: 4, endpoints: 2, seed: 'latency' })
    s.net.latencyMs = 250
    const [alice, bob] = s.endpoints
    const p = alice.node.send(text('slow'), { recipient: bob.contact, hops: 3 })
    await s.clock.advance(5_000)
    const sent = await p
    assert.equal(sent.attempts, 1)
    assert.deepEqual(bob.inbox.map(str), ['slow'])
    await s.stop()
  })
})
