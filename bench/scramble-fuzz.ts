/**
 * Scramble routing decoder fuzz at scale: 1,000,000 seeded inputs (the generator the unit test
 * uses, test/helpers/scramble-fuzz.ts) through the packet unwrap, hop-response, message-body,
 * descriptor and signed-descriptor decoders, then 20,000 packet inputs through a real relay's
 * handler over the in-memory PeerNet. Prints and writes: inputs, crashes (anything thrown
 * that is not a ScrambleError; must be 0), outcomes per decoder, the slowest input, peak heap.
 *
 * Usage: node --import tsx bench/scramble-fuzz.ts [--inputs 1000000] [--relay-inputs 20000] [--seed s]
 * Writes bench/results/scramble-fuzz.json; exits 1 if anything crashed.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { FakeClock, SeededRng, cryptoRng } from '../src/core/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import { createMemoryRelayDirectory, createScrambleNode, decodeHopResponse, HOP_PROTOCOL, usableKey } from '../src/scramble-routing/index.ts'
import { createFuzzTargets, type FuzzKind } from '../test/helpers/scramble-fuzz.ts'
import { MemoryPeerNetwork } from '../test/unit/scramble-helpers.ts'

const args = process.argv.slice(2)
if (args.includes('--help')) {
  console.log('usage: node --import tsx bench/scramble-fuzz.ts [--inputs N (1000000)] [--relay-inputs N (20000)] [--seed S]\nWrites bench/results/scramble-fuzz.json; exit 1 on any crash.')
  process.exit(0)
}
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const INPUTS = Number(opt('--inputs') ?? 1_000_000)
const RELAY_INPUTS = Number(opt('--relay-inputs') ?? 20_000)
const SEED = opt('--seed') ?? 'scramble-fuzz-1'
if (!Number.isInteger(INPUTS) || INPUTS < 1 || !Number.isInteger(RELAY_INPUTS) || RELAY_INPUTS < 0) { console.error('--inputs and --relay-inputs take integers'); process.exit(2) }

const t0 = performance.now()
const targets = createFuzzTargets(SEED)
const perKind = new Map<FuzzKind, { inputs: number, accepted: number, rejected: number }>()
const crashes: Array<{ kind: string, length: number, head: string, error: string }> = []
let slowest = { us: 0, kind: '', length: 0 }
// The slowest inputs are timed again afterwards: on a shared machine one slow run is usually a
// pause of the process, not a slow input.
const slowInputs: Array<{ us: number, input: ReturnType<typeof targets.next> }> = []
let peakHeap = 0
let peakRss = 0
const sample = (): void => {
  const m = process.memoryUsage()
  if (m.heapUsed > peakHeap) peakHeap = m.heapUsed
  if (m.rss > peakRss) peakRss = m.rss
}

for (let i = 0; i < INPUTS; i++) {
  const input = targets.next()
  let k = perKind.get(input.kind)
  if (k === undefined) { k = { inputs: 0, accepted: 0, rejected: 0 }; perKind.set(input.kind, k) }
  k.inputs++
  const t = performance.now()
  try {
    k[targets.run(input)]++
  } catch (err) {
    if (crashes.length < 10) crashes.push({ kind: input.kind, length: input.bytes.byteLength, head: Buffer.from(input.bytes.subarray(0, 48)).toString('hex'), error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
    else crashes.push({ kind: input.kind, length: input.bytes.byteLength, head: '', error: '' })
  }
  const us = (performance.now() - t) * 1000
  if (us > slowest.us) slowest = { us: Math.round(us), kind: input.kind, length: input.bytes.byteLength }
  if (slowInputs.length < 5 || us > slowInputs[slowInputs.length - 1].us) {
    slowInputs.push({ us, input })
    slowInputs.sort((a, b) => b.us - a.us)
    if (slowInputs.length > 5) slowInputs.pop()
  }
  if (i % 10_000 === 0) {
    sample()
    if (i % 200_000 === 0 && i > 0) console.log(`  ${i} inputs, ${crashes.length} crashes, ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  }
}
sample()
const decoderWallMs = performance.now() - t0
const retimed = slowInputs.map(({ us, input }) => {
  let best = Infinity
  for (let r = 0; r < 10; r++) {
    const t = performance.now()
    try { targets.run(input) } catch { /* counted above */ }
    best = Math.min(best, (performance.now() - t) * 1000)
  }
  return { kind: input.kind, length: input.bytes.byteLength, firstUs: Math.round(us), bestOf10Us: +best.toFixed(1) }
})

// ------------------------------------------------------------------ through a relay's handler
const clock = new FakeClock()
const net = new MemoryPeerNetwork(clock)
const rng = new SeededRng(`${SEED}/relay`)
const directory = createMemoryRelayDirectory({ clock })
const relayId = identityFromSeed(rng.bytes(32))
const relayContact = { publicKey: relayId.publicKey, addrs: ['mem:relay'] }
const relay = createScrambleNode({ relay: true, addrs: relayContact.addrs, capacity: 10_000_000, perPeer: { ratePerSecond: 1e9, burst: 1e9 } }, { identity: relayId, peers: net.endpoint(relayContact), directory, clock, rng, keyRng: cryptoRng })
relay.onMessage(() => {})
await relay.start()
const fuzzer = net.endpoint({ publicKey: rng.bytes(32), addrs: ['mem:fuzzer'] })
// Valid packets for this relay's current key, so mutations reach its routing commands.
const own = await directory.get(relayId.publicKey)
const ownKey = own === undefined ? undefined : usableKey(own, clock.now())
if (ownKey === undefined) throw new Error('the relay published no key')
const relayTargets = createFuzzTargets(`${SEED}/relay-inputs`, { nodeId: relayId.publicKey, publicKey: ownKey.publicKey })
const relayOutcomes = { dropped: 0, busy: 0, report: 0, refusedBySize: 0, handlerErrors: 0 }
const tr = performance.now()
for (let i = 0; i < RELAY_INPUTS; i++) {
  let input = relayTargets.next()
  while (input.kind !== 'packet') input = relayTargets.next()
  try {
    relayOutcomes[decodeHopResponse(await fuzzer.request(relayContact, HOP_PROTOCOL, input.bytes)).kind]++
  } catch (err) {
    if ((err as { code?: string }).code === 'OHT_MESSAGE_TOO_LARGE') relayOutcomes.refusedBySize++
    else { relayOutcomes.handlerErrors++; if (crashes.length < 10) crashes.push({ kind: 'relay', length: input.bytes.byteLength, head: '', error: String(err) }) }
  }
  if (i % 1000 === 0) sample()
}
const relayWallMs = performance.now() - tr
const relayStats = relay.stats
await relay.stop()
sample()

const results = {
  node: process.version,
  seed: SEED,
  inputs: INPUTS,
  crashes: crashes.length,
  crashSamples: crashes.slice(0, 10),
  perDecoder: Object.fromEntries(perKind),
  slowestInput: slowest,
  slowestRetimed: retimed,
  decoderWallS: +(decoderWallMs / 1000).toFixed(1),
  decoderInputsPerSec: Math.round(INPUTS / (decoderWallMs / 1000)),
  relay: { inputs: RELAY_INPUTS, outcomes: relayOutcomes, packetsIn: relayStats.packetsIn, delivered: relayStats.delivered, rejected: relayStats.rejected, unknownSurb: relayStats.unknownSurb, dropped: relayStats.dropped, forwardFailures: relayStats.forwardFailures, wallS: +(relayWallMs / 1000).toFixed(1) },
  peakHeapMiB: +(peakHeap / 2 ** 20).toFixed(1),
  peakRssMiB: +(peakRss / 2 ** 20).toFixed(1)
}
console.log(`decoders: ${INPUTS} inputs in ${results.decoderWallS} s (${results.decoderInputsPerSec}/s), ${crashes.length} crashes`)
for (const [kind, k] of perKind) console.log(`  ${kind.padEnd(18)} ${String(k.inputs).padStart(8)} inputs: ${k.accepted} accepted, ${k.rejected} rejected with a ScrambleError`)
console.log(`slowest input: ${slowest.us} µs (${slowest.kind}, ${slowest.length} bytes); the 5 slowest timed again, best of 10: ${retimed.map(r => `${r.kind} ${r.bestOf10Us} µs`).join(', ')}`)
console.log(`relay handler: ${RELAY_INPUTS} inputs in ${results.relay.wallS} s: ${JSON.stringify(relayOutcomes)}; delivered ${relayStats.delivered}, rejected ${relayStats.rejected}, unknown SURB ${relayStats.unknownSurb}, forward failures ${JSON.stringify(relayStats.forwardFailures)}; dropped ${JSON.stringify(relayStats.dropped)}`)
console.log(`peak heap ${results.peakHeapMiB} MiB, peak RSS ${results.peakRssMiB} MiB`)
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/scramble-fuzz.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
console.log('wrote bench/results/scramble-fuzz.json')
if (crashes.length > 0 || relayOutcomes.handlerErrors > 0) process.exit(1)
