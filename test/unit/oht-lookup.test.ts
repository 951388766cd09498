import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng, toHex } from '../../src/core/index.ts'
import { sha256 } from '../../src/crypto/index.ts'
import { decodeResponse, encodeResponse, type WireContact } from '../../src/oht/index.ts'
import { runLookup, type Candidate, type QueryResult } from '../../src/oht/lookup.ts'

const rng = new SeededRng('lookup-claims')

interface FakePeer { publicKey: Uint8Array, id: Uint8Array, wire: WireContact }
const peer = (name: string): FakePeer => {
  const publicKey = rng.bytes(32)
  const id = sha256(publicKey)
  return { publicKey, id, wire: { id, contact: { publicKey, addrs: [`sim:${name}`] } } }
}

/** The contacts as a lookup receives them: decoded from an answer frame (views into it). */
const received = (contacts: WireContact[]): WireContact[] => {
  const res = decodeResponse(encodeResponse({ type: 'nodes', contacts }))
  assert.ok(res.type === 'nodes')
  return res.contacts
}

/** Runs a lookup over fake peers; `answers` maps a peer's key (hex) to the contacts it returns. */
async function lookupOver (seed: FakePeer, answers: Map<string, WireContact[]>, target = rng.bytes(32)): Promise<{ asked: string[], closest: Candidate[] }> {
  const asked: string[] = []
  const outcome = await runLookup({
    target,
    selfId: rng.bytes(32),
    seeds: [seed.wire],
    k: 20,
    alpha: 1,
    disjointPaths: 1,
    verifyId: (id, publicKey) => toHex(sha256(publicKey)) === toHex(id),
    query: async (c): Promise<QueryResult> => {
      const key = toHex(c.contact.publicKey)
      asked.push(key)
      return { closer: received(answers.get(key) ?? []) }
    }
  })
  return { asked, closest: outcome.closest }
}

describe('lookup: contacts that claim the same id', () => {
  it('a forger\'s contact for a real peer\'s id, tried and refuted first, does not keep the real peer out', async () => {
    const [a, b, c] = [peer('a'), peer('b'), peer('c')]
    const forged: WireContact = { id: b.id, contact: { publicKey: rng.bytes(32), addrs: ['sim:forger'] } }
    // a offers the forgery and c; the forgery claims the target itself, so it is tried (and
    // refuted) before c is asked, and only c's answer then offers the real b.
    const answers = new Map([[toHex(a.publicKey), [forged, c.wire]], [toHex(b.publicKey), []], [toHex(c.publicKey), [b.wire]]])
    const { asked, closest } = await lookupOver(a, answers, b.id)
    assert.ok(!asked.includes(toHex(forged.contact.publicKey)), 'the forged contact is never asked')
    assert.ok(asked.includes(toHex(b.publicKey)), 'the real peer is asked')
    assert.ok(closest.some(x => toHex(x.contact.publicKey) === toHex(b.publicKey)), 'and answers')
  })

  it('the same contact offered by several answers is asked once, and kept contacts outlive the answers\' frames', async () => {
    const [a, b, c] = [peer('a'), peer('b'), peer('c')]
    const answers = new Map([[toHex(a.publicKey), [b.wire, c.wire]], [toHex(b.publicKey), [c.wire, a.wire]], [toHex(c.publicKey), [b.wire]]])
    const { asked, closest } = await lookupOver(a, answers)
    assert.deepEqual([...asked].sort(), [a, b, c].map(p => toHex(p.publicKey)).sort())
    assert.deepEqual(closest.map(x => x.contact.addrs[0]).sort(), ['sim:a', 'sim:b', 'sim:c'])
    for (const x of closest) assert.equal(toHex(x.id), toHex(sha256(x.contact.publicKey)))
  })
})
