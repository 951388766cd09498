/**
 * PeerNet on the simulator: the shared compliance suite on virtual time, then what only a
 * simulator can show: virtual latency, loss as delay on streams, the bounded window, crashes
 * and partitions breaking streams (the other end fails, nothing hangs), and replay on a seed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng } from '../../src/core/index.ts'
import { createSimulation, uniformLatency, constantLatency, type SimHost, type SimNetworkInit, type Simulation } from '../../src/netsim/index.ts'
import type { PeerNet, PeerStream } from '../../src/oht/index.ts'
import { peerNetSuite } from '../helpers/peer-net-suite.ts'

let keySeq = 0
const key = (): Uint8Array => new SeededRng(`key-${keySeq++}`).bytes(32)

/** The compile-time check that the simulator's PeerNet has the seam's shape. */
function asPeerNet (host: SimHost): PeerNet { return host.peers }

// Without loss: the suite's requests must all arrive (loss is tested on its own below).
peerNetSuite('simulator (uniform 20–120 ms one way, offline peers refused)', async () => {
  const sim = createSimulation({ seed: 'peer-net-suite', network: { latency: uniformLatency(20, 120), unreachable: 'refuse' } })
  return {
    endpoint: async () => { const h = sim.addHost({ publicKey: key() }); return { net: asPeerNet(h), contact: h.contact } },
    run: async (f) => await sim.settle(f(), { maxMs: 3_600_000 }),
    sleep: async (ms) => { await sim.clock.sleep(ms) },
    unreachable: async () => { const h = sim.addHost({ publicKey: key() }); sim.network.crash(h); return h.contact },
    unreachableCodes: ['OHT_PEER_UNREACHABLE'],
    close: async () => { sim.scheduler.clear() }
  }
})

peerNetSuite('simulator (Tor-like round trips, unanswered offline peers)', async () => {
  const sim = createSimulation({ seed: 'peer-net-suite-tor', network: { latency: uniformLatency(150, 1500) } })
  return {
    endpoint: async () => { const h = sim.addHost({ publicKey: key() }); return { net: asPeerNet(h), contact: h.contact } },
    run: async (f) => await sim.settle(f(), { maxMs: 3_600_000 }),
    sleep: async (ms) => { await sim.clock.sleep(ms) },
    unreachable: async () => { const h = sim.addHost({ publicKey: key() }); sim.network.remove(h); return h.contact },
    unreachableCodes: ['CORE_TIMEOUT'],
    close: async () => { sim.scheduler.clear() }
  }
}, { stallMs: 10_000 })

function world (network: SimNetworkInit, seed = 'peer-net'): { sim: Simulation, a: SimHost, b: SimHost } {
  const sim = createSimulation({ seed, network })
  return { sim, a: sim.addHost({ publicKey: key() }), b: sim.addHost({ publicKey: key() }) }
}

async function errorOf (p: Promise<unknown>): Promise<Error & { code?: string, remote?: boolean }> {
  try { await p } catch (err) { return err as Error & { code?: string } }
  assert.fail('expected a rejection')
}

function echoStream (host: SimHost): void {
  host.peers.handleStream('/echo/1', async (s) => {
    for await (const m of s) await s.send(m)
    await s.close()
  })
}

describe('PeerNet on the simulator', () => {
  it('a request costs one round trip of virtual time', async () => {
    const { sim, a, b } = world({ latency: constantLatency(250) })
    b.peers.handle('/echo/1', async (_from, body) => body)
    const t0 = sim.now
    const answer = await sim.settle(a.peers.request(b.contact, '/echo/1', Uint8Array.of(1, 2)))
    assert.deepEqual([...answer], [1, 2])
    assert.equal(sim.now - t0, 500)
  })

  it('openStream resolves after one round trip; a stream message takes one way; each read returns a window slot', async () => {
    const { sim, a, b } = world({ latency: constantLatency(100), peerNet: { streamWindow: 2 } })
    let received = 0
    let hold: () => void = () => {}
    const held = new Promise<void>((resolve) => { hold = resolve })
    b.peers.handleStream('/sink/1', async (s) => {
      await held
      for await (const _m of s) received++
    })
    await sim.settle((async () => {
      const t0 = sim.now
      const s = await a.peers.openStream(b.contact, '/sink/1')
      assert.equal(sim.now - t0, 200, 'OPEN + ACCEPT')
      await s.send(Uint8Array.of(1))
      await s.send(Uint8Array.of(2))
      assert.equal(sim.now - t0, 200, 'the window (2) takes two messages at once')
      const third = s.send(Uint8Array.of(3))
      let sent = false
      void third.then(() => { sent = true })
      await sim.clock.sleep(5_000)
      assert.equal(sent, false, 'the third message waits: the reader has not read')
      const t1 = sim.now
      hold()
      await third
      assert.equal(sim.now - t1, 100, 'one WINDOW frame back after the first read')
      await s.close()
      await sim.clock.sleep(300)
      assert.equal(received, 3)
    })())
  })

  it('loss on a stream shows as delay, never as a lost or reordered message', async () => {
    const { sim, a, b } = world({ latency: uniformLatency(10, 200), loss: 0.2 })
    echoStream(b)
    const got = await sim.settle((async () => {
      const s = await a.peers.openStream(b.contact, '/echo/1')
      const reading = (async () => { const out: number[] = []; for await (const m of s) out.push(m[0] | (m[1] << 8)); return out })()
      for (let i = 0; i < 500; i++) await s.send(Uint8Array.of(i & 0xff, i >> 8))
      await s.close()
      return await reading
    })())
    assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => i))
    assert.ok((sim.network.peerStats?.resent ?? 0) > 50, `frames were resent (${sim.network.peerStats?.resent})`)
  })

  it('requests lose messages like DhtNet requests: with loss 1 every request times out', async () => {
    const { sim, a, b } = world({ latency: constantLatency(50), loss: 1 })
    b.peers.handle('/echo/1', async (_from, body) => body)
    const err = await sim.settle(errorOf(a.peers.request(b.contact, '/echo/1', Uint8Array.of(1), { timeoutMs: 2_000 })))
    assert.equal(err.code, 'CORE_TIMEOUT')
    const dflt = await sim.settle(errorOf(a.peers.request(b.contact, '/echo/1', Uint8Array.of(1))))
    assert.equal(dflt.code, 'CORE_TIMEOUT', 'without timeoutMs the default deadline still ends it')
  })

  it('a crashed host breaks its streams: the other end\'s pending read and later sends fail with OHT_STREAM_CLOSED', async () => {
    const { sim, a, b } = world({ latency: constantLatency(80) })
    let handlerStream: PeerStream | undefined
    b.peers.handleStream('/wait/1', async (s) => { handlerStream = s; await new Promise(() => {}) })
    await sim.settle((async () => {
      const s = await a.peers.openStream(b.contact, '/wait/1')
      const read = errorOf(s[Symbol.asyncIterator]().next())
      await sim.clock.sleep(1_000)
      const t0 = sim.now
      sim.network.crash(b)
      const err = await read
      assert.equal(err.code, 'OHT_STREAM_CLOSED')
      assert.equal(sim.now - t0, 80, 'learned one one-way delay after the crash')
      assert.equal((await errorOf(s.send(Uint8Array.of(1)))).code, 'OHT_STREAM_CLOSED')
    })())
    assert.ok(handlerStream !== undefined)
    assert.equal(sim.network.peerFabric.streams.size, 0, 'the broken stream is forgotten')
  })

  it('the opener crashing breaks the handler\'s stream too; a stream to a host that crashed while ACCEPT travelled fails its openStream', async () => {
    const { sim, a, b } = world({ latency: constantLatency(80) })
    let handlerError: (Error & { code?: string }) | undefined
    b.peers.handleStream('/wait/1', async (s) => { try { for await (const _m of s) {} } catch (err) { handlerError = err as Error } })
    await sim.settle((async () => {
      await a.peers.openStream(b.contact, '/wait/1')
      sim.network.crash(a)
      await sim.clock.sleep(500)
      assert.equal(handlerError?.code, 'OHT_STREAM_CLOSED')
      sim.network.restart(a)
      const opening = errorOf(a.peers.openStream(b.contact, '/wait/1'))
      await sim.clock.sleep(100) // the OPEN arrived, ACCEPT is on its way back
      sim.network.crash(b)
      assert.equal((await opening).code, 'OHT_STREAM_CLOSED')
    })())
  })

  it('an opener that crashes while its OPEN travels leaves no stream behind at the acceptor', async () => {
    const { sim, a, b } = world({ latency: constantLatency(100) })
    let handlers = 0
    b.peers.handleStream('/wait/1', async () => { handlers++ })
    void a.peers.openStream(b.contact, '/wait/1').catch(() => {})
    await sim.run({ forMs: 50 })
    sim.network.crash(a)
    await sim.run({ forMs: 1_000 })
    assert.equal(handlers, 0, 'the handler never saw a stream from a dead opener')
    assert.equal(sim.network.peerFabric.streams.size, 0)
  })

  it('a partition breaks streams across it for both ends after breakDetectMs; streams inside a group go on', async () => {
    const sim = createSimulation({ seed: 'partition', network: { latency: constantLatency(50), peerNet: { breakDetectMs: 5_000 } } })
    const hosts = Array.from({ length: 3 }, () => sim.addHost({ publicKey: key() }))
    const errors: string[] = []
    for (const h of hosts) {
      h.peers.handleStream('/hold/1', async (s) => { try { for await (const m of s) await s.send(m) } catch (err) { errors.push((err as { code: string }).code) } })
    }
    await sim.settle((async () => {
      const across = await hosts[0].peers.openStream(hosts[2].contact, '/hold/1')
      const inside = await hosts[0].peers.openStream(hosts[1].contact, '/hold/1')
      const t0 = sim.now
      sim.network.partition(i => i === 2 ? 1 : 0)
      const acrossRead = errorOf(across[Symbol.asyncIterator]().next())
      assert.equal((await acrossRead).code, 'OHT_STREAM_CLOSED')
      assert.equal(sim.now - t0, 5_000)
      await inside.send(Uint8Array.of(9))
      const echoed = await inside[Symbol.asyncIterator]().next()
      assert.deepEqual([...(echoed.value as Uint8Array)], [9], 'the stream within a group still works')
      await sim.clock.sleep(100)
      assert.deepEqual(errors, ['OHT_STREAM_CLOSED'], 'the far end learned too')
      // a new stream across the partition cannot open
      assert.equal((await errorOf(hosts[0].peers.openStream(hosts[2].contact, '/hold/1', { timeoutMs: 3_000 }))).code, 'CORE_TIMEOUT')
      sim.network.heal()
      const again = await hosts[0].peers.openStream(hosts[2].contact, '/hold/1')
      await again.close()
    })())
  })

  it('a crashed caller learns nothing: its pending calls never settle, as with DhtNet', async () => {
    const { sim, a, b } = world({ latency: constantLatency(50) })
    b.peers.handle('/slow/1', async () => { await b.clock.sleep(1_000); return Uint8Array.of(1) })
    let settled = false
    void a.peers.request(b.contact, '/slow/1', Uint8Array.of(1), { timeoutMs: 5_000 }).then(() => { settled = true }, () => { settled = true })
    await sim.run({ forMs: 200 })
    sim.network.crash(a)
    await sim.run({ forMs: 10_000 })
    assert.equal(settled, false)
  })

  it('copies messages: neither side sees the other\'s later writes into a buffer', async () => {
    const { sim, a, b } = world({ latency: constantLatency(10) })
    let kept: Uint8Array | undefined
    b.peers.handle('/keep/1', async (_from, body) => { kept = body; return body })
    const body = Uint8Array.of(1, 2, 3)
    const answer = await sim.settle(a.peers.request(b.contact, '/keep/1', body))
    body[0] = 99
    answer[1] = 99
    assert.deepEqual([...(kept as Uint8Array)], [1, 2, 3])
  })

  it('replays bit for bit on a seed: the same virtual times, bytes and counters', async () => {
    const once = async (): Promise<string> => {
      const sim = createSimulation({ seed: 'replay', network: { latency: uniformLatency(20, 400), loss: 0.1 } })
      const hosts = Array.from({ length: 6 }, (_, i) => sim.addHost({ publicKey: new SeededRng(`replay-${i}`).bytes(32) }))
      for (const h of hosts) { echoStream(h); h.peers.handle('/rev/1', async (_f, body) => body.slice().reverse()) }
      const trace: string[] = []
      await sim.settle(Promise.all(hosts.map(async (h, i) => {
        const to = hosts[(i + 1) % hosts.length]
        const s = await h.peers.openStream(to.contact, '/echo/1')
        const reading = (async () => { for await (const m of s) trace.push(`${i}<${m[0]}@${sim.now}`) })()
        for (let k = 0; k < 30; k++) {
          await s.send(Uint8Array.of(k))
          try { await h.peers.request(hosts[(i + 2) % hosts.length].contact, '/rev/1', Uint8Array.of(k, i), { timeoutMs: 2_000 }); trace.push(`${i}r${k}@${sim.now}`) } catch (err) { trace.push(`${i}x${(err as { code: string }).code}@${sim.now}`) }
        }
        await s.close()
        await reading
      })))
      return JSON.stringify({ trace, stats: sim.network.peerStats, events: sim.scheduler.eventsProcessed })
    }
    const first = await once()
    assert.equal(await once(), first)
    assert.match(first, /x CORE_TIMEOUT|xCORE_TIMEOUT/, 'the run did lose requests (the trace is not trivial)')
  })

  it('a simulation that never touches PeerNet draws nothing for it (DhtNet figures stay as they were)', async () => {
    const run = async (touch: boolean): Promise<string> => {
      const { sim, a, b } = world({ latency: uniformLatency(10, 300), loss: 0.1 }, 'untouched')
      if (touch) { void a.peers; void b.peers }
      b.net.handle(async (_f, frame) => frame)
      const out: string[] = []
      await sim.settle(Promise.all(Array.from({ length: 50 }, async (_, i) => {
        try { await a.net.request(b.contact, Uint8Array.of(i), { timeoutMs: 1_000 }); out.push(`${i}@${sim.now}`) } catch { out.push(`${i}x@${sim.now}`) }
      })))
      return out.join(',')
    }
    assert.equal(await run(true), await run(false))
  })
})
