/**
 * Publish, install, update, roll back and host over an in-memory OHT and PeerNet: the template
 * app goes from its author's directory to other nodes' caches, verified, from the OHT and from
 * hosts; forged chunks and forged manifests are refused; a host keeps the app installable.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { bytesEqual, fromHex, isCodedError, toHex } from '../../src/core/index.ts'
import {
  chunkBundle, createAppCache, fetchBundleFrom, hostChunkProvider, createHostClient, ohtChunkProvider, packFiles, readAppDirectory, releaseRecordKey,
  verifyReleaseRecord, type ChunkProvider
} from '../../src/doa/index.ts'
import { doaTestnet, type DoaTestnet } from './doa-helpers.ts'

const TEMPLATE = new URL('../../examples/template-app/', import.meta.url).pathname

describe('doa install over the OHT and hosts', () => {
  let net: DoaTestnet
  let appDir: string
  let tmp: string
  before(async () => {
    net = await doaTestnet({ size: 12, services: 5, seed: 'doa-install' })
    tmp = await mkdtemp(join(tmpdir(), 'oht-doa-app-'))
    appDir = join(tmp, 'guestbook')
    await cp(TEMPLATE, appDir, { recursive: true })
  })
  after(async () => {
    await net.stop()
    await rm(tmp, { recursive: true, force: true })
  })

  it('publishes the template app: chunks, index and the release record, signed by the derived app key', async () => {
    const [author] = net.doas
    const r = await author.publish(appDir)
    assert.equal(r.release, 1)
    assert.equal(r.unchanged, false)
    assert.equal(r.appKey, toHex(author.appKeyFor('guestbook')))
    assert.ok(r.minStored >= 1)
    const got = await net.nodes[7].get(releaseRecordKey(fromHex(r.appKey)))
    assert.ok(got !== undefined)
    const signed = verifyReleaseRecord(fromHex(r.appKey), got.record)
    assert.equal(signed.manifest.name, 'guestbook')
    assert.deepEqual(signed.manifest.capabilities, ['api', 'state:read', 'state:write', 'ui'])
    // The author's own cache has it (it can run and host it).
    assert.deepEqual((await author.list()).map(a => [a.name, a.current]), [['guestbook', 1]])
  })

  it('publishing unchanged files writes no new release', async () => {
    const r = await net.doas[0].publish(appDir)
    assert.equal(r.unchanged, true)
    assert.equal(r.release, 1)
  })

  it('installs by app key on another node, with every byte equal to the author\'s files', async () => {
    const appKey = net.doas[0].appKeyFor('guestbook')
    const r = await net.doas[1].install(`doa:${toHex(appKey)}`)
    assert.equal(r.cached, false)
    assert.equal(r.release, 1)
    assert.deepEqual(r.grants, ['api', 'state:read', 'state:write', 'ui'])
    assert.ok(r.sources.some(s => s.name === 'oht' && s.served > 0))
    const src = await readAppDirectory(appDir)
    const installed = await createAppCache(join(net.dirs[1], 'cache')).open(appKey)
    for (const [mine, theirs] of [[src.code, installed.code], [src.assets, installed.assets]] as const) {
      assert.deepEqual(theirs?.map(f => f.path), mine?.map(f => f.path))
      theirs?.forEach((f, i) => assert.ok(bytesEqual(f.data, mine![i].data), f.path))
    }
    assert.equal(installed.manifest.manifest.bundles.assets?.root, chunkBundle(packFiles(src.assets ?? [])).ref.root)
    const again = await net.doas[1].install(appKey)
    assert.equal(again.cached, true)
  })

  it('refuses an app whose key does not match (a release record of another app under the key asked)', async () => {
    const bogus = new Uint8Array(32).fill(7)
    await assert.rejects(net.doas[2].install(bogus), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
  })

  it('offers an update without applying it, applies it on update, and rolls back', async () => {
    const [author, user] = net.doas
    await writeFile(join(appDir, 'ui', 'index.html'), '<!doctype html><title>Guest book 2</title><p>v2</p>\n')
    await writeFile(join(appDir, 'doa.json'), JSON.stringify({ ...JSON.parse(await (await import('node:fs/promises')).readFile(join(appDir, 'doa.json'), 'utf8')), version: '1.1.0' }))
    const r = await author.publish(appDir)
    assert.equal(r.release, 2)
    const offered = await user.install(author.appKeyFor('guestbook'))
    assert.equal(offered.cached, true)
    assert.equal(offered.current, 1, 'install does not force the update')
    assert.equal(offered.available, 2)
    const up = await user.update('guestbook')
    assert.equal(up.current, 2)
    assert.equal(up.version, '1.1.0')
    assert.equal(await user.rollback('guestbook'), 1)
    assert.equal((await user.list())[0].current, 1)
  })

  it('pins an install to a release: update refuses until unpinned', async () => {
    const user = net.doas[1]
    await user.pin('guestbook', 1)
    await assert.rejects(user.update('guestbook'), (e: unknown) => isCodedError(e, 'DOA_BAD_ARGUMENT'))
    await user.unpin('guestbook')
    assert.equal((await user.update('guestbook')).current, 2)
  })

  it('a host announces itself in the host set and serves chunks over PeerNet', async () => {
    const host = net.doas[1]
    const status = await host.host('guestbook')
    assert.equal(status.release, 2)
    assert.ok(status.announcedTo >= 1)
    const hosts = await net.doas[3].hostsOf(net.doas[0].appKeyFor('guestbook'))
    assert.equal(hosts.length, 1)
    assert.equal(hosts[0].host, toHex(net.identities[1].publicKey))
    assert.deepEqual(hosts[0].serves, ['api', 'chunks', 'sync'])
    const r = await net.doas[3].install(net.doas[0].appKeyFor('guestbook'))
    assert.equal(r.release, 2)
    const fromHost = r.sources.find(s => s.name.startsWith('host '))
    assert.ok(fromHost !== undefined && fromHost.served > 0, JSON.stringify(r.sources))
  })

  it('fetches a bundle from a host alone, chunk by chunk, when the OHT has none of it', async () => {
    const appKey = net.doas[0].appKeyFor('guestbook')
    const signed = verifyReleaseRecord(appKey, (await net.nodes[9].get(releaseRecordKey(appKey)))!.record)
    const ref = signed.manifest.bundles.assets!
    const client = createHostClient(net.peers.net({ publicKey: new Uint8Array(32).fill(9), addrs: [] }), { publicKey: net.identities[1].publicKey, addrs: [] })
    const got = await fetchBundleFrom(ref, [hostChunkProvider(client, appKey)])
    assert.equal(got.bytes.byteLength, ref.size)
    assert.equal(got.sources[0].served, ref.chunks + 1)
  })

  it('drops a source that forges chunks and still installs from the honest ones (0 forged bytes accepted)', async () => {
    const appKey = net.doas[0].appKeyFor('guestbook')
    const signed = verifyReleaseRecord(appKey, (await net.nodes[9].get(releaseRecordKey(appKey)))!.record)
    const ref = signed.manifest.bundles.code!
    let forgedServed = 0
    const forger: ChunkProvider = {
      name: 'forger',
      concurrency: 4,
      async get (key) {
        forgedServed++
        const real = await net.nodes[4].get(key)
        if (real === undefined) return undefined
        const bad = real.value.slice()
        bad[bad.byteLength >> 1] ^= 0x55
        return bad
      }
    }
    const got = await fetchBundleFrom(ref, [forger, ohtChunkProvider(net.nodes[5])])
    const honest = await fetchBundleFrom(ref, [ohtChunkProvider(net.nodes[6])])
    assert.ok(bytesEqual(got.bytes, honest.bytes))
    assert.ok(forgedServed >= 1)
    const f = got.sources.find(s => s.name === 'forger')!
    assert.equal(f.served, 0)
    assert.ok(f.forged >= 1)
    // A forger alone can never produce the bundle.
    await assert.rejects(fetchBundleFrom(ref, [forger]), (e: unknown) => isCodedError(e, 'DOA_CHUNK_MISMATCH'))
  })

  it('refuses a manifest a host serves for another app', async () => {
    const appKey = net.doas[0].appKeyFor('guestbook')
    const client = createHostClient(net.peers.net({ publicKey: new Uint8Array(32).fill(8), addrs: [] }), { publicKey: net.identities[1].publicKey, addrs: [] })
    const m = await client.manifest(appKey, undefined)
    assert.equal(m?.manifest.release, 2)
    // Asking for another app key: the host does not host it.
    await assert.rejects(client.manifest(new Uint8Array(32).fill(3), undefined), (e: unknown) => isCodedError(e, 'DOA_NOT_HOSTED'))
  })

  it('stops hosting: the announcement is deleted from the host set', async () => {
    await net.doas[1].unhost('guestbook')
    assert.deepEqual(await net.doas[3].hostsOf(net.doas[0].appKeyFor('guestbook')), [])
  })
})
