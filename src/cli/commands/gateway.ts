import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

interface Count { packets: number, bytes: number }
interface DnsCounts { queries: number, local: number, blocked: number, forwarded: number, failed: number, limited: number, malformed: number }
interface VmView { address: string, name?: string, connections: { open: number, total: number, failed: number }, bytesUp: number, bytesDown: number, circuits: string[], dns: DnsCounts, dropped: Count }

/** What GET /v1/gateway answers. */
export type GatewayView =
  | { enabled: false, message?: string }
  | {
    enabled: true
    state: string
    error?: { code: string, message: string }
    interface: string
    address?: string
    firewall: { table: string, rules: string, present: boolean, reapplied: number, dropped: { input: Count, forward: Count }, error?: string }
    tor: { mode: string, connected: boolean, transPort: number, transListening: boolean, dnsPort?: number, error?: string }
    dns: { listen: string[], totals: DnsCounts }
    blocklist: { file?: string, names: number, skipped: number, error?: string }
    connections: { open: number, total: number, failed: number }
    bytes: { up: number, down: number }
    vms: VmView[]
  }

const HEADER = ['VM', 'NAME', 'OPEN', 'TOTAL', 'FAILED', 'BYTES_UP', 'BYTES_DOWN', 'DNS', 'BLOCKED', 'DROPPED', 'CIRCUITS']

/** The gateway summary, then one line per VM behind it. */
export function formatGatewayStatus (s: Extract<GatewayView, { enabled: true }>): string {
  const lines: string[] = []
  lines.push(`gateway    ${s.state} on ${s.interface}${s.address !== undefined ? ` (${s.address})` : ''}`)
  if (s.error !== undefined) lines.push(`error      ${s.error.code}: ${s.error.message}`)
  const fw = s.firewall
  const dropped = fw.dropped.input.packets + fw.dropped.forward.packets
  lines.push(`firewall   table inet ${fw.table}: ${fw.rules}${fw.rules !== 'none' && !fw.present ? ' (NOT in the kernel)' : ''}, ${dropped} packets dropped${fw.reapplied > 0 ? `, re-applied ${fw.reapplied}x` : ''}${fw.error !== undefined ? ` (${fw.error})` : ''}`)
  lines.push(`tor        ${s.tor.connected ? 'connected' : 'NOT connected (inside traffic is blocked)'}, TransPort ${s.address ?? '?'}:${s.tor.transPort}${s.tor.transListening ? '' : ' (not listening)'}, DNSPort ${s.tor.dnsPort ?? '-'}${s.tor.error !== undefined ? ` (${s.tor.error})` : ''}`)
  const d = s.dns.totals
  lines.push(`dns        ${s.dns.listen.join(' ') || '-'}: ${d.queries} queries, ${d.local} local, ${d.blocked} blocked, ${d.forwarded} via tor, ${d.failed} failed`)
  lines.push(`blocklist  ${s.blocklist.file ?? '(none)'}: ${s.blocklist.names} names${s.blocklist.error !== undefined ? ` (${s.blocklist.error})` : ''}`)
  lines.push(`streams    ${s.connections.open} open, ${s.connections.total} total, ${s.connections.failed} failed, ${s.bytes.up} bytes up, ${s.bytes.down} down`)
  if (s.vms.length === 0) {
    lines.push('(no VM seen yet)')
  } else {
    const rows = s.vms.map(v => [v.address, v.name ?? '-', String(v.connections.open), String(v.connections.total), String(v.connections.failed), String(v.bytesUp), String(v.bytesDown), String(v.dns.queries), String(v.dns.blocked), String(v.dropped.packets), v.circuits.join(',') || '-'])
    const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
    for (const r of [HEADER, ...rows]) lines.push(r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  '))
  }
  return lines.join('\n')
}

const NOT_ENABLED = 'the gateway is not enabled in this daemon: set enabled = true and interface = "<inside interface>" under [gateway] in its config and restart it (see docs/daemon.md)'

const statusCommand: Command = {
  name: 'status',
  summary: 'the gateway: firewall, tor, resolver, and per VM connections, bytes, DNS and drops',
  usage: ['gateway status [--json]'],
  details: `One summary (rules in the kernel, tor's TransPort and DNSPort, resolver counts, blocklist), then
one line per VM seen behind the inside interface: open/total/failed connections through tor,
bytes up and down, DNS queries and how many were blocklisted, packets the firewall dropped
(attempts to leave other than through tor), and the tor circuits its streams used lately.
--json prints the daemon's GET /v1/gateway answer as it is. Exits 1 when the gateway is not
enabled or not active.`,
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    const r = await client.call<GatewayView>('GET', '/v1/gateway', undefined, { signal: ctx.io.signal })
    if (!r.enabled) throw new CliError('CLI_FAILED', NOT_ENABLED)
    emit(ctx.io, ctx.json, r, () => formatGatewayStatus(r))
    return r.state === 'active' ? 0 : 1
  }
}

const reloadCommand: Command = {
  name: 'reload',
  summary: 're-read the gateway blocklist (as SIGHUP to the daemon does)',
  usage: ['gateway reload [--json]'],
  details: 'A blocklist that cannot be read or parsed is reported and the previous one stays in force (exit 1).',
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    const s = await client.call<GatewayView>('GET', '/v1/gateway', undefined, { signal: ctx.io.signal })
    if (!s.enabled) throw new CliError('CLI_FAILED', NOT_ENABLED)
    const r = await client.call<{ names: number, skipped: number, error?: string }>('POST', '/v1/gateway/reload', {}, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => r.error !== undefined ? `blocklist NOT reloaded: ${r.error} (still ${r.names} names)` : `blocklist reloaded: ${r.names} names (${r.skipped} lines skipped)`)
    return r.error === undefined ? 0 : 1
  }
}

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'router-VM gateway mode: VMs behind an interface, torified',
  usage: ['gateway status [--json]', 'gateway reload [--json]'],
  flags: [],
  positionals: [],
  subcommands: [statusCommand, reloadCommand]
}
