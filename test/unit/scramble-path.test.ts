/**
 * Path selection: distinct relays, never the endpoints, none that failed recently, diverse by
 * node-id prefix and tor client where the relays allow it (marked when not), uniform otherwise.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock, SeededRng, toHex } from '../../src/core/index.ts'
import { FailedRelays, idPrefix, selectPath, type RelayDescriptor } from '../../src/scramble-routing/index.ts'

const EPOCH = 3_600_000
const NOW = 1_700_000_000_000

function relay (rng: SeededRng, over: Partial<RelayDescriptor> = {}): RelayDescriptor {
  const e = Math.floor(NOW / EPOCH)
  return {
    identity: rng.bytes(32), relay: true, capacity: 100, epochMs: EPOCH, validFrom: NOW - 1000, validUntil: (e + 2) * EPOCH,
    keys: [{ epoch: e, publicKey: rng.bytes(32) }, { epoch: e + 1, publicKey: rng.bytes(32) }], torClient: new Uint8Array(0), addrs: ['mem:x'], ...over
  }
}

/** Identities whose 8-bit prefixes are all different (so diversity never bites). */
function distinctPrefixRelays (rng: SeededRng, n: number): RelayDescriptor[] {
  const out: RelayDescriptor[] = []
  const used = new Set<number>()
  while (out.length < n) {
    const r = relay(rng)
    const p = idPrefix(r.identity, 8)
    if (!used.has(p)) { used.add(p); out.push(r) }
  }
  return out
}

describe('scramble path selection', () => {
  it('picks distinct relays, never the sender or the recipient, for 0 to 3 hops', () => {
    const rng = new SeededRng('distinct')
    const relays = distinctPrefixRelays(rng, 12)
    const sender = relays[0].identity
    const recipient = relays[1].identity
    for (let i = 0; i < 300; i++) {
      const hops = i % 4
      const p = selectPath({ hops, relays, endpoints: [sender, recipient], now: NOW, rng })
      assert.equal(p.relays.length, hops)
      const ids = p.relays.map(d => toHex(d.identity))
      assert.equal(new Set(ids).size, hops, 'distinct')
      assert.ok(!ids.includes(toHex(sender)) && !ids.includes(toHex(recipient)), 'not an endpoint')
    }
  })

  it('leaves out relays that are not relays, stale, without a current key, or avoided', () => {
    const rng = new SeededRng('eligible')
    const good = distinctPrefixRelays(rng, 4)
    const e = Math.floor(NOW / EPOCH)
    const endpointOnly = relay(rng, { relay: false })
    const expired = relay(rng, { validUntil: NOW - 1 })
    const notYet = relay(rng, { validFrom: NOW + 1 })
    const oldKeys = relay(rng, { keys: [{ epoch: e - 2, publicKey: rng.bytes(32) }] })
    const avoided = good[3]
    const bad = new Set([endpointOnly, expired, notYet, oldKeys, avoided].map(d => toHex(d.identity)))
    for (let i = 0; i < 100; i++) {
      const p = selectPath({ hops: 3, relays: [...good, endpointOnly, expired, notYet, oldKeys], endpoints: [], avoid: new Set([toHex(avoided.identity)]), now: NOW, rng })
      assert.ok(p.relays.every(d => !bad.has(toHex(d.identity))))
    }
    assert.throws(() => selectPath({ hops: 3, relays: [endpointOnly, expired, notYet, oldKeys, good[0]], endpoints: [], now: NOW, rng }),
      (err: unknown) => (err as { code?: string }).code === 'SCRAMBLE_NOT_ENOUGH_RELAYS')
  })

  it('a duplicated descriptor counts once', () => {
    const rng = new SeededRng('dup')
    const [a, b] = distinctPrefixRelays(rng, 2)
    assert.throws(() => selectPath({ hops: 3, relays: [a, a, b, b], endpoints: [], now: NOW, rng }), /3 usable relays; 2 are known/)
  })

  it('diverse by id prefix: no two hops (or an endpoint) share the prefix while the relays allow it', () => {
    const rng = new SeededRng('prefix')
    const relays = Array.from({ length: 60 }, () => relay(rng))
    const sender = rng.bytes(32)
    const recipient = rng.bytes(32)
    let nonDiverse = 0
    for (let i = 0; i < 200; i++) {
      const p = selectPath({ hops: 3, relays, endpoints: [sender, recipient], now: NOW, rng, prefixBits: 4 })
      if (!p.diverse) { nonDiverse++; continue }
      const prefixes = [sender, recipient, ...p.relays.map(d => d.identity)].map(id => idPrefix(id, 4))
      assert.equal(new Set(prefixes).size, prefixes.length, 'all prefixes differ')
    }
    assert.equal(nonDiverse, 0, '60 relays over 16 prefixes always allow a diverse path')
  })

  it('diverse by tor client: two relays behind one tor client never share a path', () => {
    const rng = new SeededRng('tor-hint')
    const shared = Uint8Array.of(1, 2, 3)
    const twins = [relay(rng, { torClient: shared }), relay(rng, { torClient: shared })]
    const others = distinctPrefixRelays(rng, 6)
    for (let i = 0; i < 200; i++) {
      const p = selectPath({ hops: 3, relays: [...twins, ...others], endpoints: [], now: NOW, rng, prefixBits: 0 })
      assert.ok(p.relays.filter(d => d.torClient.byteLength > 0).length <= 1)
    }
    // And not the tor client of an endpoint.
    for (let i = 0; i < 50; i++) {
      const p = selectPath({ hops: 3, relays: [...twins, ...others], endpoints: [], endpointTorClients: [shared], now: NOW, rng, prefixBits: 0 })
      assert.ok(p.relays.every(d => d.torClient.byteLength === 0))
    }
  })

  it('when the relays cannot give a diverse path it is filled and marked, or refused with strict', () => {
    const rng = new SeededRng('relax')
    const shared = Uint8Array.of(9)
    const relays = [relay(rng, { torClient: shared }), relay(rng, { torClient: shared }), relay(rng, { torClient: shared })]
    const p = selectPath({ hops: 3, relays, endpoints: [], now: NOW, rng, prefixBits: 0 })
    assert.equal(p.relays.length, 3)
    assert.equal(p.diverse, false)
    assert.throws(() => selectPath({ hops: 3, relays, endpoints: [], now: NOW, rng, prefixBits: 0, strict: true }), (err: unknown) => (err as { code?: string }).code === 'SCRAMBLE_NOT_ENOUGH_RELAYS')
  })

  it('draws uniformly: over 3,000 one-hop paths among 10 relays each is picked 200-400 times', () => {
    const rng = new SeededRng('uniform')
    const relays = distinctPrefixRelays(rng, 10)
    const counts = new Map<string, number>()
    for (let i = 0; i < 3000; i++) {
      const [d] = selectPath({ hops: 1, relays, endpoints: [], now: NOW, rng }).relays
      counts.set(toHex(d.identity), (counts.get(toHex(d.identity)) ?? 0) + 1)
    }
    assert.equal(counts.size, 10)
    for (const c of counts.values()) assert.ok(c > 200 && c < 400, String(c))
  })

  it('the same seed gives the same paths (the simulator replays)', () => {
    const relays = distinctPrefixRelays(new SeededRng('replay-relays'), 20)
    const run = (): string[] => {
      const rng = new SeededRng('replay-paths')
      return Array.from({ length: 20 }, () => selectPath({ hops: 3, relays, endpoints: [], now: NOW, rng }).relays.map(d => toHex(d.identity)).join(','))
    }
    assert.deepEqual(run(), run())
  })

  it('refuses hop counts outside 0..3', () => {
    const rng = new SeededRng('bad')
    for (const hops of [-1, 4, 1.5, Number.NaN]) {
      assert.throws(() => selectPath({ hops, relays: [], endpoints: [], now: NOW, rng }), (err: unknown) => (err as { code?: string }).code === 'SCRAMBLE_BAD_ARGUMENT')
    }
  })

  it('failed relays are left out for their window, then come back', async () => {
    const clock = new FakeClock(NOW)
    const failed = new FailedRelays(clock, 60_000)
    const id = new Uint8Array(32).fill(1)
    failed.mark(id)
    assert.ok(failed.current().has(toHex(id)))
    await clock.advance(60_001)
    assert.equal(failed.current().size, 0)
  })
})
