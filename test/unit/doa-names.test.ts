import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { bytesEqual, isCodedError, SeededRng, toHex } from '../../src/core/index.ts'
import { generateIdentity, identityFromSeed, sha512, verifySignature } from '../../src/crypto/index.ts'
import {
  blindingHash, createNameRecord, createRevocation, createRotation, deriveLabelPublicKey, deriveLabelSigner,
  nameRecordKey, normalizeLabel, openNameRecord, openPetnames, resolveName, utf8, type NameRecordSource
} from '../../src/doa/index.ts'
import { recordKey, signMutable, type OhtRecord } from '../../src/oht/index.ts'

const rng = new SeededRng('doa-names')
const DAY = 86_400_000
const NOW = 1_700_000_000_000
const appKey = 'ab'.repeat(32)

/** A record store standing in for the OHT: highest seq wins, as holders do. */
function store (): NameRecordSource & { put(r: OhtRecord): void, all(): OhtRecord[] } {
  const m = new Map<string, OhtRecord>()
  return {
    put (r) { const k = toHex(recordKey(r)); const old = m.get(k); if (old === undefined || (old.kind === 'mutable' && r.kind === 'mutable' && r.seq > old.seq)) m.set(k, r) },
    get: async (k) => m.get(toHex(k)),
    all: () => [...m.values()]
  }
}

const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

describe('doa zone keys (RFC 9498 EDKEY)', () => {
  it('derives the same key from the private and the public side, and its signatures are plain Ed25519', () => {
    for (let i = 0; i < 10; i++) {
      const zone = generateIdentity()
      const label = `label${i}`
      const signer = deriveLabelSigner(zone, label)
      assert.deepEqual(signer.publicKey, deriveLabelPublicKey(zone.publicKey, label))
      // The algebra: zk' = h·zk and d'·G = zk' with d' = 8·(h·(a/8) mod L).
      const L = ed25519.Point.Fn.ORDER
      const h = BigInt('0x' + toHex(blindingHash(zone.publicKey, label))) % L
      assert.ok(ed25519.Point.fromBytes(zone.publicKey).multiply(h).equals(ed25519.Point.fromBytes(signer.publicKey)))
      const msg = rng.bytes(100)
      const sig = signer.sign(msg)
      assert.ok(verifySignature(signer.publicKey, msg, sig), 'node:crypto verifies it')
      assert.ok(ed25519.verify(sig, msg, signer.publicKey), '@noble/curves verifies it')
      assert.equal(verifySignature(deriveLabelPublicKey(zone.publicKey, label + 'x'), msg, sig), false)
      assert.equal(verifySignature(zone.publicKey, msg, sig), false)
      assert.deepEqual(signer.sign(msg), sig, 'deterministic like EdDSA')
      signer.destroy()
      assert.throws(() => signer.sign(msg))
    }
  })

  it('blinds the zone\'s own Ed25519 scalar (a·G from the clamped SHA-512 of the seed is the zone key)', () => {
    const zone = identityFromSeed(new Uint8Array(32).fill(7))
    const a = sha512(zone.seed).slice(0, 32); a[0] &= 248; a[31] &= 127; a[31] |= 64
    let x = 0n
    for (let i = 31; i >= 0; i--) x = (x << 8n) | BigInt(a[i])
    assert.ok(bytesEqual(ed25519.Point.BASE.multiply(x % ed25519.Point.Fn.ORDER).toBytes(), zone.publicKey))
  })

  it('normalises labels and refuses bad ones', () => {
    assert.equal(normalizeLabel('Chat'), 'chat')
    assert.equal(normalizeLabel('cafe\u0301'), 'caf\u00e9')
    for (const bad of ['', 'a.b', 'a b', 'x'.repeat(64), 'a\u0000', 'a@b']) assert.throws(() => normalizeLabel(bad), (e: unknown) => isCodedError(e, 'DOA_BAD_NAME'), JSON.stringify(bad))
  })
})

describe('doa name records', () => {
  const zone = generateIdentity()

  it('round-trips, and a record under one label does not open under another or in another zone', () => {
    const rec = createNameRecord(zone, { label: 'chat', seq: 1, ttlMs: DAY, data: { target: { type: 'app', key: appKey }, expires: NOW + DAY, revoked: false } }, rng)
    assert.deepEqual(recordKey(rec), nameRecordKey(zone.publicKey, 'chat'))
    assert.deepEqual(openNameRecord(rec, zone.publicKey, 'chat'), { target: { type: 'app', key: appKey }, expires: NOW + DAY, revoked: false, seq: 1 })
    assert.throws(() => openNameRecord(rec, zone.publicKey, 'forum'), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
    assert.throws(() => openNameRecord(rec, generateIdentity().publicKey, 'chat'), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
    for (let i = 0; i < rec.value.byteLength; i++) {
      const bad = { ...rec, value: rec.value.slice() }; bad.value[i] ^= 1
      assert.throws(() => openNameRecord(bad, zone.publicKey, 'chat'), (e: unknown) => isCodedError(e) && e.code.startsWith('DOA_'))
    }
    // The zone re-signs someone else's ciphertext under its label key at a new seq: the AAD binds the seq.
    const signer = deriveLabelSigner(zone, 'chat')
    const moved = signMutable(signer, { salt: rec.salt, seq: 2, ttlMs: DAY, value: rec.value })
    assert.throws(() => openNameRecord(moved, zone.publicKey, 'chat'), (e: unknown) => isCodedError(e, 'DOA_BAD_RECORD'))
  })

  it('shows holders neither the label, the target nor the zone', () => {
    const onion = generateIdentity().onion
    const rec = createNameRecord(zone, { label: 'secret-project', seq: 7, ttlMs: DAY, data: { target: { type: 'onion', address: onion }, expires: NOW + DAY, revoked: false } }, rng)
    const seen = Buffer.concat([rec.publicKey, rec.salt, rec.value, rec.signature, recordKey(rec)])
    for (const needle of [utf8('secret-project'), utf8(onion), zone.publicKey, utf8(toHex(zone.publicKey)), utf8(onion.slice(0, 16))]) {
      assert.equal(seen.indexOf(Buffer.from(needle)), -1, 'a holder can read it')
    }
    assert.equal(bytesEqual(rec.publicKey, zone.publicKey), false)
    // Same label, two zones: unlinkable keys.
    assert.equal(bytesEqual(deriveLabelPublicKey(zone.publicKey, 'secret-project'), deriveLabelPublicKey(generateIdentity().publicKey, 'secret-project')), false)
  })

  it('resolves label.petname and delegations, and refuses expired, revoked and forged names', async () => {
    const s = store()
    const alice = generateIdentity()
    const sub = generateIdentity()
    s.put(createNameRecord(alice, { label: 'chat', seq: 1, ttlMs: DAY, data: { target: { type: 'app', key: appKey }, expires: NOW + DAY, revoked: false } }, rng))
    s.put(createNameRecord(alice, { label: 'games', seq: 1, ttlMs: DAY, data: { target: { type: 'zone', key: toHex(sub.publicKey) }, expires: NOW + DAY, revoked: false } }, rng))
    s.put(createNameRecord(sub, { label: 'chess', seq: 1, ttlMs: DAY, data: { target: { type: 'onion', address: sub.onion }, expires: NOW + DAY, revoked: false } }, rng))
    s.put(createNameRecord(alice, { label: 'old', seq: 1, ttlMs: DAY, data: { target: { type: 'app', key: appKey }, expires: NOW - 1, revoked: false } }, rng))
    const dir = await mkdtemp(join(tmpdir(), 'doa-names-')); dirs.push(dir)
    const pets = await openPetnames(join(dir, 'petnames.json'))
    pets.set('Alice', alice.publicKey)
    await pets.save()
    assert.equal((await stat(join(dir, 'petnames.json'))).mode & 0o777, 0o600)
    const reopened = await openPetnames(join(dir, 'petnames.json'))
    const opts = { zoneOf: (p: string) => reopened.get(p), source: s, now: NOW }
    assert.deepEqual((await resolveName('chat.alice', opts)).target, { type: 'app', key: appKey })
    assert.deepEqual((await resolveName(`chat.${toHex(alice.publicKey)}`, opts)).target, { type: 'app', key: appKey })
    assert.deepEqual((await resolveName('chess.games.alice', opts)).target, { type: 'onion', address: sub.onion })
    await assert.rejects(resolveName('old.alice', opts), (e: unknown) => isCodedError(e, 'DOA_NAME_EXPIRED'))
    await assert.rejects(resolveName('nope.alice', opts), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
    await assert.rejects(resolveName('chat.bob', opts), (e: unknown) => isCodedError(e, 'DOA_NOT_FOUND'))
    // A squatter stores a record of its own under alice's chat key: it cannot sign as alice's derived key.
    const squatter = generateIdentity()
    const forged = createNameRecord(squatter, { label: 'chat', seq: 99, ttlMs: DAY, data: { target: { type: 'app', key: 'cd'.repeat(32) }, expires: NOW + DAY, revoked: false } }, rng)
    const hijack: NameRecordSource = { get: async (k) => bytesEqual(k, nameRecordKey(alice.publicKey, 'chat')) ? forged : s.get(k) }
    await assert.rejects(resolveName('chat.alice', { ...opts, source: hijack }), (e: unknown) => isCodedError(e, 'DOA_KEY_MISMATCH'))
  })

  it('lets revocation win over any later write, and follows a rotation to the new zone key', async () => {
    const s = store()
    const owner = generateIdentity()
    const data = { target: { type: 'app' as const, key: appKey }, expires: NOW + DAY, revoked: false }
    s.put(createNameRecord(owner, { label: 'chat', seq: 1, ttlMs: DAY, data }, rng))
    s.put(createRevocation(owner, 'chat', DAY, rng))
    // A thief with the key tries to bring the name back: the highest possible seq is taken.
    s.put(createNameRecord(owner, { label: 'chat', seq: Number.MAX_SAFE_INTEGER - 2, ttlMs: DAY, data }, rng))
    const opts = { zoneOf: () => owner.publicKey, source: s, now: NOW }
    await assert.rejects(resolveName('chat.owner', opts), (e: unknown) => isCodedError(e, 'DOA_NAME_REVOKED'))

    const next = generateIdentity()
    s.put(createNameRecord(next, { label: 'forum', seq: 1, ttlMs: DAY, data }, rng))
    s.put(createRotation(owner, next.publicKey, DAY, rng))
    const r = await resolveName('forum.owner', opts)
    assert.deepEqual(r.target, data.target)
    assert.deepEqual(r.rotations, [{ from: toHex(owner.publicKey), to: toHex(next.publicKey) }])
    s.put(createRevocation(owner, '@', DAY, rng))
    await assert.rejects(resolveName('forum.owner', opts), (e: unknown) => isCodedError(e, 'DOA_NAME_REVOKED'), 'a zone revocation beats its rotation')
    const petDir = await mkdtemp(join(tmpdir(), 'doa-pets-')); dirs.push(petDir)
    const pets = await openPetnames(join(petDir, 'p.json'))
    pets.set('owner', owner.publicKey)
    assert.equal(pets.applyRotation(toHex(owner.publicKey), toHex(next.publicKey)), 1)
    assert.deepEqual(pets.get('owner'), next.publicKey)
  })
})
