/**
 * Seeded decoder fuzz (bench/scramble-fuzz.ts runs 1,000,000 of the same inputs): every
 * decoder answers a result or a ScrambleError, never anything else; and a relay fed the same
 * bytes over PeerNet answers every one of them and counts it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeHopResponse, HOP_PROTOCOL } from '../../src/scramble-routing/index.ts'
import { createFuzzTargets } from '../helpers/scramble-fuzz.ts'
import { scrambleNet } from './scramble-helpers.ts'

describe('scramble decoder fuzz', () => {
  it('5,000 seeded inputs: no decoder throws anything but a ScrambleError', () => {
    const t = createFuzzTargets('unit-fuzz')
    const counts = { accepted: 0, rejected: 0 }
    const kinds = new Map<string, number>()
    for (let i = 0; i < 5000; i++) {
      const input = t.next()
      kinds.set(input.kind, (kinds.get(input.kind) ?? 0) + 1)
      counts[t.run(input)]++ // run() rethrows anything that is not a ScrambleError
    }
    assert.equal(counts.accepted + counts.rejected, 5000)
    assert.ok(counts.rejected > 3000, `${counts.rejected} rejected`)
    assert.equal(kinds.size, 5, 'every decoder was exercised')
  })

  it('the valid packets of the corpus are accepted (the fuzz starts from real packets)', () => {
    const t = createFuzzTargets('unit-fuzz-valid')
    for (const p of t.packets) assert.equal(t.run({ kind: 'packet', bytes: p }), 'accepted')
  })

  it('a relay answers 600 fuzzed requests with well-formed hop responses and counts every one', async () => {
    const s = await scrambleNet({ relays: 1, endpoints: 1, seed: 'relay-fuzz', init: { perPeer: { ratePerSecond: 1e6, burst: 1e6 }, capacity: 1_000_000 } })
    const t = createFuzzTargets('relay-fuzz-inputs')
    const relay = s.relays[0]
    const sender = s.net.endpoint({ publicKey: new Uint8Array(32).fill(7), addrs: ['mem:fuzzer'] })
    let answered = 0
    for (let i = 0; i < 600; i++) {
      let input = t.next()
      while (input.kind !== 'packet') input = t.next()
      try {
        const r = decodeHopResponse(await sender.request(relay.contact, HOP_PROTOCOL, input.bytes))
        assert.ok(['dropped', 'busy', 'report'].includes(r.kind))
        answered++
      } catch (err) {
        // The transport refuses oversized messages before the relay sees them.
        assert.equal((err as { code?: string }).code, 'OHT_MESSAGE_TOO_LARGE')
      }
    }
    const st = relay.node.stats
    const dropped = Object.values(st.dropped).reduce((a, b) => a + b, 0)
    assert.equal(st.packetsIn, answered)
    assert.ok(dropped > answered * 0.9, `${dropped} of ${answered} dropped and counted`)
    await s.stop()
  })
})
