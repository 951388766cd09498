/** Mailbox keys: the derivation as documented, different for every epoch and fragment, the same at both ends, unlinkable without the secret. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DAY, SeededRng, toHex, concatBytes } from '../../src/core/index.ts'
import { verifySignature } from '../../src/crypto/index.ts'
import { groupMailbox, hkdf, introMailbox, introSlot, mailboxEpoch, mailboxRoot, mailboxSlot, pairwiseMailbox } from '../../src/wormhole/index.ts'

const rng = new SeededRng('mailbox')
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('mailbox keys', () => {
  it('follow the documented HKDF derivation', () => {
    const sk = rng.bytes(32)
    const alice = rng.bytes(32)
    const bob = rng.bytes(32)
    const root = mailboxRoot(sk)
    assert.deepEqual(root, hkdf(sk, new Uint8Array(32), utf8('OHT wormhole mailbox root v1'), 32))
    const dir = pairwiseMailbox(root, alice, bob)
    assert.deepEqual(dir, hkdf(root, utf8('oht/wormhole/mailbox/v1'), concatBytes(alice, bob), 32))
    const s = mailboxSlot(dir, 19700, 3)
    const okm = hkdf(dir, utf8('oht/wormhole/mailbox-slot/v1'), Uint8Array.from([0, 0, 0, 0, 0, 0, 0x4c, 0xf4, 3]), 64)
    assert.deepEqual(s.key, okm.subarray(0, 32))
    const w = s.writer()
    const msg = utf8('delete fragment')
    assert.ok(verifySignature(w.publicKey, msg, w.sign(msg)))
  })

  it('differ for every epoch, fragment index and direction; both ends compute the same', () => {
    const root = rng.bytes(32)
    const a = rng.bytes(32)
    const b = rng.bytes(32)
    const ab = pairwiseMailbox(root, a, b)
    const ba = pairwiseMailbox(root, b, a)
    assert.notDeepEqual(ab, ba)
    const keys = new Set<string>()
    const writers = new Set<string>()
    for (let e = 100; e < 110; e++) {
      for (let i = 0; i < 8; i++) {
        for (const dir of [ab, ba]) {
          const s = mailboxSlot(dir, e, i)
          keys.add(toHex(s.key))
          writers.add(toHex(s.writer().publicKey))
        }
      }
    }
    assert.equal(keys.size, 160)
    assert.equal(writers.size, 160)
    // The other end, from the same root, finds the same slot.
    assert.deepEqual(mailboxSlot(pairwiseMailbox(Uint8Array.from(root), a, b), 105, 6).key, mailboxSlot(ab, 105, 6).key)
    // A different root (another session) gives unrelated keys.
    assert.notDeepEqual(mailboxSlot(pairwiseMailbox(rng.bytes(32), a, b), 105, 6).key, mailboxSlot(ab, 105, 6).key)
  })

  it('intro slots share their key among senders but not their writer', () => {
    const intro = rng.bytes(32)
    const bob = rng.bytes(32)
    const dir = introMailbox(intro, bob)
    const s1 = introSlot(dir, rng.bytes(32), 42, 0)
    const s2 = introSlot(dir, rng.bytes(32), 42, 0)
    assert.deepEqual(s1.key, s2.key)
    assert.deepEqual(s1.key, mailboxSlot(dir, 42, 0).key, 'the recipient finds it knowing only the intro secret')
    assert.notDeepEqual(s1.writer().publicKey, s2.writer().publicKey)
    assert.notDeepEqual(introSlot(dir, rng.bytes(32), 43, 0).key, s1.key)
  })

  it('group mailboxes change with the group epoch', () => {
    const secret = rng.bytes(32)
    const gid = rng.bytes(16)
    assert.notDeepEqual(groupMailbox(secret, gid, 1), groupMailbox(secret, gid, 2))
    assert.notDeepEqual(groupMailbox(secret, gid, 1), groupMailbox(secret, rng.bytes(16), 1))
  })

  it('numbers epochs from the clock', () => {
    assert.equal(mailboxEpoch(0, DAY), 0)
    assert.equal(mailboxEpoch(DAY - 1, DAY), 0)
    assert.equal(mailboxEpoch(DAY, DAY), 1)
    assert.equal(mailboxEpoch(1_700_000_000_000, DAY), 19675)
    assert.throws(() => mailboxEpoch(0, 10))
    assert.throws(() => mailboxSlot(rng.bytes(32), -1, 0))
    assert.throws(() => mailboxSlot(rng.bytes(32), 1, 256))
  })

  it('wipes the writer seed on destroy', () => {
    const s = mailboxSlot(rng.bytes(32), 1, 1)
    const before = toHex(s.writer().publicKey)
    s.destroy()
    assert.notEqual(toHex(s.writer().publicKey), before)
  })
})
