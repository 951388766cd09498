/**
 * onet mappings through the real OHT engine: five nodes on an in-process DhtNet, each node's
 * identity being the onion key whose mapping it publishes.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { generateIdentity, type Identity } from '../../src/crypto/index.ts'
import { createOhtNode, signMutable, type DhtNet, type DhtRequestHandler, type OhtNode, type PeerContact } from '../../src/oht/index.ts'
import { createOhtMappingDirectory, MAPPING_SALT, signMapping } from '../../src/oni/mapping.ts'
import { isOniError } from '../../src/oni/errors.ts'

async function network (n: number): Promise<{ nodes: OhtNode[], ids: Identity[], stop: () => Promise<void> }> {
  const clock = new FakeClock()
  const handlers = new Map<string, DhtRequestHandler>()
  const contacts: PeerContact[] = []
  const nodes: OhtNode[] = []
  const ids: Identity[] = []
  for (let i = 0; i < n; i++) {
    const id = generateIdentity()
    const addr = `mem-${i}`
    const contact: PeerContact = { publicKey: id.publicKey, addrs: [addr] }
    const net: DhtNet = {
      request: async (to, frame, options) => {
        const h = handlers.get(to.addrs[0])
        if (h === undefined) throw new Error(`no node at ${to.addrs[0]}`)
        return await h(contact, frame, options ?? {})
      },
      handle: (h) => { handlers.set(addr, h) }
    }
    const node = createOhtNode({ addrs: [addr] }, { identity: id, net, clock, rng: new SeededRng(`oni-mapping-${i}`) })
    await node.start()
    nodes.push(node)
    ids.push(id)
    contacts.push(contact)
  }
  for (let i = 1; i < n; i++) await nodes[i].bootstrap([contacts[0]])
  return { nodes, ids, stop: async () => { for (const x of nodes) await x.stop() } }
}

describe('oni mappings on the OHT engine', () => {
  it('a mapping published by one node resolves, verified, from another', async () => {
    const { nodes, ids, stop } = await network(5)
    try {
      const dirA = createOhtMappingDirectory(nodes[1])
      await dirA.publish(signMapping(ids[1], { linkPort: 4789, issuedAt: 1, name: 'alpha' }))
      const m = await createOhtMappingDirectory(nodes[4]).resolve(ids[1].publicKey)
      assert.equal(m?.onion, ids[1].onion)
      assert.equal(m?.name, 'alpha')
      assert.equal(await createOhtMappingDirectory(nodes[4]).resolve(generateIdentity().publicKey), undefined)
    } finally {
      await stop()
    }
  })

  it("a node cannot publish a mapping under another key, nor hide another key's mapping behind its own record", async () => {
    const { nodes, ids, stop } = await network(5)
    try {
      const victim = ids[2]
      const attacker = nodes[3]
      // The directory refuses outright: the record would be signed by the attacker's key.
      await assert.rejects(createOhtMappingDirectory(attacker).publish(signMapping(victim, { linkPort: 1, issuedAt: 1 })), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'))
      // Going around the directory: a mutable record of the attacker's key carrying a mapping
      // that claims the victim's key. It lands under the attacker's key, and reading it as the
      // attacker's mapping fails because the mapping names someone else.
      const forged = signMapping({ publicKey: victim.publicKey, sign: (msg) => ids[3].sign(msg) }, { linkPort: 1, issuedAt: 1 })
      const record = signMutable(ids[3], { salt: MAPPING_SALT, seq: 1, ttlMs: 3_600_000, value: forged })
      await attacker.put(record)
      await assert.rejects(createOhtMappingDirectory(nodes[0]).resolve(ids[3].publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
      assert.equal(await createOhtMappingDirectory(nodes[0]).resolve(victim.publicKey), undefined)
    } finally {
      await stop()
    }
  })
})
