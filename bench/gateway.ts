/**
 * Router-VM gateway mode, measured: a real `oht daemon` with [gateway] enabled (its own tor on
 * a private Tor network) and a VM namespace behind it (see test/integration/oni-gateway.test.ts
 * for why the root namespace plays the router).
 *
 * - TCP throughput: an unmodified curl in the VM downloads from an onion service through the
 *   gateway (DNAT → tor's TransPort), against the same download with curl through the same
 *   tor's SOCKS port directly, in alternating rounds of the same run (goal: ratio ≥ 0.9).
 * - DNS answer time from the VM, p50/p95, for a `.onion` name (tor's automap), a `.onet` name
 *   (a mapping record in the daemon's OHT), a blocklisted name, a configured VM hostname and
 *   ordinary names, against the `.onion` lookup sent to tor's DNSPort directly. On this network
 *   exits resolve nothing (loopback-only), so ordinary names end in SERVFAIL: their figure is the
 *   time to a definite failure, not to an answer.
 *
 *   node --import tsx bench/gateway.ts [MiB per round, default 16] [rounds, default 5]
 *
 * Needs root, nftables and curl. Prints the figures and writes bench/results/gateway.json.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { createServer } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readKeyFile } from '../src/crypto/index.ts'
import { MAPPING_SALT, signMapping } from '../src/oni/mapping.ts'
import { publishOnion } from '../src/tor/index.ts'
import { networkTorrc } from '../src/tor/testnet/index.ts'
import { oht, ohtEnv, ROOT, startDaemon, type DaemonHandle } from '../examples/lib/daemons.ts'
import { createGatewayNet, run, type GatewayNet } from '../test/helpers/gateway-net.ts'
import { canUseNetns } from '../test/helpers/netns.ts'
import { median, percentile, round, writeResults } from './lib/oni-bench.ts'
import { testnet, type Testnet } from '../test/helpers/tor-testnet.ts'

const MIB = 1024 * 1024
const sizeMiB = Number(process.argv[2] ?? 16)
const rounds = Number(process.argv[3] ?? 5)
if (!Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > 1024 || !Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
  console.error('usage: node --import tsx bench/gateway.ts [MiB per round 1-1024, default 16] [rounds 1-100, default 5]')
  process.exit(2)
}
if (!await canUseNetns() || (await run('nft', ['--version'])).code !== 0) {
  console.error('bench/gateway needs root (network namespaces) and nftables (apt-get install -y nftables)')
  process.exit(1)
}

let net: Testnet | undefined
let gw: GatewayNet | undefined
let daemon: DaemonHandle | undefined
let table = ''
const base = await mkdtemp(join(tmpdir(), 'oht-bench-gateway-'))
const blob = randomBytes(sizeMiB * MIB)
const web = createServer((req, res) => {
  if (req.url === '/blob') { res.writeHead(200, { 'content-length': blob.byteLength }); res.end(blob) } else res.end('ok\n')
})
try {
  net = await testnet({ clients: 2 })
  await new Promise<void>((resolve) => { web.listen(0, '127.0.0.1', resolve) })
  const control0 = await net.clients[0].control()
  const ep = await publishOnion(control0, { ports: [{ virtualPort: 80, target: `127.0.0.1:${(web.address() as { port: number }).port}` }], detach: true, probe: { socksPort: net.clients[1].socksPort } })
  await control0.close()
  gw = await createGatewayNet({ vms: 1 })
  table = `oht_gw_${gw.id}`
  const blocked = `ads-${gw.id}.example`
  await writeFile(join(base, 'blocklist.hosts'), `0.0.0.0 ${blocked}\n`)
  const torrc: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(networkTorrc(net.toJSON().authorities))) if (v !== null && v !== undefined) torrc[k] = v
  const env = ohtEnv(base, join(base, 'state'))
  env.OHT_CONFIG = join(base, 'oht.json')
  await writeFile(env.OHT_CONFIG, JSON.stringify({
    tor: { mode: 'launch', torrc },
    gateway: { enabled: true, interface: gw.bridge, trans_port: randomInt(20_000, 40_000), dns_port: randomInt(40_000, 60_000), table, blocklist_file: join(base, 'blocklist.hosts'), hosts: { 'files.vm': '10.152.152.21' } }
  }))
  if ((await oht(['init'], env)).code !== 0) throw new Error('oht init failed')
  daemon = await startDaemon('bench-gateway', env, [], { timeoutMs: 300_000 })
  const status = JSON.parse((await oht(['status', '--json'], env)).stdout)
  const socksPort: number = status.tor.socksPort
  const vm = gw.vms[0]

  // A mapping record of the daemon's own key, so that <its onion>.onet resolves through the OHT.
  const identity = await readKeyFile(join(base, 'state', 'identity.key'))
  const put = await oht(['put', '--mutable', '--salt', new TextDecoder().decode(MAPPING_SALT), '-'], env, { stdin: signMapping(identity, { linkPort: 4789, issuedAt: Date.now() }) })
  if (put.code !== 0) throw new Error(`publishing the mapping failed: ${put.stderr}`)
  const onetName = `${identity.onion}.onet`
  identity.destroy()

  const CURL_FORMAT = '%{size_download} %{time_starttransfer} %{time_total}'
  const parse = (out: string): { mibps: number, firstByteMs: number } => {
    const [size, start, total] = out.trim().split(' ').map(Number)
    if (size !== blob.byteLength) throw new Error(`short download: ${size} bytes`)
    return { mibps: sizeMiB / (total - start), firstByteMs: start * 1000 }
  }
  const viaGateway = async (): Promise<{ mibps: number, firstByteMs: number }> => {
    const r = await vm.ns.exec('curl', ['-s', '-S', '-o', '/dev/null', '-m', '300', '-w', CURL_FORMAT, `http://${ep.address}/blob`], { timeoutMs: 320_000 })
    if (r.code !== 0) throw new Error(`curl through the gateway: ${r.stderr}`)
    return parse(r.stdout)
  }
  const viaSocks = async (): Promise<{ mibps: number, firstByteMs: number }> => {
    const r = await run('curl', ['-s', '-S', '-o', '/dev/null', '-m', '300', '-w', CURL_FORMAT, '--socks5-hostname', `127.0.0.1:${socksPort}`, `http://${ep.address}/blob`], 320_000)
    if (r.code !== 0) throw new Error(`curl through tor's SOCKS port: ${r.stderr}`)
    return parse(r.stdout)
  }
  // Warm both paths (descriptor, rendezvous circuits) so that rounds compare streams, not setup.
  await viaGateway()
  await viaSocks()
  const gateway: Array<{ mibps: number, firstByteMs: number }> = []
  const socks: Array<{ mibps: number, firstByteMs: number }> = []
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) { gateway.push(await viaGateway()); socks.push(await viaSocks()) } else { socks.push(await viaSocks()); gateway.push(await viaGateway()) }
  }

  // DNS from the VM (to the router's port 53, DNATed to the resolver), and tor's DNSPort directly.
  const gwStatus = JSON.parse((await oht(['gateway', 'status', '--json'], env)).stdout)
  const probe = join(ROOT, 'test/helpers/dns-probe.ts')
  const series = [
    // Paced at 100 queries/s: the resolver refuses a VM beyond 200/s (bursts of 400).
    { label: 'onion', name: ep.address, qtype: 1, count: 100, intervalMs: 10 },
    { label: 'onet', name: onetName, qtype: 28, count: 100, intervalMs: 10 },
    { label: 'blocklisted', name: blocked, qtype: 1, count: 300, intervalMs: 10 },
    { label: 'vmHostname', name: 'files.vm', qtype: 1, count: 300, intervalMs: 10 },
    { label: 'ordinary', name: `n%i-${gw.id}.example`, qtype: 1, count: 20, parallel: 10, timeoutMs: 15_000 }
  ]
  const fromVm = await vm.ns.exec(process.execPath, ['--import', 'tsx', probe, gw.routerAddress, '53', JSON.stringify(series)], { timeoutMs: 300_000 })
  if (fromVm.code !== 0) throw new Error(`dns probe in the VM: ${fromVm.stderr}`)
  const direct = await run(process.execPath, ['--import', 'tsx', probe, '127.0.0.1', String(gwStatus.tor.dnsPort), JSON.stringify([{ label: 'onionDirect', name: ep.address, qtype: 1, count: 100, intervalMs: 10 }])], 300_000)
  if (direct.code !== 0) throw new Error(`dns probe against tor: ${direct.stderr}`)
  const dns = { ...JSON.parse(fromVm.stdout), ...JSON.parse(direct.stdout) } as Record<string, { ms: number[], rcodes: Record<string, number> }>
  const dnsSummary = Object.fromEntries(Object.entries(dns).map(([k, v]) => [k, { n: v.ms.length, p50Ms: round(percentile(v.ms, 0.5), 2), p95Ms: round(percentile(v.ms, 0.95), 2), rcodes: v.rcodes }]))

  const summary = (xs: Array<{ mibps: number, firstByteMs: number }>): Record<string, number> => ({
    throughputMiBpsMedian: round(median(xs.map(x => x.mibps))),
    throughputMiBpsMin: round(Math.min(...xs.map(x => x.mibps))),
    firstByteMsP50: round(percentile(xs.map(x => x.firstByteMs), 0.5), 1)
  })
  const results = {
    bench: 'gateway',
    sizeMiB,
    rounds,
    tcp: {
      gateway: summary(gateway),
      torSocksDirect: summary(socks),
      throughputRatio: round(median(gateway.map(x => x.mibps)) / median(socks.map(x => x.mibps))),
      pairedRatioMedian: round(median(gateway.map((x, i) => x.mibps / socks[i].mibps))),
      goal: 'throughputRatio >= 0.9',
      raw: { gateway, socks }
    },
    dns: {
      ...dnsSummary,
      onionRatioP50: round(dnsSummary.onion.p50Ms / dnsSummary.onionDirect.p50Ms, 2),
      note: 'ordinary names: exits on the private network resolve nothing, so this is the time to SERVFAIL'
    }
  }
  console.log(`TCP through the gateway  : ${results.tcp.gateway.throughputMiBpsMedian} MiB/s (median of ${rounds} × ${sizeMiB} MiB), first byte p50 ${results.tcp.gateway.firstByteMsP50} ms`)
  console.log(`TCP via tor SOCKS direct : ${results.tcp.torSocksDirect.throughputMiBpsMedian} MiB/s, first byte p50 ${results.tcp.torSocksDirect.firstByteMsP50} ms`)
  console.log(`ratio gateway / SOCKS    : ${results.tcp.throughputRatio} of medians, ${results.tcp.pairedRatioMedian} median of paired rounds (goal ≥ 0.9)`)
  for (const [k, v] of Object.entries(dnsSummary)) console.log(`DNS ${k.padEnd(12)} p50 ${String(v.p50Ms).padStart(8)} ms  p95 ${String(v.p95Ms).padStart(8)} ms  (n=${v.n}, rcodes ${JSON.stringify(v.rcodes)})`)
  console.log(`DNS .onion via gateway / tor DNSPort directly, p50: ${results.dns.onionRatioP50}`)
  console.log(`wrote ${await writeResults('gateway', results)}`)
} finally {
  await daemon?.stop()
  await gw?.destroy()
  if (table !== '') await run('nft', ['delete', 'table', 'inet', table])
  await new Promise<void>((resolve) => { web.close(() => { resolve() }) })
  await net?.stop()
  await rm(base, { recursive: true, force: true })
}
