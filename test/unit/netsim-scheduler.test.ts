import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, SeededRng } from '../../src/core/index.ts'
import { EventHeap, Scheduler, SimEvent, VirtualClock } from '../../src/netsim/index.ts'

describe('netsim EventHeap', () => {
  it('pops by time, then by sequence, for any insertion order', () => {
    const rng = new SeededRng('heap')
    const heap = new EventHeap()
    const events: SimEvent[] = []
    for (let i = 0; i < 500; i++) {
      const ev = new SimEvent(rng.int(20), i, () => {}, 0, undefined)
      events.push(ev)
    }
    for (const ev of [...events].sort(() => rng.next() - 0.5)) heap.push(ev)
    const out: SimEvent[] = []
    for (let ev = heap.pop(); ev !== undefined; ev = heap.pop()) out.push(ev)
    const expected = [...events].sort((a, b) => a.time - b.time || a.seq - b.seq)
    assert.deepEqual(out.map(e => [e.time, e.seq]), expected.map(e => [e.time, e.seq]))
  })
})

describe('netsim Scheduler', () => {
  it('runs events in time order and same-time events in scheduling order', async () => {
    const s = new Scheduler({ startTime: 0 })
    const order: string[] = []
    s.schedule(30, () => order.push('c'))
    s.schedule(10, () => order.push('a1'))
    s.schedule(10, () => order.push('a2'))
    s.schedule(20, () => order.push('b'))
    s.schedule(10, () => order.push('a3'))
    const r = await s.run()
    assert.deepEqual(order, ['a1', 'a2', 'a3', 'b', 'c'])
    assert.equal(r.events, 5)
    assert.equal(r.reason, 'idle')
    assert.equal(s.now, 30)
  })

  it('never moves time backwards and refuses to schedule in the past', async () => {
    const s = new Scheduler({ startTime: 1000 })
    const seen: number[] = []
    const rng = new SeededRng('mono')
    for (let i = 0; i < 200; i++) {
      s.schedule(rng.int(1000), () => {
        seen.push(s.now)
        if (rng.next() < 0.5) s.schedule(rng.int(50), () => { seen.push(s.now) })
      })
    }
    await s.run()
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `time went from ${seen[i - 1]} to ${seen[i]}`)
    assert.throws(() => s.scheduleAt(s.now - 1, () => {}), (e) => isCodedError(e, 'SIM_TIME_BACKWARDS'))
  })

  it('lets async continuations finish at the event\'s virtual time before the next event', async () => {
    const s = new Scheduler({ startTime: 0 })
    const log: string[] = []
    const deep = async (depth: number): Promise<void> => { for (let i = 0; i < depth; i++) await Promise.resolve() }
    s.schedule(100, () => {
      void (async () => {
        await deep(200)
        log.push(`continuation@${s.now}`)
      })()
    })
    s.schedule(101, () => { log.push(`next@${s.now}`) })
    await s.run()
    assert.deepEqual(log, ['continuation@100', 'next@101'])
  })

  it('stops at `until` with the clock exactly there, keeping later events', async () => {
    const s = new Scheduler({ startTime: 0 })
    let fired = 0
    s.schedule(50, () => { fired++ })
    s.schedule(150, () => { fired++ })
    const r = await s.run({ forMs: 100 })
    assert.equal(fired, 1)
    assert.equal(s.now, 100)
    assert.equal(r.reason, 'until')
    await s.run({ forMs: 100 })
    assert.equal(fired, 2)
    assert.equal(s.now, 200)
  })

  it('skips cancelled events and repeats intervals until cancelled', async () => {
    const s = new Scheduler({ startTime: 0 })
    let once = 0
    let ticks = 0
    s.schedule(10, () => { once++ }).cancel()
    const iv = s.every(25, () => { ticks++; if (ticks === 4) iv.cancel() })
    await s.run({ forMs: 1000 })
    assert.equal(once, 0)
    assert.equal(ticks, 4)
    assert.ok(s.eventsSkipped >= 1)
  })

  it('fails with SIM_EVENT_FAILED when a callback throws, and SIM_EVENT_LIMIT on a livelock', async () => {
    const s = new Scheduler({ startTime: 0 })
    s.schedule(5, () => { throw new Error('boom') })
    await assert.rejects(s.run(), (e) => isCodedError(e, 'SIM_EVENT_FAILED') && e.message.includes('at virtual time 5'))
    const loop = new Scheduler({ startTime: 0 })
    const again = (): void => { loop.schedule(0, again) }
    again()
    await assert.rejects(loop.run({ maxEvents: 1000 }), (e) => isCodedError(e, 'SIM_EVENT_LIMIT'))
  })

  it('settle() returns the awaited value and reports a stall with SIM_STALLED', async () => {
    const s = new Scheduler({ startTime: 0 })
    const clock = new VirtualClock(s)
    const v = await s.settle((async () => { await clock.sleep(5000); return clock.now() })())
    assert.equal(v, 5000)
    await assert.rejects(s.settle(new Promise(() => {})), (e) => isCodedError(e, 'SIM_STALLED'))
  })

  it('is deterministic: the same seeded workload gives the same trace', async () => {
    const trace = async (seed: string, quantumMs: number): Promise<string> => {
      const s = new Scheduler({ startTime: 0, quantumMs })
      const rng = new SeededRng(seed)
      const out: string[] = []
      for (let i = 0; i < 100; i++) {
        s.schedule(rng.int(10_000), () => {
          out.push(`${i}@${s.now}`)
          void Promise.resolve().then(() => { s.schedule(rng.int(100), () => out.push(`${i}b@${s.now}`)) })
        })
      }
      await s.run()
      return out.join(',')
    }
    assert.equal(await trace('x', 0), await trace('x', 0))
    assert.notEqual(await trace('x', 0), await trace('y', 0))
    assert.equal(await trace('x', 5), await trace('x', 5))
  })

  it('batches events within the quantum before draining, keeping time monotonic', async () => {
    const s = new Scheduler({ startTime: 0, quantumMs: 10 })
    const log: string[] = []
    s.schedule(1, () => { void Promise.resolve().then(() => log.push(`c1@${s.now}`)); log.push('e1') })
    s.schedule(5, () => { log.push('e2') })
    s.schedule(20, () => { log.push('e3') })
    await s.run()
    // e1's continuation runs after e2 (same batch) but before e3 (next batch).
    assert.deepEqual(log, ['e1', 'e2', 'c1@5', 'e3'])
  })
})
