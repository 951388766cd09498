/**
 * Shared pieces of the ONI benchmarks: statistics, result files, bulk TCP endpoints, and two
 * onet namespaces joined through a private Tor network.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveChildSeed, identityFromSeed } from '../../src/crypto/index.ts'
import { createMemoryMappingDirectory, createOni, type Oni, type Onet } from '../../src/oni/index.ts'
import { ONET_DNS_ADDRESS } from '../../src/oni/virtual-address.ts'
import type { Testnet } from '../../src/tor/testnet/index.ts'
import { createNetns, type Netns } from '../../testkit/netns.ts'

export function percentile (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))]
}

export const median = (xs: number[]): number => percentile(xs, 0.5)

export const round = (x: number, digits = 3): number => Number(x.toFixed(digits))

export async function writeResults (name: string, results: unknown): Promise<string> {
  const dir = new URL('../../bench/results/', import.meta.url).pathname
  await mkdir(dir, { recursive: true })
  const path = join(dir, `${name}.json`)
  await writeFile(path, JSON.stringify(results, null, 2) + '\n')
  return path
}

/** A TCP server on 127.0.0.1 that sends `bytes` random bytes to every client, then closes. */
export async function sourceServer (bytes: number): Promise<{ port: number, close: () => Promise<void> }> {
  const payload = randomBytes(bytes)
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    sockets.add(s)
    s.setNoDelay(true)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.end(payload)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}

/** A TCP server on 127.0.0.1 that counts what each client sends; `next()` resolves with (bytes, ms from accept to end). */
export async function sinkServer (): Promise<{ port: number, next: () => Promise<{ bytes: number, ms: number }>, close: () => Promise<void> }> {
  const waiting: Array<(r: { bytes: number, ms: number }) => void> = []
  const done: Array<{ bytes: number, ms: number }> = []
  const server: Server = createServer((s) => {
    const t0 = performance.now()
    let bytes = 0
    s.on('data', (d: Buffer) => { bytes += d.length })
    s.on('error', () => {})
    s.on('end', () => {
      const r = { bytes, ms: performance.now() - t0 }
      s.end()
      if (bytes === 0) return // a readiness probe, not a transfer
      const w = waiting.shift()
      if (w !== undefined) w(r)
      else done.push(r)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    next: async () => { const r = done.shift(); return r ?? await new Promise((resolve) => waiting.push(resolve)) },
    close: async () => { await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}

export interface OnetSide { ns: Netns, oni: Oni, onet: Onet, stateDir: string }

/** Two namespaces, each with an ONI TUN device, hosted on testnet clients 0 and 1. */
export async function twoOnetSides (net: Testnet, opts: { mtu?: number } = {}): Promise<{ sides: OnetSide[], stop: () => Promise<void> }> {
  const directory = createMemoryMappingDirectory()
  const masters = [randomBytes(32), randomBytes(32)]
  const onions = masters.map(m => identityFromSeed(deriveChildSeed(m, 'oni.onet')).onion)
  const sides: OnetSide[] = []
  const stop = async (): Promise<void> => {
    for (const s of sides) {
      await s.oni.stop().catch(() => {})
      await s.ns.delete().catch(() => {})
      await rm(s.stateDir, { recursive: true, force: true })
    }
  }
  try {
    for (let i = 0; i < 2; i++) {
      const ns = await createNetns(`bench${i}`, { resolvConf: `nameserver ${ONET_DNS_ADDRESS}\n` })
      const stateDir = await mkdtemp(join(tmpdir(), 'oni-bench-'))
      const client = net.clients[i]
      const oni = createOni({
        stateDir,
        masterSeed: masters[i],
        torSocksPort: client.socksPort,
        probeSocksPort: net.clients[1 - i].socksPort,
        probeIntervalMs: 3_600_000,
        socks: false,
        onet: { ifname: 'onet%d', netns: ns.name, names: { peer: onions[1 - i] }, ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}) }
      }, { connectTor: async (o) => await client.control(o), directory })
      await oni.start()
      if (oni.onet === undefined) throw new Error(`TUN mode unavailable: ${JSON.stringify(oni.status().onet)}`)
      sides.push({ ns, oni, onet: oni.onet, stateDir })
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { sides, stop }
}
