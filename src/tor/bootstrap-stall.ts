/**
 * What to tell a person whose tor stopped making bootstrap progress: where it is stuck, what
 * tor said last (the REASON and relay of its bootstrap warning) and the likely cause from the
 * torrc it runs with: a private network whose DirAuthority lines do not answer, bridges that do
 * not answer, DisableNetwork, or a machine that does not reach the public Tor network.
 */
import type { Torrc } from './launcher.ts'

export interface StallInput {
  /** How long bootstrap has not moved, in ms. */
  stalledMs: number
  /** tor's `status/bootstrap-phase` text (NOTICE/WARN BOOTSTRAP PROGRESS=… TAG=… SUMMARY=… REASON=…). */
  phase: string
  /** The torrc options tor runs with (the launcher's own are irrelevant here). */
  torrc: Torrc
  /** tor's recent [warn]/[err] lines. */
  problems: string[]
}

/** tor's REASON codes of a bootstrap problem, in words. */
const REASONS: Record<string, string> = {
  NOROUTE: 'there is no network route to it',
  CONNECTREFUSED: 'the connection was refused',
  TIMEOUT: 'the connection timed out',
  NOTCONNECTED: 'the network is not connected',
  IOERROR: 'the connection broke',
  DONE: 'the connection was closed during the handshake',
  MISC: 'the connection failed',
  IDENTITY: 'the relay had another identity than expected',
  RESOURCELIMIT: 'tor ran out of sockets or memory',
  PT_MISSING: 'the pluggable transport of the bridge is not configured'
}

function field (text: string, name: string): string | undefined {
  const m = new RegExp(`${name}=(?:"((?:[^"\\\\]|\\\\.)*)"|(\\S+))`).exec(text)
  return m === null ? undefined : (m[1] ?? m[2])
}

function has (torrc: Torrc, name: string): boolean {
  const key = Object.keys(torrc).find(k => k.toLowerCase() === name.toLowerCase())
  if (key === undefined) return false
  const v = torrc[key]
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== '0' && !(Array.isArray(v) && v.length === 0)
}

function count (torrc: Torrc, name: string): number {
  const key = Object.keys(torrc).find(k => k.toLowerCase() === name.toLowerCase())
  const v = key === undefined ? undefined : torrc[key]
  if (v === undefined || v === null) return 0
  return Array.isArray(v) ? v.length : 1
}

/** One paragraph: where bootstrap is stuck, what tor said, and what to check. */
export function describeBootstrapStall (input: StallInput): string {
  const percent = field(input.phase, 'PROGRESS') ?? '0'
  const summary = field(input.phase, 'SUMMARY') ?? 'starting'
  const parts = [`tor made no bootstrap progress for ${Math.round(input.stalledMs / 1000)} s: stuck at ${percent} % (${summary})`]
  const reason = field(input.phase, 'REASON')
  const host = field(input.phase, 'HOSTADDR')
  const failures = field(input.phase, 'COUNT')
  if (reason !== undefined) {
    parts.push(`its last attempt${host !== undefined ? ` to reach ${host}` : ''} failed: ${REASONS[reason] ?? reason.toLowerCase()}${failures !== undefined ? ` (${failures} failed connections so far)` : ''}`)
  } else if (input.problems.length > 0) {
    parts.push(`tor said: ${input.problems.slice(-2).join(' / ')}`)
  }
  const torrc = input.torrc
  if (has(torrc, 'DisableNetwork')) {
    parts.push('DisableNetwork is set in its torrc, so tor connects nowhere until it is cleared')
  } else if (count(torrc, 'DirAuthority') > 0 || has(torrc, 'TestingTorNetwork')) {
    parts.push(`it is set up for a private Tor network (${count(torrc, 'DirAuthority')} DirAuthority lines) and none of those authorities gave it a consensus: is that network running, and do its DirAuthority lines name the right ports?`)
  } else if (has(torrc, 'UseBridges') || count(torrc, 'Bridge') > 0) {
    parts.push(`none of its ${count(torrc, 'Bridge')} bridges completed a handshake: check the Bridge lines or get fresh bridges (obfs4 and other transports also need ClientTransportPlugin)`)
  } else {
    parts.push('it is trying the public Tor network, which this machine does not seem to reach (no network, a firewall, or a censor cutting Tor connections): check the network; behind a censor, configure bridges (UseBridges 1 and Bridge lines); with no way out, run a private Tor network and point tor at it with DirAuthority lines')
  }
  return parts.join('; ') + '.'
}
