/**
 * Private Tor network benchmark.
 *
 *  1. Bring-up: time until the network is usable (every client 100 % and seeing every relay
 *     as HSDir), n runs with the authority key cache and m runs with an empty one (tor-gencert).
 *  2. Publish-to-reachable for new onion services on one network:
 *     a. publishOnion (waits for every descriptor upload): ADD_ONION -> all UPLOADED, and
 *        whether ONE connect from another client right after succeeds (the readiness quality);
 *     b. publishOnion with a probe: ADD_ONION -> first successful connect through another client;
 *     c. baseline: raw ADD_ONION, then connect attempts every 250 ms from another client until
 *        one succeeds (no readiness logic at all).
 *
 * Usage: node --import tsx bench/tor-testnet.ts [--runs 3] [--uncached 2] [--services 12]
 * Prints figures and writes bench/results/tor-testnet.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { systemClock } from '../src/core/index.ts'
import { publishOnion, socksConnect, startTestnet, TorError } from '../src/tor/index.ts'
import type { Testnet, TestnetTimings, TorControl } from '../src/tor/index.ts'
import { echoServer } from '../testkit/tor-testnet.ts'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    uncached: { type: 'string', default: '2' },
    services: { type: 'string', default: '12' }
  }
})
const RUNS = Number(values.runs)
const UNCACHED = Number(values.uncached)
const SERVICES = Number(values.services)
const clock = systemClock

function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
const median = (xs: number[]): number => pct(xs, 50)
const sec = (ms: number): string => (ms / 1000).toFixed(2) + ' s'
const summary = (xs: number[]): { n: number, p50: number, p95: number, min: number, max: number } =>
  ({ n: xs.length, p50: Math.round(pct(xs, 50)), p95: Math.round(pct(xs, 95)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) })

async function bringUp (label: string, keyCache?: string): Promise<{ net: Testnet, timings: TestnetTimings }> {
  const net = await startTestnet({ clients: 2, ...(keyCache !== undefined ? { keyCache } : {}) })
  const t = net.timings
  console.log(`  ${label}: usable ${sec(t.readyMs)} (keys ${sec(t.keysMs)}${t.keysCached ? ', cached' : ', generated'}; all clients 100 % at ${sec(t.bootstrappedMs)})`)
  return { net, timings: t }
}

async function main (): Promise<void> {
  console.log(`tor-testnet bench: ${RUNS} cached + ${UNCACHED} uncached bring-ups (3 authorities, 2 relays, 2 clients), ${SERVICES} services per mode`)
  const cached: TestnetTimings[] = []
  const uncached: TestnetTimings[] = []

  // Warm the key cache so "cached" runs really are.
  for (let i = 0; i < UNCACHED; i++) {
    const emptyCache = await mkdtemp(join(tmpdir(), 'oht-bench-keys-'))
    try {
      const { net, timings } = await bringUp(`uncached run ${i + 1}`, emptyCache)
      uncached.push(timings)
      await net.stop()
    } finally {
      await rm(emptyCache, { recursive: true, force: true })
    }
  }
  let kept: Testnet | undefined
  for (let i = 0; i < RUNS; i++) {
    const { net, timings } = await bringUp(`cached run ${i + 1}`)
    cached.push(timings)
    if (i === RUNS - 1) kept = net
    else await net.stop()
  }
  const net = kept as Testnet
  const echo = await echoServer()
  const host = await net.clients[0].control()
  const other = net.clients[1]
  const uploaded: number[] = []
  const firstTry: boolean[] = []
  const probed: number[] = []
  const raw: number[] = []
  try {
    console.log('publish -> reachable (host client0, connecting client1):')
    for (let i = 0; i < SERVICES; i++) {
      const ep = await publishOnion(host, { ports: [{ virtualPort: 80, target: echo.target }], discardPK: true })
      uploaded.push(ep.timings.uploadedMs)
      try {
        const s = await socksConnect({ socksPort: other.socksPort, host: ep.address, port: 80, retries: 0, isolation: `first-${i}`, timeoutMs: 30_000 })
        s.destroy()
        firstTry.push(true)
      } catch {
        firstTry.push(false)
      }
      await ep.remove()
    }
    console.log(`  a. ADD_ONION -> every upload confirmed: p50 ${sec(median(uploaded))}, p95 ${sec(pct(uploaded, 95))}; one connect right after: ${firstTry.filter(Boolean).length}/${firstTry.length} OK`)

    for (let i = 0; i < SERVICES; i++) {
      const ep = await publishOnion(host, { ports: [{ virtualPort: 80, target: echo.target }], discardPK: true, probe: { socksPort: other.socksPort } })
      probed.push(ep.timings.reachableMs as number)
      await ep.remove()
    }
    console.log(`  b. ADD_ONION -> first connect through client1 (publishOnion + probe): p50 ${sec(median(probed))}, p95 ${sec(pct(probed, 95))}`)

    for (let i = 0; i < SERVICES; i++) raw.push(await rawReachable(host, other.socksPort, echo.target, i))
    console.log(`  c. baseline, raw ADD_ONION then a connect every 250 ms: p50 ${sec(median(raw))}, p95 ${sec(pct(raw, 95))}`)
  } finally {
    await host.close()
    await echo.close()
    await net.stop()
  }

  const readyCached = cached.map(t => t.readyMs)
  const readyUncached = uncached.map(t => t.readyMs)
  console.log('bring-up (start -> usable):')
  console.log(`  cached keys:   ${readyCached.map(sec).join(', ')}  median ${sec(median(readyCached))}`)
  if (readyUncached.length > 0) console.log(`  uncached keys: ${readyUncached.map(sec).join(', ')}  median ${sec(median(readyUncached))}  (cache saves ${sec(median(readyUncached) - median(readyCached))})`)
  console.log(`  publish+probe vs baseline polling: ${(median(probed) / median(raw)).toFixed(2)}x`)

  const result = {
    bench: 'tor-testnet',
    date: new Date(clock.now()).toISOString(),
    torVersion: net.torVersion,
    topology: { authorities: 3, relays: 2, clients: 2 },
    bringUp: {
      cached: { runsMs: readyCached, medianMs: median(readyCached), keysMs: cached.map(t => t.keysMs), bootstrappedMs: cached.map(t => t.bootstrappedMs) },
      uncached: { runsMs: readyUncached, medianMs: median(readyUncached), keysMs: uncached.map(t => t.keysMs) }
    },
    publish: {
      services: SERVICES,
      addOnionToAllUploadedMs: summary(uploaded),
      firstConnectAfterUploadedOk: firstTry.filter(Boolean).length,
      addOnionToFirstConnectWithProbeMs: summary(probed),
      baselineRawAddOnionPollingMs: summary(raw)
    }
  }
  const dir = new URL('./results/', import.meta.url).pathname
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'tor-testnet.json'), JSON.stringify(result, null, 2) + '\n')
  console.log(`wrote ${join(dir, 'tor-testnet.json')}`)
}

/** ADD_ONION, then one connect attempt every 250 ms from another client until one succeeds. */
async function rawReachable (control: TorControl, socksPort: number, target: string, i: number): Promise<number> {
  const t0 = clock.monotonic()
  const { serviceId } = await control.addOnion({ key: { type: 'NEW' }, ports: [{ virtualPort: 80, target }], discardPK: true })
  try {
    for (;;) {
      try {
        const s = await socksConnect({ socksPort, host: `${serviceId}.onion`, port: 80, retries: 0, isolation: `raw-${i}`, timeoutMs: 30_000 })
        s.destroy()
        return clock.monotonic() - t0
      } catch (err) {
        if (!(err instanceof TorError) || clock.monotonic() - t0 > 60_000) throw err
        await clock.sleep(250)
      }
    }
  } finally {
    await control.delOnion(serviceId).catch(() => {})
  }
}

await main()
