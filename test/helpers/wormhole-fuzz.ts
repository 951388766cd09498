/**
 * Fuzzing harness for the wormhole decoders, shared by the unit test (a few thousand inputs) and
 * bench/wormhole-fuzz.ts (a million). Inputs are seeded: random bytes of every interesting length
 * (the envelope buckets among them) and mutations of valid frames (bit flips, overwritten bytes,
 * cuts, extensions, splices, length fields set to extremes). A crash is anything thrown that is
 * not a WormholeError with a WORMHOLE_ code; a valid result is fine.
 *
 * Targets: the envelope (outer layer and, through a live WormholeCrypto, everything inside a
 * correctly sealed envelope: sealed content, prekey message, card, ratchet header and state), and
 * each decoder on its own.
 */
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import {
  createContactCard, createMemorySessionStore, createReceipt, createWormholeCrypto, decodeCardBytes, decodeContactCard, decodeContent,
  decodeDistribution, decodeGroupUpdate, decodeMessage, decodePrekeyBundle, decodePrekeyMessage, encodeContactCard, encodeContent, encodeDistribution,
  encodeMessage, erasureDecode, erasureEncode, openEnvelope, openGroupEnvelope, parseFragment, parseGroupMessage, parseRatchetHeader, sealEnvelope,
  sealGroupEnvelope, verifyReceipt, WormholeError, wormholeIdentityFromSeed, ENVELOPE_BUCKETS, type WormholeCrypto
} from '../../src/wormhole/index.ts'

export interface FuzzCrash { target: string, input: string, error: string }
export interface FuzzReport {
  inputs: number
  crashes: FuzzCrash[]
  accepted: number
  byTarget: Record<string, number>
  byCode: Record<string, number>
  slowest: { target: string, bytes: number, ms: number }
  peakHeapBytes: number
  wallMs: number
}

type SyncTarget = (input: Uint8Array) => unknown

interface Corpus {
  sync: Array<{ name: string, seeds: Uint8Array[], run: SyncTarget }>
  /** Payloads sealed correctly to Bob, then opened by his live instance. */
  payloadSeeds: Array<{ type: 'prekey' | 'ratchet', bytes: Uint8Array }>
  bob: WormholeCrypto
  bobDh: Uint8Array
  alice: Uint8Array
}

async function buildCorpus (seed: string): Promise<Corpus> {
  const rng = new SeededRng(`${seed}/corpus`)
  const clock = new FakeClock()
  const person = async (name: string): Promise<{ wh: WormholeCrypto, card: ReturnType<typeof createContactCard>, id: ReturnType<typeof wormholeIdentityFromSeed> }> => {
    const id = wormholeIdentityFromSeed(rng.bytes(32))
    const card = createContactCard(id, { node: identityFromSeed(rng.bytes(32)).onion, name }, clock)
    const wh = await createWormholeCrypto({}, { identity: id, card, store: createMemorySessionStore(), clock, rng: rng.fork(name) })
    return { wh, card, id }
  }
  const a = await person('alice')
  const b = await person('bob')
  const conv = rng.bytes(16)
  const bundle = decodePrekeyBundle(b.wh.prekeyBundle().bytes, b.card.publicKey)
  const first = await a.wh.seal(b.card, { conversationId: conv, seq: 1, body: new TextEncoder().encode('first') }, { bundle })
  await b.wh.open(first.envelope)
  await a.wh.open((await b.wh.seal(a.card, { conversationId: conv, seq: 1, body: new TextEncoder().encode('reply') })).envelope)
  const second = await a.wh.seal(b.card, { conversationId: conv, seq: 2, body: new TextEncoder().encode('x'.repeat(2000)) })
  // The sealed contents of those envelopes (Bob can open the outer layer; it never changes his state).
  const c1 = openEnvelope(first.envelope, b.id)
  const c2 = openEnvelope(second.envelope, b.id)
  const group = await a.wh.createGroup({ name: 'fuzz', members: [b.card] })
  const groupSecret = rng.bytes(32)
  const groupEnv = sealGroupEnvelope(groupSecret, { type: 'group', sender: a.card.publicKey, messageId: rng.bytes(16), payload: rng.bytes(300) }, rng)
  const frags = erasureEncode(second.envelope, 4, 8)
  const receipt = createReceipt(b.id, a.card.publicKey, rng.bytes(16), clock.now())
  const message = encodeMessage({ kind: 'message', conversationId: conv, seq: 5, sentAt: 1, body: rng.bytes(100) })
  const update = group.sends.find(s => s.kind === 'group-update')?.body ?? new Uint8Array(0)
  const distribution = group.sends.find(s => s.kind === 'sender-key')?.body ?? encodeDistribution({ groupId: rng.bytes(16), chainId: 1, iteration: 0, chainKey: rng.bytes(32), signingPublicKey: rng.bytes(32) })
  const cardText = new TextEncoder().encode(encodeContactCard(a.card))
  const text = new TextDecoder()
  const sync: Corpus['sync'] = [
    { name: 'envelope', seeds: [first.envelope, second.envelope, groupEnv], run: i => openEnvelope(i, b.id) },
    { name: 'group-envelope', seeds: [groupEnv], run: i => openGroupEnvelope(i, groupSecret) },
    { name: 'sealed-content', seeds: [encodeContent(c1, 1024 - 49), encodeContent(c2, 4096 - 49)], run: i => decodeContent(i) },
    { name: 'prekey-message', seeds: [c1.payload], run: i => decodePrekeyMessage(i) },
    { name: 'ratchet-header', seeds: [c2.payload], run: i => parseRatchetHeader(i) },
    { name: 'message', seeds: [message], run: i => decodeMessage(i) },
    { name: 'card-bytes', seeds: [a.card.bytes, b.card.bytes], run: i => decodeCardBytes(i) },
    { name: 'card-text', seeds: [cardText], run: i => decodeContactCard(text.decode(i)) },
    { name: 'prekey-bundle', seeds: [bundle.bytes], run: i => decodePrekeyBundle(i, b.card.publicKey) },
    { name: 'fragment', seeds: frags, run: i => parseFragment(i) },
    { name: 'erasure-decode', seeds: [frags[0], frags[5]], run: i => erasureDecode([i, frags[1], frags[2], frags[6]]) },
    { name: 'receipt', seeds: [receipt.bytes], run: i => verifyReceipt(i, b.card.publicKey, a.card.publicKey) },
    { name: 'group-update', seeds: [update], run: i => decodeGroupUpdate(i) },
    { name: 'distribution', seeds: [distribution], run: i => decodeDistribution(i) },
    { name: 'group-message', seeds: [rng.bytes(200)], run: i => parseGroupMessage(i) }
  ]
  return { sync, payloadSeeds: [{ type: 'prekey', bytes: c1.payload }, { type: 'ratchet', bytes: c2.payload }], bob: b.wh, bobDh: b.card.dhPublicKey, alice: a.card.publicKey }
}

const LENGTHS = [0, 1, 2, 16, 32, 33, 40, 41, 48, 49, 53, 57, 64, 100, 255, 256, 1023, 1024, 1025, 4096, 16384, 65536, 65537]

function mutate (rng: SeededRng, seed: Uint8Array): Uint8Array {
  const op = rng.int(9)
  let out = Uint8Array.from(seed)
  switch (op) {
    case 0: { const n = 1 + rng.int(8); for (let i = 0; i < n && out.byteLength > 0; i++) out[rng.int(out.byteLength)] ^= 1 << rng.int(8); break }
    case 1: { const n = 1 + rng.int(4); for (let i = 0; i < n && out.byteLength > 0; i++) out[rng.int(out.byteLength)] = rng.int(256); break }
    case 2: out = out.subarray(0, rng.int(out.byteLength + 1)); break
    case 3: { const extra = rng.bytes(1 + rng.int(64)); const x = new Uint8Array(out.byteLength + extra.byteLength); x.set(out); x.set(extra, out.byteLength); out = x; break }
    case 4: { // splice a chunk of random bytes in the middle
      const at = rng.int(out.byteLength + 1); const chunk = rng.bytes(rng.int(32))
      const x = new Uint8Array(out.byteLength + chunk.byteLength); x.set(out.subarray(0, at)); x.set(chunk, at); x.set(out.subarray(at), at + chunk.byteLength); out = x; break
    }
    case 5: { // a length-like field set to an extreme
      if (out.byteLength < 2) break
      const at = rng.int(out.byteLength - 1); const v = [0x00, 0xff, 0x7f, 0x80][rng.int(4)]
      out[at] = v; out[at + 1] = v; break
    }
    case 6: { // cut a slice out
      const a = rng.int(out.byteLength + 1); const b = a + rng.int(Math.max(1, out.byteLength - a + 1))
      const x = new Uint8Array(out.byteLength - (b - a)); x.set(out.subarray(0, a)); x.set(out.subarray(b), a); out = x; break
    }
    case 7: if (out.byteLength > 0) out[0] = rng.int(256); break
    default: break // unchanged: the valid input itself
  }
  return out
}

function randomInput (rng: SeededRng): Uint8Array {
  const len = rng.next() < 0.5 ? LENGTHS[rng.int(LENGTHS.length)] : rng.int(2048)
  const b = rng.bytes(len)
  if (len > 0 && rng.next() < 0.5) b[0] = 1 // a plausible version byte gets past the first check
  return b
}

function classify (err: unknown): string | undefined {
  if (err instanceof WormholeError && err.code.startsWith('WORMHOLE_')) return err.code
  return undefined
}

/**
 * Runs `iterations` seeded inputs. About one in `asyncEvery` goes through Bob's live instance
 * (a payload sealed correctly to him, then mutated), the rest through the decoders.
 */
export async function runWormholeFuzz (options: { iterations: number, seed: string, asyncEvery?: number, onProgress?: (done: number) => void }): Promise<FuzzReport> {
  const corpus = await buildCorpus(options.seed)
  const rng = new SeededRng(`${options.seed}/inputs`)
  const sealRng = new SeededRng(`${options.seed}/seal`)
  const asyncEvery = options.asyncEvery ?? 10
  const report: FuzzReport = { inputs: 0, crashes: [], accepted: 0, byTarget: {}, byCode: {}, slowest: { target: '', bytes: 0, ms: 0 }, peakHeapBytes: 0, wallMs: 0 }
  const t0 = performance.now()
  const note = (target: string, input: Uint8Array, ms: number, err: unknown, threw: boolean): void => {
    report.inputs++
    report.byTarget[target] = (report.byTarget[target] ?? 0) + 1
    if (ms > report.slowest.ms) report.slowest = { target, bytes: input.byteLength, ms }
    if (!threw) { report.accepted++; return }
    const c = classify(err)
    if (c === undefined) {
      if (report.crashes.length < 20) report.crashes.push({ target, input: Buffer.from(input.subarray(0, 256)).toString('hex'), error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
      else report.crashes.push({ target, input: '', error: '' })
      return
    }
    report.byCode[c] = (report.byCode[c] ?? 0) + 1
  }
  for (let i = 0; i < options.iterations; i++) {
    if (i % 1000 === 0) {
      const h = process.memoryUsage().heapUsed
      if (h > report.peakHeapBytes) report.peakHeapBytes = h
      options.onProgress?.(i)
    }
    if (asyncEvery > 0 && i % asyncEvery === 0) {
      const s = corpus.payloadSeeds[rng.int(corpus.payloadSeeds.length)]
      const payload = rng.next() < 0.9 ? mutate(rng, s.bytes) : rng.bytes(rng.int(600))
      let env: Uint8Array
      try {
        env = sealEnvelope(corpus.bobDh, { type: rng.next() < 0.9 ? s.type : 'group', sender: rng.next() < 0.95 ? corpus.alice : sealRng.bytes(32), messageId: sealRng.bytes(16), payload }, sealRng)
      } catch (err) {
        note('open(sealed payload)', payload, 0, err, true)
        continue
      }
      const t = performance.now()
      let threw = false
      let error: unknown
      try { await corpus.bob.open(env) } catch (err) { threw = true; error = err }
      note('open(sealed payload)', payload, performance.now() - t, error, threw)
      continue
    }
    const target = corpus.sync[rng.int(corpus.sync.length)]
    const input = rng.next() < 0.75 ? mutate(rng, target.seeds[rng.int(target.seeds.length)]) : randomInput(rng)
    const t = performance.now()
    let threw = false
    let error: unknown
    try { target.run(input) } catch (err) { threw = true; error = err }
    note(target.name, input, performance.now() - t, error, threw)
  }
  const h = process.memoryUsage().heapUsed
  if (h > report.peakHeapBytes) report.peakHeapBytes = h
  report.wallMs = performance.now() - t0
  await corpus.bob.close()
  return report
}

export const ENVELOPE_BUCKET_SIZES = ENVELOPE_BUCKETS
