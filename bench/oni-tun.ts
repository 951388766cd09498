/**
 * onet (ONI TUN mode) on a private Tor network, two network namespaces:
 *  1. UDP at 1 Mbit/s (1000-byte datagrams, 125/s) from namespace A to B over onet0: loss,
 *     one-way delay p50/p95, and jitter (inter-packet delay variation, |d(i) - d(i-1)|) p95.
 *     Two baselines in the same run: the same sender/receiver over ::1 (what the whole onion
 *     path adds), and the same 1000-byte messages at the same rate on a plain onion stream
 *     between the same tor clients (what onet itself adds on top of tor).
 *  2. TCP throughput of the same transfer over onet0 (A → B, kernel TCP inside the
 *     namespaces) vs over a plain onion stream (socksConnect to an onion endpoint), measured
 *     at the receiver from accept to the last byte. Reports the ratio.
 *
 *   node --import tsx bench/oni-tun.ts [udp seconds, default 10] [TCP MiB, default 16] [TCP rounds, default 3]
 *
 * Needs root (TUN, namespaces). Writes bench/results/oni-tun.json.
 * ONI_BENCH_MTU=<n> sets the onet MTU (default 1400); ONI_BENCH_CC=<name> the apps' TCP
 * congestion control inside the namespaces (only names in tcp_allowed_congestion_control);
 * ONI_BENCH_SS=1 prints the inner TCP's `ss -ti` four seconds into each onet transfer.
 * Measured here: the kernel default (bbr on this machine) takes its min-RTT from a quiet
 * moment of the onion path (~10 ms vs ~60-90 ms under load) and keeps cwnd near 40 segments;
 * reno reached about twice the onet throughput in the same network.
 */
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { publishOnion, socksConnect } from '../src/tor/index.ts'
import { canUseNetns, type Netns } from '../testkit/netns.ts'
import { median, percentile, round, sinkServer, twoOnetSides, writeResults } from './lib/oni-bench.ts'
import { testnet } from '../testkit/tor-testnet.ts'

const MIB = 1024 * 1024
const udpSeconds = Number(process.argv[2] ?? 10)
const tcpMiB = Number(process.argv[3] ?? 16)
const tcpRounds = Number(process.argv[4] ?? 3)
const UDP_BYTES = 1000
const UDP_INTERVAL_MS = 8 // 1000 B every 8 ms = 1 Mbit/s

if (!await canUseNetns()) {
  console.error('bench/oni-tun needs root (TUN devices and network namespaces)')
  process.exit(1)
}

// Receiver: timestamps every datagram on CLOCK_MONOTONIC (shared by all processes here).
const UDP_RECEIVER = `
const d = require('node:dgram').createSocket('udp6')
const out = []
d.on('message', (m) => { out.push([m.readUInt32BE(0), Number(process.hrtime.bigint() - m.readBigUInt64BE(4)) / 1e6]) })
d.bind(Number(process.argv[2]), process.argv[1], () => { process.stdout.write('ready\\n') })
process.stdin.on('data', () => { process.stdout.write(JSON.stringify(out) + '\\n'); process.exit(0) })
`
const UDP_SENDER = `
const d = require('node:dgram').createSocket('udp6')
const [addr, port, n, size, interval] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), BigInt(process.argv[5]) * 1000000n]
let i = 0
const t0 = process.hrtime.bigint()
const tick = () => {
  while (i < n && process.hrtime.bigint() - t0 >= BigInt(i) * interval) {
    const b = Buffer.alloc(size)
    b.writeUInt32BE(i, 0)
    b.writeBigUInt64BE(process.hrtime.bigint(), 4)
    d.send(b, port, addr)
    i++
  }
  if (i < n) setTimeout(tick, 1); else setTimeout(() => process.exit(0), 200)
}
tick()
`

function lines (child: ChildProcess): AsyncIterator<string> {
  let buf = ''
  const queue: string[] = []
  let wake: (() => void) | undefined
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) { queue.push(buf.slice(0, nl)); buf = buf.slice(nl + 1) }
    wake?.()
  })
  return {
    next: async () => {
      while (queue.length === 0) await new Promise<void>((resolve) => { wake = resolve })
      return { value: queue.shift() as string, done: false }
    }
  }
}

async function udpRun (sender: Netns, receiver: Netns, addr: string, port: number): Promise<{ sent: number, received: number, lossPct: number, delayP50: number, delayP95: number, jitterP95: number }> {
  const n = Math.round(udpSeconds * 1000 / UDP_INTERVAL_MS)
  const rx = receiver.spawn(process.execPath, ['-e', UDP_RECEIVER, addr, String(port)])
  const out = lines(rx)
  await out.next()
  const tx = await sender.exec(process.execPath, ['-e', UDP_SENDER, addr, String(port), String(n), String(UDP_BYTES), String(UDP_INTERVAL_MS)], { timeoutMs: (udpSeconds + 30) * 1000 })
  if (tx.code !== 0) throw new Error(`UDP sender failed: ${tx.stderr}`)
  await new Promise((resolve) => setTimeout(resolve, 3000)) // stragglers
  rx.stdin?.write('done\n')
  const got = JSON.parse((await out.next()).value) as Array<[number, number]>
  got.sort((x, y) => x[0] - y[0])
  const delays = got.map(g => g[1])
  const ipdv: number[] = []
  for (let i = 1; i < got.length; i++) if (got[i][0] === got[i - 1][0] + 1) ipdv.push(Math.abs(got[i][1] - got[i - 1][1]))
  return {
    sent: n,
    received: new Set(got.map(g => g[0])).size,
    lossPct: round(100 * (1 - new Set(got.map(g => g[0])).size / n), 2),
    delayP50: round(percentile(delays, 0.5), 2),
    delayP95: round(percentile(delays, 0.95), 2),
    jitterP95: round(percentile(ipdv, 0.95), 2)
  }
}

/** Receives 1000-byte timestamped messages on a stream; records one-way delays (same host clock). */
async function stampServer (): Promise<{ port: number, delays: number[], close: () => Promise<void> }> {
  const delays: number[] = []
  const server = createServer((s) => {
    let buf = Buffer.alloc(0)
    s.on('error', () => {})
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= UDP_BYTES) {
        delays.push(Number(process.hrtime.bigint() - buf.readBigUInt64BE(4)) / 1e6)
        buf = buf.subarray(UDP_BYTES)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as { port: number }).port, delays, close: async () => { await new Promise<void>((resolve) => server.close(() => { resolve() })) } }
}

/** The UDP workload's messages on one plain onion stream (port 81 of the endpoint). */
async function streamRun (address: string, socksPort: number): Promise<{ delayP50: number, delayP95: number, jitterP95: number }> {
  stamp.delays.length = 0
  const n = Math.round(udpSeconds * 1000 / UDP_INTERVAL_MS)
  const s = await socksConnect({ socksPort, host: address, port: 81, isolation: 'bench-stamp', timeoutMs: 120_000 })
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const due = t0 + BigInt(i * UDP_INTERVAL_MS) * 1_000_000n
    while (process.hrtime.bigint() < due) await new Promise((resolve) => setTimeout(resolve, 1))
    const b = Buffer.alloc(UDP_BYTES)
    b.writeUInt32BE(i, 0)
    b.writeBigUInt64BE(process.hrtime.bigint(), 4)
    s.write(b)
  }
  await new Promise((resolve) => setTimeout(resolve, 3000))
  s.destroy()
  const d = stamp.delays
  const ipdv = d.slice(1).map((x, i) => Math.abs(x - d[i]))
  return { delayP50: round(percentile(d, 0.5), 2), delayP95: round(percentile(d, 0.95), 2), jitterP95: round(percentile(ipdv, 0.95), 2) }
}

const net = await testnet({ clients: 2 })
const mtu = Number(process.env.ONI_BENCH_MTU ?? 1400)
const { sides, stop } = await twoOnetSides(net, { mtu })
const [a, b] = sides
const sink = await sinkServer()
const stamp = await stampServer()
const control = await net.clients[1].control()
try {
  // Make B routable from A (as resolving its .onet name would), and bring the link up before
  // measuring: the first packet would otherwise include the rendezvous.
  await a.onet.addPeer(b.onet.onion)
  const warm = await a.ns.exec('ping', ['-6', '-n', '-c', '2', '-w', '60', b.onet.addressText], { timeoutMs: 90_000 })
  if (warm.code !== 0) throw new Error(`warm-up ping failed: ${warm.stdout}${warm.stderr}`)

  console.log(`UDP ${UDP_BYTES} B every ${UDP_INTERVAL_MS} ms (1 Mbit/s) for ${udpSeconds} s ...`)
  const baseline = await udpRun(b.ns, b.ns, '::1', 9998)
  const onet = await udpRun(a.ns, b.ns, b.onet.addressText, 9999)
  const ep = await publishOnion(control, { ports: [{ virtualPort: 80, target: `127.0.0.1:${sink.port}` }, { virtualPort: 81, target: `127.0.0.1:${stamp.port}` }], probe: { socksPort: net.clients[0].socksPort } })
  const plain = await streamRun(ep.address, net.clients[0].socksPort)
  const udp = {
    baselineLoopback: baseline,
    plainOnionStream: plain,
    onet,
    addedJitterP95MsVsLoopback: round(onet.jitterP95 - baseline.jitterP95, 2),
    addedJitterP95MsVsPlainOnion: round(onet.jitterP95 - plain.jitterP95, 2),
    addedDelayP50MsVsPlainOnion: round(onet.delayP50 - plain.delayP50, 2)
  }
  console.log(`  baseline ::1 : loss ${baseline.lossPct} %, delay p50 ${baseline.delayP50} ms p95 ${baseline.delayP95} ms, jitter p95 ${baseline.jitterP95} ms`)
  console.log(`  plain onion stream (same rate) : delay p50 ${plain.delayP50} ms p95 ${plain.delayP95} ms, jitter p95 ${plain.jitterP95} ms`)
  console.log(`  onet0        : loss ${onet.lossPct} %, delay p50 ${onet.delayP50} ms p95 ${onet.delayP95} ms, jitter p95 ${onet.jitterP95} ms`)
  console.log(`  added jitter p95: ${udp.addedJitterP95MsVsLoopback} ms vs loopback, ${udp.addedJitterP95MsVsPlainOnion} ms vs a plain onion stream; added delay p50 vs plain onion ${udp.addedDelayP50MsVsPlainOnion} ms`)

  console.log(`TCP ${tcpMiB} MiB × ${tcpRounds}: onet0 (MTU ${mtu}) vs plain onion stream ...`)
  const RECEIVER = `
const srv = require('node:net').createServer((s) => {
  const t0 = performance.now(); let n = 0
  s.on('data', (d) => { n += d.length })
  s.on('end', () => { process.stdout.write(JSON.stringify({ bytes: n, ms: performance.now() - t0 }) + '\\n'); s.end() })
})
srv.listen(Number(process.argv[2]), process.argv[1], () => { process.stdout.write('ready\\n') })
`
  const SENDER = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1])
const total = Number(process.argv[3]); const chunk = Buffer.alloc(65536, 7); let sent = 0
const pump = () => { while (sent < total) { sent += chunk.length; if (!s.write(chunk)) { s.once('drain', pump); return } } s.end() }
s.on('connect', pump); s.on('close', () => process.exit(0)); s.on('error', (e) => { console.error(e.message); process.exit(1) })
`
  // Optional: the congestion control of the apps' namespaces (the kernel's default is cubic,
  // whose HyStart leaves slow start early when the onion path's queueing delay grows).
  const cc = process.env.ONI_BENCH_CC
  if (cc !== undefined) {
    for (const s of sides) {
      if (!/^[a-z0-9_]+$/.test(cc)) throw new Error(`bad congestion control name ${cc}`)
      const r = await s.ns.exec('sh', ['-c', `echo ${cc} > /proc/sys/net/ipv4/tcp_congestion_control && cat /proc/sys/net/ipv4/tcp_congestion_control`])
      if (r.stdout.trim() !== cc) throw new Error(`cannot set congestion control ${cc} in ${s.ns.name}: ${r.stderr}`)
    }
  }
  const rx = b.ns.spawn(process.execPath, ['-e', RECEIVER, b.onet.addressText, '8890'])
  const rxLines = lines(rx)
  await rxLines.next()
  const onetRuns: number[] = []
  const plainRuns: number[] = []
  for (let r = 0; r < tcpRounds; r++) {
    const txRun = a.ns.exec(process.execPath, ['-e', SENDER, b.onet.addressText, '8890', String(tcpMiB * MIB)], { timeoutMs: 600_000 })
    if (process.env.ONI_BENCH_SS === '1') {
      // Diagnostics: the inner TCP's view (cwnd, rtt, limits) a few seconds into the transfer.
      await new Promise((resolve) => setTimeout(resolve, 4000))
      console.log((await a.ns.exec('ss', ['-tin', 'dst', `[${b.onet.addressText}]`])).stdout)
    }
    const tx = await txRun
    if (tx.code !== 0) throw new Error(`onet TCP sender failed: ${tx.stderr}`)
    const res = JSON.parse((await rxLines.next()).value) as { bytes: number, ms: number }
    if (res.bytes !== tcpMiB * MIB) throw new Error(`onet TCP short: ${res.bytes}`)
    onetRuns.push(tcpMiB / (res.ms / 1000))
    const s = await socksConnect({ socksPort: net.clients[0].socksPort, host: ep.address, port: 80, isolation: 'bench-plain', timeoutMs: 120_000 })
    const chunk = Buffer.alloc(65536, 7)
    for (let sent = 0; sent < tcpMiB * MIB; sent += chunk.length) if (!s.write(chunk)) await new Promise((resolve) => s.once('drain', resolve))
    s.end()
    const plain = await sink.next()
    s.destroy()
    if (plain.bytes !== tcpMiB * MIB) throw new Error(`plain TCP short: ${plain.bytes}`)
    plainRuns.push(tcpMiB / (plain.ms / 1000))
    console.log(`  round ${r + 1}: onet0 ${onetRuns[r].toFixed(2)} MiB/s, plain onion stream ${plainRuns[r].toFixed(2)} MiB/s`)
  }
  rx.kill('SIGKILL')
  const tcp = {
    sizeMiB: tcpMiB,
    rounds: tcpRounds,
    onetMiBpsMedian: round(median(onetRuns)),
    plainOnionMiBpsMedian: round(median(plainRuns)),
    ratio: round(median(onetRuns) / median(plainRuns)),
    raw: { onet: onetRuns.map(x => round(x)), plain: plainRuns.map(x => round(x)) }
  }
  console.log(`  onet0 ${tcp.onetMiBpsMedian} MiB/s vs plain onion ${tcp.plainOnionMiBpsMedian} MiB/s: ratio ${tcp.ratio}`)
  // Kernel-side counters of both onet interfaces (drops at the TUN queue would show here).
  const kernel = await Promise.all(sides.map(async (s) => {
    const r = await s.ns.exec('ip', ['-s', '-j', 'link', 'show', 'dev', s.onet.ifname ?? 'onet0'])
    const j = JSON.parse(r.stdout) as Array<{ stats64?: { rx: Record<string, number>, tx: Record<string, number> } }>
    return { rxDropped: j[0]?.stats64?.rx.dropped, txDropped: j[0]?.stats64?.tx.dropped, rxPackets: j[0]?.stats64?.rx.packets, txPackets: j[0]?.stats64?.tx.packets }
  }))
  console.log(`  kernel counters: ${JSON.stringify(kernel)}`)
  console.log(`wrote ${await writeResults('oni-tun', { bench: 'oni-tun', mtu, congestionControl: cc ?? 'kernel default', udp, tcp, onetStats: [a.onet.status().stats, b.onet.status().stats], kernel })}`)
  await ep.remove()
} finally {
  await control.close()
  await sink.close()
  await stamp.close()
  await stop()
  await net.stop()
}
