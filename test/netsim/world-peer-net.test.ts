/**
 * The world as the upper layers will use it: OHT records and PeerNet protocols side by side
 * on 300 nodes with Tor-like latency and churn, the way a wormhole scenario would look up a
 * peer's record and then talk to it directly; churn breaking a stream; and replay on a seed
 * with PeerNet traffic mixed into the DHT's.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { seedFromEnv } from '../../src/netsim/index.ts'
import { createWorld, formatReport, runWorkload, type World } from '../../src/netsim/world/index.ts'

const SEED = seedFromEnv('world-peer-net-1')
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array | undefined): string => new TextDecoder().decode(b)

/** A node publishes where it is under a name, others find the record and send it a direct message. */
async function scenario (world: World): Promise<string[]> {
  const log: string[] = []
  const inbox = world.node(7)
  inbox.peers.handle('/inbox/deliver/1', async (from, body) => {
    log.push(`delivered ${str(body)} from ${Buffer.from(from.publicKey).toString('hex').slice(0, 8)} at ${world.sim.elapsed}`)
    return text('ack')
  })
  await world.sim.settle((async () => {
    const put = await inbox.oht.putMutable({ salt: text('inbox'), value: text(JSON.stringify(inbox.contact.addrs)) })
    assert.ok(put.stored >= 15, `the inbox record was stored at ${put.stored}`)
    for (const i of [3, 11, 42]) {
      const sender = world.node(i)
      const found = await sender.oht.get(put.key)
      assert.ok(found !== undefined, `node ${i} found the inbox record`)
      const addrs = JSON.parse(str(found.value)) as string[]
      const ack = await sender.peers.request({ publicKey: inbox.contact.publicKey, addrs }, '/inbox/deliver/1', text(`hello ${i}`), { timeoutMs: 30_000 })
      log.push(`${i}: ${str(ack)} at ${world.sim.elapsed}`)
    }
  })())
  return log
}

describe(`the world with PeerNet (seed ${SEED})`, () => {
  it('world.node(i) has its engine and its PeerNet: a record lookup, then a direct request', async () => {
    const world = await createWorld({ seed: SEED, size: 300 })
    try {
      const log = await scenario(world)
      assert.equal(log.filter(l => l.startsWith('delivered')).length, 3)
      assert.deepEqual(log.filter(l => /^\d+: ack/.test(l)).map(l => l.split(':')[0]), ['3', '11', '42'])
      assert.ok((world.sim.network.peerStats?.requests ?? 0) === 3)
    } finally {
      world.stop()
    }
  })

  it('a node that leaves breaks its streams: the other end fails with OHT_STREAM_CLOSED, and node(i) forgets it', async () => {
    const world = await createWorld({ seed: SEED, size: 100 })
    try {
      const a = world.node(1)
      const b = world.node(2)
      b.peers.handleStream('/chat/1', async (s) => { for await (const m of s) await s.send(m) })
      await world.sim.settle((async () => {
        const s = await a.peers.openStream(b.contact, '/chat/1')
        await s.send(text('one'))
        const it = s[Symbol.asyncIterator]()
        assert.equal(str((await it.next()).value), 'one')
        const pending = it.next().then(() => 'no error', (err: { code?: string }) => err.code)
        world.leave(b)
        assert.equal(await pending, 'OHT_STREAM_CLOSED')
      })())
      assert.throws(() => world.node(2), (err: { code?: string }) => err.code === 'SIM_UNKNOWN_HOST')
    } finally {
      world.stop()
    }
  })

  it('replays bit for bit with PeerNet traffic mixed in, churn and a workload', async () => {
    const once = async (): Promise<string> => {
      const world = await createWorld({ seed: SEED, size: 300, churnPerHour: 0.2 })
      try {
        const log = await scenario(world)
        await world.sim.settle(runWorkload(world, { minutes: 10, putEveryMs: 30_000, getEveryMs: 10_000 }))
        const m = world.metrics()
        console.log(formatReport('world with PeerNet', m))
        return JSON.stringify({ log, d: m.deterministic, peers: world.sim.network.peerStats })
      } finally {
        world.stop()
      }
    }
    const first = await once()
    assert.equal(await once(), first, `runs with seed ${SEED} diverged: re-run with OHT_SIM_SEED=${SEED}`)
  })
})
