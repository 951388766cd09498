import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FakeClock, SeededRng, scopedSignal, withTimeout, isCodedError, base32Encode, base32Decode, fromHex, toHex } from '../../src/core/index.ts'

describe('FakeClock', () => {
  it('fires timers in time order only when advanced', async () => {
    const clock = new FakeClock(0)
    const fired: string[] = []
    clock.setTimeout(() => fired.push('b'), 200)
    clock.setTimeout(() => fired.push('a'), 100)
    await clock.advance(99)
    assert.deepEqual(fired, [])
    await clock.advance(200)
    assert.deepEqual(fired, ['a', 'b'])
    assert.equal(clock.now(), 299)
  })

  it('repeats intervals and stops when cancelled', async () => {
    const clock = new FakeClock(0)
    let n = 0
    const h = clock.setInterval(() => { n++ }, 10)
    await clock.advance(55)
    assert.equal(n, 5)
    h.cancel()
    await clock.advance(100)
    assert.equal(n, 5)
  })

  it('sleep rejects with CORE_ABORTED when aborted', async () => {
    const clock = new FakeClock(0)
    const ac = new AbortController()
    const p = clock.sleep(1000, { signal: ac.signal })
    ac.abort()
    await assert.rejects(p, (e) => isCodedError(e, 'CORE_ABORTED'))
    assert.equal(clock.pending, 0)
  })

  it('withTimeout rejects with CORE_TIMEOUT at the deadline', async () => {
    const clock = new FakeClock(0)
    const p = withTimeout(clock, 500, async (signal) => await new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))))
    const check = assert.rejects(p, (e) => isCodedError(e, 'CORE_TIMEOUT'))
    await clock.advance(500)
    await check
  })

  it('scopedSignal follows its parent', () => {
    const clock = new FakeClock(0)
    const parent = new AbortController()
    const s = scopedSignal(clock, undefined, parent.signal)
    assert.equal(s.signal.aborted, false)
    parent.abort()
    assert.equal(s.signal.aborted, true)
  })
})

describe('SeededRng', () => {
  it('replays the same sequence for the same seed and differs for another', () => {
    const a = new SeededRng(42); const b = new SeededRng(42); const c = new SeededRng(43)
    const sa = Array.from({ length: 5 }, () => a.next())
    assert.deepEqual(sa, Array.from({ length: 5 }, () => b.next()))
    assert.notDeepEqual(sa, Array.from({ length: 5 }, () => c.next()))
    for (const v of sa) assert.ok(v >= 0 && v < 1)
  })

  it('forks independent deterministic streams', () => {
    const a = new SeededRng('s').fork('node-1'); const b = new SeededRng('s').fork('node-1')
    assert.deepEqual(a.bytes(16), b.bytes(16))
    assert.notDeepEqual(new SeededRng('s').fork('node-2').bytes(16), new SeededRng('s').fork('node-1').bytes(16))
  })
})

describe('hex', () => {
  it('encodes short and long arrays and views the same as Buffer, and round-trips', () => {
    const rng = new SeededRng('hex')
    for (const n of [0, 1, 32, 64, 65, 300]) {
      const frame = rng.bytes(n + 10)
      for (const b of [frame.slice(0, n), frame.subarray(5, 5 + n)]) {
        assert.equal(toHex(b), Buffer.from(b).toString('hex'), `${n} bytes`)
        assert.deepEqual(fromHex(toHex(b)), b.slice())
      }
    }
  })
})

describe('base32', () => {
  it('round-trips and matches RFC 4648 vectors', () => {
    assert.equal(base32Encode(new TextEncoder().encode('foobar')), 'mzxw6ytboi')
    assert.deepEqual(base32Decode('MZXW6YTBOI'), new TextEncoder().encode('foobar'))
  })
  it('rejects invalid characters with a typed error', () => {
    assert.throws(() => base32Decode('abc1'), (e) => isCodedError(e, 'CORE_BAD_BASE32'))
  })
})
