import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, scopedSignal, withTimeout } from '../../src/core/index.ts'
import { Scheduler, VirtualClock } from '../../src/netsim/index.ts'

describe('netsim VirtualClock', () => {
  it('reads virtual time: now() from the start epoch, monotonic() from zero', async () => {
    const s = new Scheduler({ startTime: 1_700_000_000_000 })
    const clock = new VirtualClock(s)
    assert.equal(clock.now(), 1_700_000_000_000)
    assert.equal(clock.monotonic(), 0)
    await s.run({ forMs: 2500 })
    assert.equal(clock.now(), 1_700_000_002_500)
    assert.equal(clock.monotonic(), 2500)
  })

  it('fires setTimeout at its virtual time and not when cancelled', async () => {
    const s = new Scheduler({ startTime: 0 })
    const clock = new VirtualClock(s)
    const at: number[] = []
    clock.setTimeout(() => at.push(clock.now()), 300)
    clock.setTimeout(() => at.push(-1), 200).cancel()
    clock.setTimeout(() => at.push(clock.now()), -5)
    await s.run()
    assert.deepEqual(at, [0, 300])
  })

  it('repeats setInterval every period until cancelled', async () => {
    const s = new Scheduler({ startTime: 0 })
    const clock = new VirtualClock(s)
    const at: number[] = []
    const h = clock.setInterval(() => { at.push(clock.now()); if (at.length === 3) h.cancel() }, 1000)
    await s.run({ forMs: 10_000 })
    assert.deepEqual(at, [1000, 2000, 3000])
  })

  it('sleep resolves after the virtual delay and rejects with CORE_ABORTED on abort', async () => {
    const s = new Scheduler({ startTime: 0 })
    const clock = new VirtualClock(s)
    assert.equal(await s.settle(clock.sleep(750).then(() => clock.now())), 750)
    const ac = new AbortController()
    clock.setTimeout(() => { ac.abort() }, 100)
    await assert.rejects(s.settle(clock.sleep(10_000, { signal: ac.signal })), (e) => isCodedError(e, 'CORE_ABORTED'))
    assert.equal(clock.now(), 850)
  })

  it('drives core deadlines: withTimeout/scopedSignal fire CORE_TIMEOUT on virtual time', async () => {
    const s = new Scheduler({ startTime: 0 })
    const clock = new VirtualClock(s)
    const never = (signal: AbortSignal): Promise<never> => new Promise((_r, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }) })
    await assert.rejects(s.settle(withTimeout(clock, 5000, never)), (e) => isCodedError(e, 'CORE_TIMEOUT'))
    assert.equal(clock.monotonic(), 5000)
    const scoped = scopedSignal(clock, 100)
    scoped.clear()
    await s.run({ forMs: 1000 })
    assert.equal(scoped.signal.aborted, false)
  })

  it('cancelAll voids every timer of that clock only', async () => {
    const s = new Scheduler({ startTime: 0 })
    const a = new VirtualClock(s)
    const b = new VirtualClock(s)
    const fired: string[] = []
    a.setTimeout(() => fired.push('a'), 10)
    a.setInterval(() => fired.push('a-iv'), 5)
    b.setTimeout(() => fired.push('b'), 10)
    a.cancelAll()
    a.setTimeout(() => fired.push('a-after'), 20)
    await s.run({ forMs: 30 })
    assert.deepEqual(fired, ['b', 'a-after'])
  })
})
