/**
 * The SDK node as the one facade: the `local` transport runs the real engine with no network,
 * a node with a dataDir keeps what it wrote across restarts (over TCP, with no peers left), put
 * results say how many holders they reached, and peers/counters/join come from the SDK.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cryptoRng } from '../../src/core/index.ts'
import { mutableKey } from '../../src/oht/index.ts'
import { createNode, describePut, type OhtSdkNode } from '../../src/sdk/index.ts'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array | undefined): string => new TextDecoder().decode(b)

describe('SDK node', { timeout: 60_000 }, () => {
  const nodes: OhtSdkNode[] = []
  const dirs: string[] = []
  const tmp = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'oht-sdk-node-')); dirs.push(d); return d }
  after(async () => {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('local: the engine with no network, its record semantics, and a plain "only this node" result', async () => {
    const node = await createNode({ transport: 'local' })
    nodes.push(node)
    assert.equal(node.transport, 'local')
    assert.deepEqual(node.multiaddrs, [])
    const r = await node.put(bytes('offline'))
    assert.deepEqual([r.stored, r.wanted, r.storedHere, r.onlyHere], [1, 20, true, true])
    assert.equal(describePut(r), 'stored 1 of 20: only this node holds it')
    assert.equal(str((await node.get(r.key))?.value), 'offline')
    const m0 = await node.putMutable({ salt: bytes('s'), value: bytes('a') })
    assert.equal(m0.seq, 0)
    const m1 = await node.putMutable({ salt: bytes('s'), value: bytes('b'), cas: 0 })
    assert.equal(m1.seq, 1)
    await assert.rejects(node.putMutable({ salt: bytes('s'), value: bytes('c'), cas: 0 }), { code: 'OHT_CAS_MISMATCH' })
    const got = await node.get(mutableKey(node.publicKey, bytes('s')))
    assert.equal(got?.record.kind, 'mutable', 'a signed mutable record')
    assert.equal(str(got?.value), 'b')
    await assert.rejects(node.join(['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh1AN3pQhvWsYCFm4KFd2tmfcTHU7S5vWxeRsGkKz']), { code: 'NET_BAD_CONFIG' })
    assert.equal(node.stats().records, 2)
    assert.equal(node.stats().engine.puts, 4, 'the engine counted the puts, the refused CAS one included')
    await assert.rejects(createNode({ transport: 'local', bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), { code: 'NET_BAD_CONFIG' })
  })

  it('tcp: a writer restarted with no peers serves its records, continues its seq, and republishes once it has peers again', async () => {
    const dir = await tmp()
    const seed = cryptoRng.bytes(32)
    const a = await createNode({ transport: 'tcp' })
    nodes.push(a)
    let w = await createNode({ transport: 'tcp', seed, dataDir: dir, bootstrap: a.multiaddrs })
    const imm = await w.put(bytes('mine'))
    assert.equal(imm.stored, 2)
    assert.equal(imm.onlyHere, false)
    assert.equal(describePut(imm), 'stored 2 of 20: fewer holders than asked (1 peer and this node)')
    const m = await w.putMutable({ salt: bytes('motd'), value: bytes('v-before') })
    assert.equal(w.routingPeers().length, 1)
    assert.deepEqual(w.routingPeers()[0].publicKey, a.publicKey)
    assert.equal(w.stats().peers, 1)
    assert.equal(w.stats().journalEntries, 2)
    await w.stop()
    await a.stop() // the only other holder is gone: nobody else has the records now
    assert.equal((await stat(join(dir, 'own-records.json'))).mode & 0o777, 0o600)

    w = await createNode({ transport: 'tcp', seed, dataDir: dir })
    nodes.push(w)
    assert.equal(w.stats().peers, 0)
    assert.equal(str((await w.get(imm.key))?.value), 'mine', 'served from its own journal with no peer')
    const again = await w.putMutable({ salt: bytes('motd'), value: bytes('v-after') })
    assert.equal(again.seq, (m.seq ?? 0) + 1, 'the seq continues above the last one')

    // a newcomer joins: the writer republishes its own records to it after bootstrap
    const c = await createNode({ transport: 'tcp' })
    nodes.push(c)
    const joined = await w.join(c.multiaddrs)
    assert.equal(joined.peers, 1)
    const deadline = Date.now() + 10_000
    while (c.stats().records < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(c.stats().records, 2, 'the newcomer holds both own records')
    assert.ok(w.stats().engine.republished >= 2)
  })

  it('refuses to start on a sealed journal without its passphrase, and opens it with the passphrase', async () => {
    const dir = await tmp()
    const seed = cryptoRng.bytes(32)
    const fast = { N: 2 ** 10, r: 8, p: 1 }
    const n1 = await createNode({ transport: 'local', seed, dataDir: dir, journal: { passphrase: 'pw', scrypt: fast } })
    const r = await n1.put(bytes('sealed'))
    await n1.stop()
    await assert.rejects(createNode({ transport: 'local', seed, dataDir: dir }), { code: 'OHT_JOURNAL_PASSPHRASE' })
    const n2 = await createNode({ transport: 'local', seed, dataDir: dir, journal: { passphrase: 'pw' } })
    nodes.push(n2)
    assert.equal(str((await n2.get(r.key))?.value), 'sealed')
  })
})
