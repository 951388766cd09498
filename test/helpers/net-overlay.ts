/**
 * Scenario helpers for overlay tests: `const { nodes } = await overlayTestnet({ size: 20 })`
 * brings up OHT nodes on libp2p over TCP on loopback, all joined through the first one.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createOverlayNode, type OverlayNode, type OverlayNodeInit } from '../../src/net/index.ts'

export interface OverlayTestnet {
  nodes: OverlayNode[]
  seeds: Uint8Array[]
  dir: string
  tablePath(i: number): string
  stop(): Promise<void>
}

export async function overlayTestnet (opts: { size: number, parallel?: number, init?: Partial<OverlayNodeInit> }): Promise<OverlayTestnet> {
  const dir = await mkdtemp(join(tmpdir(), 'oht-net-'))
  const tablePath = (i: number): string => join(dir, `node${i}`, 'routing-table.json')
  const seeds = Array.from({ length: opts.size }, () => new Uint8Array(randomBytes(32)))
  const nodes: OverlayNode[] = []
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    nodes.push(await createOverlayNode({ ...opts.init, seed: seeds[0], tablePath: tablePath(0) }))
    const bootstrap = nodes[0].multiaddrs
    const parallel = opts.parallel ?? 4
    for (let i = 1; i < opts.size; i += parallel) {
      const batch = await Promise.all(seeds.slice(i, i + parallel).map(async (seed, j) =>
        await createOverlayNode({ ...opts.init, seed, bootstrap, tablePath: tablePath(i + j) })))
      nodes.push(...batch)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, seeds, dir, tablePath, stop }
}
