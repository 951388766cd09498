/**
 * What the gateway needs from tor, and how it gets it:
 *
 *   TransPort <inside addr>:<port> IsolateClientAddr   connections DNATed from inside; one VM's
 *                                                       streams never share another VM's circuits
 *   DNSPort 127.0.0.1:auto                             the resolver's upstream (loopback only)
 *   AutomapHostsOnResolve 1, AutomapHostsSuffixes .onion   `.onion` names get virtual addresses …
 *   VirtualAddrNetworkIPv4 10.192.0.0/10               … from this range, which TransPort maps back
 *
 * A tor the daemon launches gets them in its torrc (`gatewayTorrc`), so they hold from its
 * first second and after every relaunch. A tor the daemon attaches to gets them by SETCONF
 * (`applyTorSettings`), added to the TransPort/DNSPort lines it already has, re-applied after
 * it restarts, and put back as they were on a clean stop.
 */
import type { AbortOptions } from '../../core/index.ts'
import { errorMessage } from '../../core/index.ts'
import type { ConfValue, TorControl } from '../../tor/control/index.ts'
import type { Torrc } from '../../tor/launcher.ts'
import { OniError } from '../errors.ts'

export const GATEWAY_TOR_OPTIONS = ['TransPort', 'DNSPort', 'AutomapHostsOnResolve', 'AutomapHostsSuffixes', 'VirtualAddrNetworkIPv4', 'VirtualAddrNetworkIPv6'] as const
/** The resolver's upstream: tor picks the port, we read it back (GETINFO net/listeners/dns). */
export const GATEWAY_DNS_PORT_LINE = '127.0.0.1:auto'

export interface TorGatewaySpec {
  /** `host:port` listeners for TransPort (IPv6 in brackets). */
  transListen: string[]
  virtualNetwork: string
  virtualNetwork6?: string
}

function transLines (spec: TorGatewaySpec): string[] {
  return spec.transListen.map(l => `${l} IsolateClientAddr`)
}

/** torrc options for a tor the daemon launches. */
export function gatewayTorrc (spec: TorGatewaySpec): Torrc {
  return {
    TransPort: transLines(spec),
    DNSPort: GATEWAY_DNS_PORT_LINE,
    AutomapHostsOnResolve: 1,
    AutomapHostsSuffixes: '.onion',
    VirtualAddrNetworkIPv4: spec.virtualNetwork,
    ...(spec.virtualNetwork6 !== undefined ? { VirtualAddrNetworkIPv6: `[${spec.virtualNetwork6.split('/')[0]}]/${spec.virtualNetwork6.split('/')[1]}` } : {})
  }
}

export interface AppliedTorSettings {
  /** tor's options before the gateway touched them (pass it to later calls on the same tor). */
  readonly baseline: ReadonlyMap<string, string[]>
  /** Puts the options back as they were before (best effort; tor may be gone). */
  restore(options?: AbortOptions): Promise<void>
}

function listenAddr (line: string): string {
  return line.trim().split(/\s+/)[0] ?? ''
}

/**
 * Adds the gateway's options to a running tor by SETCONF, keeping its other TransPort/DNSPort
 * lines. Throws ONI_GATEWAY_TOR with tor's reason (e.g. it cannot bind the inside address).
 */
export async function applyTorSettings (control: TorControl, spec: TorGatewaySpec, options: AbortOptions & { baseline?: ReadonlyMap<string, string[]> } = {}): Promise<AppliedTorSettings> {
  let saved: Map<string, string[]>
  try {
    saved = await control.getConf([...GATEWAY_TOR_OPTIONS], options)
  } catch (err) {
    throw new OniError('ONI_GATEWAY_TOR', `cannot read tor's options: ${errorMessage(err)}`, { cause: err })
  }
  const ours = new Set(spec.transListen)
  // On a re-attach to a tor that did not restart, what tor has now is partly ours: the state to
  // go back to is the one seen the first time. Our own TransPort lines are never part of it.
  const baseline = new Map(options.baseline ?? saved)
  baseline.set('TransPort', (baseline.get('TransPort') ?? []).filter(v => !ours.has(listenAddr(v))))
  // Lines a previous run of ours left behind (it was killed) are replaced, not repeated.
  const otherTrans = (saved.get('TransPort') ?? []).filter(v => v !== '0' && v !== '' && !ours.has(listenAddr(v)))
  const dns = (saved.get('DNSPort') ?? []).filter(v => v !== '0' && v !== '')
  const entries: Record<string, ConfValue> = {
    TransPort: [...otherTrans, ...transLines(spec)],
    DNSPort: dns.some(v => listenAddr(v) === GATEWAY_DNS_PORT_LINE) ? dns : [...dns, GATEWAY_DNS_PORT_LINE],
    AutomapHostsOnResolve: 1,
    AutomapHostsSuffixes: '.onion',
    VirtualAddrNetworkIPv4: spec.virtualNetwork
  }
  const v6 = gatewayTorrc(spec).VirtualAddrNetworkIPv6
  if (typeof v6 === 'string') entries.VirtualAddrNetworkIPv6 = v6
  try {
    await control.setConf(entries, options)
  } catch (err) {
    throw new OniError('ONI_GATEWAY_TOR', `tor refused the gateway's settings (${spec.transListen.join(', ')}): ${errorMessage(err)}`, { cause: err })
  }
  return {
    baseline,
    restore: async (opts = {}) => {
      const back: Record<string, ConfValue> = {}
      for (const k of GATEWAY_TOR_OPTIONS) {
        const v = baseline.get(k) ?? []
        back[k] = v.length === 0 ? null : v
      }
      await control.setConf(back, opts)
    }
  }
}

/** Parses a `GETINFO net/listeners/<kind>` value: quoted `host:port` entries. */
export function parseListeners (text: string): Array<{ host: string, port: number }> {
  const out: Array<{ host: string, port: number }> = []
  for (const part of text.split(/\s+/)) {
    const m = /^"?(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})"?$/.exec(part)
    if (m === null) continue
    const port = Number(m[2])
    if (port < 1 || port > 65535) continue
    out.push({ host: m[1].replace(/^\[|\]$/g, ''), port })
  }
  return out
}

/** tor's listeners of a kind ('trans', 'dns', …). */
export async function torListeners (control: TorControl, kind: 'trans' | 'dns', options: AbortOptions = {}): Promise<Array<{ host: string, port: number }>> {
  return parseListeners(await control.getInfoOne(`net/listeners/${kind}`, options))
}
