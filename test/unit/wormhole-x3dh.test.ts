/** Prekey bundles (format, signature, rotation, one-time prekeys) and X3DH on both sides. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DAY, FakeClock, SeededRng, isCodedError } from '../../src/core/index.ts'
import { createSignatureVerifier, validateRecord } from '../../src/oht/index.ts'
import {
  createContactCard, decodePrekeyBundle, decodePrekeyMessage, encodePrekeyMessage, MAX_BUNDLE_BYTES, prekeyBundleKey, prekeyBundleRecord,
  PrekeyStore, wormholeIdentityFromSeed, x3dhInitiate, x3dhRespond
} from '../../src/wormhole/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const rng = new SeededRng('x3dh')
const alice = wormholeIdentityFromSeed(rng.bytes(32))
const bob = wormholeIdentityFromSeed(rng.bytes(32))
const T0 = 1_700_000_000_000

describe('prekey bundles', () => {
  it('round-trip, verify against the identity, and refuse another identity', () => {
    const pk = PrekeyStore.create(bob, {}, T0, rng.fork('b1'))
    const b = pk.bundle()
    assert.equal(b.oneTimePrekeys.length, 32)
    const back = decodePrekeyBundle(b.bytes, bob.publicKey)
    assert.deepEqual(back.signedPrekey.publicKey, b.signedPrekey.publicKey)
    assert.equal(back.issuedAt, T0)
    assert.throws(() => decodePrekeyBundle(b.bytes, alice.publicKey), code('WORMHOLE_BAD_SIGNATURE'))
  })

  it('refuses every flipped byte, truncation, oversize and trailing bytes with typed errors', () => {
    const b = PrekeyStore.create(bob, { oneTimePrekeys: 3 }, T0, rng.fork('b2')).bundle()
    for (let i = 0; i < b.bytes.byteLength; i++) {
      const x = Uint8Array.from(b.bytes); x[i] ^= 0x10
      assert.throws(() => decodePrekeyBundle(x, bob.publicKey), (e: unknown) => isCodedError(e) && (e as { code: string }).code.startsWith('WORMHOLE_'), `byte ${i}`)
    }
    for (const n of [0, 1, 20, b.bytes.byteLength - 1]) assert.throws(() => decodePrekeyBundle(b.bytes.subarray(0, n), bob.publicKey), code('WORMHOLE_TRUNCATED'))
    assert.throws(() => decodePrekeyBundle(new Uint8Array(MAX_BUNDLE_BYTES + 1), bob.publicKey), code('WORMHOLE_TOO_LARGE'))
    assert.throws(() => decodePrekeyBundle(Uint8Array.from([...b.bytes, 0]), bob.publicKey), code('WORMHOLE_MALFORMED'))
    const v = Uint8Array.from(b.bytes); v[0] = 9
    assert.throws(() => decodePrekeyBundle(v, bob.publicKey), code('WORMHOLE_BAD_VERSION'))
    const many = Uint8Array.from(b.bytes); many[1 + 8 + 4 + 8 + 32] = 101
    assert.throws(() => decodePrekeyBundle(many, bob.publicKey), code('WORMHOLE_MALFORMED'))
  })

  it('is published as a mutable OHT record the engine accepts, under the documented key', () => {
    const b = PrekeyStore.create(bob, {}, T0, rng.fork('b3')).bundle()
    const record = prekeyBundleRecord(bob, b, { ttlMs: DAY })
    assert.equal(record.seq, b.issuedAt)
    assert.deepEqual(record.publicKey, bob.publicKey)
    validateRecord(prekeyBundleKey(bob.publicKey), record, 65536, createSignatureVerifier())
    assert.deepEqual(decodePrekeyBundle(record.value, bob.publicKey).bytes, b.bytes)
  })

  it('rotates the signed prekey weekly, keeps the old one 31 days, and issues strictly increasing bundles', () => {
    const pk = PrekeyStore.create(bob, {}, T0, rng.fork('b4'))
    const first = pk.bundle()
    assert.equal(pk.maintain(T0 + DAY), false)
    assert.equal(pk.maintain(T0 + 7 * DAY), true)
    const second = pk.bundle()
    assert.notEqual(second.signedPrekey.id, first.signedPrekey.id)
    assert.ok(second.issuedAt > first.issuedAt)
    assert.ok(pk.signedPrekey(first.signedPrekey.id) !== undefined, 'retired but kept')
    pk.maintain(T0 + 7 * DAY + 31 * DAY - 1)
    assert.ok(pk.signedPrekey(first.signedPrekey.id) !== undefined)
    pk.maintain(T0 + 7 * DAY + 31 * DAY)
    assert.equal(pk.signedPrekey(first.signedPrekey.id), undefined, 'deleted after the overlap')
  })

  it('stops listing a used one-time prekey, keeps it for its grace, then deletes it and tops up', () => {
    const pk = PrekeyStore.create(bob, { oneTimePrekeys: 4 }, T0, rng.fork('b5'))
    const b = pk.bundle()
    const used = b.oneTimePrekeys[0].id
    pk.accepted(b.signedPrekey.id, rng.bytes(32), used, T0 + 1000)
    const next = pk.bundle()
    assert.ok(!next.oneTimePrekeys.some(o => o.id === used))
    assert.ok(next.issuedAt > b.issuedAt)
    assert.ok(pk.oneTimePrekey(used) !== undefined, 'a second sender may still use it')
    assert.equal(pk.maintain(T0 + 1000 + 3 * DAY), true)
    assert.equal(pk.oneTimePrekey(used), undefined)
    assert.equal(pk.bundle().oneTimePrekeys.length, 4)
  })

  it('remembers accepted first messages, and survives encode/decode', () => {
    const pk = PrekeyStore.create(bob, { oneTimePrekeys: 2 }, T0, rng.fork('b6'))
    const b = pk.bundle()
    const ek = rng.bytes(32)
    pk.accepted(b.signedPrekey.id, ek, b.oneTimePrekeys[1].id, T0)
    const again = PrekeyStore.decode(pk.encode(), bob, { oneTimePrekeys: 2 }, rng)
    assert.ok(again.seen(b.signedPrekey.id, ek))
    assert.ok(!again.seen(b.signedPrekey.id, rng.bytes(32)))
    assert.deepEqual(again.bundle().bytes.subarray(0, 60), pk.bundle().bytes.subarray(0, 60))
    assert.deepEqual(again.signedPrekey(b.signedPrekey.id)?.publicKey, b.signedPrekey.publicKey)
    assert.throws(() => PrekeyStore.decode(pk.encode().subarray(0, 50), bob, {}, rng), code('WORMHOLE_TRUNCATED'))
  })
})

describe('X3DH', () => {
  const pk = PrekeyStore.create(bob, { oneTimePrekeys: 5 }, T0, rng.fork('x'))
  const bundle = decodePrekeyBundle(pk.bundle().bytes, bob.publicKey)

  for (const withOpk of [true, false]) {
    it(`gives both sides the same SK and AD (${withOpk ? 'with' : 'without'} a one-time prekey)`, () => {
      const b = withOpk ? bundle : { ...bundle, oneTimePrekeys: [] }
      const init = x3dhInitiate(alice, bob, b, rng)
      assert.equal(init.oneTimePrekeyId !== undefined, withOpk)
      const spk = pk.signedPrekey(init.signedPrekeyId)
      assert.ok(spk !== undefined)
      const opk = init.oneTimePrekeyId === undefined ? undefined : pk.oneTimePrekey(init.oneTimePrekeyId)
      const resp = x3dhRespond(bob, { signedPrekey: spk, ...(opk === undefined ? {} : { oneTimePrekey: opk }) }, alice, init.ephemeralPublicKey)
      assert.deepEqual(resp.sharedKey, init.sharedKey)
      assert.deepEqual(resp.associatedData, init.associatedData)
      assert.equal(init.associatedData.byteLength, 128)
      assert.deepEqual(init.associatedData.subarray(0, 32), alice.publicKey)
      assert.deepEqual(init.associatedData.subarray(64, 96), bob.publicKey)
    })
  }

  it('gives a different SK for a wrong identity, signed prekey, one-time prekey or ephemeral key', () => {
    const init = x3dhInitiate(alice, bob, bundle, rng)
    const spk = pk.signedPrekey(init.signedPrekeyId)!
    const opk = pk.oneTimePrekey(init.oneTimePrekeyId!)!
    const mallory = wormholeIdentityFromSeed(rng.bytes(32))
    const otherOpk = pk.oneTimePrekey(bundle.oneTimePrekeys.find(o => o.id !== init.oneTimePrekeyId)!.id)!
    const other = PrekeyStore.create(bob, {}, T0, rng.fork('other')).signedPrekey(PrekeyStore.create(bob, {}, T0, rng.fork('other')).bundle().signedPrekey.id)!
    const variants = [
      x3dhRespond(bob, { signedPrekey: spk, oneTimePrekey: opk }, mallory, init.ephemeralPublicKey), // wrong initiator identity
      x3dhRespond(mallory, { signedPrekey: spk, oneTimePrekey: opk }, alice, init.ephemeralPublicKey), // wrong responder identity
      x3dhRespond(bob, { signedPrekey: other, oneTimePrekey: opk }, alice, init.ephemeralPublicKey),
      x3dhRespond(bob, { signedPrekey: spk, oneTimePrekey: otherOpk }, alice, init.ephemeralPublicKey),
      x3dhRespond(bob, { signedPrekey: spk }, alice, init.ephemeralPublicKey),
      x3dhRespond(bob, { signedPrekey: spk, oneTimePrekey: opk }, alice, rng.bytes(32))
    ]
    for (const v of variants) assert.notDeepEqual(v.sharedKey, init.sharedKey)
  })

  it('frames the initial message and refuses malformed ones', () => {
    const card = createContactCard(alice, { node: identityFromSeed(rng.bytes(32)).onion }, new FakeClock())
    const m = { card, ephemeralPublicKey: rng.bytes(32), signedPrekeyId: 7, oneTimePrekeyId: 9, message: rng.bytes(80) }
    const bytes = encodePrekeyMessage(m)
    const back = decodePrekeyMessage(bytes)
    assert.equal(back.signedPrekeyId, 7)
    assert.equal(back.oneTimePrekeyId, 9)
    assert.deepEqual(back.message, m.message)
    assert.deepEqual(back.card.bytes, card.bytes)
    const noOpk = decodePrekeyMessage(encodePrekeyMessage({ ...m, oneTimePrekeyId: undefined }))
    assert.equal(noOpk.oneTimePrekeyId, undefined)
    assert.throws(() => decodePrekeyMessage(bytes.subarray(0, 30)), code('WORMHOLE_TRUNCATED'))
    const v = Uint8Array.from(bytes); v[0] = 2
    assert.throws(() => decodePrekeyMessage(v), code('WORMHOLE_BAD_VERSION'))
    const cardFlip = Uint8Array.from(bytes); cardFlip[10] ^= 1
    assert.throws(() => decodePrekeyMessage(cardFlip), code('WORMHOLE_BAD_SIGNATURE'))
    const flags = Uint8Array.from(bytes); flags[3 + card.bytes.byteLength + 32 + 4] = 0x80
    assert.throws(() => decodePrekeyMessage(flags), code('WORMHOLE_MALFORMED'))
  })
})
