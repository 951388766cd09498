import type { Command } from '../command.ts'
import { emit } from '../io.ts'

interface Status {
  version: string
  phase: string
  pid: number
  uptimeMs: number
  transport: string
  socket: string
  identity: { address: string } | null
  addrs: string[]
  tor: { mode: string, connected: boolean, bootstrapPercent: number, socksPort?: number, restarts: number, circuits: { built: number, failed: number } } | null
  node: { peers: number, recordsStored: number, lookups: number } | null
  endpoints: Array<{ name: string, address: string, state: string, routes: Array<{ virtualPort: number, target: string }> }>
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the running daemon\'s state: identity, tor, peers, records, endpoints',
  usage: ['status'],
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    const s = await client.call<Status>('GET', '/v1/status', undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, s, () => {
      const lines = [
        `daemon     ${s.phase} (pid ${s.pid}, up ${Math.round(s.uptimeMs / 1000)} s, v${s.version})`,
        `identity   ${s.identity?.address ?? '-'}`,
        `transport  ${s.transport}${s.addrs.length > 0 ? ' ' + s.addrs.join(' ') : ''}`
      ]
      if (s.tor !== null) lines.push(`tor        ${s.tor.mode}, ${s.tor.connected ? 'connected' : 'NOT connected'}, bootstrap ${s.tor.bootstrapPercent} %, socks ${s.tor.socksPort ?? '-'}, circuits built ${s.tor.circuits.built} failed ${s.tor.circuits.failed}, reconnects ${s.tor.restarts}`)
      if (s.node !== null) lines.push(`node       ${s.node.peers} peers, ${s.node.recordsStored} records stored, ${s.node.lookups} lookups`)
      for (const e of s.endpoints) lines.push(`endpoint   ${e.name}: ${e.address} ${e.state}${e.routes.map(r => `  ${r.virtualPort} -> ${r.target}`).join('')}`)
      lines.push(`api        ${s.socket}`)
      return lines.join('\n')
    })
    return 0
  }
}
