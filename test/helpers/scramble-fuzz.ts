/**
 * Seeded fuzz inputs for scramble routing's decoders, shared by the unit test (a few thousand
 * inputs) and bench/scramble-fuzz.ts (1,000,000). Every input is run through its decoder; the
 * only acceptable outcomes are a result or a ScrambleError. Anything else thrown is a crash.
 *
 * Input classes: random bytes of random length; valid packets with a few bytes changed, cut
 * short or extended; the right version byte with random rest; hop responses, message bodies,
 * descriptors and signed descriptors, valid ones mutated and random ones.
 */
import type { KeyObject } from 'node:crypto'
import { SeededRng } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import {
  BODY_BYTES, createPacket, createReport, createSurb, decodeDescriptorValue, decodeHopResponse, decodeInner, decodeSignedDescriptor,
  encodeHopResponse, encodeInner, encodeSignedDescriptor, isScrambleError, PACKET_BYTES, packetFromSurb, privateKeyFromScalar, publicFromScalar,
  signRelayDescriptor, unwrapPacket, verifyRelayDescriptor, type SphinxHop
} from '../../src/scramble-routing/index.ts'

export type FuzzKind = 'packet' | 'response' | 'inner' | 'descriptor' | 'signed-descriptor'
export interface FuzzInput { kind: FuzzKind, bytes: Uint8Array }
export type FuzzOutcome = 'accepted' | 'rejected'

export interface FuzzTargets {
  next(): FuzzInput
  /** Runs one input; throws only when the decoder crashed (a non-ScrambleError escaped). */
  run(input: FuzzInput): FuzzOutcome
  /** Valid packets for the relay (its key is `relayKey`). */
  readonly packets: Uint8Array[]
}

/**
 * `hop`: build the valid packets for this node instead (a live relay's id and current key),
 * so mutated packets reach its routing commands; `run` then rejects packets (it holds no key).
 */
export function createFuzzTargets (seed: string, hop?: SphinxHop): FuzzTargets {
  const rng = new SeededRng(seed)
  const relayKey: KeyObject = privateKeyFromScalar(rng.bytes(32))
  const other = privateKeyFromScalar(rng.bytes(32))
  const relayHop: SphinxHop = hop ?? { nodeId: rng.bytes(32), publicKey: publicFromScalar(relayKey) }
  const packets: Uint8Array[] = []
  for (let i = 0; i < 32; i++) {
    const rest: SphinxHop[] = Array.from({ length: i % 4 }, () => ({ nodeId: rng.bytes(32), publicKey: publicFromScalar(rng.bytes(32)) }))
    if (i % 5 === 4) {
      // A SURB reply: to a relay it looks like any other packet.
      packets.push(packetFromSurb(createSurb([relayHop, ...rest], rng.bytes(16), rng).surb, encodeInner({ message: rng.bytes(rng.int(1500)) })).packet)
    } else {
      packets.push(createPacket([relayHop, ...rest], encodeInner({ message: rng.bytes(rng.int(1500)) }), rng).packet)
    }
  }
  const identity = identityFromSeed(rng.bytes(32))
  const record = signRelayDescriptor(identity, {
    relay: true, capacity: 100, epochMs: 3_600_000, validFrom: 1_700_000_000_000, validUntil: 1_700_007_200_000,
    keys: [{ epoch: 472222, publicKey: rng.bytes(32) }, { epoch: 472223, publicKey: rng.bytes(32) }],
    torClient: rng.bytes(8), addrs: ['/onion3/abc:4001', 'mem:7']
  })
  const descriptorValue = record.value
  const signed = encodeSignedDescriptor(record)
  const responses = [encodeHopResponse({ kind: 'dropped' }), encodeHopResponse({ kind: 'busy' }), encodeHopResponse({ kind: 'report', report: createReport(rng.bytes(32), 'delivered') })]
  const inners = [encodeInner({ message: rng.bytes(100) }), encodeInner({ message: rng.bytes(10), surb: rng.bytes(310) })]

  const mutate = (src: Uint8Array): Uint8Array => {
    const choice = rng.int(4)
    if (choice === 0) return src.slice(0, rng.int(src.byteLength + 1))
    if (choice === 1) { const out = new Uint8Array(src.byteLength + 1 + rng.int(64)); out.set(src); out.set(rng.bytes(out.byteLength - src.byteLength), src.byteLength); return out }
    const out = src.slice()
    const n = 1 + rng.int(8)
    for (let i = 0; i < n; i++) out[rng.int(out.byteLength)] = rng.int(256)
    return out
  }
  const random = (max: number): Uint8Array => rng.bytes(rng.int(max + 1))

  return {
    packets,
    next (): FuzzInput {
      const r = rng.int(100)
      if (r < 20) return { kind: 'packet', bytes: random(3000) }
      if (r < 45) return { kind: 'packet', bytes: mutate(packets[rng.int(packets.length)]) }
      if (r < 55) { const b = rng.bytes(PACKET_BYTES); b[0] = 1; b[1] = 0; return { kind: 'packet', bytes: b } }
      if (r < 65) return { kind: 'response', bytes: rng.int(2) === 0 ? random(40) : mutate(responses[rng.int(responses.length)]) }
      if (r < 75) return { kind: 'inner', bytes: rng.int(4) === 0 ? random(BODY_BYTES + 10) : mutate(inners[rng.int(inners.length)]) }
      if (r < 88) return { kind: 'descriptor', bytes: rng.int(4) === 0 ? random(400) : mutate(descriptorValue) }
      return { kind: 'signed-descriptor', bytes: rng.int(4) === 0 ? random(500) : mutate(signed) }
    },
    run (input: FuzzInput): FuzzOutcome {
      try {
        switch (input.kind) {
          case 'packet': unwrapPacket(input.bytes, [other, relayKey], () => {}); break
          case 'response': decodeHopResponse(input.bytes); break
          case 'inner': decodeInner(input.bytes); break
          case 'descriptor': decodeDescriptorValue(identity.publicKey, input.bytes); break
          case 'signed-descriptor': verifyRelayDescriptor(decodeSignedDescriptor(input.bytes)); break
        }
        return 'accepted'
      } catch (err) {
        if (isScrambleError(err)) return 'rejected'
        throw err
      }
    }
  }
}
