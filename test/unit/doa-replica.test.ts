import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { isCodedError, SeededRng, shuffle, toHex, type Rng } from '../../src/core/index.ts'
import { generateIdentity, type Identity } from '../../src/crypto/index.ts'
import {
  createReplica, createSandboxHost, decodeOp, makeSnapshot, openSnapshot, plainLogic, replicaFromSnapshot, signOp,
  utf8, verifySnapshotByReplay, type AppSandbox, type Op, type SandboxHost
} from '../../src/doa/index.ts'

// A tiny chat: messages in merge order; the validator refuses empty messages.
const REDUCER = `export function init () { return { messages: [], count: {} } }
export function reduce (s, body, ctx) {
  const count = { ...s.count, [ctx.author.slice(0, 8)]: (s.count[ctx.author.slice(0, 8)] ?? 0) + 1 }
  return { messages: [...s.messages, ctx.author.slice(0, 4) + ':' + body.text], count }
}
export function validate (s, body) { return typeof body.text === 'string' && body.text.length > 0 ? true : 'empty message' }`

const plain = plainLogic({
  init: () => ({ messages: [], count: {} }),
  reduce: (s, body, ctx) => ({ messages: [...s.messages, ctx.author.slice(0, 4) + ':' + body.text], count: { ...s.count, [ctx.author.slice(0, 8)]: (s.count[ctx.author.slice(0, 8)] ?? 0) + 1 } }),
  validate: (_s, body) => typeof body.text === 'string' && body.text.length > 0 ? true : 'empty message'
})

const appKey = generateIdentity().publicKey

/** Authors writing concurrently: each knows a random part of what the others wrote. */
function history (rng: Rng, authors: Identity[], total: number): Op[] {
  const ops: Op[] = []
  const seqs = authors.map(() => 0)
  const lamports = authors.map(() => 0)
  const lamportAt = new Map<string, number>()
  const seen = authors.map(() => authors.map(() => 0))
  for (let i = 0; i < total; i++) {
    const a = rng.int(authors.length)
    for (let b = 0; b < authors.length; b++) if (b !== a && rng.next() < 0.5) seen[a][b] = seqs[b]
    const parents = authors.map((au, b) => ({ author: au.publicKey, seq: seen[a][b], b })).filter(p => p.b !== a && p.seq > 0)
    const lamport = Math.max(lamports[a], ...parents.map(p => lamportAt.get(`${p.b}:${p.seq}`) ?? 0)) + 1
    seqs[a]++
    lamports[a] = lamport
    lamportAt.set(`${a}:${seqs[a]}`, lamport)
    ops.push(signOp(authors[a], { appKey, seq: seqs[a], lamport, time: 1_700_000_000_000 + i, parents: parents.map(p => ({ author: p.author, seq: p.seq })), body: { text: i % 9 === 4 ? '' : `m${i}` } }))
  }
  return ops
}

describe('doa replay', () => {
  let host: SandboxHost
  let sandbox: AppSandbox
  const rng = new SeededRng('doa-replica')
  const authors = [generateIdentity(), generateIdentity(), generateIdentity()]
  let ops: Op[]
  before(async () => {
    host = await createSandboxHost()
    sandbox = await host.loadApp({ files: [{ path: 'app.js', data: utf8(REDUCER) }], reducer: 'app.js', validator: 'app.js', grants: [] })
    ops = history(rng, authors, 60)
  })
  after(() => { host.stop() })

  it('gives the same state hash for the same ops in 50 random orders, sandboxed or plain', () => {
    const inOrder = createReplica({ appKey, checkpointEvery: 8 }, { logic: sandbox })
    for (const op of ops) assert.equal(inOrder.add(op).status, 'accepted')
    const want = toHex(inOrder.stateHash())
    const plainReplica = createReplica({ appKey }, { logic: plain })
    plainReplica.addMany(ops)
    assert.equal(toHex(plainReplica.stateHash()), want, 'sandboxed and plain reducers agree')
    const refused = ops.filter(o => (o.body as { text: string }).text === '').map(o => toHex(o.id))
    assert.ok(refused.length > 0)
    for (const id of refused) assert.equal(inOrder.outcomeOf(id)?.ok, false)
    for (let round = 0; round < 50; round++) {
      const r = createReplica({ appKey, checkpointEvery: 8 }, { logic: sandbox })
      const order = shuffle(rng, [...ops])
      // Read the state now and then, so out-of-order arrivals force replays from checkpoints.
      order.forEach((op, i) => { r.add(op.bytes); if (i % 17 === 0) void r.state })
      assert.equal(r.pending, 0)
      assert.equal(toHex(r.stateHash()), want, `round ${round}`)
      assert.deepEqual(r.versionVector(), inOrder.versionVector())
    }
  })

  it('refuses forged ops: bad signature, another app, a seq too far ahead, a Lamport clock going back', () => {
    const r = createReplica({ appKey, maxGap: 10 }, { logic: plain })
    const good = ops[0]
    const flipped = good.bytes.slice(); flipped[flipped.byteLength - 5] ^= 1
    assert.equal(r.add(flipped).code, 'DOA_BAD_SIGNATURE')
    for (let i = 0; i < good.bytes.byteLength; i += 7) {
      const bad = good.bytes.slice(); bad[i] ^= 0x10
      const res = r.add(bad)
      assert.equal(res.status, 'rejected', `byte ${i}`)
    }
    const other = signOp(authors[0], { appKey: generateIdentity().publicKey, seq: 1, lamport: 1, time: 0, body: { text: 'x' } })
    assert.equal(r.add(other.bytes).code, 'DOA_KEY_MISMATCH')
    const far = signOp(authors[0], { appKey, seq: 50, lamport: 50, time: 0, body: { text: 'x' } })
    assert.equal(r.add(far).status, 'rejected')
    const a1 = signOp(authors[1], { appKey, seq: 1, lamport: 5, time: 0, body: { text: 'x' } })
    const a2 = signOp(authors[1], { appKey, seq: 2, lamport: 5, time: 0, body: { text: 'y' } })
    assert.equal(r.add(a1).status, 'accepted')
    assert.equal(r.add(a2).status, 'rejected')
    assert.throws(() => decodeOp(utf8('not an op at all, not at all, not at all, not at all, not at all, not at all, not at all, not at all')), (e: unknown) => isCodedError(e, 'DOA_BAD_OP'))
  })

  it('cuts an equivocating author at the reused seq, the same whatever the arrival order', () => {
    const [x, y] = authors
    const x1 = signOp(x, { appKey, seq: 1, lamport: 1, time: 0, body: { text: 'x1' } })
    const x2 = signOp(x, { appKey, seq: 2, lamport: 2, time: 0, body: { text: 'x2' } })
    const x2b = signOp(x, { appKey, seq: 2, lamport: 2, time: 0, body: { text: 'x2, other version' } })
    const x3 = signOp(x, { appKey, seq: 3, lamport: 3, time: 0, body: { text: 'x3' } })
    const y1 = signOp(y, { appKey, seq: 1, lamport: 3, time: 0, parents: [{ author: x.publicKey, seq: 2 }], body: { text: 'y1 saw x2' } })
    const y2 = signOp(y, { appKey, seq: 2, lamport: 4, time: 0, body: { text: 'y2' } })
    const all = [x1, x2, x2b, x3, y1, y2]
    const hashes = new Set<string>()
    for (let round = 0; round < 20; round++) {
      const r = createReplica({ appKey }, { logic: plain })
      const results = shuffle(rng, [...all]).map(op => r.add(op))
      assert.ok(results.some(res => res.status === 'rejected' && /two different ops/.test(res.reason ?? '')))
      assert.deepEqual((r.state as { messages: string[] }).messages, [`${toHex(x.publicKey).slice(0, 4)}:x1`])
      hashes.add(toHex(r.stateHash()))
    }
    assert.equal(hashes.size, 1)
  })

  it('lets a late joiner start from a signed snapshot and reach the same state; replay checks the snapshot', () => {
    const full = createReplica({ appKey }, { logic: sandbox })
    full.addMany(ops)
    // The host saw the first 40 ops (a causally closed prefix: creation order).
    const early = createReplica({ appKey }, { logic: sandbox })
    early.addMany(ops.slice(0, 40))
    const hostKey = generateIdentity()
    const { bytes, snapshot } = makeSnapshot(early, { release: 1, codeRoot: '00'.repeat(32), time: 1 }, hostKey)
    const opened = openSnapshot(bytes, appKey)
    assert.deepEqual(opened.snapshot, snapshot)
    for (const i of [0, 5, 12, bytes.byteLength >> 1, bytes.byteLength - 70, bytes.byteLength - 1]) {
      const bad = bytes.slice(); bad[i] ^= 1
      assert.throws(() => openSnapshot(bad, appKey), (e: unknown) => isCodedError(e) && e.code.startsWith('DOA_'), `byte ${i}`)
    }
    verifySnapshotByReplay(snapshot, ops.slice(0, 40), sandbox)
    assert.throws(() => verifySnapshotByReplay(snapshot, ops.slice(0, 39), sandbox), (e: unknown) => isCodedError(e, 'DOA_SNAPSHOT_MISMATCH'))
    // A host that lies about the state, signing its lie: the signature holds, replay does not.
    const liar = makeSnapshot(createReplica({ appKey }, { logic: plainLogic({ reduce: (s) => s, init: () => ({ messages: ['forged'], count: {} }) }) }), { release: 1, codeRoot: '00'.repeat(32), time: 1 }, hostKey)
    const lie = { ...liar.snapshot, heads: snapshot.heads, frontier: snapshot.frontier }
    assert.throws(() => verifySnapshotByReplay(lie, ops.slice(0, 40), sandbox), (e: unknown) => isCodedError(e, 'DOA_SNAPSHOT_MISMATCH'))

    // Ops written after the snapshot, by authors who had seen it all, place on top of it.
    const vv = full.versionVector()
    const top = full.frontier()?.lamport ?? 0
    const more = authors.map((au, i) => signOp(au, {
      appKey, seq: (vv[toHex(au.publicKey)] ?? 0) + 1, lamport: top + 1 + i, time: 0,
      parents: authors.filter(o => o !== au && vv[toHex(o.publicKey)] !== undefined).map(o => ({ author: o.publicKey, seq: vv[toHex(o.publicKey)] })),
      body: { text: `after ${i}` }
    }))
    const late = makeSnapshot(full, { release: 1, codeRoot: '00'.repeat(32), time: 2 }, hostKey).snapshot
    const joiner = replicaFromSnapshot(late, {}, sandbox)
    const statuses = joiner.addMany([...shuffle(rng, [...more]), ...ops.slice(0, 5)]).map(r => r.status)
    assert.deepEqual(statuses, ['accepted', 'accepted', 'accepted', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate'])
    full.addMany(more)
    assert.equal(toHex(joiner.stateHash()), toHex(full.stateHash()))
    assert.equal(joiner.needsHistory, false)
  })

  it('reports an op that sorts before the snapshot frontier instead of accepting it', () => {
    const [x, y] = authors
    const x1 = signOp(x, { appKey, seq: 1, lamport: 10, time: 0, body: { text: 'late frontier' } })
    const y1 = signOp(y, { appKey, seq: 1, lamport: 2, time: 0, body: { text: 'old, concurrent' } })
    const hostRep = createReplica({ appKey }, { logic: plain })
    hostRep.add(x1)
    const snap = makeSnapshot(hostRep, { release: 1, codeRoot: '00'.repeat(32), time: 0 }, generateIdentity()).snapshot
    const joiner = replicaFromSnapshot(snap, {}, plain)
    assert.equal(joiner.add(y1).status, 'before-snapshot')
    assert.ok(joiner.needsHistory)
  })

  it('converges two partitioned replicas by exchanging what each other lacks', () => {
    const a = createReplica({ appKey }, { logic: plain })
    const b = createReplica({ appKey }, { logic: plain })
    a.addMany(ops.slice(0, 20))
    b.addMany(ops.slice(0, 20))
    // Partition: each side gets a different half of the rest.
    ops.slice(20).forEach((op, i) => (i % 2 === 0 ? a : b).add(op))
    assert.notEqual(toHex(a.stateHash()), toHex(b.stateHash()))
    const toB = a.opsAfter(b.versionVector())
    const toA = b.opsAfter(a.versionVector())
    b.addMany(toB)
    a.addMany(toA)
    assert.equal(toHex(a.stateHash()), toHex(b.stateHash()))
    assert.ok(toB.length + toA.length < ops.length)
  })
})

