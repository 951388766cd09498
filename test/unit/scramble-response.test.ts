/**
 * Hop responses: the layered report names the hop where a packet's journey ended, every hop
 * on the way back changes all of its bytes, a changed report reads as nothing, and a relay can
 * speak only in its own name.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng } from '../../src/core/index.ts'
import { createReport, decodeHopResponse, encodeHopResponse, readReport, REPORT_CODE, RESPONSE_BYTES, wrapReport, type ReportCode } from '../../src/scramble-routing/index.ts'

describe('scramble hop responses', () => {
  it('a report made at hop j and wrapped by hops j-1..0 reads as (j, code) for every hop and code', () => {
    const rng = new SeededRng('report')
    for (let n = 1; n <= 4; n++) {
      const keys = Array.from({ length: n }, () => rng.bytes(32))
      for (let j = 0; j < n; j++) {
        for (const code of Object.keys(REPORT_CODE) as ReportCode[]) {
          let r = createReport(keys[j], code)
          for (let i = j - 1; i >= 0; i--) r = wrapReport(keys[i], r)
          assert.deepEqual(readReport(keys, r), { hop: j, code })
        }
      }
    }
  })

  it('each layer changes the bytes: no two hops pass on the same report', () => {
    const rng = new SeededRng('layers')
    const keys = Array.from({ length: 4 }, () => rng.bytes(32))
    const seen = [createReport(keys[3], 'delivered')]
    for (let i = 2; i >= 0; i--) seen.push(wrapReport(keys[i], seen[seen.length - 1]))
    for (let a = 0; a < seen.length; a++) {
      for (let b = a + 1; b < seen.length; b++) {
        let same = 0
        for (let k = 0; k < 32; k++) if (seen[a][k] === seen[b][k]) same++
        assert.ok(same < 6, `layers ${a} and ${b} share ${same} of 32 bytes`)
      }
    }
  })

  it('a changed report reads as nothing; a report in another hop\'s key is not that hop\'s', () => {
    const rng = new SeededRng('tamper')
    const keys = Array.from({ length: 3 }, () => rng.bytes(32))
    const r = wrapReport(keys[0], wrapReport(keys[1], createReport(keys[2], 'delivered')))
    for (let i = 0; i < 32; i++) {
      const bad = r.slice()
      bad[i] ^= 0x01
      assert.equal(readReport(keys, bad), undefined, `byte ${i}`)
    }
    // Hop 1 claims "delivered" in its own name: the sender sees it is not the terminal hop's.
    const lie = wrapReport(keys[0], createReport(keys[1], 'delivered'))
    assert.deepEqual(readReport(keys, lie), { hop: 1, code: 'delivered' })
    // And without the terminal's key it cannot write a report that reads as the terminal's.
    assert.notDeepEqual(readReport(keys, wrapReport(keys[0], wrapReport(keys[1], rng.bytes(32)))), { hop: 2, code: 'delivered' })
  })

  it('the response decoder accepts exactly the three forms', () => {
    const report = createReport(new Uint8Array(32).fill(1), 'rejected')
    assert.deepEqual(decodeHopResponse(encodeHopResponse({ kind: 'dropped' })), { kind: 'dropped' })
    assert.deepEqual(decodeHopResponse(encodeHopResponse({ kind: 'busy' })), { kind: 'busy' })
    assert.deepEqual(decodeHopResponse(encodeHopResponse({ kind: 'report', report })), { kind: 'report', report })
    const bad = [new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(2, 1), Uint8Array.of(1, 3), Uint8Array.of(1, 0), Uint8Array.of(1, 1, 0), new Uint8Array(RESPONSE_BYTES + 1)]
    for (const b of bad) assert.throws(() => decodeHopResponse(b), (err: unknown) => (err as { code?: string }).code === 'SCRAMBLE_BAD_ENCODING', `${b.byteLength} bytes`)
  })
})
