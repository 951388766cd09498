/**
 * Scramble routing CPU costs: what one hop costs per packet (Sphinx unwrap, forward and
 * terminal, and the whole relay handler behind PeerNet), what a sender pays to build a packet
 * for 0-3 relays and a SURB, against baselines measured in the same run (one X25519, one
 * ChaCha20-Poly1305 seal of a packet's bytes). Goal: <= 0.25 ms per hop per packet (Loopix
 * reports < 1.5 ms per message per relay).
 *
 * Usage: node --import tsx bench/scramble-hop.ts [--packets 3000]
 * Writes bench/results/scramble-hop.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { createCipheriv, randomBytes } from 'node:crypto'
import { FakeClock, SeededRng, cryptoRng } from '../src/core/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import {
  createMemoryRelayDirectory, createPacket, createScrambleNode, createSurb, encodeHopResponse, createReport, encodeInner, HOP_PROTOCOL,
  importPublic, PACKET_BYTES, privateKeyFromScalar, publicFromScalar, ReplayFilter, unwrapPacket, usableKey, x25519, type SphinxHop
} from '../src/scramble-routing/index.ts'
import { MemoryPeerNetwork } from '../test/unit/scramble-helpers.ts'

const args = process.argv.slice(2)
if (args.includes('--help')) {
  console.log('usage: node --import tsx bench/scramble-hop.ts [--packets N (default 3000)]\nWrites bench/results/scramble-hop.json')
  process.exit(0)
}
const arg = (name: string, dflt: number): number => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt }
const N = arg('--packets', 3000)
if (!Number.isInteger(N) || N < 100) { console.error('--packets must be an integer >= 100'); process.exit(2) }

const now = (): number => performance.now()
function pct (xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
interface Figure { p50Us: number, p95Us: number, meanCpuUs: number, n: number }
/** Times `fn` per call (wall, µs) and the process CPU over all calls. */
function measure (n: number, fn: (i: number) => void, warm = 200): Figure {
  for (let i = 0; i < warm; i++) fn(i)
  const times: number[] = []
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < n; i++) { const t = now(); fn(i + warm); times.push((now() - t) * 1000) }
  const cpu = process.cpuUsage(cpu0)
  return { p50Us: +pct(times, 50).toFixed(1), p95Us: +pct(times, 95).toFixed(1), meanCpuUs: +((cpu.user + cpu.system) / n).toFixed(1), n }
}
async function measureAsync (n: number, fn: (i: number) => Promise<void>, warm = 200): Promise<Figure> {
  for (let i = 0; i < warm; i++) await fn(i)
  const times: number[] = []
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < n; i++) { const t = now(); await fn(i + warm); times.push((now() - t) * 1000) }
  const cpu = process.cpuUsage(cpu0)
  return { p50Us: +pct(times, 50).toFixed(1), p95Us: +pct(times, 95).toFixed(1), meanCpuUs: +((cpu.user + cpu.system) / n).toFixed(1), n }
}
const fmt = (f: Figure): string => `p50 ${f.p50Us} µs, p95 ${f.p95Us} µs, CPU ${f.meanCpuUs} µs/op`

const rng = new SeededRng('bench-scramble')
const results: Record<string, unknown> = { node: process.version, packets: N, packetBytes: PACKET_BYTES, goalPerHopUs: 250, loopixPerHopUs: 1500 }

// ------------------------------------------------------------------ baselines
const baseKey = privateKeyFromScalar(rng.bytes(32))
const basePub = importPublic(publicFromScalar(rng.bytes(32)))
const x25519Base = measure(N, () => { x25519(baseKey, basePub) })
const sealKey = randomBytes(32)
const bytes = randomBytes(PACKET_BYTES)
const sealBase = measure(N, () => { const c = createCipheriv('chacha20-poly1305', sealKey, randomBytes(12), { authTagLength: 16 }); c.update(bytes); c.final(); c.getAuthTag() })
results.baseline = { x25519: x25519Base, chacha20poly1305Packet: sealBase }
console.log(`baseline: one X25519 ${fmt(x25519Base)}; ChaCha20-Poly1305 of ${PACKET_BYTES} B ${fmt(sealBase)}`)

// ------------------------------------------------------------------ per hop (Sphinx unwrap)
const hopKeys = Array.from({ length: 4 }, () => { const k = privateKeyFromScalar(rng.bytes(32)); return { k, hop: { nodeId: rng.bytes(32), publicKey: publicFromScalar(k) } as SphinxHop } })
const path = hopKeys.map(h => h.hop)
const body = encodeInner({ message: rng.bytes(1500) })
const forwardPackets = Array.from({ length: N + 200 }, () => createPacket(path, body, cryptoRng).packet)
const filter = new ReplayFilter(rng.bytes(16), { capacity: 2 * N + 1000 })
const forward = measure(N, (i) => {
  const u = unwrapPacket(forwardPackets[i], [hopKeys[0].k], (_k, tag) => { if (filter.checkAndAdd(tag) !== 'fresh') throw new Error('replay') })
  if (u.type !== 'forward') throw new Error('expected forward')
})
const terminalPackets = Array.from({ length: N + 200 }, () => createPacket([path[3]], body, cryptoRng).packet)
const terminal = measure(N, (i) => {
  const u = unwrapPacket(terminalPackets[i], [hopKeys[3].k], () => {})
  if (u.type !== 'deliver') throw new Error('expected deliver')
})
// During a key overlap a packet for the previous key costs one more trial.
const otherKey = privateKeyFromScalar(rng.bytes(32))
const overlap = measure(N, (i) => { unwrapPacket(forwardPackets[i], [otherKey, hopKeys[0].k], () => {}) })
const garbage = Array.from({ length: 64 }, () => { const b = rng.bytes(PACKET_BYTES); b[0] = 1; b[1] = 0; return b })
const bad = measure(N, (i) => { try { unwrapPacket(garbage[i % 64], [hopKeys[0].k], () => {}) } catch { /* dropped: what we time */ } })
results.perHop = { forward, terminal, forwardDuringOverlap: overlap, garbageFullSize: bad, forwardVsX25519: +(forward.meanCpuUs / x25519Base.meanCpuUs).toFixed(2) }
console.log(`hop, forward (unwrap + replay check + blind): ${fmt(forward)}  = ${(forward.meanCpuUs / x25519Base.meanCpuUs).toFixed(2)}x one X25519; goal 250 µs`)
console.log(`hop, terminal (unwrap + payload check): ${fmt(terminal)}`)
console.log(`hop, forward for the previous epoch's key (2 trials): ${fmt(overlap)}`)
console.log(`hop, full-size garbage (refused at the MAC): ${fmt(bad)}`)

// ------------------------------------------------------------------ relay handler behind PeerNet
{
  const clock = new FakeClock()
  const net = new MemoryPeerNetwork(clock)
  const directory = createMemoryRelayDirectory({ clock })
  const relayId = identityFromSeed(rng.bytes(32))
  const relayContact = { publicKey: relayId.publicKey, addrs: ['mem:relay'] }
  // The next hop answers at once with a fixed report: we time the relay alone.
  const nextId = identityFromSeed(rng.bytes(32))
  const nextContact = { publicKey: nextId.publicKey, addrs: ['mem:next'] }
  const relay = createScrambleNode({ relay: true, addrs: relayContact.addrs, capacity: 1_000_000, perPeer: { ratePerSecond: 1e9, burst: 1e9 } }, {
    identity: relayId, peers: net.endpoint(relayContact), directory, clock, rng: rng.fork('r'), keyRng: cryptoRng, resolve: async () => nextContact
  })
  await relay.start()
  const answer = encodeHopResponse({ kind: 'report', report: createReport(rng.bytes(32), 'delivered') })
  net.endpoint(nextContact).handle(HOP_PROTOCOL, async () => answer, { maxMessageBytes: PACKET_BYTES })
  const d = await directory.get(relayId.publicKey)
  const key = d === undefined ? undefined : usableKey(d, clock.now())
  if (key === undefined) throw new Error('relay has no key')
  const relayPath: SphinxHop[] = [{ nodeId: relayId.publicKey, publicKey: key.publicKey }, { nodeId: nextId.publicKey, publicKey: publicFromScalar(rng.bytes(32)) }]
  const packets = Array.from({ length: N + 200 }, () => createPacket(relayPath, body, cryptoRng).packet)
  const sender = net.endpoint({ publicKey: rng.bytes(32), addrs: ['mem:sender'] })
  const handler = await measureAsync(N, async (i) => { await sender.request(relayContact, HOP_PROTOCOL, packets[i]) })
  const echoContact = { publicKey: rng.bytes(32), addrs: ['mem:echo'] }
  net.endpoint(echoContact).handle('/bench/echo/1', async (_f, b) => b, { maxMessageBytes: PACKET_BYTES })
  const echo = await measureAsync(N, async (i) => { await sender.request(echoContact, '/bench/echo/1', packets[i]) })
  if (relay.stats.forwarded < N) throw new Error(`relay forwarded ${relay.stats.forwarded} of ${N}`)
  results.relayHandler = { withForward: handler, echoBaseline: echo, relayOnlyCpuUs: +(handler.meanCpuUs - 2 * echo.meanCpuUs).toFixed(1) }
  console.log(`relay handler over the memory PeerNet (unwrap, limits, forward, wrap report): ${fmt(handler)}; an echo round trip on the same bus: ${fmt(echo)}`)
  await relay.stop()
}

// ------------------------------------------------------------------ sender side
const build: Record<string, Figure> = {}
for (let relays = 0; relays <= 3; relays++) {
  const p = path.slice(3 - relays)
  build[`${relays}relays`] = measure(Math.min(N, 1000), () => { createPacket(p, body, cryptoRng) }, 50)
  console.log(`build a packet, ${relays} relay(s) (${relays + 1} Sphinx hops): ${fmt(build[`${relays}relays`])}`)
}
const surb = measure(Math.min(N, 1000), () => { createSurb(path, rng.bytes(16), cryptoRng) }, 50)
console.log(`build a SURB, 3 relays + maker: ${fmt(surb)}`)
results.build = build
results.surb3relays = surb

const perHopOk = forward.meanCpuUs <= 250
results.goalMet = perHopOk
console.log(`\nper hop per packet: ${forward.meanCpuUs} µs CPU (p50 ${forward.p50Us}, p95 ${forward.p95Us}) vs goal 250 µs: ${perHopOk ? 'met' : 'NOT met'}; ${(1500 / forward.meanCpuUs).toFixed(1)}x under Loopix's 1.5 ms`)
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/scramble-hop.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
console.log('wrote bench/results/scramble-hop.json')
