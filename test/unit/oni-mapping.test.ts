import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateIdentity } from '../../src/crypto/index.ts'
import { mutableKey } from '../../src/oht/index.ts'
import { createMemoryMappingDirectory, createOhtMappingDirectory, decodeMapping, MAPPING_SALT, signMapping, type MappingDht } from '../../src/oni/mapping.ts'
import { virtualAddressFromPublicKey } from '../../src/oni/virtual-address.ts'
import { isOniError } from '../../src/oni/errors.ts'

describe('oni mapping records', () => {
  it('round-trips a mapping signed by the key it names', () => {
    const id = generateIdentity()
    const m = decodeMapping(signMapping(id, { linkPort: 4789, issuedAt: 1234, name: 'router' }), id.publicKey)
    assert.equal(m.onion, id.onion)
    assert.deepEqual(m.address, virtualAddressFromPublicKey(id.publicKey))
    assert.equal(m.linkPort, 4789)
    assert.equal(m.issuedAt, 1234)
    assert.equal(m.name, 'router')
  })

  it('rejects a mapping signed by another key than the one it names', () => {
    const victim = generateIdentity()
    const attacker = generateIdentity()
    const forged = signMapping({ publicKey: victim.publicKey, sign: (msg) => attacker.sign(msg) }, { linkPort: 1, issuedAt: 0 })
    assert.throws(() => decodeMapping(forged), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
  })

  it('rejects a mapping for another key than the one resolved, a tampered address or port, and bad sizes', () => {
    const a = generateIdentity()
    const b = generateIdentity()
    const good = signMapping(a, { linkPort: 80, issuedAt: 5 })
    assert.throws(() => decodeMapping(good, b.publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
    for (const at of [40, 50]) {
      const t = good.slice(); t[at] ^= 1
      assert.throws(() => decodeMapping(t), (e) => isOniError(e, 'ONI_MAPPING_INVALID'), `byte ${at}`)
    }
    assert.throws(() => decodeMapping(good.subarray(0, 100)), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
    assert.throws(() => decodeMapping(new Uint8Array(1000)), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
  })

  it('the memory directory stores anything but resolves only valid mappings', async () => {
    const dir = createMemoryMappingDirectory()
    const victim = generateIdentity()
    const attacker = generateIdentity()
    await dir.publish(signMapping({ publicKey: victim.publicKey, sign: (msg) => attacker.sign(msg) }, { linkPort: 1, issuedAt: 0 }))
    await assert.rejects(dir.resolve(victim.publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
    await dir.publish(signMapping(attacker, { linkPort: 9, issuedAt: 0 }))
    assert.equal((await dir.resolve(attacker.publicKey))?.linkPort, 9)
    assert.equal(await dir.resolve(generateIdentity().publicKey), undefined)
  })

  it('the OHT directory publishes under mutableKey(key, salt) and refuses a record of another writer', async () => {
    const me = generateIdentity()
    const attacker = generateIdentity()
    const puts: Array<{ salt?: Uint8Array, value: Uint8Array }> = []
    let answer: { record: { kind: string, publicKey?: Uint8Array }, value: Uint8Array } | undefined
    let asked: Uint8Array | undefined
    const dht: MappingDht = {
      contact: { publicKey: me.publicKey },
      putMutable: async (o) => { puts.push(o); return { stored: 3 } },
      get: async (key) => { asked = key; return answer }
    }
    const dir = createOhtMappingDirectory(dht)
    const mine = signMapping(me, { linkPort: 4789, issuedAt: 1 })
    await dir.publish(mine)
    assert.deepEqual(puts[0].salt, MAPPING_SALT)
    await assert.rejects(dir.publish(signMapping(attacker, { linkPort: 1, issuedAt: 1 })), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'))
    answer = { record: { kind: 'mutable', publicKey: me.publicKey }, value: mine }
    assert.equal((await dir.resolve(me.publicKey))?.onion, me.onion)
    assert.deepEqual(asked, mutableKey(me.publicKey, MAPPING_SALT))
    answer = { record: { kind: 'mutable', publicKey: attacker.publicKey }, value: mine }
    await assert.rejects(dir.resolve(me.publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
    answer = { record: { kind: 'mutable', publicKey: me.publicKey }, value: signMapping(attacker, { linkPort: 1, issuedAt: 1 }) }
    await assert.rejects(dir.resolve(me.publicKey), (e) => isOniError(e, 'ONI_MAPPING_INVALID'))
  })
})
