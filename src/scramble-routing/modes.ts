/**
 * Flow modes: the privacy/bandwidth knob a user turns per flow (a wormhole conversation, a DOA
 * app, a SOCKS5 destination). Later layers show `FLOW_MODES[mode]` with the cost they measured
 * (formatModeChoice), and show the `fast` warning every time that mode is picked.
 */
import { MAX_RELAYS } from './geometry.ts'

export type FlowMode = 'anonymous' | 'scrambled' | 'fast'

export const FAST_MODE_WARNING =
  "The service's location is not hidden: fast mode runs it as a single-hop onion service " +
  "(Tor's NonAnonymous mode, on a tor of its own), so the Tor relay next to it, and anyone " +
  'watching that relay or the network around the machine, can find the machine and its IP ' +
  'address. Clients stay as anonymous as with any onion service. Use it only for services ' +
  'whose location may be known.'

export interface FlowModeInfo {
  mode: FlowMode
  title: string
  /** One paragraph for the user: what the mode hides and from whom. */
  description: string
  /** Extra OHT relay hops before Tor: [min, max]. */
  extraHops: readonly [number, number]
  /** Set for modes that give up a protection the default has. */
  warning?: string
}

export const FLOW_MODES: Readonly<Record<FlowMode, FlowModeInfo>> = {
  anonymous: {
    mode: 'anonymous',
    title: 'Anonymous (Tor only)',
    description: 'Traffic goes over Tor onion services only: Tor hides where each end is. The OHT peer you talk to sees your OHT identity; Tor relays see neither end.',
    extraHops: [0, 0]
  },
  scrambled: {
    mode: 'scrambled',
    title: `Scrambled (1-${MAX_RELAYS} extra hops + Tor)`,
    description: 'Each message also passes through 1 to 3 other OHT peers that opted in as relays, each over Tor, in fixed-size Sphinx packets. With 2 or more relays no single relay, Tor relay or peer sees both the sender and the recipient; colluding relays link them only when they hold every hop. Costs latency (one onion round trip per hop) and bandwidth.',
    extraHops: [1, MAX_RELAYS]
  },
  fast: {
    mode: 'fast',
    title: 'Fast (single-hop onion service)',
    description: 'The service uses a single-hop onion service: about half the Tor hops of a normal onion service, so lower latency and more throughput. The service gives up hiding its location.',
    extraHops: [0, 0],
    warning: FAST_MODE_WARNING
  }
}

/** What a mode measured on this machine or network costs. */
export interface ModeCost {
  /** Median round trip of one message, ms. */
  latencyMs?: number
  /** Stream throughput, bytes per second. */
  throughputBps?: number
  /** Against `anonymous` measured in the same run (1 = same). */
  throughputRatio?: number
  /** Extra hops used (scrambled). */
  hops?: number
}

function bytesPerSecond (b: number): string {
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB/s`
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB/s`
  return `${Math.round(b)} B/s`
}

/** A short text for the user: the mode, its measured cost, and its warning if any. */
export function formatModeChoice (mode: FlowMode, cost: ModeCost = {}): string {
  const info = FLOW_MODES[mode]
  const parts: string[] = []
  if (cost.hops !== undefined && mode === 'scrambled') parts.push(`${cost.hops} extra hop${cost.hops === 1 ? '' : 's'}`)
  if (cost.latencyMs !== undefined) parts.push(`~${Math.round(cost.latencyMs)} ms per message`)
  if (cost.throughputBps !== undefined) parts.push(bytesPerSecond(cost.throughputBps))
  if (cost.throughputRatio !== undefined) parts.push(`${cost.throughputRatio.toFixed(2)}x the throughput of anonymous mode`)
  const measured = parts.length > 0 ? ` (measured: ${parts.join(', ')})` : ' (not measured yet)'
  return `${info.title}${measured}. ${info.description}${info.warning !== undefined ? `\nWARNING: ${info.warning}` : ''}`
}

export function isFlowMode (v: unknown): v is FlowMode {
  return v === 'anonymous' || v === 'scrambled' || v === 'fast'
}
