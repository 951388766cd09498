import { isCodedError } from '../../core/index.ts'
import type { ApiClient } from '../api-client.ts'
import { parseDuration } from '../args.ts'
import type { Command, CommandContext } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

/** What GET /v1/status returns (the fields this command reads). */
export interface DaemonStatus {
  version: string
  phase: string
  pid: number
  uptimeMs: number
  transport: string
  socket: string
  identity: { address: string } | null
  addrs: string[]
  tor: {
    mode: string
    connected: boolean
    bootstrapPercent: number
    bootstrapSummary?: string
    socksPort?: number
    restarts: number
    circuits: { built: number, failed: number }
    lastError?: string
    reconnectAttempts?: number
  } | null
  node: { peers: number, recordsStored: number, lookups: number } | null
  join?: { bootstrap: number, failures: number, lastError?: string }
  endpoints: Array<{ name: string, address: string, state: string, routes: Array<{ virtualPort: number, target: string }> }>
}

const WAIT_POLL_MS = 250

/** The human view of a status: one line per part, problems said in words. */
export function formatStatus (s: DaemonStatus): string {
  const lines = [
    `daemon     ${s.phase} (pid ${s.pid}, up ${Math.round(s.uptimeMs / 1000)} s, v${s.version})`,
    `identity   ${s.identity?.address ?? '-'}`,
    `transport  ${s.transport}${s.addrs.length > 0 ? ' ' + s.addrs.join(' ') : ''}`
  ]
  const t = s.tor
  if (t !== null) {
    const boot = `bootstrap ${t.bootstrapPercent} %${t.bootstrapPercent < 100 && t.bootstrapSummary !== undefined && t.bootstrapSummary !== '' ? ` (${t.bootstrapSummary})` : ''}`
    lines.push(`tor        ${t.mode}, ${t.connected ? 'connected' : 'NOT connected'}, ${boot}, socks ${t.socksPort ?? '-'}, circuits built ${t.circuits.built} failed ${t.circuits.failed}, reconnects ${t.restarts}`)
    if (!t.connected && t.reconnectAttempts !== undefined) {
      lines.push(`tor        getting tor back is failing: ${t.reconnectAttempts} ${t.reconnectAttempts === 1 ? 'try' : 'tries'} so far${t.lastError !== undefined ? `, last: ${t.lastError}` : ''}`)
    } else if (!t.connected && t.lastError !== undefined) {
      lines.push(`tor        lost: ${t.lastError}`)
    }
  }
  if (s.node !== null) lines.push(`node       ${s.node.peers} peers, ${s.node.recordsStored} records stored, ${s.node.lookups} lookups`)
  if (s.join !== undefined && s.join.failures > 0) {
    lines.push(`join       failing: ${s.join.failures} ${s.join.failures === 1 ? 'try' : 'tries'} at joining through ${s.join.bootstrap} bootstrap ${s.join.bootstrap === 1 ? 'peer' : 'peers'}${s.join.lastError !== undefined ? `, last: ${s.join.lastError}` : ''}; retrying in the background`)
  }
  for (const e of s.endpoints) lines.push(`endpoint   ${e.name}: ${e.address} ${e.state}${e.routes.map(r => `  ${r.virtualPort} -> ${r.target}`).join('')}`)
  lines.push(`api        ${s.socket}`)
  return lines.join('\n')
}

/** Where a waiting daemon is, for the progress line. */
function stage (s: DaemonStatus | undefined): string {
  if (s === undefined) return 'waiting for the daemon'
  if (s.tor !== null && s.tor.bootstrapPercent < 100) return `daemon ${s.phase}, tor bootstrap ${s.tor.bootstrapPercent} %`
  return `daemon ${s.phase}`
}

/**
 * Polls the daemon until it answers and is running, for at most `waitMs`. Shows where it is
 * on a terminal's stderr. A daemon that never answered keeps its "no daemon answers" error.
 */
async function waitRunning (ctx: CommandContext, waitMs: number): Promise<DaemonStatus> {
  const io = ctx.io
  const start = io.clock.monotonic()
  let last: DaemonStatus | undefined
  let lastError: unknown
  let shown = false
  try {
    for (;;) {
      try {
        const client: ApiClient = await ctx.client()
        last = await client.call<DaemonStatus>('GET', '/v1/status', undefined, { signal: io.signal })
        lastError = undefined
        if (last.phase === 'running') return last
      } catch (err) {
        // Only "not up yet" is worth waiting for; a refused token or a bad socket path is not.
        if (!isCodedError(err, 'CLI_DAEMON_UNAVAILABLE')) throw err
        lastError = err
      }
      const elapsed = io.clock.monotonic() - start
      if (elapsed >= waitMs) break
      if (io.stderr.isTTY === true && !ctx.json) {
        shown = true
        io.stderr.write(`\r${stage(last)} … ${(elapsed / 1000).toFixed(1)} s\x1b[K`)
      }
      await io.clock.sleep(Math.min(WAIT_POLL_MS, waitMs - elapsed), { signal: io.signal })
    }
  } finally {
    if (shown) io.stderr.write('\r\x1b[K')
  }
  if (last === undefined) throw lastError
  const tor = last.tor
  const why = tor !== null && (tor.bootstrapPercent < 100 || !tor.connected)
    ? ` (tor ${tor.connected ? '' : 'not connected, '}bootstrap ${tor.bootstrapPercent} %${tor.lastError !== undefined ? `, last error: ${tor.lastError}` : ''})`
    : ''
  throw new CliError('CLI_FAILED', `the daemon is still ${last.phase} after ${Math.round(waitMs / 1000)} s${why}: see its log`)
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the running daemon\'s state: identity, tor, peers, records, endpoints',
  usage: ['status [--wait <duration>]'],
  details: `Shows the daemon's phase, identity, tor (bootstrap progress, reconnects, what fails while
tor is lost), peers, records, joins that keep failing and endpoints. --wait 60s waits until a
daemon answers and is running (exits 4 if none answered, 1 if it did not get ready in time):
use it after starting one in the background, e.g. oht daemon … & oht status --wait 60s`,
  flags: [
    { name: 'wait', type: 'string', valueName: '<duration>', description: 'wait up to this long for the daemon to be running (e.g. 60s, 2m)' }
  ],
  positionals: [],
  async run (ctx) {
    const wait = ctx.flag('wait')
    let s: DaemonStatus
    if (wait !== undefined) {
      s = await waitRunning(ctx, parseDuration(wait, 'oht status: --wait'))
    } else {
      const client = await ctx.client()
      s = await client.call<DaemonStatus>('GET', '/v1/status', undefined, { signal: ctx.io.signal })
    }
    emit(ctx.io, ctx.json, s, () => formatStatus(s))
    return 0
  }
}
