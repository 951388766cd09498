import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { FakeClock, isCodedError, MINUTE, SECOND, SeededRng } from '../../src/core/index.ts'
import { compareDistance, createOhtNode, decodeResponse, encodeRequest, immutableKey, MSG, type DhtNet } from '../../src/oht/index.ts'
import { makeIdentity, testnet } from './oht-helpers.ts'

describe('unresponsive peers', () => {
  it('a lookup completes past silent peers after their timeouts and returns only live peers, the closest first', async () => {
    const t = await testnet({ size: 24, seed: 'silent', init: { requestTimeout: { initialMs: 2 * SECOND, minMs: 500, maxMs: 5 * SECOND } } })
    const silent = t.nodes.slice(10, 16)
    for (const n of silent) t.bus.silent.add(n.contact.addrs[0])
    const target = new Uint8Array(32).fill(0x33)
    const asker = t.nodes[2]
    const live = t.nodes.filter(n => n !== asker && !silent.includes(n)).map(n => n.id).sort((a, b) => compareDistance(a, b, target)).slice(0, 20)
    let done = false
    const p = asker.findClosest(target).then((r) => { done = true; return r })
    await t.advance(30 * SECOND, 500)
    assert.ok(done, 'lookup did not finish')
    const found = (await p).map(c => Buffer.from(t.nodes.find(n => Buffer.compare(n.contact.publicKey, c.publicKey) === 0)?.id ?? []).toString('hex'))
    const hex = live.map(id => Buffer.from(id).toString('hex'))
    // Kademlia's guarantee: peers are ranked by what the k closest answers reveal, so with s
    // silent peers among them the first k - s live ones are exact.
    assert.deepEqual(found.slice(0, 20 - silent.length), hex.slice(0, 20 - silent.length))
    for (const id of found) assert.ok(hex.includes(id), 'a silent peer was returned')
    assert.ok(asker.stats.timeouts >= 1)
    await t.stop()
  })

  it('peers that keep failing leave the routing table; peers that answer stay', async () => {
    // unreachableForMs shorter than the gap between lookups: each one asks the dead peer again.
    const t = await testnet({ size: 12, seed: 'evict', init: { maxFailures: 2, unreachableForMs: 5 * SECOND, requestTimeout: { initialMs: SECOND, minMs: 100, maxMs: 2 * SECOND } } })
    const dead = t.nodes[7]
    const asker = t.nodes[1]
    assert.ok(asker.routingTable.has(dead.id))
    t.bus.silent.add(dead.contact.addrs[0])
    for (let i = 0; i < 3; i++) {
      const p = asker.findClosest(dead.id)
      await t.advance(10 * SECOND, 250)
      await p
    }
    assert.equal(asker.routingTable.has(dead.id), false, 'dead peer evicted')
    assert.ok(asker.routingTable.has(t.nodes[3].id), 'live peers kept')
    await t.stop()
  })

  it('a peer that just failed is not asked again by lookups for unreachableForMs, whoever names it', async () => {
    const t = await testnet({ size: 12, seed: 'unreachable', init: { unreachableForMs: 60 * SECOND, requestTimeout: { initialMs: SECOND, minMs: 100, maxMs: 2 * SECOND } } })
    const dead = t.nodes[7]
    const asker = t.nodes[1]
    t.bus.silent.add(dead.contact.addrs[0])
    const asked = (): number => t.bus.delivered.get(dead.contact.addrs[0]) ?? 0
    let p = asker.findClosest(dead.id)
    await t.advance(10 * SECOND, 250)
    await p
    const first = asked()
    assert.ok(first >= 1, 'the first lookup asked the dead peer')
    // Within the window: the others still name it in their answers, but it is not asked.
    for (let i = 0; i < 3; i++) {
      p = asker.findClosest(dead.id)
      await t.advance(10 * SECOND, 250)
      await p
    }
    assert.equal(asked(), first, 'asked again within unreachableForMs')
    // After the window it gets another chance (it may have come back).
    await t.advance(60 * SECOND, 1000)
    p = asker.findClosest(dead.id)
    await t.advance(10 * SECOND, 250)
    await p
    assert.ok(asked() > first, 'never asked again after the window')
    await t.stop()
  })

  it('a request waiting for its answer no longer holds the frame it sent', async () => {
    // Frames are views into shared slabs (allocFrame): one held for a request's whole wait kept
    // its slab past the young generation. The transport here holds nothing but a WeakRef.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const rng = new SeededRng('frame-hold')
    const clock = new FakeClock()
    const sent: Array<WeakRef<Uint8Array>> = []
    let waiting = 0
    // Never answered: ends when the caller gives up (its signal) or at a far deadline.
    const unanswered = (signal?: AbortSignal): Promise<Uint8Array> => new Promise<Uint8Array>((_resolve, reject) => {
      const end = (): void => { waiting--; reject(new Error('no answer')) }
      signal?.addEventListener('abort', end, { once: true })
      clock.setTimeout(end, 10 * MINUTE)
    })
    const net: DhtNet = {
      request (_to, frame, options = {}) { // not async: nothing here outlives the call but a WeakRef
        sent.push(new WeakRef(frame))
        waiting++
        return unanswered(options.signal)
      },
      handle () {}
    }
    const node = createOhtNode({ addrs: ['mem:0'] }, { identity: makeIdentity(rng), net, clock, rng })
    await node.start()
    const peer = makeIdentity(rng)
    const booting = node.bootstrap([{ publicKey: peer.publicKey, addrs: ['mem:1'] }]).catch(() => undefined)
    for (let i = 0; i < 5 && waiting === 0; i++) await new Promise(resolve => setImmediate(resolve))
    assert.ok(waiting > 0, 'a request is waiting')
    await new Promise(resolve => setImmediate(resolve)) // WeakRef targets stay alive until the job ends
    gc()
    assert.equal(sent.filter(r => r.deref() !== undefined).length, 0, 'a waiting request still holds its frame')
    await node.stop()
    await booting
  })

  it('bootstrap with no reachable peer fails with OHT_NO_PEERS; aborting a lookup rejects it', async () => {
    const t = await testnet({ size: 3, seed: 'boot', bootstrap: false })
    await assert.rejects(t.nodes[0].bootstrap([{ publicKey: new Uint8Array(32).fill(1), addrs: ['mem:nowhere'] }]), (e) => isCodedError(e, 'OHT_NO_PEERS'))
    assert.deepEqual(await t.nodes[0].bootstrap([]), { peers: 0 })
    await t.nodes[1].bootstrap([t.nodes[0].contact])
    t.bus.silent.add(t.nodes[0].contact.addrs[0])
    const ac = new AbortController()
    const p = t.nodes[1].findClosest(new Uint8Array(32), { signal: ac.signal })
    ac.abort()
    await assert.rejects(p, (e) => isCodedError(e, 'CORE_ABORTED'))
    await t.stop()
  })

  it('a stopped node refuses API calls with OHT_NOT_STARTED and answers requests with an error frame', async () => {
    const t = await testnet({ size: 3, seed: 'stopped' })
    await t.nodes[2].stop()
    await assert.rejects(t.nodes[2].get(new Uint8Array(32)), (e) => isCodedError(e, 'OHT_NOT_STARTED'))
    await assert.rejects(t.nodes[2].putImmutable(new Uint8Array(3)), (e) => isCodedError(e, 'OHT_NOT_STARTED'))
    const res = await t.bus.endpoint(t.nodes[0].contact).request(t.nodes[2].contact, encodeRequest({ type: 'ping', addrs: [] }))
    const decoded = decodeResponse(res)
    assert.equal(decoded.type === 'error' ? decoded.code : decoded.type, 'OHT_NOT_STARTED')
    await t.stop()
  })
})

describe('churn resilience', () => {
  it('a PUT that gets no answer hands its slot to the next-closest peer that answered the lookup', async () => {
    const t = await testnet({ size: 12, seed: 'topup', init: { k: 4, requestTimeout: { initialMs: SECOND, minMs: 100, maxMs: 2 * SECOND } } })
    const value = new TextEncoder().encode('top me up')
    const key = immutableKey(value)
    const writer = t.nodes[0]
    const ranked = t.nodes.filter(n => n !== writer).sort((a, b) => compareDistance(a.id, b.id, key))
    const mute = ranked[1]
    // `mute` answers the lookup but never answers the PUT (it died in between, say).
    t.bus.hangIf = (to, frame) => to.addrs[0] === mute.contact.addrs[0] && frame[1] === MSG.PUT
    let result: Awaited<ReturnType<typeof writer.putImmutable>> | undefined
    const p = writer.putImmutable(value).then((r) => { result = r })
    await t.advance(10 * SECOND, 250)
    await p
    assert.ok(result !== undefined)
    const selfAmongClosest = compareDistance(writer.id, ranked[3].id, key) < 0
    assert.equal(result.stored, 4, `stored ${result.stored}`)
    assert.ok(result.errors.some(e => e.code === 'CORE_TIMEOUT'))
    assert.equal(mute.store.get(key), undefined)
    const expectHolders = selfAmongClosest ? 3 : 4
    assert.equal(ranked.slice(0, 5).filter(n => n.store.get(key) !== undefined).length, expectHolders, 'the fifth closest took the mute peer\'s slot')
    await t.stop()
  })

  it('contacts whose last request failed are left out of answers until they answer again', async () => {
    const t = await testnet({ size: 10, seed: 'hide-dead' })
    const [a, dead, asker] = [t.nodes[1], t.nodes[4], t.nodes[6]]
    const answerFrom = async (): Promise<string[]> => {
      const res = decodeResponse(await t.bus.endpoint(asker.contact).request(a.contact, encodeRequest({ type: 'find-node', addrs: asker.contact.addrs, target: dead.id })))
      return res.type === 'nodes' ? res.contacts.map(c => Buffer.from(c.id).toString('hex')) : []
    }
    const deadHex = Buffer.from(dead.id).toString('hex')
    assert.ok((await answerFrom()).includes(deadHex))
    a.routingTable.markFailed(dead.id)
    assert.ok(!(await answerFrom()).includes(deadHex), 'a failed contact is not vouched for')
    assert.ok(a.routingTable.has(dead.id), 'but it is not evicted after one failure')
    await a.bootstrap([dead.contact]) // it answers a ping: back in answers
    assert.ok((await answerFrom()).includes(deadHex))
    await t.stop()
  })

  it('a silent neighbour is probed and hidden from answers within the probe period', async () => {
    const t = await testnet({ size: 10, seed: 'probe', init: { probeAfterMs: 5 * MINUTE, probeIntervalMs: MINUTE, requestTimeout: { initialMs: SECOND, minMs: 100, maxMs: 2 * SECOND } } })
    const a = t.nodes[2]
    const near = a.routingTable.closest(a.id, 1)[0]
    const neighbour = t.nodes.find(n => Buffer.compare(n.id, near.id) === 0)
    assert.ok(neighbour !== undefined)
    await neighbour.stop() // gone for good: it neither answers nor sends
    t.bus.silent.add(neighbour.contact.addrs[0])
    await t.advance(30 * MINUTE, 5000)
    assert.ok((a.routingTable.get(neighbour.id)?.failures ?? 3) > 0 || !a.routingTable.has(neighbour.id), 'dead neighbour not detected')
    assert.ok(a.stats.requestsOut.ping > 0)
    await t.stop()
  })
})

describe('who gets into routing tables', () => {
  it('a client (no declared addresses) is answered but never routed to', async () => {
    const t = await testnet({ size: 6, seed: 'client' })
    const identity = makeIdentity(new SeededRng('client-id'))
    const client = createOhtNode({ addrs: [] }, { identity, net: t.bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:client'] }), clock: t.clock, rng: new SeededRng('client-rng') })
    await client.start()
    const boot = await client.bootstrap([t.nodes[0].contact])
    assert.ok(boot.peers >= 5, 'the client learns the network')
    const put = await client.putImmutable(new TextEncoder().encode('from a client'))
    assert.ok(put.stored >= 5)
    for (const n of t.nodes) assert.equal(n.routingTable.has(client.id), false, 'no server routes to the client')
    await client.stop()
    await t.stop()
  })

  it('a peer that answers with a malformed frame is dropped from the routing table', async () => {
    const t = await testnet({ size: 6, seed: 'garbage' })
    const [asker, liar] = [t.nodes[1], t.nodes[3]]
    assert.ok(asker.routingTable.has(liar.id))
    t.bus.handlers.set(liar.contact.addrs[0], { contact: liar.contact, handler: async () => Uint8Array.of(1, 0x82, 0xff, 0xff) })
    await asker.findClosest(liar.id)
    assert.equal(asker.routingTable.has(liar.id), false)
    assert.ok(asker.stats.badFrames >= 1)
    await t.stop()
  })
})
