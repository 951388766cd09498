/**
 * `.onet` names beyond onion addresses and aliases: onet asks its `names` component (the
 * daemon passes DOA's resolver) and answers with the onet address of the onion it names. The
 * name goes through a real DOA resolution over an in-memory OHT here, and through the DNS
 * responder's own answer path.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { generateIdentity, parseOnionAddress } from '../../src/crypto/index.ts'
import { createDoa } from '../../src/doa/index.ts'
import { answerDnsQuery, createOnet, virtualAddressFromPublicKey } from '../../src/oni/index.ts'
import { QTYPE_AAAA, RCODE_NOERROR, RCODE_NXDOMAIN } from '../../src/oni/dns.ts'
import { testnet } from './oht-helpers.ts'

function query (name: string, qtype: number): Uint8Array {
  const labels = name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
  return Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1])
}

const dirs: string[] = []
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

describe('onet names from a name source (DOA names as .onet)', () => {
  it('resolves chess.alice.onet through DOA to the onet address of the onion it names', async () => {
    const t = await testnet({ size: 6, seed: 'onet-names', init: { k: 4 } })
    const make = async (i: number): Promise<ReturnType<typeof createDoa>> => {
      const dir = await mkdtemp(join(tmpdir(), 'oht-onet-names-'))
      dirs.push(dir)
      const d = createDoa({ dir, session: { watch: false, syncIntervalMs: 0 } }, { dht: t.nodes[i], identity: generateIdentity(), clock: t.clock, rng: new SeededRng(`d${i}`) })
      await d.start()
      return d
    }
    const alice = await make(0)
    const bob = await make(1)
    const peer = generateIdentity()
    await alice.names.register('chess', `${peer.onion}.onion`)
    bob.petnames.set('alice', alice.zoneKey())
    const asked: string[] = []
    const onet = createOnet({ torSocksPort: 9 }, {
      identity: generateIdentity(),
      rng: new SeededRng('onet'),
      names: async (name) => {
        asked.push(name)
        const r = await bob.names.resolve(name)
        return r.target.type === 'onion' ? r.target.address : undefined
      }
    })
    const want = virtualAddressFromPublicKey(parseOnionAddress(peer.onion).publicKey)
    assert.deepEqual(await onet.resolveName('chess.alice.onet'), want)
    assert.deepEqual(asked, ['chess.alice'])
    // The same through the DNS responder's path.
    const answer = await answerDnsQuery(query('chess.alice.onet', QTYPE_AAAA), async (n) => await onet.resolveName(n))
    assert.equal(answer?.[3], RCODE_NOERROR)
    assert.deepEqual([...(answer ?? new Uint8Array()).subarray(-16)], [...want])
    // Names the source does not know, or that fail, are NXDOMAIN, not errors.
    assert.equal((await answerDnsQuery(query('nothing.alice.onet', QTYPE_AAAA), async (n) => await onet.resolveName(n)))?.[3], RCODE_NXDOMAIN)
    assert.equal(await onet.resolveName('chess.nobody.onet'), undefined)
    await alice.stop()
    await bob.stop()
    await t.stop()
  })

  it('without a name source, only onion addresses and aliases resolve', async () => {
    const onet = createOnet({ torSocksPort: 9 }, { identity: generateIdentity(), rng: new SeededRng('onet2') })
    assert.equal(await onet.resolveName('chess.alice.onet'), undefined)
    const p = generateIdentity()
    assert.deepEqual(await onet.resolveName(`${p.onion}.onet`), virtualAddressFromPublicKey(p.publicKey))
  })
})
