/**
 * Sessions through createWormholeCrypto: first messages from a bundle, repeats before a reply,
 * simultaneous starts, replays, spoofed senders, one-time prekey reuse, prekey rotation,
 * restarts from the file store, and crashes around the state write.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { DAY, isCodedError } from '../../src/core/index.ts'
import {
  createFileSessionStore, createMemorySessionStore, decodePrekeyBundle, openEnvelope, parseRatchetHeader, sealEnvelope, MAX_BODY_BYTES,
  type SessionStore
} from '../../src/wormhole/index.ts'
import { dec, enc, world, type Person } from './wormhole-helpers.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

async function say (from: Person, to: Person, text: string, bundle = false, conv = new Uint8Array(16)): Promise<{ envelope: Uint8Array, firstContact: boolean, messageId: Uint8Array }> {
  const b = bundle ? decodePrekeyBundle(to.wh.prekeyBundle().bytes, to.card.publicKey) : undefined
  return await from.wh.seal(to.card, { conversationId: conv, seq: 1, body: enc(text) }, b === undefined ? {} : { bundle: b })
}

/** A store whose writes can be made to fail (a full disk, a crash at the write). */
function faultyStore (inner: SessionStore): SessionStore & { failWrites: boolean } {
  const s = {
    failWrites: false,
    get: inner.get.bind(inner),
    delete: inner.delete.bind(inner),
    list: inner.list.bind(inner),
    close: inner.close.bind(inner),
    async put (name: string, value: Uint8Array) {
      if (s.failWrites) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
      await inner.put(name, value)
    }
  }
  return s
}

describe('wormhole sessions', () => {
  it('start from a bundle, keep sending first messages until the reply, then plain ratchet messages', async () => {
    const w = world('start')
    const alice = await w.person('alice')
    const bob = await w.person('bob')
    await assert.rejects(say(alice, bob, 'no bundle'), code('WORMHOLE_NO_SESSION'))
    const m1 = await say(alice, bob, 'one', true)
    const m2 = await say(alice, bob, 'two')
    assert.equal(m1.firstContact, true)
    assert.equal(m2.firstContact, true)
    assert.equal(openEnvelope(m2.envelope, bob.identity).type, 'prekey')
    // The second arrives first: it starts the session on its own.
    const o2 = await bob.wh.open(m2.envelope)
    assert.equal(dec(o2.message.body), 'two')
    assert.equal(o2.newSession, true)
    assert.equal(o2.card?.name, 'alice')
    const o1 = await bob.wh.open(m1.envelope)
    assert.equal(dec(o1.message.body), 'one')
    assert.equal(o1.newSession, false)
    const r = await say(bob, alice, 'hello alice')
    assert.equal(r.firstContact, false)
    assert.equal(dec((await alice.wh.open(r.envelope)).message.body), 'hello alice')
    const m3 = await say(alice, bob, 'three')
    assert.equal(m3.firstContact, false)
    assert.equal(openEnvelope(m3.envelope, bob.identity).type, 'ratchet')
    assert.equal(dec((await bob.wh.open(m3.envelope)).message.body), 'three')
    assert.equal((await alice.wh.session(bob.card.publicKey))?.pending, false)
    assert.deepEqual((await bob.wh.contacts()).map(c => c.name), ['alice'])
    assert.deepEqual((await alice.wh.contacts()).map(c => c.name), ['bob'])
  })

  it('refuses a bundle not signed by the card it is used for', async () => {
    const w = world('wrong-bundle')
    const [alice, bob, carol] = [await w.person('alice'), await w.person('bob'), await w.person('carol')]
    const carolsBundle = decodePrekeyBundle(carol.wh.prekeyBundle().bytes, carol.card.publicKey)
    await assert.rejects(alice.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('x') }, { bundle: carolsBundle }), code('WORMHOLE_BAD_SIGNATURE'))
    assert.equal(await alice.wh.session(bob.card.publicKey), undefined)
  })

  it('refuses replays of first and later messages, also after a restart', async () => {
    const w = world('replay')
    let alice = await w.person('alice')
    let bob = await w.person('bob')
    const first = await say(alice, bob, 'first', true)
    await bob.wh.open(first.envelope)
    await alice.wh.open((await say(bob, alice, 'reply')).envelope)
    const later = await say(alice, bob, 'later')
    await bob.wh.open(later.envelope)
    await assert.rejects(bob.wh.open(later.envelope), code('WORMHOLE_REPLAY'))
    bob = await w.restart(bob)
    alice = await w.restart(alice)
    await assert.rejects(bob.wh.open(later.envelope), code('WORMHOLE_REPLAY'))
    await assert.rejects(bob.wh.open(first.envelope), code('WORMHOLE_REPLAY'))
    // Bob forgets Alice: her first message cannot start a second session.
    await bob.wh.forget(alice.card.publicKey)
    await assert.rejects(bob.wh.open(first.envelope), code('WORMHOLE_REPLAY'))
  })

  it('refuses every tampered byte of an envelope through open(), and the session carries on', async () => {
    const w = world('tamper')
    const alice = await w.person('alice')
    const bob = await w.person('bob')
    await bob.wh.open((await say(alice, bob, 'hi', true)).envelope)
    await alice.wh.open((await say(bob, alice, 'hi back')).envelope)
    const m = await say(alice, bob, 'precious')
    for (let i = 0; i < m.envelope.byteLength; i += 3) {
      const bad = Uint8Array.from(m.envelope); bad[i] ^= 0x04
      await assert.rejects(bob.wh.open(bad), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED') || isCodedError(e, 'WORMHOLE_BAD_VERSION'))
    }
    assert.equal(dec((await bob.wh.open(m.envelope)).message.body), 'precious')
  })

  it('refuses spoofed senders: another card in a first message, a re-wrapped payload, a changed message id', async () => {
    const w = world('spoof')
    const [alice, bob, mallory] = [await w.person('alice'), await w.person('bob'), await w.person('mallory')]
    await bob.wh.open((await say(alice, bob, 'hi', true)).envelope)
    // Mallory's own first message, re-wrapped as if from Alice.
    const mm = openEnvelope((await say(mallory, bob, 'I am alice', true)).envelope, bob.identity)
    await assert.rejects(bob.wh.open(sealEnvelope(bob.card.dhPublicKey, { ...mm, sender: alice.card.publicKey }, w.rng)), code('WORMHOLE_IDENTITY_MISMATCH'))
    // Alice's ratchet payload (someone got it) re-wrapped under another message id or sender.
    await alice.wh.open((await say(bob, alice, 'reply')).envelope)
    const real = openEnvelope((await say(alice, bob, 'real')).envelope, bob.identity)
    await assert.rejects(bob.wh.open(sealEnvelope(bob.card.dhPublicKey, { ...real, messageId: w.rng.bytes(16) }, w.rng)), code('WORMHOLE_DECRYPT_FAILED'))
    await assert.rejects(bob.wh.open(sealEnvelope(bob.card.dhPublicKey, { ...real, sender: mallory.card.publicKey }, w.rng)), code('WORMHOLE_NO_SESSION'))
    assert.equal(dec((await bob.wh.open(sealEnvelope(bob.card.dhPublicKey, real, w.rng))).message.body), 'real')
  })

  it('converges when both start a session at the same time', async () => {
    const w = world('simultaneous')
    const alice = await w.person('alice')
    const bob = await w.person('bob')
    const a1 = await say(alice, bob, 'from alice', true)
    const b1 = await say(bob, alice, 'from bob', true)
    assert.equal(dec((await bob.wh.open(a1.envelope)).message.body), 'from alice')
    assert.equal(dec((await alice.wh.open(b1.envelope)).message.body), 'from bob')
    for (let i = 0; i < 6; i++) {
      assert.equal(dec((await bob.wh.open((await say(alice, bob, `a${i}`)).envelope)).message.body), `a${i}`)
      assert.equal(dec((await alice.wh.open((await say(bob, alice, `b${i}`)).envelope)).message.body), `b${i}`)
    }
    assert.equal((await alice.wh.session(bob.card.publicKey))?.pending, false)
    assert.equal((await bob.wh.session(alice.card.publicKey))?.pending, false)
  })

  it('lets two senders use the same one-time prekey within its grace, then refuses it', async () => {
    const w = world('opk-reuse')
    const bob = await w.person('bob', { init: { oneTimePrekeys: 1 } })
    const [alice, carol, dave] = [await w.person('alice'), await w.person('carol'), await w.person('dave')]
    const bundle = decodePrekeyBundle(bob.wh.prekeyBundle().bytes, bob.card.publicKey)
    assert.equal(bundle.oneTimePrekeys.length, 1)
    const ma = await alice.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('alice') }, { bundle })
    const mc = await carol.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('carol') }, { bundle })
    assert.equal(dec((await bob.wh.open(ma.envelope)).message.body), 'alice')
    assert.equal(dec((await bob.wh.open(mc.envelope)).message.body), 'carol')
    const next = bob.wh.prekeyBundle()
    assert.ok(!next.oneTimePrekeys.some(o => o.id === bundle.oneTimePrekeys[0].id), 'a used one-time prekey is not published again')
    await w.clock.advance(3 * DAY)
    assert.equal((await bob.wh.maintainPrekeys()).changed, true)
    const md = await dave.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('dave, stale bundle') }, { bundle })
    await assert.rejects(bob.wh.open(md.envelope), code('WORMHOLE_UNKNOWN_PREKEY'))
  })

  it('accepts first messages to a rotated signed prekey for 31 days, not after', async () => {
    const w = world('rotation')
    const bob = await w.person('bob', { init: { oneTimePrekeys: 0 } })
    const alice = await w.person('alice')
    const carol = await w.person('carol')
    const old = decodePrekeyBundle(bob.wh.prekeyBundle().bytes, bob.card.publicKey)
    await w.clock.advance(7 * DAY)
    assert.equal((await bob.wh.maintainPrekeys()).changed, true)
    assert.notEqual(bob.wh.prekeyBundle().signedPrekey.id, old.signedPrekey.id)
    const ma = await alice.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('old bundle') }, { bundle: old })
    assert.equal(dec((await bob.wh.open(ma.envelope)).message.body), 'old bundle')
    await w.clock.advance(31 * DAY)
    await bob.wh.maintainPrekeys()
    const mc = await carol.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: enc('too old') }, { bundle: old })
    await assert.rejects(bob.wh.open(mc.envelope), code('WORMHOLE_UNKNOWN_PREKEY'))
  })

  it('survives a restart from the file store (sealed with a passphrase): the next message uses a fresh key', async () => {
    const d = await mkdtemp(join(tmpdir(), 'wormhole-restart-'))
    dirs.push(d)
    const w = world('restart')
    const open = async (name: string): Promise<SessionStore> => await createFileSessionStore({ dir: join(d, name), passphrase: 'pw', scrypt: { N: 2 ** 10, r: 8, p: 1 } }, { rng: w.rng.fork(name) })
    let alice = await w.person('alice', { store: await open('alice') })
    let bob = await w.person('bob', { store: await open('bob') })
    await bob.wh.open((await say(alice, bob, 'before', true)).envelope)
    await alice.wh.open((await say(bob, alice, 'ack')).envelope)
    const before = await say(alice, bob, 'last before restart')
    await bob.wh.open(before.envelope)
    // Both processes stop; new instances over new store objects on the same directories.
    await alice.wh.close(); await bob.wh.close()
    alice = { ...alice, store: await open('alice') }
    bob = { ...bob, store: await open('bob') }
    alice = await w.restart(alice)
    bob = await w.restart(bob)
    const after = await say(alice, bob, 'after restart')
    const hb = parseRatchetHeader(openEnvelope(before.envelope, bob.identity).payload)
    const ha = parseRatchetHeader(openEnvelope(after.envelope, bob.identity).payload)
    assert.deepEqual(ha.dh, hb.dh)
    assert.equal(ha.n, hb.n + 1, 'the chain went on: no key used twice')
    assert.equal(dec((await bob.wh.open(after.envelope)).message.body), 'after restart')
    assert.equal(dec((await alice.wh.open((await say(bob, alice, 'bob after restart')).envelope)).message.body), 'bob after restart')
  })

  it('never reuses a key when the process dies after the state write, before the envelope left', async () => {
    const w = world('crash-after-write')
    const store = createMemorySessionStore()
    let alice = await w.person('alice', { store })
    const bob = await w.person('bob')
    await bob.wh.open((await say(alice, bob, 'hello', true)).envelope)
    await alice.wh.open((await say(bob, alice, 'hi')).envelope)
    const writes = store.writes
    const lost = await say(alice, bob, 'never sent')
    assert.equal(store.writes, writes + 1, 'the advanced chain was written before seal() returned')
    alice = await w.restart(alice) // crash: the envelope is gone, the state is on disk
    const next = await say(alice, bob, 'sent after the crash')
    const hl = parseRatchetHeader(openEnvelope(lost.envelope, bob.identity).payload)
    const hn = parseRatchetHeader(openEnvelope(next.envelope, bob.identity).payload)
    assert.equal(hn.n, hl.n + 1)
    assert.equal(dec((await bob.wh.open(next.envelope)).message.body), 'sent after the crash')
  })

  it('returns no envelope when the state write fails, and carries on once the store works again', async () => {
    const w = world('write-fails')
    const store = faultyStore(createMemorySessionStore())
    const alice = await w.person('alice', { store })
    const bob = await w.person('bob')
    await bob.wh.open((await say(alice, bob, 'hello', true)).envelope)
    await alice.wh.open((await say(bob, alice, 'hi')).envelope)
    store.failWrites = true
    await assert.rejects(say(alice, bob, 'disk full'), (e: unknown) => (e as Error).message.includes('ENOSPC'))
    // An incoming message whose new state cannot be written is not consumed either.
    const incoming = await say(bob, alice, 'arrives while the disk is full')
    await assert.rejects(alice.wh.open(incoming.envelope), (e: unknown) => (e as Error).message.includes('ENOSPC'))
    store.failWrites = false
    assert.equal(dec((await alice.wh.open(incoming.envelope)).message.body), 'arrives while the disk is full')
    const ok = await say(alice, bob, 'disk has room again')
    assert.equal(dec((await bob.wh.open(ok.envelope)).message.body), 'disk has room again')
  })

  it('sends the largest body in a 64 KiB envelope and refuses a larger one without touching the session', async () => {
    const w = world('large')
    const alice = await w.person('alice')
    const bob = await w.person('bob')
    const big = w.rng.bytes(MAX_BODY_BYTES)
    const b = decodePrekeyBundle(bob.wh.prekeyBundle().bytes, bob.card.publicKey)
    const m = await alice.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 1, body: big }, { bundle: b })
    assert.equal(m.envelope.byteLength, 65536)
    assert.deepEqual((await bob.wh.open(m.envelope)).message.body, big)
    await assert.rejects(alice.wh.seal(bob.card, { conversationId: new Uint8Array(16), seq: 2, body: new Uint8Array(MAX_BODY_BYTES + 1) }), code('WORMHOLE_MESSAGE_TOO_LARGE'))
  })

  it('signs receipts both sides can check, and puts fragments where the other side looks', async () => {
    const w = world('mailboxes')
    const alice = await w.person('alice')
    const bob = await w.person('bob')
    const first = await say(alice, bob, 'hi', true)
    const e = alice.wh.epoch()
    // While Bob has not answered, Alice writes to Bob's intro mailbox.
    const intro = await alice.wh.outgoingSlot(bob.card.publicKey, e, 3)
    assert.deepEqual(intro.key, bob.wh.introSlotKey(e, 3))
    const opened = await bob.wh.open(first.envelope)
    const writer = await bob.wh.introSlotFrom(alice.card.publicKey, e, 3)
    assert.deepEqual(writer?.writer().publicKey, intro.writer().publicKey, 'Bob can sign the delete of Alice\'s intro fragments')
    const receipt = bob.wh.receipt(alice.card.publicKey, opened.messageId)
    assert.deepEqual(alice.wh.verifyReceipt(receipt.bytes, bob.card.publicKey).messageId, first.messageId)
    assert.throws(() => alice.wh.verifyReceipt(receipt.bytes, alice.card.publicKey), code('WORMHOLE_BAD_SIGNATURE'))
    // After the reply: the pairwise mailbox, which Bob watches.
    await alice.wh.open((await say(bob, alice, 'hi')).envelope)
    const out = await alice.wh.outgoingSlot(bob.card.publicKey, e, 5)
    const inbox = await bob.wh.incomingSlots(alice.card.publicKey, e, 5)
    assert.ok(inbox.some(s => Buffer.compare(s.key, out.key) === 0))
    assert.notDeepEqual(out.key, bob.wh.introSlotKey(e, 5))
    const back = await bob.wh.outgoingSlot(alice.card.publicKey, e, 5)
    assert.notDeepEqual(back.key, out.key, 'each direction has its own slots')
  })
})
