/**
 * App state over the network: ops signed by two users converge on one state hash through the
 * OHT's heads and pages; the validator refuses before anything is published; grants gate
 * reading and writing; a host's signed snapshot starts a late joiner that then catches up;
 * ops posted to one host reach another by anti-entropy; a restarted service keeps its log.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isCodedError, SeededRng, toHex } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { createDoa, createHostClient, fetchHeads, signOp, type AppSession } from '../../src/doa/index.ts'
import { doaTestnet, type DoaTestnet } from './doa-helpers.ts'

const TEMPLATE = new URL('../../examples/template-app/', import.meta.url).pathname
const sign = (name: string, message: string): { type: string, name: string, message: string } => ({ type: 'sign', name, message })

describe('doa state over the OHT and hosts', () => {
  let net: DoaTestnet
  let tmp: string
  let appKey: Uint8Array
  before(async () => {
    net = await doaTestnet({ size: 12, services: 6, seed: 'doa-state' })
    tmp = await mkdtemp(join(tmpdir(), 'oht-doa-state-'))
    await cp(TEMPLATE, join(tmp, 'guestbook'), { recursive: true })
    const r = await net.doas[0].publish(join(tmp, 'guestbook'))
    appKey = Buffer.from(r.appKey, 'hex')
    for (const d of net.doas.slice(1, 4)) await d.install(appKey)
  })
  after(async () => {
    await net.stop()
    await rm(tmp, { recursive: true, force: true })
  })

  it('ops from two users converge on one state hash', async () => {
    const a = await net.doas[1].open(appKey)
    const b = await net.doas[2].open(appKey)
    const ra = await a.submit(sign('ada', 'hello from a'))
    assert.equal(ra.status, 'accepted')
    assert.ok(ra.stored >= 1)
    await b.sync()
    await b.submit(sign('bob', 'hello from b'))
    await a.sync()
    await a.submit(sign('ada', 'second, after seeing bob'))
    await a.sync()
    await b.sync()
    assert.equal(a.stateHash, b.stateHash)
    const state = a.state as { signatures: number, entries: Array<{ name: string }> }
    assert.equal(state.signatures, 3)
    assert.deepEqual(state.entries.map(e => e.name), ['ada', 'bob', 'ada'])
    // Each user signs with its own per-app key, not its node key.
    const authors = new Set(a.log().map(o => toHex(o.author)))
    assert.equal(authors.size, 2)
    assert.ok(!authors.has(toHex(net.identities[1].publicKey)))
  })

  it('concurrent ops (neither saw the other) fold in the same order everywhere', async () => {
    const a = await net.doas[1].open(appKey)
    const b = await net.doas[2].open(appKey)
    await Promise.all([a.submit(sign('ada', 'at the same time')), b.submit(sign('bob', 'at the same time'))])
    await a.sync()
    await b.sync()
    assert.equal(a.stateHash, b.stateHash)
    assert.equal(a.size, 5)
  })

  it('the validator refuses an op before it is published', async () => {
    const a = await net.doas[1].open(appKey)
    const before = a.size
    await assert.rejects(a.submit(sign('', 'no name')), (e: unknown) => isCodedError(e, 'DOA_OP_REJECTED'))
    await assert.rejects(a.submit({ type: 'sign', name: 'x'.repeat(41), message: 'm' }), (e: unknown) => isCodedError(e, 'DOA_OP_REJECTED'))
    assert.equal(a.size, before)
    const heads = await fetchHeads(net.nodes[8], appKey)
    assert.ok(heads.every(h => (h.op.body as { name: string }).name !== ''))
  })

  it('emits op and state events', async () => {
    const b = await net.doas[2].open(appKey)
    const a = await net.doas[1].open(appKey)
    const seen: string[] = []
    const off = b.on((e) => { seen.push(e.type) })
    await a.submit(sign('ada', 'events'))
    await b.sync()
    off()
    assert.ok(seen.includes('op') && seen.includes('state'), seen.join(','))
  })

  it('grants gate the state: an install denied state:write cannot submit', async () => {
    const d = net.doas[3]
    await d.remove(appKey)
    const r = await d.install(appKey, { deny: ['state:write'] })
    assert.deepEqual(r.grants, ['api', 'state:read', 'ui'])
    const s = await d.open(appKey)
    await s.sync()
    assert.equal((s.state as { signatures: number }).signatures, 6)
    await assert.rejects(s.submit(sign('eve', 'x')), (e: unknown) => isCodedError(e, 'DOA_CAPABILITY'))
  })

  it('a host snapshot starts a late joiner, which then catches up with newer ops', async () => {
    const host = net.doas[1]
    await host.host(appKey)
    await (host as unknown as { hostingIdle(): Promise<void> }).hostingIdle()
    // A snapshot now (the timer would make one after 256 ops or 6 h).
    const hosted = (host as unknown as { hosted: Map<string, { snapshot(): Promise<void> }> }).hosted.get(toHex(appKey))!
    await hosted.snapshot()
    const snap = host.hosting()[0].snapshot
    assert.ok(snap !== null && snap.ops === 6)
    const a = await net.doas[2].open(appKey)
    await a.submit(sign('bob', 'after the snapshot'))
    // A new service on node 4 that never saw an op: it starts from the snapshot (one host → 'agree' takes it).
    const d = net.doas[4]
    await d.install(appKey)
    const late = await d.open(appKey)
    assert.deepEqual(late.base, { host: toHex(net.identities[1].publicKey), ops: 6 })
    assert.equal(late.size, 0)
    await late.sync()
    assert.equal(late.size, 1, 'only the op after the snapshot was fetched')
    assert.equal(late.stateHash, a.stateHash)
  })

  it('ops posted to a host\'s API reach another host by anti-entropy (not through the OHT)', async () => {
    const h2 = net.doas[2]
    await h2.host(appKey)
    const h1Session = await net.doas[1].open(appKey)
    // A user who talks to host 1 only: the op is signed elsewhere and posted to host 1's API.
    const user = identityFromSeed(new Uint8Array(32).fill(42))
    const op = signOp(user, { appKey, seq: 1, lamport: Math.max(...h1Session.heads().map(h => h.lamport)) + 1, time: 1, body: sign('zoe', 'via the API') })
    const client = createHostClient(net.peers.net({ publicKey: user.publicKey, addrs: [] }), { publicKey: net.identities[1].publicKey, addrs: [] })
    const res = await client.http(appKey, 'POST', '/api/ops', op.bytes)
    assert.equal(res.status, 200, new TextDecoder().decode(res.body))
    const s2 = await h2.open(appKey)
    assert.equal(s2.log().some(o => toHex(o.id) === toHex(op.id)), false)
    const r = await s2.sync()
    assert.ok(r.sources.some(s => s.startsWith('host ')), r.sources.join(','))
    assert.equal(s2.log().some(o => toHex(o.id) === toHex(op.id)), true)
    await h1Session.sync()
    assert.equal(s2.stateHash, h1Session.stateHash)
  })

  it('keeps the log across a restart of the service', async () => {
    const dir = net.dirs[5]
    const d = net.doas[5]
    await d.install(appKey)
    const s: AppSession = await d.open(appKey)
    await s.sync()
    const hash = s.stateHash
    const size = s.covered
    await d.stop()
    const again = createDoa({ dir, session: { watch: false, syncIntervalMs: 0, snapshot: 'never' } }, {
      dht: net.nodes[5], identity: identityFromSeed(net.identities[5].seed.slice()), clock: net.t.clock, rng: new SeededRng('restart'), sandbox: net.sandbox
    })
    await again.start()
    const s2 = await again.open(appKey)
    assert.equal(s2.stateHash, hash)
    assert.equal(s2.covered, size)
    await again.stop()
  })
})
