/**
 * Throughput through the ONI SOCKS5 server vs tor's SOCKS port directly, same onion endpoint,
 * same run, alternating rounds (goal: ratio ≥ 0.95). Also the connect time (SOCKS handshake
 * to CONNECT success on a warm circuit) for both paths.
 *
 *   node --import tsx bench/oni-socks.ts [MiB per round, default 8] [rounds, default 10]
 *
 * Prints the figures and writes bench/results/oni-socks.json.
 */
import { socksConnect, publishOnion } from '../src/tor/index.ts'
import { createSocksServer } from '../src/oni/index.ts'
import { testnet } from '../testkit/tor-testnet.ts'
import { median, percentile, round, sourceServer, writeResults } from './lib/oni-bench.ts'

const MIB = 1024 * 1024
const sizeMiB = Number(process.argv[2] ?? 8)
const rounds = Number(process.argv[3] ?? 10)

const net = await testnet({ clients: 2 })
const source = await sourceServer(sizeMiB * MIB)
const control = await net.clients[0].control()
const oni = createSocksServer({ torSocksPort: net.clients[1].socksPort }, { dial: socksConnect })
try {
  const ep = await publishOnion(control, { ports: [{ virtualPort: 80, target: `127.0.0.1:${source.port}` }], probe: { socksPort: net.clients[1].socksPort } })
  await oni.listen()

  /** One download; socksPort is tor's or ours. */
  const download = async (socksPort: number): Promise<{ connectMs: number, mibps: number }> => {
    const t0 = performance.now()
    // Through ONI, user 'bench' (socksConnect sends password 'oht') reaches tor as isolation
    // 'oni:bench:oht'; the direct path sends that same username, so both ride ONE circuit and
    // the comparison measures the SOCKS server, not two different relay paths.
    const isolation = socksPort === oni.port ? 'bench' : 'oni:bench:oht'
    const s = await socksConnect({ socksPort, host: ep.address, port: 80, isolation, timeoutMs: 120_000 })
    const t1 = performance.now()
    let got = 0
    await new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => { got += d.length })
      s.once('end', () => { resolve() })
      s.once('error', reject)
    })
    const secs = (performance.now() - t1) / 1000
    s.destroy()
    if (got !== sizeMiB * MIB) throw new Error(`short read: ${got} bytes`)
    return { connectMs: t1 - t0, mibps: sizeMiB / secs }
  }

  // Warm both circuits (descriptor fetch, rendezvous) so rounds compare streams, not setup.
  await download(net.clients[1].socksPort)
  await download(oni.port)
  const direct: Array<{ connectMs: number, mibps: number }> = []
  const viaOni: Array<{ connectMs: number, mibps: number }> = []
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so drifts in the network hit both paths alike.
    if (r % 2 === 0) { direct.push(await download(net.clients[1].socksPort)); viaOni.push(await download(oni.port)) } else { viaOni.push(await download(oni.port)); direct.push(await download(net.clients[1].socksPort)) }
  }
  const summary = (xs: Array<{ connectMs: number, mibps: number }>): Record<string, number> => ({
    throughputMiBpsMedian: round(median(xs.map(x => x.mibps))),
    throughputMiBpsMin: round(Math.min(...xs.map(x => x.mibps))),
    connectMsP50: round(percentile(xs.map(x => x.connectMs), 0.5), 1),
    connectMsP95: round(percentile(xs.map(x => x.connectMs), 0.95), 1)
  })
  const results = {
    bench: 'oni-socks',
    sizeMiB,
    rounds,
    direct: summary(direct),
    viaOni: summary(viaOni),
    throughputRatio: round(median(viaOni.map(x => x.mibps)) / median(direct.map(x => x.mibps))),
    // Each round measures both paths back to back: the median of those pairs is less exposed
    // to the network drifting (other tors on this machine) than the ratio of medians.
    pairedRatioMedian: round(median(viaOni.map((x, i) => x.mibps / direct[i].mibps))),
    goal: 'throughputRatio >= 0.95',
    raw: { direct, viaOni }
  }
  console.log(`tor SOCKS directly : ${results.direct.throughputMiBpsMedian} MiB/s (median of ${rounds} × ${sizeMiB} MiB), connect p50 ${results.direct.connectMsP50} ms p95 ${results.direct.connectMsP95} ms`)
  console.log(`through ONI SOCKS5 : ${results.viaOni.throughputMiBpsMedian} MiB/s, connect p50 ${results.viaOni.connectMsP50} ms p95 ${results.viaOni.connectMsP95} ms`)
  console.log(`ratio ONI / direct : ${results.throughputRatio} of medians, ${results.pairedRatioMedian} median of paired rounds (goal ≥ 0.95)`)
  console.log(`wrote ${await writeResults('oni-socks', results)}`)
  await ep.remove()
} finally {
  await oni.close()
  await control.close()
  await source.close()
  await net.stop()
}
