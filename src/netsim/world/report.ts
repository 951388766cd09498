/** The world's metrics as the few lines every scenario and the benchmark print. */
import type { Summary } from '../metrics.ts'
import type { WorldMetrics } from './world.ts'

/** The metrics block every scenario prints (`console.log(formatReport('my scenario', world.metrics()))`). */
export function formatReport (title: string, m: WorldMetrics): string {
  const d = m.deterministic
  const s = (x: Summary, unit = ''): string => `p50 ${fmt(x.p50)}${unit} p95 ${fmt(x.p95)}${unit} p99 ${fmt(x.p99)}${unit} (n=${x.count})`
  const lines = [
    `── ${title} (seed ${d.seed}; replay with OHT_SIM_SEED=${d.seed})`,
    `   nodes online ${d.nodesOnline} (ever ${d.nodesEver}), churn left ${d.churn.left} joined ${d.churn.joined}; virtual ${(d.virtualMs / 60000).toFixed(1)} min; events ${d.events}`,
    `   GET success ${(100 * d.gets.successRate).toFixed(2)}% (${d.gets.succeeded}/${d.gets.attempted}; not found ${d.gets.notFound}, wrong ${d.gets.wrongValue}, failed ${d.gets.failed})`,
    `   GET hops ${s(d.getHops)}; messages ${s(d.getMessages)}; latency ${s(d.getLatencyMs, ' ms')}`,
    `   PUT ok ${d.puts.succeeded}/${d.puts.attempted}; reach (of true ${20}) ${s(d.putReach)}; >=18 in ${(100 * d.puts.reachAtLeast18Rate).toFixed(2)}%`,
    `   PUT messages ${s(d.putMessages)}; latency ${s(d.putLatencyMs, ' ms')}`,
    `   stored ${d.store.records} records / ${d.store.bytes} bytes; network requests ${d.network.requests}, timeouts ${d.engine.timeouts}, lookups ${d.engine.lookups}`,
    `   traffic: ${Object.entries(d.traffic.lookupsBy).filter(([, n]) => n.lookups > 0).map(([why, n]) => `${why} ${n.lookups} lookups/${n.queries} req (${n.failed} failed)`).join(', ')}; probes ${d.engine.probes} (${d.engine.probesFailed} failed); out ping ${d.traffic.requestsOut.ping} find ${d.traffic.requestsOut.findNode} get ${d.traffic.requestsOut.get} put ${d.traffic.requestsOut.put}`,
    `   wall ${(m.wallMs / 1000).toFixed(1)} s, peak RSS ${m.peakRssMiB} MiB`
  ]
  return lines.join('\n')
}

function fmt (v: number): string { return Number.isInteger(v) ? String(v) : v.toFixed(1) }