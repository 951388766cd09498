/** Sealed-sender envelopes (buckets, tamper, wrong recipient, group form), inner messages, receipts, and a seeded fuzz of every decoder. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng, isCodedError } from '../../src/core/index.ts'
import {
  bucketFor, decodeContent, decodeMessage, encodeContent, encodeMessage, ENVELOPE_BUCKETS, MAX_BODY_BYTES, MAX_PAYLOAD_BYTES, openEnvelope,
  openGroupEnvelope, sealEnvelope, sealGroupEnvelope, wormholeIdentityFromSeed, createReceipt, verifyReceipt, RECEIPT_BYTES, type SealedContent
} from '../../src/wormhole/index.ts'
import { runWormholeFuzz } from '../helpers/wormhole-fuzz.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const rng = new SeededRng('envelope')
const bob = wormholeIdentityFromSeed(rng.bytes(32))
const eve = wormholeIdentityFromSeed(rng.bytes(32))
const sender = rng.bytes(32)

function content (payloadBytes: number, type: SealedContent['type'] = 'ratchet'): SealedContent {
  return { type, sender, messageId: rng.bytes(16), payload: rng.bytes(payloadBytes) }
}

describe('sealed-sender envelopes', () => {
  it('round-trip and are padded to the smallest bucket that fits', () => {
    for (const n of [0, 1, 900, 922, 923, 3000, 3994, 3995, 16000, MAX_PAYLOAD_BYTES]) {
      const c = content(n)
      const env = sealEnvelope(bob.dhPublicKey, c, rng)
      assert.equal(env.byteLength, bucketFor(n))
      assert.ok((ENVELOPE_BUCKETS as readonly number[]).includes(env.byteLength))
      const back = openEnvelope(env, bob)
      assert.deepEqual(back, c)
    }
    assert.equal(bucketFor(922), 1024)
    assert.equal(bucketFor(923), 4096)
    assert.throws(() => bucketFor(MAX_PAYLOAD_BYTES + 1), code('WORMHOLE_MESSAGE_TOO_LARGE'))
  })

  it('show nothing of sender, recipient or kind outside: only a version byte and a fresh key', () => {
    const c = content(100)
    const e1 = sealEnvelope(bob.dhPublicKey, c, rng)
    const e2 = sealEnvelope(bob.dhPublicKey, c, rng)
    assert.equal(e1[0], 1)
    assert.notDeepEqual(e1.subarray(1, 33), e2.subarray(1, 33))
    const hex = Buffer.from(e1).toString('hex')
    for (const needle of [sender, bob.publicKey, bob.dhPublicKey, c.messageId]) assert.ok(!hex.includes(Buffer.from(needle).toString('hex')))
  })

  it('cannot be opened by anyone else, and refuse every flipped byte', () => {
    const env = sealEnvelope(bob.dhPublicKey, content(300), rng)
    assert.throws(() => openEnvelope(env, eve), code('WORMHOLE_DECRYPT_FAILED'))
    for (let i = 0; i < env.byteLength; i++) {
      const bad = Uint8Array.from(env); bad[i] ^= 1 << (i % 8)
      assert.throws(() => openEnvelope(bad, bob), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED') || isCodedError(e, 'WORMHOLE_BAD_VERSION'), `byte ${i}`)
    }
  })

  it('refuses lengths that are not a bucket, oversize and unknown versions', () => {
    const env = sealEnvelope(bob.dhPublicKey, content(10), rng)
    assert.throws(() => openEnvelope(env.subarray(0, 1000), bob), code('WORMHOLE_MALFORMED'))
    assert.throws(() => openEnvelope(new Uint8Array(0), bob), code('WORMHOLE_MALFORMED'))
    assert.throws(() => openEnvelope(new Uint8Array(70000), bob), code('WORMHOLE_TOO_LARGE'))
    const v = Uint8Array.from(env); v[0] = 2
    assert.throws(() => openEnvelope(v, bob), code('WORMHOLE_BAD_VERSION'))
    const low = Uint8Array.from(env); low.fill(0, 1, 33)
    assert.throws(() => openEnvelope(low, bob), code('WORMHOLE_DECRYPT_FAILED'))
  })

  it('check the sealed content strictly: type, length and zero padding', () => {
    const c = content(40)
    const bytes = encodeContent(c, 975)
    assert.deepEqual(decodeContent(bytes), c)
    const t = Uint8Array.from(bytes); t[0] = 9
    assert.throws(() => decodeContent(t), code('WORMHOLE_MALFORMED'))
    const len = Uint8Array.from(bytes); len[49] = 0xff
    assert.throws(() => decodeContent(len), code('WORMHOLE_MALFORMED'))
    const pad = Uint8Array.from(bytes); pad[900] = 1
    assert.throws(() => decodeContent(pad), code('WORMHOLE_MALFORMED'))
    assert.throws(() => decodeContent(bytes.subarray(0, 20)), code('WORMHOLE_TRUNCATED'))
  })

  it('have a group form that looks the same and opens only with the epoch secret', () => {
    const secret = rng.bytes(32)
    const c = content(200, 'group')
    const env = sealGroupEnvelope(secret, c, rng)
    assert.equal(env.byteLength, 1024)
    assert.equal(env[0], 1)
    assert.deepEqual(openGroupEnvelope(env, secret), c)
    assert.throws(() => openGroupEnvelope(env, rng.bytes(32)), code('WORMHOLE_DECRYPT_FAILED'))
    assert.throws(() => openEnvelope(env, bob), code('WORMHOLE_DECRYPT_FAILED'))
  })
})

describe('messages and receipts', () => {
  it('round-trip messages of every kind and refuse bad ones', () => {
    for (const kind of ['message', 'receipt', 'ack', 'resend', 'sender-key', 'group-update'] as const) {
      const m = { kind, conversationId: rng.bytes(16), seq: 2 ** 40 + 3, sentAt: 1_700_000_000_123, body: rng.bytes(50) }
      assert.deepEqual(decodeMessage(encodeMessage(m)), m)
    }
    const ok = encodeMessage({ kind: 'message', conversationId: rng.bytes(16), seq: 1, sentAt: 0, body: new Uint8Array(0) })
    const k = Uint8Array.from(ok); k[1] = 99
    assert.throws(() => decodeMessage(k), code('WORMHOLE_MALFORMED'))
    const v = Uint8Array.from(ok); v[0] = 3
    assert.throws(() => decodeMessage(v), code('WORMHOLE_BAD_VERSION'))
    assert.throws(() => decodeMessage(ok.subarray(0, 30)), code('WORMHOLE_TRUNCATED'))
    assert.throws(() => decodeMessage(Uint8Array.from([...ok, 1])), code('WORMHOLE_MALFORMED'))
    assert.throws(() => encodeMessage({ kind: 'message', conversationId: rng.bytes(16), seq: 1, sentAt: 0, body: new Uint8Array(MAX_BODY_BYTES + 1) }), code('WORMHOLE_MESSAGE_TOO_LARGE'))
    assert.throws(() => encodeMessage({ kind: 'message', conversationId: rng.bytes(15), seq: 1, sentAt: 0, body: new Uint8Array(1) }), code('WORMHOLE_BAD_ARGUMENT'))
  })

  it('sign receipts over both parties and the message id', () => {
    const alice = wormholeIdentityFromSeed(rng.bytes(32))
    const id = rng.bytes(16)
    const r = createReceipt(bob, alice.publicKey, id, 1_700_000_000_000)
    assert.equal(r.bytes.byteLength, RECEIPT_BYTES)
    const back = verifyReceipt(r.bytes, bob.publicKey, alice.publicKey)
    assert.deepEqual(back.messageId, id)
    assert.equal(back.receivedAt, 1_700_000_000_000)
    assert.throws(() => verifyReceipt(r.bytes, eve.publicKey, alice.publicKey), code('WORMHOLE_BAD_SIGNATURE'))
    assert.throws(() => verifyReceipt(r.bytes, bob.publicKey, eve.publicKey), code('WORMHOLE_BAD_SIGNATURE'))
    for (let i = 0; i < r.bytes.byteLength; i++) {
      const bad = Uint8Array.from(r.bytes); bad[i] ^= 0x20
      assert.throws(() => verifyReceipt(bad, bob.publicKey, alice.publicKey), (e: unknown) => isCodedError(e, 'WORMHOLE_BAD_SIGNATURE') || isCodedError(e, 'WORMHOLE_BAD_VERSION') || isCodedError(e, 'WORMHOLE_MALFORMED'))
    }
    assert.throws(() => verifyReceipt(r.bytes.subarray(0, 40), bob.publicKey, alice.publicKey), code('WORMHOLE_TRUNCATED'))
    assert.throws(() => verifyReceipt(new Uint8Array(200), bob.publicKey, alice.publicKey), code('WORMHOLE_TOO_LARGE'))
  })
})

describe('decoder fuzz (seeded)', () => {
  it('4,000 mutated and random inputs across every decoder and a live open(): typed errors only, no crash', async () => {
    const report = await runWormholeFuzz({ iterations: 4000, seed: 'unit-fuzz', asyncEvery: 8 })
    assert.equal(report.inputs, 4000)
    assert.deepEqual(report.crashes, [], JSON.stringify(report.crashes.slice(0, 3)))
    // The corpus reaches deep: past the outer layer (decrypt failures are not all there is).
    for (const c of ['WORMHOLE_MALFORMED', 'WORMHOLE_TRUNCATED', 'WORMHOLE_BAD_SIGNATURE', 'WORMHOLE_DECRYPT_FAILED']) assert.ok((report.byCode[c] ?? 0) > 0, c)
    assert.ok(report.byTarget['open(sealed payload)'] >= 400)
  })
})
