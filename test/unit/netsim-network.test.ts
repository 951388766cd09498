import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { isCodedError, withTimeout } from '../../src/core/index.ts'
import { constantLatency, createSimulation, dropAllRequests, torLatency, type SimHost, type Simulation } from '../../src/netsim/index.ts'

const key = (i: number): Uint8Array => { const k = new Uint8Array(32); k[0] = i & 0xff; k[1] = i >> 8; return k }

/** A toy protocol: the answer is the request with every byte incremented. */
function echoPlusOne (sim: Simulation, n: number): SimHost[] {
  const hosts: SimHost[] = []
  for (let i = 0; i < n; i++) {
    const h = sim.addHost({ publicKey: key(i) })
    h.net.handle(async (_from, frame) => frame.map(b => b + 1))
    hosts.push(h)
  }
  return hosts
}

/** Sends `count` requests with a timeout; returns how many were answered. */
async function burst (sim: Simulation, from: SimHost, to: SimHost[], count: number, timeoutMs = 10_000): Promise<{ ok: number, codes: Record<string, number> }> {
  const codes: Record<string, number> = {}
  let ok = 0
  await sim.settle(Promise.all(Array.from({ length: count }, async (_, i) => {
    try {
      await withTimeout(from.clock, timeoutMs, (signal) => from.net.request(to[i % to.length].contact, Uint8Array.of(i & 0xff), { signal }))
      ok++
    } catch (err) {
      const c = (err as { code?: string }).code ?? 'other'
      codes[c] = (codes[c] ?? 0) + 1
    }
  })))
  return { ok, codes }
}

/** A full garbage collection on demand (the test process runs without --expose-gc). */
function collector (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

describe('netsim network', () => {
  it('delivers a request and its response after one round trip of virtual time', async () => {
    const sim = createSimulation({ seed: 1, startTime: 0, network: { latency: constantLatency(120) } })
    const [a, b] = echoPlusOne(sim, 2)
    let seenFrom: Uint8Array | undefined
    b.net.handle(async (from, frame) => { seenFrom = from.publicKey; frame[0] = 99; return Uint8Array.of(7, 8) })
    const sent = Uint8Array.of(1, 2, 3)
    const answer = await sim.settle(a.net.request(b.contact, sent))
    assert.deepEqual([...answer], [7, 8])
    assert.equal(sim.now, 240)
    assert.deepEqual(seenFrom, a.contact.publicKey)
    assert.deepEqual([...sent], [1, 2, 3], 'the receiver got a copy, not the sender\'s buffer')
    assert.equal(sim.network.stats.requests, 1)
    assert.equal(sim.network.stats.responses, 1)
    assert.equal(sim.network.stats.bytes, 5)
    assert.equal(a.stats.requestsSent, 1)
    assert.equal(b.stats.responsesSent, 1)
  })

  it('tor-like latency gives round trips of 0.3–3 s', async () => {
    const sim = createSimulation({ seed: 2, startTime: 0, network: { latency: torLatency() } })
    const hosts = echoPlusOne(sim, 50)
    const rtts: number[] = []
    await sim.settle(Promise.all(hosts.slice(1).map(async (h) => {
      const t0 = sim.now
      await hosts[0].net.request(h.contact, Uint8Array.of(0))
      rtts.push(sim.now - t0)
    })))
    assert.equal(rtts.length, 49)
    assert.ok(rtts.every(r => r >= 300 && r <= 3000), `rtts ${Math.min(...rtts)}..${Math.max(...rtts)}`)
    assert.ok(new Set(rtts).size > 40, 'pairs differ')
  })

  it('loses messages at the configured rate; lost requests end by the caller\'s timeout', async () => {
    const sim = createSimulation({ seed: 3, network: { latency: constantLatency(10), loss: 0.3 } })
    const hosts = echoPlusOne(sim, 10)
    const { ok, codes } = await burst(sim, hosts[0], hosts.slice(1), 2000)
    // A round trip survives with probability 0.7² = 0.49.
    assert.ok(ok > 880 && ok < 1080, `answered ${ok} of 2000`)
    assert.equal(codes.CORE_TIMEOUT, 2000 - ok)
    assert.ok(Math.abs(sim.network.stats.lost - (2000 - ok)) === 0)
  })

  it('partitions drop traffic between groups only, and heal restores it', async () => {
    const sim = createSimulation({ seed: 4, network: { latency: constantLatency(10) } })
    const hosts = echoPlusOne(sim, 4)
    sim.network.partition((i) => (i < 2 ? 0 : 1))
    assert.equal((await burst(sim, hosts[0], [hosts[1]], 20)).ok, 20)
    const cross = await burst(sim, hosts[0], [hosts[2], hosts[3]], 20)
    assert.equal(cross.ok, 0)
    assert.equal(cross.codes.CORE_TIMEOUT, 20)
    assert.equal(sim.network.stats.partitioned, 20)
    sim.network.heal()
    assert.equal((await burst(sim, hosts[0], [hosts[2], hosts[3]], 20)).ok, 20)
  })

  it('a crashed host never answers, its timers die and its in-flight answers are dropped; restart revives it', async () => {
    const sim = createSimulation({ seed: 5, network: { latency: constantLatency(50) } })
    const [a, b] = echoPlusOne(sim, 2)
    let timerFired = false
    b.clock.setTimeout(() => { timerFired = true }, 1000)
    // b answers slowly; it crashes while the handler is still running.
    b.net.handle(async (_from, frame) => { await b.clock.sleep(500); return frame })
    const inflight = withTimeout(a.clock, 5000, (signal) => a.net.request(b.contact, Uint8Array.of(1), { signal }))
    sim.clock.setTimeout(() => { sim.network.crash(b) }, 200)
    await assert.rejects(sim.settle(inflight), (e) => isCodedError(e, 'CORE_TIMEOUT'))
    assert.equal(timerFired, false)
    assert.equal(b.online, false)
    assert.equal((await burst(sim, a, [b], 5, 2000)).codes.CORE_TIMEOUT, 5)
    assert.ok(sim.network.stats.unreachable >= 5)
    sim.network.restart(b)
    b.net.handle(async (_from, frame) => frame)
    assert.equal((await burst(sim, a, [b], 5)).ok, 5)
  })

  it('a request waiting for its answer or deadline no longer holds the frame it was sent', async () => {
    // Frames are views into shared slabs (allocFrame): one held for a request's whole wait kept
    // its slab past the young generation, which made V8 run full collections.
    const gc = collector()
    const sim = createSimulation({ seed: 9, network: { latency: constantLatency(50) } })
    const [a, b, c] = echoPlusOne(sim, 3)
    b.net.handle(async (_from, frame) => { await b.clock.sleep(5000); return frame })
    sim.network.crash(c)
    let settled = 0
    const sent: Array<WeakRef<Uint8Array>> = []
    const send = (to: SimHost): Promise<unknown> => {
      const frame = new Uint8Array(200) // above V8's on-heap size for typed arrays, like a frame
      sent.push(new WeakRef(frame))
      return a.net.request(to.contact, frame, { timeoutMs: 10_000 }).finally(() => { settled++ })
    }
    const slow = send(b) // answered after ~5 s
    const lost = send(c) // never answered: ends at its 10 s deadline
    await sim.run({ forMs: 1000 })
    await new Promise(resolve => setImmediate(resolve)) // WeakRef targets stay alive until the job ends
    gc()
    assert.equal(settled, 0, 'both requests are still waiting')
    assert.deepEqual(sent.map(r => r.deref()), [undefined, undefined])
    assert.equal((await sim.settle(slow) as Uint8Array).byteLength, 200)
    await assert.rejects(sim.settle(lost), (e) => isCodedError(e, 'CORE_TIMEOUT'))
  })

  it('in refuse mode an unknown or offline host fails with SIM_UNREACHABLE after one round trip', async () => {
    const sim = createSimulation({ seed: 6, startTime: 0, network: { latency: constantLatency(100), unreachable: 'refuse' } })
    const [a, b] = echoPlusOne(sim, 2)
    sim.network.crash(b)
    await assert.rejects(sim.settle(a.net.request(b.contact, Uint8Array.of(1))), (e) => isCodedError(e, 'SIM_UNREACHABLE'))
    assert.equal(sim.now, 200)
    await assert.rejects(sim.settle(a.net.request({ publicKey: key(9), addrs: ['sim:999'] }, Uint8Array.of(1))), (e) => isCodedError(e, 'SIM_UNREACHABLE'))
  })

  it('interceptors can swallow requests or rewrite answers; handler failures reach the caller as SIM_REMOTE_ERROR', async () => {
    const sim = createSimulation({ seed: 7, network: { latency: constantLatency(10) } })
    const [a, b, c, d] = echoPlusOne(sim, 4)
    b.interceptor = dropAllRequests
    const dropped = await burst(sim, a, [b], 3)
    assert.equal(dropped.codes.CORE_TIMEOUT, 3)
    assert.equal(sim.network.stats.swallowed, 3)
    c.interceptor = async (ctx) => { const real = await ctx.forward(); return real.map(x => x * 10) }
    assert.deepEqual([...await sim.settle(a.net.request(c.contact, Uint8Array.of(4)))], [50])
    d.net.handle(async () => { throw new Error('bad frame') })
    await assert.rejects(sim.settle(a.net.request(d.contact, Uint8Array.of(1))), (e) => isCodedError(e, 'SIM_REMOTE_ERROR'))
    assert.equal(sim.network.stats.remoteErrors, 1)
  })

  it('an aborted request rejects at once with CORE_ABORTED and its late answer is counted, not delivered', async () => {
    const sim = createSimulation({ seed: 8, startTime: 0, network: { latency: constantLatency(100) } })
    const [a, b] = echoPlusOne(sim, 2)
    const ac = new AbortController()
    sim.clock.setTimeout(() => { ac.abort() }, 50)
    await assert.rejects(sim.settle(a.net.request(b.contact, Uint8Array.of(1), { signal: ac.signal })), (e) => isCodedError(e, 'CORE_ABORTED'))
    assert.equal(sim.now, 50)
    await sim.run()
    assert.equal(sim.network.stats.late, 1)
    assert.equal(sim.network.stats.responses, 0)
    await assert.rejects(a.net.request(b.contact, Uint8Array.of(1), { signal: ac.signal }), (e) => isCodedError(e, 'CORE_ABORTED'))
  })

  it('one abort ends every request still waiting on its signal, in the order they were sent, and none that already settled', async () => {
    const sim = createSimulation({ seed: 8, startTime: 0, network: { latency: constantLatency(100) } })
    const [a, b] = echoPlusOne(sim, 2)
    const ac = new AbortController()
    const order: string[] = []
    const track = (name: string, p: Promise<Uint8Array>): Promise<void> => p.then(() => { order.push(`${name}:ok`) }, (e: unknown) => { order.push(`${name}:${(e as { code?: string }).code ?? 'error'}`) })
    const answered = track('answered', a.net.request(b.contact, Uint8Array.of(1), { signal: ac.signal }))
    const timedOut = track('timed-out', a.net.request(b.contact, Uint8Array.of(2), { signal: ac.signal, timeoutMs: 10 }))
    sim.clock.setTimeout(() => {
      void track('first', a.net.request(b.contact, Uint8Array.of(3), { signal: ac.signal }))
      void track('second', a.net.request(b.contact, Uint8Array.of(4), { signal: ac.signal }))
      sim.clock.setTimeout(() => { ac.abort() }, 50)
    }, 300)
    await sim.settle(Promise.all([answered, timedOut]))
    await sim.run()
    assert.deepEqual(order, ['timed-out:CORE_TIMEOUT', 'answered:ok', 'first:CORE_ABORTED', 'second:CORE_ABORTED'])
    assert.equal(sim.network.stats.late, 3, 'the timed-out and the two aborted requests were answered after all')
  })

  it('refuses frames above maxFrameBytes with SIM_FRAME_TOO_LARGE', async () => {
    const sim = createSimulation({ seed: 9, network: { maxFrameBytes: 16 } })
    const [a, b] = echoPlusOne(sim, 2)
    await assert.rejects(a.net.request(b.contact, new Uint8Array(17)), (e) => isCodedError(e, 'SIM_FRAME_TOO_LARGE'))
  })

  it('replays bit for bit: same seed, same stats and timings; another seed differs', async () => {
    const run = async (seed: number): Promise<string> => {
      const sim = createSimulation({ seed, network: { latency: torLatency(), loss: 0.05 } })
      const hosts = echoPlusOne(sim, 30)
      const times: number[] = []
      await sim.settle(Promise.all(Array.from({ length: 300 }, async () => {
        const from = hosts[sim.rng.int(30)]
        const to = hosts[sim.rng.int(30)]
        await from.clock.sleep(sim.rng.int(60_000))
        try { await withTimeout(from.clock, 4000, (signal) => from.net.request(to.contact, from.rng.bytes(8), { signal })) } catch {}
        times.push(sim.now)
      })))
      return JSON.stringify({ stats: sim.network.stats, times, now: sim.now })
    }
    const first = await run(11)
    assert.equal(await run(11), first)
    assert.notEqual(await run(12), first)
  })
})
