/**
 * DOA on the simulator, full size: 1,000 nodes (20 % hostile: forged name records and chunks,
 * stale name records, squatted labels, hostile hosts), churn, one simulated week. The author
 * publishes the template app (plus 200 KiB of assets), registers its name and leaves; three
 * hosts install it by name and host it; every 5 minutes a random node installs it by name.
 * Prints install success (goal >= 99.9 %), hijacks (must be 0), where chunks came from, install
 * latency (virtual), wall time and memory; writes bench/results/doa-netsim.json.
 *
 * Usage: node --import tsx bench/doa-netsim.ts [--nodes 1000] [--days 7] [--churn 0.1] [--seed doa-week-bench-1]
 * (It takes a while: run it once, the machine is shared.)
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { runDoaWorld } from '../testkit/doa-world.ts'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i !== -1 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback
}
if (process.argv.includes('--help')) {
  console.log('node --import tsx bench/doa-netsim.ts [--nodes 1000] [--days 7] [--churn 0.1] [--every-min 5] [--seed doa-week-bench-1]')
  process.exit(0)
}

const nodes = Number(arg('nodes', '1000'))
const days = Number(arg('days', '7'))
const churn = Number(arg('churn', '0.1'))
const everyMin = Number(arg('every-min', '5'))
const seed = arg('seed', 'doa-week-bench-1')

console.log(`DOA week: ${nodes} nodes, ${days} days, ${(100 * churn).toFixed(0)} %/h churn, an install every ${everyMin} min, seed ${seed}`)
const r = await runDoaWorld({ seed, size: nodes, days, churnPerHour: churn, installEveryMs: everyMin * 60_000, onProgress: (l) => { console.log(l) } })
const pct = (x: number): string => (100 * x).toFixed(2)
console.log('')
console.log(`installs by name:    ${r.installs.succeeded} / ${r.installs.attempted} = ${pct(r.installs.successRate)} % (goal >= 99.9 %)${Object.keys(r.installs.failures).length > 0 ? `; failures ${JSON.stringify(r.installs.failures)}` : ''}`)
console.log(`hijacks:             ${r.names.hijacked} names, ${r.installs.hijacked} installs (must be 0)`)
console.log(`hostile activity:    ${r.hostile} hostile nodes; ${r.adversaries.forgeries} forged records served by the OHT forgers, ${r.forgedChunksRefused} forged chunks from hostile hosts refused`)
console.log(`chunks served by:    hosts ${r.servedBy.hosts}, OHT ${r.servedBy.oht}`)
console.log(`install latency:     p50 ${(r.installLatencyMs.p50 / 1000).toFixed(1)} s, p95 ${(r.installLatencyMs.p95 / 1000).toFixed(1)} s (virtual, Tor-like 0.3-3 s round trips)`)
console.log(`churn:               ${r.churn.left} left, ${r.churn.joined} joined`)
console.log(`wall ${(r.wallMs / 1000).toFixed(0)} s, peak RSS ${r.peakRssMiB} MiB`)
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/doa-netsim.json', import.meta.url), JSON.stringify({ node: process.version, ...r }, null, 2) + '\n')
