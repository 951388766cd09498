/**
 * Sphinx packets on their own: round trips for 1-4 Sphinx hops (0-3 relays), the header size
 * from the real encoder, fragility of header and payload, replay and SURBs, the primitives
 * against their published vectors, and per-hop unlinkability of the bytes.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { SeededRng } from '../../src/core/index.ts'
import {
  BODY_BYTES, createHeader, createPacket, createSurb, decryptSurbReply, HEADER_BYTES, importPublic, isScrambleError, lionessDecrypt,
  lionessEncrypt, lionessKeys, MAX_HOPS, OFF_PAYLOAD, PACKET_BYTES, packetFromSurb, PAYLOAD_BYTES, privateKeyFromScalar,
  publicFromScalar, ReplayFilter, unwrapPacket, x25519, type ReplayCheck, type SphinxHop, type Unwrapped
} from '../../src/scramble-routing/index.ts'
import type { KeyObject } from 'node:crypto'

interface TestHop { nodeId: Uint8Array, publicKey: Uint8Array, privateKey: KeyObject }

function makeHops (rng: SeededRng, n: number): TestHop[] {
  return Array.from({ length: n }, () => {
    const scalar = rng.bytes(32)
    const privateKey = privateKeyFromScalar(scalar)
    return { nodeId: rng.bytes(32), publicKey: publicFromScalar(privateKey), privateKey }
  })
}
const sphinxPath = (hops: TestHop[]): SphinxHop[] => hops.map(h => ({ nodeId: h.nodeId, publicKey: h.publicKey }))
const noReplayCheck: ReplayCheck = () => {}
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Runs a packet along `hops`; returns what the last hop unwrapped and every packet seen. */
function travel (packet: Uint8Array, hops: TestHop[]): { last: Unwrapped, seen: Uint8Array[] } {
  const seen = [packet]
  for (let i = 0; i < hops.length; i++) {
    const u = unwrapPacket(packet, [hops[i].privateKey], noReplayCheck)
    if (i < hops.length - 1) {
      assert.equal(u.type, 'forward', `hop ${i} forwards`)
      if (u.type !== 'forward') throw new Error('unreachable')
      assert.deepEqual(u.nextHop, hops[i + 1].nodeId, `hop ${i} learns the next hop's id`)
      assert.equal(u.packet.byteLength, PACKET_BYTES, 'the forwarded packet keeps the one size')
      packet = u.packet
      seen.push(packet)
    } else {
      return { last: u, seen }
    }
  }
  throw new Error('empty path')
}

function codeOf (fn: () => unknown): string {
  try { fn() } catch (err) { if (isScrambleError(err)) return err.code; throw err }
  return 'no error'
}

describe('Sphinx packets', () => {
  for (let relays = 0; relays <= 3; relays++) {
    it(`round trip with ${relays} relay(s) (${relays + 1} Sphinx hops): the recipient gets the body, every hop the right next hop`, () => {
      const rng = new SeededRng(`rt-${relays}`)
      const hops = makeHops(rng, relays + 1)
      const body = rng.bytes(1000)
      const { packet } = createPacket(sphinxPath(hops), body, rng)
      assert.equal(packet.byteLength, PACKET_BYTES)
      const { last } = travel(packet, hops)
      assert.equal(last.type, 'deliver')
      if (last.type !== 'deliver') return
      assert.equal(last.body.byteLength, BODY_BYTES)
      assert.deepEqual(last.body.subarray(0, 1000), body)
      assert.ok(last.body.subarray(1000).every(b => b === 0), 'the rest of the body is the zero padding')
    })
  }

  it('the header at the maximum of 4 Sphinx hops (3 relays) is at most 300 bytes, measured on the encoder', () => {
    const rng = new SeededRng('size')
    const built = createHeader(sphinxPath(makeHops(rng, MAX_HOPS)), { type: 'deliver' }, rng)
    assert.equal(built.header.byteLength, HEADER_BYTES)
    assert.ok(built.header.byteLength <= 300, `header is ${built.header.byteLength} bytes`)
    const { packet } = createPacket(sphinxPath(makeHops(rng, 1)), new Uint8Array(0), rng)
    assert.equal(packet.byteLength - PAYLOAD_BYTES, built.header.byteLength, 'a 1-hop packet has the same header size: the path length is hidden')
  })

  it('refuses paths of 0 or more than 4 Sphinx hops and bodies over the limit', () => {
    const rng = new SeededRng('bad-path')
    assert.equal(codeOf(() => createPacket([], new Uint8Array(1), rng)), 'SCRAMBLE_BAD_ARGUMENT')
    assert.equal(codeOf(() => createPacket(sphinxPath(makeHops(rng, 5)), new Uint8Array(1), rng)), 'SCRAMBLE_BAD_ARGUMENT')
    assert.equal(codeOf(() => createPacket(sphinxPath(makeHops(rng, 1)), new Uint8Array(BODY_BYTES + 1), rng)), 'SCRAMBLE_BAD_ARGUMENT')
  })

  it('is bitwise unlinkable hop to hop: the group element, routing information and payload all change', () => {
    const rng = new SeededRng('unlink')
    const hops = makeHops(rng, 4)
    const { seen } = travel(createPacket(sphinxPath(hops), text('same message'), rng).packet, hops)
    for (let i = 1; i < seen.length; i++) {
      const a = seen[i - 1]
      const b = seen[i]
      let differing = 0
      for (let j = 2; j < PACKET_BYTES; j++) if (a[j] !== b[j]) differing++
      // Random-looking bytes agree by chance on 1 in 256 positions.
      assert.ok(differing > (PACKET_BYTES - 2) * 0.98, `hop ${i}: ${differing} of ${PACKET_BYTES - 2} bytes differ`)
    }
  })

  it('fragile header: a flipped bit anywhere in a sample of header positions makes the hop refuse the packet', () => {
    const rng = new SeededRng('frag-header')
    const hops = makeHops(rng, 3)
    const { packet } = createPacket(sphinxPath(hops), text('tag me'), rng)
    const first = unwrapPacket(packet, [hops[0].privateKey], noReplayCheck)
    assert.equal(first.type, 'forward')
    if (first.type !== 'forward') return
    // Every bit of the additional data, the group element and the MAC; every 3rd bit of β.
    const bits: number[] = []
    for (let bit = 0; bit < HEADER_BYTES * 8; bit++) {
      const byte = bit >> 3
      if (byte < 34 || byte >= HEADER_BYTES - 16 || bit % 3 === 0) bits.push(bit)
    }
    const codes = new Map<string, number>()
    for (const bit of bits) {
      for (const [at, p, key] of [[0, packet, hops[0].privateKey], [1, first.packet, hops[1].privateKey]] as const) {
        const bad = p.slice()
        bad[bit >> 3] ^= 1 << (bit & 7)
        const code = codeOf(() => unwrapPacket(bad, [key], noReplayCheck))
        assert.notEqual(code, 'no error', `bit ${bit} flipped before hop ${at} went through`)
        codes.set(code, (codes.get(code) ?? 0) + 1)
      }
    }
    assert.ok(bits.length > 900, `${bits.length} bit positions tried`)
    for (const code of codes.keys()) assert.ok(['SCRAMBLE_BAD_MAC', 'SCRAMBLE_BAD_PACKET', 'SCRAMBLE_BAD_POINT'].includes(code), code)
  })

  it('fragile payload: a flipped bit in any 32-byte region, before any hop, garbles the whole payload and the recipient refuses it', () => {
    const rng = new SeededRng('frag-payload')
    const hops = makeHops(rng, 3)
    const body = rng.bytes(BODY_BYTES)
    const { packet } = createPacket(sphinxPath(hops), body, rng)
    const atHop = [packet]
    for (let i = 0; i < hops.length - 1; i++) {
      const u = unwrapPacket(atHop[i], [hops[i].privateKey], noReplayCheck)
      if (u.type !== 'forward') throw new Error('expected forward')
      atHop.push(u.packet)
    }
    let tried = 0
    for (let region = 0; region < PAYLOAD_BYTES / 32; region++) {
      const where = region % hops.length // tamper before hop 0, 1 or 2
      const bad = atHop[where].slice()
      const byte = OFF_PAYLOAD + region * 32 + rng.int(32)
      bad[byte] ^= 1 << rng.int(8)
      let p: Uint8Array = bad
      for (let i = where; i < hops.length - 1; i++) {
        const u = unwrapPacket(p, [hops[i].privateKey], noReplayCheck)
        assert.equal(u.type, 'forward', 'relays do not see payload changes (Sphinx MACs cover the header only)')
        if (u.type !== 'forward') throw new Error('unreachable')
        p = u.packet
      }
      assert.equal(codeOf(() => unwrapPacket(p, [hops[hops.length - 1].privateKey], noReplayCheck)), 'SCRAMBLE_BAD_PAYLOAD', `byte ${byte - OFF_PAYLOAD} flipped before hop ${where}`)
      tried++
    }
    assert.equal(tried, PAYLOAD_BYTES / 32)
  })

  it('LIONESS: one flipped ciphertext bit changes about half of all plaintext bits, in every 32-byte block', () => {
    const rng = new SeededRng('lioness')
    const keys = lionessKeys(rng.bytes(32))
    const plain = rng.bytes(PAYLOAD_BYTES)
    const block = plain.slice()
    lionessEncrypt(keys, block)
    assert.notDeepEqual(block, plain)
    const back = block.slice()
    lionessDecrypt(keys, back)
    assert.deepEqual(back, plain, 'decrypt inverts encrypt')
    for (const pos of [0, 31, 32, 1000, PAYLOAD_BYTES - 1]) {
      const t = block.slice()
      t[pos] ^= 0x10
      lionessDecrypt(keys, t)
      let flipped = 0
      for (let i = 0; i < t.length; i++) { let x = t[i] ^ plain[i]; while (x !== 0) { flipped += x & 1; x >>= 1 } }
      const ratio = flipped / (PAYLOAD_BYTES * 8)
      assert.ok(ratio > 0.45 && ratio < 0.55, `byte ${pos}: ${ratio.toFixed(3)} of bits changed`)
      for (let off = 0; off < PAYLOAD_BYTES; off += 32) {
        assert.notDeepEqual(t.subarray(off, off + 32), plain.subarray(off, off + 32), `block at ${off} unchanged after a flip at ${pos}`)
      }
    }
  })

  it('replay: the same packet twice at one hop under one key is refused by the replay filter', () => {
    const rng = new SeededRng('replay')
    const hops = makeHops(rng, 2)
    const { packet } = createPacket(sphinxPath(hops), text('once'), rng)
    const filter = new ReplayFilter(rng.bytes(16), { capacity: 1000 })
    const check: ReplayCheck = (_i, tag) => { if (filter.checkAndAdd(tag) !== 'fresh') throw Object.assign(new Error('replay'), { code: 'X' }) }
    assert.equal(unwrapPacket(packet, [hops[0].privateKey], check).type, 'forward')
    assert.throws(() => unwrapPacket(packet, [hops[0].privateKey], check), /replay/)
    // A fresh packet on the same path is not a replay.
    assert.equal(unwrapPacket(createPacket(sphinxPath(hops), text('once'), rng).packet, [hops[0].privateKey], check).type, 'forward')
  })

  it('a packet for another key fails the MAC; with several keys the right one is found', () => {
    const rng = new SeededRng('keys')
    const [hop] = makeHops(rng, 1)
    const [other] = makeHops(rng, 1)
    const { packet } = createPacket(sphinxPath([hop]), text('x'), rng)
    assert.equal(codeOf(() => unwrapPacket(packet, [other.privateKey], noReplayCheck)), 'SCRAMBLE_BAD_MAC')
    const u = unwrapPacket(packet, [other.privateKey, hop.privateKey], noReplayCheck)
    assert.equal(u.keyIndex, 1)
  })

  for (let relays = 0; relays <= 3; relays++) {
    it(`SURB with ${relays} relay(s): the reply reaches its maker, who alone can read it, once`, () => {
      const rng = new SeededRng(`surb-${relays}`)
      const hops = makeHops(rng, relays + 1) // the last hop is the SURB's maker
      const id = rng.bytes(16)
      const { surb, token } = createSurb(sphinxPath(hops), id, rng)
      const { packet, firstHop } = packetFromSurb(surb, text('the answer'))
      assert.deepEqual(firstHop, hops[0].nodeId)
      const { last } = travel(packet, hops)
      assert.equal(last.type, 'surb-reply')
      if (last.type !== 'surb-reply') return
      assert.deepEqual(last.surbId, id)
      const body = decryptSurbReply(token, last.payload)
      assert.equal(new TextDecoder().decode(body.subarray(0, 10)), 'the answer')
      assert.ok(token.secrets.every(s => s.every(b => b === 0)), 'the token is wiped after use')
      assert.equal(codeOf(() => decryptSurbReply(token, last.payload)), 'SCRAMBLE_BAD_PAYLOAD', 'a wiped token reads nothing')
    })
  }

  it('a reply packet and a forward packet look alike to a relay (same size, same kind of unwrap)', () => {
    const rng = new SeededRng('alike')
    const hops = makeHops(rng, 2)
    const { surb } = createSurb(sphinxPath(hops), rng.bytes(16), rng)
    const reply = packetFromSurb(surb, text('r')).packet
    const fwd = createPacket(sphinxPath(hops), text('f'), rng).packet
    assert.equal(reply.byteLength, fwd.byteLength)
    assert.equal(unwrapPacket(reply, [hops[0].privateKey], noReplayCheck).type, 'forward')
    assert.equal(unwrapPacket(fwd, [hops[0].privateKey], noReplayCheck).type, 'forward')
  })

  it('a tampered SURB reply fails its check at the maker', () => {
    const rng = new SeededRng('surb-tamper')
    const hops = makeHops(rng, 2)
    const { surb, token } = createSurb(sphinxPath(hops), rng.bytes(16), rng)
    const { packet } = packetFromSurb(surb, text('answer'))
    packet[OFF_PAYLOAD + 500] ^= 4
    const { last } = travel(packet, hops)
    if (last.type !== 'surb-reply') throw new Error('expected a SURB reply')
    assert.equal(codeOf(() => decryptSurbReply(token, last.payload)), 'SCRAMBLE_BAD_PAYLOAD')
  })

  it('X25519 through our wrapper matches RFC 7748 section 5.2, and low-order points are refused', () => {
    const k = Buffer.from('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'hex')
    const u = Buffer.from('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'hex')
    assert.equal(Buffer.from(x25519(privateKeyFromScalar(k), importPublic(u))).toString('hex'), 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552')
    // RFC 7748 section 6.1: Alice's public key from her private key.
    const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')
    assert.equal(Buffer.from(publicFromScalar(alice)).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    const zero = new Uint8Array(32)
    assert.equal(codeOf(() => x25519(privateKeyFromScalar(k), importPublic(zero))), 'SCRAMBLE_BAD_POINT')
    const one = new Uint8Array(32); one[0] = 1
    assert.equal(codeOf(() => x25519(privateKeyFromScalar(k), importPublic(one))), 'SCRAMBLE_BAD_POINT')
  })

  it('a packet whose group element is a low-order point is refused without a crash', () => {
    const rng = new SeededRng('low-order')
    const [hop] = makeHops(rng, 1)
    const { packet } = createPacket(sphinxPath([hop]), text('x'), rng)
    packet.fill(0, 2, 34)
    assert.equal(codeOf(() => unwrapPacket(packet, [hop.privateKey], noReplayCheck)), 'SCRAMBLE_BAD_POINT')
  })

  it('the format is stable: a seeded packet hashes to the value recorded when v1 was fixed (our own regression vector)', () => {
    // Not a published vector (none exists for this parameterisation): it catches an accidental
    // change of the wire format. Change it only together with SPHINX_VERSION.
    const rng = new SeededRng('v1-vector')
    const hops = makeHops(rng, 3)
    const { packet } = createPacket(sphinxPath(hops), text('scramble v1'), rng)
    const digest = createHash('sha256').update(packet).digest('hex')
    assert.equal(digest, V1_VECTOR)
  })
})

const V1_VECTOR = 'd0ccf8e14a81ca5ab504ec7ef276b18bccc85427c4e37f884343ddc4e15dd473'
