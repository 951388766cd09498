/** Groups: sender keys distributed pairwise, one envelope per message for every member, rotation when a member leaves, up to 100 members. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng, isCodedError } from '../../src/core/index.ts'
import {
  createMemorySessionStore, decodeGroupUpdate, encodeGroupUpdate, sealGroupEnvelope, openGroupEnvelope, groupEnvelopeSecret, SenderKeyChain,
  createContactCard, wormholeIdentityFromSeed, MAX_GROUP_MEMBERS
} from '../../src/wormhole/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { dec, enc, world, type Person, type World } from './wormhole-helpers.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)

async function groupOf (w: World, names: string[]): Promise<{ people: Person[], groupId: Uint8Array }> {
  const people: Person[] = []
  for (const n of names) people.push(await w.person(n))
  const [admin, ...rest] = people
  const { group, sends } = await admin.wh.createGroup({ name: 'the group', members: rest.map(p => p.card) })
  await w.deliver(admin, sends, people)
  return { people, groupId: group.groupId }
}

describe('wormhole groups', () => {
  it('one envelope per message, read by every member, from every member', async () => {
    const w = world('group-basic')
    const { people, groupId } = await groupOf(w, ['alice', 'bob', 'carol', 'dave'])
    for (const p of people) {
      const info = await p.wh.group(groupId)
      assert.equal(info?.members.length, 4)
      assert.equal(info?.epoch, 1)
    }
    for (const [i, from] of people.entries()) {
      const { envelope } = await from.wh.sealGroup(groupId, { seq: i + 1, body: enc(`from ${from.name}`) })
      assert.equal(envelope.byteLength, 1024)
      for (const to of people) {
        if (to === from) {
          await assert.rejects(to.wh.openGroup(groupId, envelope), code('WORMHOLE_REPLAY'))
          continue
        }
        const m = await to.wh.openGroup(groupId, envelope)
        assert.equal(dec(m.message.body), `from ${from.name}`)
        assert.deepEqual(m.sender, from.card.publicKey)
        assert.deepEqual(m.message.conversationId, groupId)
      }
    }
  })

  it('refuses replays and reads out-of-order group messages', async () => {
    const w = world('group-order')
    const { people: [alice, bob], groupId } = await groupOf(w, ['alice', 'bob'])
    const ms = []
    for (let i = 0; i < 5; i++) ms.push((await alice.wh.sealGroup(groupId, { seq: i, body: enc(`m${i}`) })).envelope)
    for (const i of [4, 0, 3, 1, 2]) assert.equal(dec((await bob.wh.openGroup(groupId, ms[i])).message.body), `m${i}`)
    await assert.rejects(bob.wh.openGroup(groupId, ms[2]), code('WORMHOLE_REPLAY'))
  })

  it('a removed member reads nothing sent after, and the others rotate their sender keys', async () => {
    const w = world('group-remove')
    const { people, groupId } = await groupOf(w, ['alice', 'bob', 'carol', 'dave'])
    const [alice, bob, carol, dave] = people
    const before = (await bob.wh.sealGroup(groupId, { seq: 1, body: enc('before') })).envelope
    assert.equal(dec((await dave.wh.openGroup(groupId, before)).message.body), 'before')
    const daveKnew = await dave.wh.group(groupId)
    const { group, sends } = await alice.wh.removeGroupMembers(groupId, [dave.card.publicKey])
    assert.equal(group.epoch, 2)
    assert.ok(sends.every(s => Buffer.compare(s.to.publicKey, dave.card.publicKey) !== 0), 'nothing is sent to the removed member')
    // Dave gets told he is out (as the admin would in a real group: a last update).
    await w.deliver(alice, sends, people)
    for (const p of [alice, bob, carol]) assert.equal((await p.wh.group(groupId))?.epoch, 2)
    const after = (await bob.wh.sealGroup(groupId, { seq: 2, body: enc('after') })).envelope
    assert.equal(dec((await carol.wh.openGroup(groupId, after)).message.body), 'after')
    assert.equal(dec((await alice.wh.openGroup(groupId, after)).message.body), 'after')
    // Dave still holds the epoch-1 state he had: it opens neither the envelope nor the message.
    assert.equal(daveKnew?.epoch, 1)
    await assert.rejects(dave.wh.openGroup(groupId, after), (e: unknown) => isCodedError(e, 'WORMHOLE_DECRYPT_FAILED') || isCodedError(e, 'WORMHOLE_NO_SENDER_KEY'))
  })

  it('tells a removed member, who then drops the group', async () => {
    const w = world('group-told')
    const { people, groupId } = await groupOf(w, ['alice', 'bob', 'carol'])
    const [alice, , carol] = people
    const { sends } = await alice.wh.removeGroupMembers(groupId, [carol.card.publicKey])
    const info = await alice.wh.group(groupId)
    // The admin's update, sealed to the removed member too.
    const update = sends.find(s => s.kind === 'group-update')
    assert.ok(update !== undefined)
    const sealed = await alice.wh.seal(carol.card, { kind: 'group-update', conversationId: groupId, seq: 0, body: update.body })
    const opened = await carol.wh.open(sealed.envelope)
    assert.equal(opened.group?.type, 'removed')
    assert.equal(await carol.wh.group(groupId), undefined)
    assert.equal(info?.members.length, 2)
  })

  it('a new member reads what comes after, not the envelopes from before it joined', async () => {
    const w = world('group-add')
    const { people, groupId } = await groupOf(w, ['alice', 'bob'])
    const [alice, bob] = people
    const old = (await bob.wh.sealGroup(groupId, { seq: 1, body: enc('old') })).envelope
    const eve = await w.person('eve')
    const { sends } = await alice.wh.addGroupMembers(groupId, [eve.card])
    await w.deliver(alice, sends, [...people, eve])
    const fresh = (await bob.wh.sealGroup(groupId, { seq: 2, body: enc('fresh') })).envelope
    assert.equal(dec((await eve.wh.openGroup(groupId, fresh)).message.body), 'fresh')
    await assert.rejects(eve.wh.openGroup(groupId, old), code('WORMHOLE_DECRYPT_FAILED'))
    // Members still read envelopes of the previous epoch that were in flight.
    assert.equal(dec((await alice.wh.openGroup(groupId, old)).message.body), 'old')
    // And the newcomer's own messages reach the others.
    const hi = (await eve.wh.sealGroup(groupId, { seq: 1, body: enc('hi all') })).envelope
    assert.equal(dec((await bob.wh.openGroup(groupId, hi)).message.body), 'hi all')
  })

  it('only the admin changes members, and updates only move forward', async () => {
    const w = world('group-admin')
    const { people, groupId } = await groupOf(w, ['alice', 'bob', 'carol'])
    const [alice, bob, carol] = people
    await assert.rejects(bob.wh.addGroupMembers(groupId, [(await w.person('zed')).card]), code('WORMHOLE_NOT_ADMIN'))
    await assert.rejects(bob.wh.removeGroupMembers(groupId, [carol.card.publicKey]), code('WORMHOLE_NOT_ADMIN'))
    // Bob forges an update of his own and sends it to Carol over their session.
    const info = await carol.wh.group(groupId)
    const forged = encodeGroupUpdate({ groupId, epoch: 9, admin: bob.card.publicKey, secret: w.rng.bytes(32), name: 'mine now', members: info!.members })
    const sealed = await bob.wh.seal(carol.card, { kind: 'group-update', conversationId: groupId, seq: 0, body: forged })
    const opened = await carol.wh.open(sealed.envelope)
    assert.equal(opened.groupError?.code, 'WORMHOLE_NOT_ADMIN')
    assert.equal((await carol.wh.group(groupId))?.epoch, 1)
    // A replayed (old) update from the real admin is refused as stale.
    const { sends } = await alice.wh.addGroupMembers(groupId, [])
    await w.deliver(alice, sends, people)
    const staleBody = encodeGroupUpdate({ groupId, epoch: 1, admin: alice.card.publicKey, secret: w.rng.bytes(32), name: 'x', members: info!.members })
    const stale = await alice.wh.seal(carol.card, { kind: 'group-update', conversationId: groupId, seq: 0, body: staleBody })
    assert.equal((await carol.wh.open(stale.envelope)).groupError?.code, 'WORMHOLE_STALE_EPOCH')
  })

  it('holds groups of up to 100 members and refuses a 101st', async () => {
    const w = world('group-100')
    const admin = await w.person('admin')
    const clockRng = new SeededRng('cards')
    const cards = Array.from({ length: MAX_GROUP_MEMBERS }, (_, i) => createContactCard(wormholeIdentityFromSeed(clockRng.bytes(32)), { node: identityFromSeed(clockRng.bytes(32)).onion, name: `member ${i} with a name of some length` }, w.clock))
    await assert.rejects(admin.wh.createGroup({ name: 'too big', members: cards }), code('WORMHOLE_GROUP_FULL'))
    const { group, sends } = await admin.wh.createGroup({ name: 'full', members: cards.slice(0, 99) })
    assert.equal(group.members.length, 100)
    const update = sends.find(s => s.kind === 'group-update')!
    assert.equal(decodeGroupUpdate(update.body).members.length, 100)
    // One real member among the 99 joins and reads the admin's message: encrypted once for all.
    const member = await w.person('member')
    const big = await admin.wh.addGroupMembers(group.groupId, [member.card]).catch((e: unknown) => e)
    assert.ok(isCodedError(big, 'WORMHOLE_GROUP_FULL'))
    const small = await admin.wh.createGroup({ name: 'one real member', members: [member.card, ...cards.slice(0, 98)] })
    assert.equal(small.group.members.length, 100)
    // Only the one real member gets its messages here (the 98 others are cards without a device).
    const bundle = w.bundleOf(member)
    for (const s of small.sends.filter(x => Buffer.compare(x.to.publicKey, member.card.publicKey) === 0)) {
      const sealed = await admin.wh.seal(s.to, { kind: s.kind, conversationId: s.conversationId, seq: 0, body: s.body }, { bundle })
      const opened = await member.wh.open(sealed.envelope)
      assert.equal(opened.groupError, undefined)
      if (s.kind === 'group-update') assert.equal(opened.sends.length, 99, 'the member sends its sender key to the 99 others')
    }
    const { envelope } = await admin.wh.sealGroup(small.group.groupId, { seq: 1, body: enc('to all hundred') })
    assert.equal(dec((await member.wh.openGroup(small.group.groupId, envelope)).message.body), 'to all hundred')
  })

  it('gives every member the same group mailbox slots, for the current and the previous epochs', async () => {
    const w = world('group-slots')
    const { people, groupId } = await groupOf(w, ['alice', 'bob', 'carol'])
    const [alice, bob] = people
    const e = alice.wh.epoch()
    const a1 = await alice.wh.groupSlot(groupId, e, 2)
    assert.deepEqual((await bob.wh.groupSlot(groupId, e, 2)).key, a1.key)
    assert.notDeepEqual((await bob.wh.groupSlot(groupId, e, 3)).key, a1.key)
    assert.notDeepEqual((await bob.wh.groupSlot(groupId, e + 1, 2)).key, a1.key)
    const { sends } = await alice.wh.addGroupMembers(groupId, [])
    await w.deliver(alice, sends, people)
    const a2 = await alice.wh.groupSlot(groupId, e, 2)
    assert.notDeepEqual(a2.key, a1.key, 'a new group epoch moves the mailbox')
    assert.deepEqual((await bob.wh.groupSlot(groupId, e, 2, { groupEpoch: 1 })).key, a1.key, 'the previous epoch\'s slots stay reachable')
    await assert.rejects(bob.wh.groupSlot(groupId, e, 2, { groupEpoch: 7 }), code('WORMHOLE_STALE_EPOCH'))
  })

  it('keeps group state across a restart', async () => {
    const w = world('group-restart')
    const { people, groupId } = await groupOf(w, ['alice', 'bob'])
    let [alice, bob] = people
    await alice.wh.openGroup(groupId, (await bob.wh.sealGroup(groupId, { seq: 1, body: enc('one') })).envelope)
    alice = await w.restart(alice)
    bob = await w.restart(bob)
    assert.equal(dec((await alice.wh.openGroup(groupId, (await bob.wh.sealGroup(groupId, { seq: 2, body: enc('two') })).envelope)).message.body), 'two')
    assert.equal((await alice.wh.groups()).length, 1)
  })
})

describe('sender keys', () => {
  it('refuse a message under the right chain key but another signing key, and tampered ones', () => {
    const rng = new SeededRng('sender-keys')
    const gid = rng.bytes(16)
    const sender = rng.bytes(32)
    const mid = rng.bytes(16)
    const own = SenderKeyChain.create(rng)
    const d = own.distribution(gid)
    const m = own.encrypt({ groupId: gid, epoch: 1 }, sender, mid, enc('signed'))
    const forger = SenderKeyChain.fromDistribution({ ...d, signingPublicKey: SenderKeyChain.create(rng).signingPublicKey })
    assert.throws(() => forger.decrypt(m, sender, mid), code('WORMHOLE_BAD_SIGNATURE'))
    const honest = SenderKeyChain.fromDistribution(d)
    assert.throws(() => honest.decrypt(m, rng.bytes(32), mid), code('WORMHOLE_BAD_SIGNATURE'))
    assert.throws(() => honest.decrypt(m, sender, rng.bytes(16)), code('WORMHOLE_BAD_SIGNATURE'))
    for (let i = 0; i < m.byteLength; i += 5) {
      const bad = Uint8Array.from(m); bad[i] ^= 1
      assert.throws(() => honest.decrypt(bad, sender, mid), (e: unknown) => isCodedError(e) && (e as { code: string }).code.startsWith('WORMHOLE_'))
    }
    assert.equal(dec(honest.decrypt(m, sender, mid)), 'signed')
    // The group envelope around it opens only with its epoch's secret.
    const secret = rng.bytes(32)
    const env = sealGroupEnvelope(groupEnvelopeSecret(secret, gid, 1), { type: 'group', sender, messageId: mid, payload: m }, rng)
    assert.throws(() => openGroupEnvelope(env, groupEnvelopeSecret(secret, gid, 2)), code('WORMHOLE_DECRYPT_FAILED'))
    assert.ok(createMemorySessionStore() !== undefined)
  })
})
