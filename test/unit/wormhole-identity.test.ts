/** Identities from the key tree, contact cards (round trip, every malformed input typed), safety numbers. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { base32Decode, base32Encode, FakeClock, SeededRng, fromHex, isCodedError, toHex } from '../../src/core/index.ts'
import { deriveChildSeed, identityFromSeed, sha256, verifySignature } from '../../src/crypto/index.ts'
import {
  CARD_PREFIX, combineHalves, contactCardQrText, createContactCard, decodeCardBytes, decodeContactCard, encodeContactCard,
  fingerprintHalf, formatSafetyNumber, MAX_CARD_BYTES, safetyNumber, wormholeIdentityFromMaster, wormholeIdentityFromSeed, WORMHOLE_IDENTITY_PATH
} from '../../src/wormhole/index.ts'

const clock = new FakeClock()
const master = new SeededRng('identity-master').bytes(32)
const node = identityFromSeed(new SeededRng('node').bytes(32))
const code = (c: string) => (e: unknown) => isCodedError(e, c)

describe('wormhole identity', () => {
  it('is the same from the same master key, and independent of other key-tree paths', () => {
    const a = wormholeIdentityFromMaster(master)
    const b = wormholeIdentityFromMaster(master)
    assert.deepEqual(a.publicKey, b.publicKey)
    assert.deepEqual(a.dhPublicKey, b.dhPublicKey)
    assert.deepEqual(a.introSecret, b.introSecret)
    const other = wormholeIdentityFromMaster(master, 'wormhole.identity-2')
    assert.notDeepEqual(other.publicKey, a.publicKey)
    // The path is the documented one: the seed is the key-tree child at wormhole.identity.
    assert.equal(WORMHOLE_IDENTITY_PATH, 'wormhole.identity')
    assert.deepEqual(wormholeIdentityFromSeed(deriveChildSeed(master, 'wormhole.identity')).publicKey, a.publicKey)
  })

  it('has distinct Ed25519, X25519 and intro keys, and signs verifiably', () => {
    const a = wormholeIdentityFromMaster(master)
    assert.notDeepEqual(a.publicKey, a.dhPublicKey)
    assert.notDeepEqual(a.introSecret, a.dhPublicKey)
    const msg = new TextEncoder().encode('hello')
    assert.ok(verifySignature(a.publicKey, msg, a.sign(msg)))
  })

  it('wipes its secrets on destroy', () => {
    const a = wormholeIdentityFromMaster(master)
    const intro = a.introSecret
    a.destroy()
    assert.ok(intro.every(b => b === 0))
    assert.throws(() => a.sign(new Uint8Array(1)))
  })
})

describe('contact cards', () => {
  const me = wormholeIdentityFromMaster(master)
  const card = createContactCard(me, { node: node.onion, name: 'Alice Ω' }, clock)

  it('round-trips through the string, in either case and with whitespace', () => {
    const text = encodeContactCard(card)
    assert.ok(text.startsWith(CARD_PREFIX))
    assert.match(text, /^oht-contact:[a-z2-7]+$/)
    for (const t of [text, contactCardQrText(card), text.replace(/(.{40})/g, '$1\n  ')]) {
      const back = decodeContactCard(t)
      assert.deepEqual(back.publicKey, me.publicKey)
      assert.deepEqual(back.dhPublicKey, me.dhPublicKey)
      assert.deepEqual(back.introSecret, me.introSecret)
      assert.equal(back.onion, node.onion)
      assert.equal(back.name, 'Alice Ω')
      assert.equal(back.issuedAt, clock.now())
    }
    assert.match(contactCardQrText(card), /^[A-Z0-9:-]+$/) // QR alphanumeric mode
  })

  it('accepts the node as a public key and a card without a name', () => {
    const c = createContactCard(me, { node: node.publicKey }, clock)
    const back = decodeContactCard(encodeContactCard(c))
    assert.equal(back.onion, node.onion)
    assert.equal(back.name, undefined)
  })

  it('refuses bad names when made', () => {
    assert.throws(() => createContactCard(me, { node: node.onion, name: 'x'.repeat(65) }, clock), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => createContactCard(me, { node: node.onion, name: 'evil\u202egnp.exe' }, clock), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => createContactCard(me, { node: node.onion, name: 'line\nbreak' }, clock), code('WORMHOLE_BAD_ARGUMENT'))
    assert.throws(() => createContactCard(me, { node: 'not-an-onion' }, clock), code('WORMHOLE_BAD_ARGUMENT'))
  })

  it('refuses each kind of malformed string with its own code', () => {
    const text = encodeContactCard(card)
    const body = text.slice(CARD_PREFIX.length)
    assert.throws(() => decodeContactCard('oht-kontakt:' + body), code('WORMHOLE_CARD_PREFIX'))
    assert.throws(() => decodeContactCard(body), code('WORMHOLE_CARD_PREFIX'))
    assert.throws(() => decodeContactCard(CARD_PREFIX + body.slice(0, 20) + '1' + body.slice(21)), code('WORMHOLE_CARD_ENCODING'))
    assert.throws(() => decodeContactCard(CARD_PREFIX + body.slice(0, 40)), code('WORMHOLE_TRUNCATED'))
    assert.throws(() => decodeContactCard('x'.repeat(5000)), code('WORMHOLE_TOO_LARGE'))
    // A typo anywhere: the checksum catches it before the signature is even checked.
    for (const i of [0, 17, 100, body.length - 1]) {
      const c = body[i] === 'a' ? 'b' : 'a'
      assert.throws(() => decodeContactCard(CARD_PREFIX + body.slice(0, i) + c + body.slice(i + 1)), (e: unknown) => isCodedError(e, 'WORMHOLE_CARD_CHECKSUM') || isCodedError(e, 'WORMHOLE_CARD_ENCODING'))
    }
    // Cut at the end (checksum gone): the checksum of what is left cannot match.
    assert.throws(() => decodeContactCard(text.slice(0, -8)), (e: unknown) => isCodedError(e, 'WORMHOLE_CARD_CHECKSUM') || isCodedError(e, 'WORMHOLE_TRUNCATED'))
  })

  it('refuses a re-checksummed card whose bytes were changed (signature), version or fields', () => {
    const withChecksum = (bytes: Uint8Array): string => CARD_PREFIX + base32Encode(Uint8Array.from([...bytes, ...sha256(new TextEncoder().encode('oht-contact'), bytes).subarray(0, 4)]))
    assert.deepEqual(decodeContactCard(withChecksum(card.bytes)).bytes, card.bytes)
    // Every byte of the card flipped in turn: never accepted.
    for (let i = 0; i < card.bytes.byteLength; i++) {
      const b = Uint8Array.from(card.bytes); b[i] ^= 0x01
      assert.throws(() => decodeContactCard(withChecksum(b)), (e: unknown) => isCodedError(e) && String((e as { code: string }).code).startsWith('WORMHOLE_'), `byte ${i}`)
    }
    const v2 = Uint8Array.from(card.bytes); v2[0] = 2
    assert.throws(() => decodeCardBytes(v2), code('WORMHOLE_BAD_VERSION'))
    const sigFlip = Uint8Array.from(card.bytes); sigFlip[sigFlip.byteLength - 1] ^= 1
    assert.throws(() => decodeCardBytes(sigFlip), code('WORMHOLE_BAD_SIGNATURE'))
    assert.throws(() => decodeCardBytes(card.bytes.subarray(0, 100)), code('WORMHOLE_TRUNCATED'))
    assert.throws(() => decodeCardBytes(new Uint8Array(MAX_CARD_BYTES + 1)), code('WORMHOLE_TOO_LARGE'))
    assert.throws(() => decodeCardBytes(Uint8Array.from([...card.bytes, 0])), code('WORMHOLE_MALFORMED'))
    // A card signed by someone else's key but carrying our keys is refused.
    const mallory = wormholeIdentityFromSeed(new SeededRng('mallory').bytes(32))
    const forged = createContactCard(mallory, { node: node.onion }, clock)
    const swapped = Uint8Array.from(forged.bytes); swapped.set(me.publicKey, 1)
    assert.throws(() => decodeCardBytes(swapped), code('WORMHOLE_BAD_SIGNATURE'))
    assert.ok(base32Decode(encodeContactCard(card).slice(CARD_PREFIX.length)).byteLength > 0)
  })
})

describe('safety numbers', () => {
  it("reproduce libsignal's published numeric-fingerprint vector (5200 iterations)", () => {
    const aliceKey = fromHex('0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868')
    const bobKey = fromHex('05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b')
    const a = fingerprintHalf(aliceKey, new TextEncoder().encode('+14152222222'))
    const b = fingerprintHalf(bobKey, new TextEncoder().encode('+14153333333'))
    assert.equal(combineHalves(a, b), '300354477692869396892869876765458257569162576843440918079131')
    assert.equal(combineHalves(b, a), '300354477692869396892869876765458257569162576843440918079131')
  })

  it('are the same on both sides, and change when any key changes', () => {
    const alice = wormholeIdentityFromMaster(master)
    const bob = wormholeIdentityFromSeed(new SeededRng('bob').bytes(32))
    const n = safetyNumber(alice, bob)
    assert.equal(n, safetyNumber(bob, alice))
    assert.match(n, /^\d{60}$/)
    assert.match(formatSafetyNumber(n), /^(\d{5} ){11}\d{5}$/)
    const mitm = wormholeIdentityFromSeed(new SeededRng('mitm').bytes(32))
    assert.notEqual(safetyNumber(alice, mitm), n)
    assert.notEqual(safetyNumber(alice, { publicKey: bob.publicKey, dhPublicKey: mitm.dhPublicKey }), n)
    assert.notEqual(safetyNumber(alice, { publicKey: mitm.publicKey, dhPublicKey: bob.dhPublicKey }), n)
    assert.equal(toHex(bob.publicKey).length, 64)
  })
})
