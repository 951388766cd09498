/**
 * 1,000 OHT nodes on Tor-like latency (0.3–3 s round trips) with 20 % of the nodes replaced
 * per simulated hour: GETs succeed, PUTs reach the true closest nodes, TTLs end records
 * everywhere, stale seqs are refused. One network serves every scenario of this file.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { toHex } from '../../src/core/index.ts'
import { seedFromEnv } from '../../src/netsim/index.ts'
import { mutableKey, type OhtRecord, type PutResult } from '../../src/oht/index.ts'
import { formatReport, runWorkload, createWorld, type WorldNode, type World, type WorldMetrics } from '../../src/netsim/world/index.ts'

const SEED = seedFromEnv('oht-churn-1')
const SIZE = 1000
const MINUTE = 60_000

describe(`OHT on 1,000 simulated nodes with 20 %/h churn (seed ${SEED})`, () => {
  let world: World
  let m: WorldMetrics

  before(async () => {
    world = await createWorld({ seed: SEED, size: SIZE, churnPerHour: 0.2 })
    await world.sim.run({ forMs: 5 * MINUTE })
    await world.sim.settle(runWorkload(world, { minutes: 30, putEveryMs: 20_000, getEveryMs: 6_000 }))
    m = world.metrics()
    console.log(formatReport('steady workload under churn', m))
  })

  after(() => { world?.stop() })

  const explain = (): string => `seed ${SEED}: re-run with OHT_SIM_SEED=${SEED}; last failures: ${world.failures.slice(-5).join(' | ')}`

  it('GET success >= 99.5 %', () => {
    const g = m.deterministic.gets
    assert.ok(g.attempted >= 250, `only ${g.attempted} GETs ran`)
    assert.ok(m.deterministic.churn.left >= 60, `churn too low to matter: ${m.deterministic.churn.left} left`)
    assert.ok(g.successRate >= 0.995, `GET success ${(100 * g.successRate).toFixed(2)} % < 99.5 %; ${explain()}`)
  })

  it('PUT reaches >= 18 of the true 20 closest online nodes in >= 99 % of puts', () => {
    const p = m.deterministic.puts
    assert.ok(p.attempted >= 80, `only ${p.attempted} PUTs ran`)
    assert.ok(p.reachAtLeast18Rate >= 0.99, `reach >= 18 in ${(100 * p.reachAtLeast18Rate).toFixed(2)} % < 99 %; reach ${JSON.stringify(m.deterministic.putReach)}; ${explain()}`)
  })

  it('records vanish everywhere after their TTL, their bytes zeroed', async () => {
    const TTL = 2 * MINUTE
    const keys: Uint8Array[] = []
    const buffers: Uint8Array[] = []
    await world.sim.settle((async () => {
      for (let i = 0; i < 6; i++) {
        const writer = world.randomNode()
        const value = world.sim.rng.bytes(200)
        const r = i % 2 === 0
          ? await world.put(writer, { kind: 'immutable', value, ttlMs: TTL })
          : await world.put(writer, { kind: 'mutable', value, salt: Uint8Array.of(0xee, i), ttlMs: TTL })
        assert.ok(r.stored >= 18, `put ${i} stored at only ${r.stored} nodes; ${explain()}`)
        keys.push(r.key)
      }
    })())
    for (const key of keys) {
      const holders = world.holders(key)
      assert.ok(holders.length >= 18, `only ${holders.length} holders`)
      for (const h of holders) buffers.push((h.oht.store.get(key)?.record.value) as Uint8Array)
    }
    assert.ok(buffers.some(b => b.some(x => x !== 0)), 'held values are not all-zero before expiry')
    // TTL, plus one maintenance period and the store's expiry granularity.
    await world.sim.run({ forMs: TTL + 2 * MINUTE })
    for (const key of keys) {
      assert.equal(world.holders(key).length, 0, `a node still holds a record past its TTL; ${explain()}`)
      let bytes = 0
      for (const p of world.nodes) bytes += p.oht.store.get(key)?.record.value.byteLength ?? 0
      assert.equal(bytes, 0)
    }
    assert.ok(buffers.every(b => b.every(x => x === 0)), `an expired record's value was not zeroed; ${explain()}`)
  })

  it('a stale seq is rejected everywhere and the newest write stays readable', async () => {
    const writer = world.randomNode()
    const salt = Uint8Array.of(0x5e, 0x9)
    const key = mutableKey(writer.identity.publicKey, salt)
    const refusedAsStale = (codes: string[]): void => {
      // Every node that answered refused it as stale; only transport failures (a node that
      // just left) may show up besides.
      assert.ok(codes.filter(c => c === 'OHT_SEQ_STALE').length >= 17, `errors: ${codes.join(',')}; ${explain()}`)
      assert.ok(codes.every(c => c === 'OHT_SEQ_STALE' || c === 'CORE_TIMEOUT' || c === 'CORE_ABORTED'), `errors: ${codes.join(',')}`)
    }
    await world.sim.settle((async () => {
      const v1 = await world.put(writer, { kind: 'mutable', value: Uint8Array.of(1), salt })
      const old = await world.randomNode().oht.get(key)
      assert.equal(old?.seq, v1.seq)
      const v2 = await world.put(writer, { kind: 'mutable', value: Uint8Array.of(2), salt })
      assert.equal(v2.seq, (v1.seq as number) + 1)
      assert.ok(v2.stored >= 18, `seq ${v2.seq} stored at ${v2.stored}`)
      // Nodes that hold seq v2 must never go back; a node that held nothing (one that just
      // joined the closest set) may take the old write, as it cannot know better, and the
      // newest seq still wins on read.
      const newer = world.holders(key, v2.seq)
      assert.ok(newer.length >= 18, `seq ${v2.seq} held by ${newer.length}`)
      const newerKeys = new Set(newer.map(h => toHex(h.identity.publicKey)))
      const noDowngrade = (what: string, r: PutResult, putter: WorldNode): void => {
        assert.ok(newer.every(h => !h.host.online || (h.oht.store.get(key)?.record as { seq?: number } | undefined)?.seq === v2.seq), `${what}: a node holding seq ${v2.seq} went back; ${explain()}`)
        // Only targets that held nothing newer (and the putter itself) may have taken it.
        const unaware = r.closest.filter(c => !newerKeys.has(toHex(c.publicKey))).length + (newerKeys.has(toHex(putter.identity.publicKey)) ? 0 : 1)
        assert.ok(r.stored <= unaware, `${what} was stored ${r.stored} times, but only ${unaware} targets lacked seq ${v2.seq}; ${explain()}`)
      }
      // 1. The rightful writer asks for an older seq: refused locally or by the nodes.
      let stale: PutResult | undefined
      let staleError: unknown
      try { stale = await writer.oht.putMutable({ value: Uint8Array.of(3), salt, seq: v1.seq }) } catch (err) { staleError = err }
      if (stale !== undefined) {
        refusedAsStale(stale.errors.map(e => e.code))
        noDowngrade('an explicit stale seq', stale, writer)
      } else {
        assert.equal((staleError as { code?: string }).code, 'OHT_SEQ_STALE', String(staleError))
      }
      // 2. Anyone replays the old, validly signed write: the holders refuse it.
      const replayer = world.randomNode()
      const replay = await replayer.oht.put((old as { record: OhtRecord }).record)
      refusedAsStale(replay.errors.map(e => e.code))
      noDowngrade('a replayed old write', replay, replayer)
      const got = await world.get(world.randomNode(), key, { value: Uint8Array.of(2), seq: v2.seq })
      assert.ok(got.ok, `GET after the stale writes returned seq ${got.seq}; ${explain()}`)
    })())
  })
  it('records outlive their writer: holders re-replicate them to the nodes that became closest', async () => {
    const HOUR = 60 * MINUTE
    const writer = world.randomNode()
    const value = world.sim.rng.bytes(300)
    let key: Uint8Array | undefined
    await world.sim.settle((async () => {
      const r = await world.put(writer, { kind: 'immutable', value, ttlMs: 6 * HOUR })
      assert.ok(r.stored >= 18, `stored at only ${r.stored}; ${explain()}`)
      key = r.key
    })())
    const k = key as Uint8Array
    // The writer is gone for good: no republish. Three hours of 20 %/h churn replace about
    // half of the nodes; without re-replication the new closest nodes would hold nothing.
    world.leave(writer)
    const replicatedBefore = world.metrics().deterministic.engine.replicated
    await world.sim.run({ forMs: 3 * HOUR })
    const truth = world.trueClosest(k)
    const newcomers = truth.filter(p => p.joinedAt > writer.leftAt!).length
    const holding = truth.filter(p => p.oht.store.get(k) !== undefined).length
    const newcomersHolding = truth.filter(p => p.joinedAt > writer.leftAt! && p.oht.store.get(k) !== undefined).length
    assert.ok(newcomers >= 3, `churn too low to test re-replication: ${newcomers} of the true 20 closest joined since the put`)
    // Holders replicate once per replicate interval (1 h): the newest arrivals may still wait.
    const seen = `${holding} of the true 20 closest hold the record after 3 h; ${newcomersHolding} of the ${newcomers} that joined since the put`
    assert.ok(holding >= 15, `${seen}; ${explain()}`)
    assert.ok(newcomersHolding * 2 >= newcomers, `${seen}: the record did not follow the network; ${explain()}`)
    assert.ok(world.metrics().deterministic.engine.replicated > replicatedBefore, 'no replication PUT was ever stored')
    await world.sim.settle((async () => {
      const got = await world.get(world.randomNode(), k, { value })
      assert.ok(got.ok, `GET 3 h after the writer left failed; ${explain()}`)
    })())
  })
})
