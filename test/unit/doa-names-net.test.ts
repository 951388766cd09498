/**
 * Names over the OHT: register, resolve through petnames, install by name, update, squat,
 * forge, revoke, rotate; and the proposal-279 plugin engine driven line by line as tor would.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { FakeClock, isCodedError, SeededRng, toHex } from '../../src/core/index.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import {
  createNameRecord, createNamingPlugin, DoaError, nameRecordKey, parsePluginOptions, parseTarget, supportsVersion, type NameToOnion
} from '../../src/doa/index.ts'
import { signMutable } from '../../src/oht/index.ts'
import { doaTestnet, type DoaTestnet } from './doa-helpers.ts'

const TEMPLATE = new URL('../../examples/template-app/', import.meta.url).pathname
const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd'

describe('doa names over the OHT', () => {
  let net: DoaTestnet
  let tmp: string
  let appKey: string
  before(async () => {
    net = await doaTestnet({ size: 12, services: 4, seed: 'doa-names-net' })
    tmp = await mkdtemp(join(tmpdir(), 'oht-doa-names-'))
    await cp(TEMPLATE, join(tmp, 'guestbook'), { recursive: true })
    appKey = (await net.doas[0].publish(join(tmp, 'guestbook'))).appKey
  })
  after(async () => {
    await net.stop()
    await rm(tmp, { recursive: true, force: true })
  })

  it('registers a name in the user\'s zone; others resolve it through a petname and install by it', async () => {
    const [alice, bob] = net.doas
    const reg = await alice.names.register('guestbook', `doa:${appKey}`)
    assert.equal(reg.zone, toHex(alice.zoneKey()))
    assert.ok(reg.stored >= 1)
    bob.petnames.set('alice', alice.zoneKey())
    const r = await bob.names.resolve('guestbook.alice')
    assert.deepEqual(r.target, { type: 'app', key: appKey })
    const inst = await bob.install('guestbook.alice')
    assert.equal(inst.appKey, appKey)
    // The owner resolves its own names as "<label>.me".
    assert.deepEqual((await alice.names.resolve('guestbook.me')).target, { type: 'app', key: appKey })
  })

  it('holders see neither the label nor the target in what they store', async () => {
    const needle = Buffer.from('guestbook')
    const key = Buffer.from(appKey, 'hex')
    for (const n of net.nodes) {
      for (const e of n.store.entries()) {
        if (e.record.kind !== 'mutable' || !Buffer.from(e.record.salt).equals(Buffer.from('doa/name/v1'))) continue
        assert.equal(Buffer.from(e.record.value).indexOf(needle), -1)
        assert.equal(Buffer.from(e.record.value).indexOf(key), -1)
      }
    }
  })

  it('a squatter registering the same label in its own zone hijacks nothing', async () => {
    const [, bob, , mallory] = net.doas
    await mallory.names.register('guestbook', `${ONION}.onion`)
    assert.deepEqual((await bob.names.resolve('guestbook.alice')).target, { type: 'app', key: appKey })
  })

  it('a record made up under the label\'s key (without the zone key) is refused by holders, and a stale one loses', async () => {
    const [alice, bob] = net.doas
    const forger = generateIdentity()
    const key = nameRecordKey(alice.zoneKey(), 'guestbook')
    // A mutable record must be signed by the key it is stored under: the forger cannot make one.
    const forged = signMutable(forger, { salt: new TextEncoder().encode('doa/name/v1'), seq: Number.MAX_SAFE_INTEGER - 3, ttlMs: 3_600_000, value: new Uint8Array(64) })
    const r = await net.nodes[9].put(forged).catch((e: unknown) => e)
    assert.ok(r instanceof Error || (r as { key: Uint8Array }).key.toString() !== key.toString())
    assert.deepEqual((await bob.names.resolve('guestbook.alice')).target, { type: 'app', key: appKey })
  })

  it('an update replaces the target; revoking is final', async () => {
    const [alice, bob] = net.doas
    await alice.names.register('blog', `${ONION}.onion`)
    bob.petnames.set('alice', alice.zoneKey())
    assert.deepEqual((await bob.names.resolve('blog.alice')).target, { type: 'onion', address: ONION })
    await alice.names.register('blog', `doa:${appKey}`)
    assert.deepEqual((await bob.names.resolve('blog.alice')).target, { type: 'app', key: appKey })
    await alice.names.revoke('blog')
    await assert.rejects(bob.names.resolve('blog.alice'), (e: unknown) => isCodedError(e, 'DOA_NAME_REVOKED'))
    await assert.rejects(alice.names.register('blog', `doa:${appKey}`), (e: unknown) => isCodedError(e, 'DOA_NAME_REVOKED'))
  })

  it('an unknown petname and an unregistered label are DOA_NOT_FOUND', async () => {
    const bob = net.doas[1]
    await assert.rejects(bob.names.resolve('guestbook.nobody'), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
    await assert.rejects(bob.names.resolve('nothing.alice'), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
  })

  it('renews owned names by itself when half their OHT lifetime is gone', async () => {
    const alice = net.doas[0]
    const before = alice.names.owned().find(o => o.label === 'guestbook')!
    assert.equal(await alice.names.renew(), 0, 'nothing is due yet')
    // 4 days: past half of the 7-day record lifetime; the hourly renewal timer re-registers it.
    await net.t.advance(4 * 24 * 3_600_000, 3_600_000)
    const after = alice.names.owned().find(o => o.label === 'guestbook')!
    assert.ok(after.seq > before.seq && after.expires > before.expires, JSON.stringify({ before, after }))
    assert.deepEqual((await net.doas[1].names.resolve('guestbook.alice')).target, { type: 'app', key: appKey })
  })

  it('rotates a zone: names move to the new key, resolvers follow, petnames move with them', async () => {
    const [alice, bob] = net.doas
    const oldZone = toHex(alice.zoneKey())
    bob.petnames.set('alice', alice.zoneKey())
    const r = await alice.names.rotate()
    assert.equal(r.from, oldZone)
    assert.notEqual(r.to, oldZone)
    assert.equal(toHex(alice.zoneKey()), r.to)
    assert.ok(r.names >= 1)
    const res = await bob.names.resolve('guestbook.alice')
    assert.deepEqual(res.target, { type: 'app', key: appKey })
    assert.deepEqual(res.rotations, [{ from: oldZone, to: r.to }])
    assert.equal(toHex(bob.petnames.get('alice')!), r.to, 'bob\'s petname followed the signed rotation')
    // Resolving again goes straight to the new zone.
    assert.deepEqual((await bob.names.resolve('guestbook.alice')).rotations, [])
    // The owner keeps registering, now in the new zone.
    const reg = await alice.names.register('another', `doa:${appKey}`)
    assert.equal(reg.zone, r.to)
  })

  it('parses name targets and refuses anything else', () => {
    assert.deepEqual(parseTarget(`doa:${'a'.repeat(64)}`), { type: 'app', key: 'a'.repeat(64) })
    assert.deepEqual(parseTarget(`${ONION}.onion`), { type: 'onion', address: ONION })
    assert.deepEqual(parseTarget(`zone:${'b'.repeat(64)}`), { type: 'zone', key: 'b'.repeat(64) })
    assert.throws(() => parseTarget('example.com'), (e: unknown) => isCodedError(e, 'DOA_BAD_ARGUMENT'))
    // A record made with createNameRecord outside the service resolves the same way.
    const zone = generateIdentity()
    const rec = createNameRecord(zone, { label: 'x', seq: 1, ttlMs: 60_000, data: { target: { type: 'onion', address: ONION }, expires: Date.parse('2100-01-01'), revoked: false } }, new SeededRng('n'))
    assert.equal(rec.kind, 'mutable')
  })
})

describe('proposal 279 name plugin engine', () => {
  const drive = (resolve: NameToOnion, init = {}): { clock: FakeClock, out: string[], feed: (l: string) => void, plugin: ReturnType<typeof createNamingPlugin> } => {
    const clock = new FakeClock()
    const out: string[] = []
    const plugin = createNamingPlugin(init, { resolve, write: (l) => out.push(l), clock })
    plugin.init()
    return { clock, out, feed: (l) => { plugin.onLine(l) }, plugin }
  }
  const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => { setImmediate(resolve) }) }

  it('says INIT 1 0, resolves names of its TLD and answers RESOLVED with the status codes of §2.5.2', async () => {
    const { out, feed } = drive(async (name) => {
      if (name === 'guestbook.alice') return ONION
      throw new DoaError('DOA_NOT_FOUND', 'not registered')
    })
    assert.deepEqual(out, ['INIT 1 0'])
    feed('RESOLVE 1 guestbook.alice.doa')
    feed('RESOLVE 2 nothing.alice.doa')
    feed('RESOLVE 3 architecturedirect.zkey')
    await tick()
    assert.ok(out.includes(`RESOLVED 1 0 ${ONION}.onion`), out.join('\n'))
    assert.ok(out.some(l => /^RESOLVED 2 3 ".*not registered.*"$/.test(l)), out.join('\n'))
    assert.ok(out.some(l => /^RESOLVED 3 2 ".*\.doa.*"$/.test(l)), out.join('\n'))
  })

  it('answers 4 after its timeout, cancels on CANCEL, ignores unknown keywords and junk', async () => {
    const pending: Array<(v: string) => void> = []
    const { out, feed, clock, plugin } = drive(async (_n, o) => await new Promise<string>((resolve, reject) => {
      pending.push(resolve)
      o.signal?.addEventListener('abort', () => { reject(new Error('aborted')) })
    }), { timeoutSeconds: 5 })
    feed('RESOLVE 7 slow.alice.doa')
    feed('RESOLVE 8 slow.alice.doa')
    feed('CANCEL 8')
    feed('HELLO there')
    feed('RESOLVE notanumber x.doa')
    feed('')
    await tick()
    assert.ok(out.includes('CANCELED 8'))
    assert.equal(plugin.pending, 1)
    await clock.advance(5_000)
    await tick()
    assert.ok(out.some(l => /^RESOLVED 7 4 /.test(l)), out.join('\n'))
    assert.equal(plugin.pending, 0)
    // A late answer after the timeout writes nothing more.
    pending[0](ONION)
    await tick()
    assert.equal(out.filter(l => l.startsWith('RESOLVED 7')).length, 1)
    assert.equal(out.filter(l => l.startsWith('RESOLVED 8')).length, 0)
  })

  it('refuses results that are not onion addresses (1) and the TLD option changes the TLD', async () => {
    const { out, feed } = drive(async () => 'example.com', { tld: 'onet' })
    feed('RESOLVE 1 a.b.onet')
    feed('RESOLVE 2 a.b.doa')
    await tick()
    assert.ok(out.some(l => /^RESOLVED 1 1 /.test(l)))
    assert.ok(out.some(l => /^RESOLVED 2 2 /.test(l)))
  })

  it('reads TOR_NS_PROTO_VERSION and TOR_NS_PLUGIN_OPTIONS as §2.7 describes', () => {
    assert.equal(supportsVersion('1'), true)
    assert.equal(supportsVersion('1a,2,1,4B'), true)
    assert.equal(supportsVersion('2,4B'), false)
    assert.equal(supportsVersion(undefined), false)
    assert.deepEqual(parsePluginOptions('timeout=5;url=https\\://bananacake.com'), { timeout: '5', url: 'https://bananacake.com' })
    assert.deepEqual(parsePluginOptions('tld=doa;a\\;b=c\\=d'), { tld: 'doa', 'a;b': 'c=d' })
    assert.deepEqual(parsePluginOptions(undefined), {})
  })
})
