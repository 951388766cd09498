/**
 * Relay descriptors and directories: signed mutable records of the relay's identity, strict
 * decoding, verification against tampering and other identities, the relay list over a
 * multi-value board, the directory over the real OHT engine, and the flow modes' texts.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock, SeededRng, toHex } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { mutableKey, signMutable } from '../../src/oht/index.ts'
import {
  createMemoryRelayBoard, createMemoryRelayDirectory, createOhtRelayDirectory, decodeDescriptorValue, decodeSignedDescriptor,
  encodeDescriptorValue, encodeSignedDescriptor, FAST_MODE_WARNING, FLOW_MODES, formatModeChoice, isFlowMode, RELAY_LIST_KEY,
  RELAY_SALT, signRelayDescriptor, usableKey, verifyRelayDescriptor, type RelayDescriptor
} from '../../src/scramble-routing/index.ts'
import { testnet } from './oht-helpers.ts'

const HOUR = 3_600_000
const NOW = 1_700_000_000_000

function fields (rng: SeededRng, over: Partial<RelayDescriptor> = {}): Omit<RelayDescriptor, 'identity' | 'seq'> {
  const e = Math.floor(NOW / HOUR)
  return {
    relay: true, capacity: 250, epochMs: HOUR, validFrom: NOW, validUntil: (e + 2) * HOUR,
    keys: [{ epoch: e, publicKey: rng.bytes(32) }, { epoch: e + 1, publicKey: rng.bytes(32) }],
    torClient: Uint8Array.of(7, 7), addrs: ['/onion3/' + 'a'.repeat(56) + ':4001', 'mem:1'], ...over
  }
}

const codeOf = (fn: () => unknown): string => { try { fn(); return 'no error' } catch (err) { return (err as { code?: string }).code ?? String(err) } }

describe('scramble relay descriptors', () => {
  it('sign → verify round trip: a mutable record of the identity under "scramble/relay/v1"', () => {
    const rng = new SeededRng('desc')
    const id = identityFromSeed(rng.bytes(32))
    const f = fields(rng)
    const record = signRelayDescriptor(id, f)
    assert.equal(record.kind, 'mutable')
    assert.deepEqual(record.salt, RELAY_SALT)
    assert.deepEqual(record.publicKey, id.publicKey)
    const d = verifyRelayDescriptor(record, { identity: id.publicKey })
    assert.deepEqual({ ...d, identity: undefined, seq: undefined }, { ...f, identity: undefined, seq: undefined })
    assert.equal(d.seq, f.validFrom)
    assert.deepEqual(usableKey(d, NOW), f.keys[0])
    assert.deepEqual(usableKey(d, NOW + HOUR), f.keys[1], 'the next epoch\'s key is used once that epoch starts')
    assert.equal(usableKey(d, f.validUntil), undefined, 'nothing after validity')
  })

  it('rejects a changed value, a changed key, another identity, another salt', () => {
    const rng = new SeededRng('tamper')
    const id = identityFromSeed(rng.bytes(32))
    const other = identityFromSeed(rng.bytes(32))
    const record = signRelayDescriptor(id, fields(rng))
    const value = record.value.slice(); value[30] ^= 1
    assert.equal(codeOf(() => verifyRelayDescriptor({ ...record, value })), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => verifyRelayDescriptor({ ...record, publicKey: other.publicKey })), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => verifyRelayDescriptor(record, { identity: other.publicKey })), 'SCRAMBLE_BAD_DESCRIPTOR')
    const wrongSalt = signMutable(id, { salt: new TextEncoder().encode('oni/mapping/v1'), seq: 1, ttlMs: HOUR, value: record.value })
    assert.equal(codeOf(() => verifyRelayDescriptor(wrongSalt)), 'SCRAMBLE_BAD_DESCRIPTOR')
  })

  it('the value decoder is strict: trailing bytes, bad counts, lengths, versions, flags and orders are refused', () => {
    const rng = new SeededRng('strict')
    const pk = rng.bytes(32)
    const good = encodeDescriptorValue(fields(rng))
    assert.doesNotThrow(() => decodeDescriptorValue(pk, good))
    const cases: Array<[string, Uint8Array]> = []
    const edit = (name: string, f: (b: Uint8Array) => Uint8Array): void => { cases.push([name, f(good.slice())]) }
    edit('trailing byte', b => { const o = new Uint8Array(b.byteLength + 1); o.set(b); return o })
    edit('truncated', b => b.subarray(0, b.byteLength - 1))
    edit('version 2', b => { b[0] = 2; return b })
    edit('unknown flag', b => { b[1] |= 2; return b })
    edit('zero keys', b => { b[26] = 0; return b })
    edit('4 keys', b => { b[26] = 4; return b })
    edit('empty validity', b => { b.copyWithin(18, 10, 18); return b })
    edit('epoch 0 ms', b => { b.fill(0, 6, 10); return b })
    for (const [name, b] of cases) assert.equal(codeOf(() => decodeDescriptorValue(pk, b)), 'SCRAMBLE_BAD_DESCRIPTOR', name)
    assert.equal(codeOf(() => encodeDescriptorValue(fields(rng, { keys: [{ epoch: 5, publicKey: rng.bytes(32) }, { epoch: 5, publicKey: rng.bytes(32) }] }))), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => encodeDescriptorValue(fields(rng, { addrs: Array.from({ length: 9 }, () => 'x') }))), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => encodeDescriptorValue(fields(rng, { torClient: new Uint8Array(33) }))), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => encodeDescriptorValue(fields(rng, { addrs: ['x'.repeat(257)] }))), 'SCRAMBLE_BAD_DESCRIPTOR')
  })

  it('a signed descriptor survives its byte encoding (the relay list carries it) and is still verified', () => {
    const rng = new SeededRng('bytes')
    const id = identityFromSeed(rng.bytes(32))
    const record = signRelayDescriptor(id, fields(rng))
    const back = decodeSignedDescriptor(encodeSignedDescriptor(record))
    assert.deepEqual(verifyRelayDescriptor(back).identity, id.publicKey)
    const bytes = encodeSignedDescriptor(record)
    bytes[60] ^= 1 // inside the signature
    assert.equal(codeOf(() => verifyRelayDescriptor(decodeSignedDescriptor(bytes))), 'SCRAMBLE_BAD_DESCRIPTOR')
    assert.equal(codeOf(() => decodeSignedDescriptor(bytes.subarray(0, 100))), 'SCRAMBLE_BAD_DESCRIPTOR')
  })

  it('memory directory: seq only goes up, list holds valid relays only, garbage is skipped and counted', async () => {
    const clock = new FakeClock(NOW)
    const dir = createMemoryRelayDirectory({ clock })
    const rng = new SeededRng('memdir')
    const a = identityFromSeed(rng.bytes(32))
    const b = identityFromSeed(rng.bytes(32))
    const c = identityFromSeed(rng.bytes(32))
    await dir.publish(signRelayDescriptor(a, fields(rng), NOW))
    await assert.rejects(dir.publish(signRelayDescriptor(a, fields(rng), NOW)), /not above/)
    await dir.publish(signRelayDescriptor(b, fields(rng, { relay: false })))
    const forged = signRelayDescriptor(c, fields(rng))
    dir.putRaw({ ...forged, value: encodeDescriptorValue(fields(rng, { capacity: 1 })) })
    const list = await dir.list()
    assert.deepEqual(list.map(d => toHex(d.identity)), [toHex(a.publicKey)], 'endpoint-only and forged descriptors are not listed')
    assert.equal(dir.rejected, 1)
    assert.equal((await dir.get(b.publicKey))?.relay, false, 'an endpoint is found by identity')
    await clock.advance(3 * HOUR)
    assert.deepEqual(await dir.list(), [], 'expired descriptors drop out')
  })

  it('OHT directory: descriptors as mutable records on the real engine, relays listed on the board, verified on read', async () => {
    const t = await testnet({ size: 10, seed: 'scramble-oht-dir', init: { k: 4 } })
    const clock = t.clock
    const board = createMemoryRelayBoard(clock)
    const rng = new SeededRng('oht-dir')
    const dirs = t.nodes.slice(0, 3).map(n => createOhtRelayDirectory(n, board, { listCacheMs: 0 }, { clock }))
    const relayId = t.identities[0]
    const endpointId = t.identities[1]
    const now = clock.now()
    const e = Math.floor(now / HOUR)
    const f = (relay: boolean): Omit<RelayDescriptor, 'identity' | 'seq'> => ({
      ...fields(rng, { relay }), validFrom: now, validUntil: (e + 2) * HOUR, keys: [{ epoch: e, publicKey: rng.bytes(32) }]
    })
    await dirs[0].publish(signRelayDescriptor(relayId, f(true), now))
    await dirs[1].publish(signRelayDescriptor(endpointId, f(false), now))
    // Another node reads them from the DHT.
    const reader = dirs[2]
    const gotRelay = await reader.get(relayId.publicKey)
    assert.ok(gotRelay !== undefined && gotRelay.relay)
    const gotEndpoint = await reader.get(endpointId.publicKey)
    assert.ok(gotEndpoint !== undefined && !gotEndpoint.relay)
    const stored = t.nodes.filter(n => n.store.get(mutableKey(relayId.publicKey, RELAY_SALT)) !== undefined).length
    assert.ok(stored >= 3, `descriptor stored on ${stored} nodes`)
    assert.deepEqual((await reader.list()).map(d => toHex(d.identity)), [toHex(relayId.publicKey)], 'only the relay is on the list')
    // A forged value on the board is skipped.
    await board.add(RELAY_LIST_KEY, encodeSignedDescriptor({ ...signRelayDescriptor(t.identities[2], f(true), now), seq: now + 1 }), { ttlMs: HOUR })
    assert.equal((await reader.list()).length, 1)
    assert.equal((reader as unknown as { rejected: number }).rejected, 1)
    assert.equal(await reader.get(t.identities[5].publicKey), undefined, 'no descriptor, no answer')
    await t.stop()
  })
})

describe('scramble flow modes', () => {
  it('has the three modes, with the fast mode warning that the location is not hidden', () => {
    assert.deepEqual(Object.keys(FLOW_MODES).sort(), ['anonymous', 'fast', 'scrambled'])
    assert.equal(FLOW_MODES.fast.warning, FAST_MODE_WARNING)
    assert.ok(FAST_MODE_WARNING.startsWith("The service's location is not hidden"))
    assert.equal(FLOW_MODES.anonymous.warning, undefined)
    assert.deepEqual(FLOW_MODES.scrambled.extraHops, [1, 3])
    assert.ok(isFlowMode('fast') && !isFlowMode('turbo'))
  })

  it('formats a choice with its measured cost, and always with the warning for fast', () => {
    const s = formatModeChoice('scrambled', { hops: 2, latencyMs: 3400.2, throughputRatio: 0.82 })
    assert.match(s, /2 extra hops, ~3400 ms per message, 0\.82x the throughput/)
    assert.match(formatModeChoice('fast'), /not measured yet[\s\S]*WARNING: The service's location is not hidden/)
    assert.doesNotMatch(formatModeChoice('anonymous', { throughputBps: 2_500_000 }), /WARNING/)
    assert.match(formatModeChoice('anonymous', { throughputBps: 2_500_000 }), /2\.5 MB\/s/)
  })
})
