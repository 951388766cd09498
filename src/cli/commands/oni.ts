import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

interface RouteView { virtualPort: number, target: string, mode: string, open: number, total: number, failed: number, bytesIn: number, bytesOut: number }
export interface OniEndpointView { name: string, address: string, state: string, routes: RouteView[] }
interface SocksView { host: string, port: number, stats?: { accepted: number, open: number, bytesUp: number, bytesDown: number } }

/** What GET /v1/oni answers. */
export type OniView =
  | { enabled: false, message?: string }
  | { enabled: true, tor?: { connected: boolean }, endpoints: OniEndpointView[], socks?: SocksView | null }

const HEADER = ['NAME', 'ADDRESS', 'PORT', 'TARGET', 'STATE', 'OPEN', 'TOTAL', 'FAILED', 'BYTES_IN', 'BYTES_OUT']

/**
 * The /proc/net/onion table: one line per endpoint route (an endpoint without routes gets one
 * line with "-" for the route columns), then the SOCKS listener with its counters if there is one.
 */
export function formatOniTable (status: Extract<OniView, { enabled: true }>): string {
  const rows: string[][] = []
  for (const e of status.endpoints) {
    // ONI's status gives the address with ".onion"; never print it twice
    const address = e.address.endsWith('.onion') ? e.address : `${e.address}.onion`
    if (e.routes.length === 0) rows.push([e.name, address, '-', '-', e.state, '0', '0', '0', '0', '0'])
    for (const r of e.routes) {
      rows.push([e.name, address, String(r.virtualPort), r.target, e.state, String(r.open), String(r.total), String(r.failed), String(r.bytesIn), String(r.bytesOut)])
    }
  }
  const lines: string[] = []
  if (rows.length === 0) {
    lines.push('(no ONI endpoints)')
  } else {
    const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
    for (const r of [HEADER, ...rows]) lines.push(r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  '))
  }
  const socks = status.socks
  if (socks !== undefined && socks !== null) {
    // For the egress, "out" is what local apps sent towards tor and "in" what came back.
    const st = socks.stats
    lines.push(`socks ${socks.host}:${socks.port}${st !== undefined ? `  open ${st.open}  total ${st.accepted}  bytes in ${st.bytesDown}  out ${st.bytesUp}` : ''}`)
  }
  if (status.tor !== undefined && !status.tor.connected) lines.push('tor: not connected')
  return lines.join('\n')
}

const lsCommand: Command = {
  name: 'ls',
  summary: 'ONI endpoints, routes, open connections and bytes in/out (like /proc/net/onion)',
  usage: ['oni ls [--json]'],
  details: `One line per endpoint route: name, onion address, virtual port, target, state, open
connections, connections in total, failed ones, bytes in and out; then the SOCKS listener (open
connections, total, bytes) if ONI runs one. --json prints the daemon's GET /v1/oni answer as it is.
The endpoints are exactly those of "oht endpoints". ONI runs in every daemon whose node runs over
tor; its SOCKS egress only when the config enables it:  [oni]  enabled = true  socks_port = 9150.`,
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    const r = await client.call<OniView>('GET', '/v1/oni', undefined, { signal: ctx.io.signal })
    if (!r.enabled) {
      throw new CliError('CLI_FAILED', r.message ?? 'ONI does not run in this daemon: it needs node.transport = "tor"')
    }
    emit(ctx.io, ctx.json, r, () => formatOniTable(r))
    return 0
  }
}

export const oniCommand: Command = {
  name: 'oni',
  summary: 'the onion network interface: endpoint routes, connections, bytes',
  usage: ['oni ls [--json]'],
  flags: [],
  positionals: [],
  subcommands: [lsCommand]
}
