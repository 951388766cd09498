/**
 * The SDK's createNode over TCP (the tor path is covered by the integration tests) and the
 * routing-table file codec.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode, identityFromSeed, type OhtSdkNode } from '../../src/index.ts'
import { loadTableFile, parseTable, saveTableFile, contactFromMultiaddr } from '../../src/net/index.ts'

describe('createNode over TCP', { timeout: 20_000 }, () => {
  const nodes: OhtSdkNode[] = []
  let dir = ''
  after(async () => {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('gives running nodes with put/get, the seed as identity, and a saved routing table', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-sdk-'))
    const seed = new Uint8Array(randomBytes(32))
    const a = await createNode({ transport: 'tcp', seed })
    nodes.push(a)
    assert.deepEqual(a.publicKey, identityFromSeed(seed).publicKey)
    assert.deepEqual(contactFromMultiaddr(a.multiaddrs[0]).publicKey, a.publicKey, 'bootstrap address names the key')
    const b = await createNode({ transport: 'tcp', bootstrap: a.multiaddrs, dataDir: dir })
    nodes.push(b)
    const c = await createNode({ transport: 'tcp', bootstrap: a.multiaddrs })
    nodes.push(c)
    const put = await b.put(new TextEncoder().encode('sdk'))
    assert.ok(put.stored >= 2)
    assert.equal(new TextDecoder().decode((await c.get(put.key))?.value), 'sdk')
    await b.stop()
    const saved = await loadTableFile(join(dir, 'routing-table.json'))
    assert.ok(saved.length >= 2, 'the table was saved on stop')
    assert.equal((await stat(join(dir, 'routing-table.json'))).mode & 0o777, 0o600)
  })

  it('rejects a seed of the wrong length', async () => {
    await assert.rejects(createNode({ transport: 'tcp', seed: new Uint8Array(16) }), { code: 'NET_BAD_CONFIG' })
  })
})

describe('routing table file', () => {
  const pk = new Uint8Array(32).fill(1)

  it('round-trips contacts and drops malformed entries', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oht-table-'))
    try {
      const path = join(dir, 't.json')
      await saveTableFile(path, [{ publicKey: pk, addrs: ['/ip4/127.0.0.1/tcp/1'] }], 1)
      assert.deepEqual(await loadTableFile(path), [{ publicKey: pk, addrs: ['/ip4/127.0.0.1/tcp/1'] }])
      const doc = JSON.parse(await readFile(path, 'utf8'))
      doc.contacts.push({ publicKey: 'zz', addrs: ['/x'] }, { publicKey: 'ab'.repeat(32), addrs: [] }, null, 5)
      await writeFile(path, JSON.stringify(doc))
      assert.equal((await loadTableFile(path)).length, 1)
      assert.deepEqual(await loadTableFile(join(dir, 'missing.json')), [])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses a damaged or foreign file with NET_TABLE_FILE', () => {
    assert.throws(() => parseTable('{not json'), { code: 'NET_TABLE_FILE' })
    assert.throws(() => parseTable('{"version":2,"contacts":[]}'), { code: 'NET_TABLE_FILE' })
    assert.throws(() => parseTable('[]'), { code: 'NET_TABLE_FILE' })
  })

  it('turns a bootstrap multiaddr into a contact and refuses one without /p2p/', () => {
    assert.throws(() => contactFromMultiaddr('/ip4/127.0.0.1/tcp/1'), { code: 'NET_BAD_MULTIADDR' })
    assert.throws(() => contactFromMultiaddr('nonsense'), { code: 'NET_BAD_MULTIADDR' })
  })
})
