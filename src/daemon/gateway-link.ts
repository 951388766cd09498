/**
 * The daemon's side of gateway mode: builds the ONI gateway from `[gateway]`, starts it before
 * tor (so the VMs are never routed in the clear while tor bootstraps), hands it every tor
 * session, and renders its status and metrics. A gateway that cannot start (no nft, no
 * CAP_NET_ADMIN, no such interface) is reported and logged; the rest of the daemon keeps running.
 */
import type { NetworkInterfaceInfo } from 'node:os'
import type { AbortOptions, Clock, Logger, Rng } from '../core/index.ts'
import { bytesEqual, cryptoRng, errorMessage, isCodedError } from '../core/index.ts'
import { createGateway, decodeMapping, MAPPING_SALT, OniError, type Gateway, type GatewayStatus, type MappingDirectory, type NftRunner } from '../oni/index.ts'
import { mutableKey } from '../oht/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import type { DaemonConfig } from './config.ts'
import type { JsonLog } from './json-log.ts'
import { family, type Sample } from './metrics.ts'

/** A record from the daemon's OHT node, as far as mapping lookups need it. */
export interface LookedUpRecord { kind: string, publicKey?: Uint8Array, value: Uint8Array }

export interface GatewayLinkComponents {
  clock: Clock
  log: JsonLog
  logger: Logger
  rng?: Rng
  /** Tests inject these; real runs use nft, os.networkInterfaces and /proc. */
  nft?: NftRunner
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
  forwarding?: (iface: string) => Promise<boolean>
  /** Gets a record through the daemon's OHT node (undefined while it has none): `.onet` names are verified against mapping records. */
  lookup: (key: Uint8Array, options: AbortOptions) => Promise<LookedUpRecord | undefined>
}

/** OHT mapping records read through the daemon's node (a mutable record of the peer's key). */
function nodeDirectory (lookup: GatewayLinkComponents['lookup']): MappingDirectory {
  return {
    publish: async () => { throw new OniError('ONI_BAD_ARGUMENT', 'the gateway only reads mapping records') },
    resolve: async (publicKey, options = {}) => {
      const hit = await lookup(mutableKey(publicKey, MAPPING_SALT), options)
      if (hit === undefined) return undefined
      if (hit.kind !== 'mutable' || hit.publicKey === undefined || !bytesEqual(hit.publicKey, publicKey)) {
        throw new OniError('ONI_MAPPING_INVALID', 'the OHT record is not a mutable record of that key')
      }
      return decodeMapping(hit.value, publicKey)
    }
  }
}

export class GatewayLink {
  private readonly gateway: Gateway
  private startError: string | undefined

  constructor (private readonly config: DaemonConfig, private readonly c: GatewayLinkComponents) {
    const g = config.gateway
    this.gateway = createGateway({
      interface: g.interface ?? '',
      ...(g.address !== undefined ? { address: g.address } : {}),
      ipv6: g.ipv6,
      ...(g.address6 !== undefined ? { address6: g.address6 } : {}),
      transPort: g.transPort,
      dnsPort: g.dnsPort,
      virtualNetwork: g.virtualNetwork,
      virtualNetwork6: g.virtualNetwork6,
      hosts: g.hosts,
      onetNames: g.onetNames,
      ...(g.blocklistFile !== undefined ? { blocklistFile: g.blocklistFile } : {}),
      table: g.table,
      onStop: g.onStop,
      nftPath: g.nftPath,
      localTcpPorts: g.localTcpPorts,
      localUdpPorts: g.localUdpPorts,
      maxVms: g.maxVms,
      torMode: config.tor.mode === 'attach' ? 'attach' : 'launch'
    }, {
      clock: c.clock,
      rng: c.rng ?? cryptoRng,
      log: c.logger,
      directory: nodeDirectory(c.lookup),
      ...(c.nft !== undefined ? { nft: c.nft } : {}),
      ...(c.networkInterfaces !== undefined ? { networkInterfaces: c.networkInterfaces } : {}),
      ...(c.forwarding !== undefined ? { forwarding: c.forwarding } : {})
    })
  }

  get active (): boolean { return this.gateway.state === 'active' }

  /**
   * Applies the rules and opens the resolver. Returns the torrc options a launched tor needs, or
   * undefined when the gateway is unavailable (logged; the daemon goes on without it).
   */
  async start (options: AbortOptions): Promise<Record<string, string | number | Array<string | number>> | undefined> {
    try {
      await this.gateway.start(options)
    } catch (err) {
      this.startError = errorMessage(err)
      this.c.log.error('gateway unavailable; the rest of the daemon keeps running', { code: isCodedError(err) ? err.code : 'DAEMON_GATEWAY', err: this.startError })
      return undefined
    }
    const s = this.gateway.snapshot()
    this.c.log.info('gateway rules applied', { interface: s.interface, address: s.address, table: s.firewall.table, transPort: s.tor.transPort, dns: s.dns.listen })
    return this.gateway.torrc() as Record<string, string | number | Array<string | number>>
  }

  /** A (new) tor session; failures are logged and shown in status (the gateway stays closed). */
  async torSession (control: TorControl, options: AbortOptions = {}): Promise<void> {
    if (!this.active) return
    try {
      await this.gateway.torConnected(control, options)
      const s = this.gateway.snapshot()
      this.c.log.info('gateway connected to tor', { dnsPort: s.tor.dnsPort, transPort: s.tor.transPort })
    } catch (err) {
      this.c.log.error('gateway cannot use tor; inside traffic stays blocked', { err: errorMessage(err) })
    }
  }

  torLost (): void {
    this.gateway.torLost()
  }

  async reload (options: AbortOptions = {}): Promise<unknown> {
    const r = await this.gateway.reload(options)
    if (r.error !== undefined) this.c.log.warn('gateway blocklist not reloaded', { err: r.error, names: r.names })
    else this.c.log.info('gateway blocklist reloaded', { names: r.names, skipped: r.skipped })
    return r
  }

  async status (options: AbortOptions = {}): Promise<GatewayStatus & { enabled: true }> {
    return { enabled: true, ...await this.gateway.status(options) }
  }

  async stop (): Promise<void> {
    await this.gateway.stop().catch((err: unknown) => { this.c.log.error('gateway stop failed', { err: errorMessage(err) }) })
    const s = this.gateway.snapshot()
    if (s.firewall.rules !== 'none') this.c.log.info('gateway stopped', { rules: s.firewall.rules, ...(s.firewall.error !== undefined ? { note: s.firewall.error } : {}) })
  }

  /** Prometheus families; counters from the last status or rule check (at most a few seconds old). */
  metrics (): string[] {
    const s = this.gateway.snapshot()
    const dns = s.dns.totals
    const perVm = (pick: (v: GatewayStatus['vms'][number]) => number): Sample[] => s.vms.map(v => ({ labels: { vm: v.address }, value: pick(v) }))
    return [
      family('oht_gateway_up', 'gauge', '1 while the gateway rules are active and its resolver answers', s.state === 'active' && s.firewall.rules === 'active' ? 1 : 0),
      family('oht_gateway_tor_connected', 'gauge', '1 while tor serves the gateway (TransPort and DNSPort found)', s.tor.connected ? 1 : 0),
      family('oht_gateway_dns_queries_total', 'counter', 'DNS queries from inside by outcome', [
        { labels: { result: 'local' }, value: dns.local },
        { labels: { result: 'blocked' }, value: dns.blocked },
        { labels: { result: 'forwarded' }, value: dns.forwarded },
        { labels: { result: 'failed' }, value: dns.failed },
        { labels: { result: 'limited' }, value: dns.limited },
        { labels: { result: 'malformed' }, value: dns.malformed }
      ]),
      family('oht_gateway_connections_total', 'counter', 'TransPort streams from inside', s.connections.total),
      family('oht_gateway_connections_open', 'gauge', 'open TransPort streams from inside', s.connections.open),
      family('oht_gateway_connections_failed_total', 'counter', 'TransPort streams tor could not complete', s.connections.failed),
      family('oht_gateway_bytes_total', 'counter', 'bytes through the TransPort by direction', [{ labels: { direction: 'up' }, value: s.bytes.up }, { labels: { direction: 'down' }, value: s.bytes.down }]),
      family('oht_gateway_dropped_packets_total', 'counter', 'inside packets the firewall dropped, by hook', [{ labels: { hook: 'input' }, value: s.firewall.dropped.input.packets }, { labels: { hook: 'forward' }, value: s.firewall.dropped.forward.packets }]),
      family('oht_gateway_rules_reapplied_total', 'counter', 'times the rules were found missing from the kernel and put back', s.firewall.reapplied),
      family('oht_gateway_blocklist_names', 'gauge', 'names in the loaded blocklist', s.blocklist.names),
      family('oht_gateway_vm_bytes_total', 'counter', 'bytes through the TransPort per VM (sent by the VM)', perVm(v => v.bytesUp)),
      family('oht_gateway_vm_connections_total', 'counter', 'TransPort streams per VM', perVm(v => v.connections.total)),
      family('oht_gateway_vm_dns_queries_total', 'counter', 'DNS queries per VM', perVm(v => v.dns.queries)),
      family('oht_gateway_vm_dns_blocked_total', 'counter', 'blocklisted DNS queries per VM', perVm(v => v.dns.blocked)),
      family('oht_gateway_vm_dropped_packets_total', 'counter', 'packets per VM the firewall dropped', perVm(v => v.dropped.packets))
    ]
  }

  get error (): string | undefined { return this.startError }
}
