/**
 * The gateway: firewall (nft-rules.ts), resolver (resolver.ts), tor's settings
 * (tor-settings.ts) and the per-VM accounting (stream-stats.ts, nft counters) as one thing
 * with one status.
 *
 * Order, and why:
 *   start()          interface address → blocklist → firewall rules → resolver. The rules go in
 *                    before tor is even launched, so inside traffic is never routed in the clear
 *                    while tor bootstraps; until tor is there, TCP from inside meets a closed
 *                    TransPort (RST) and DNS gets SERVFAIL.
 *   torConnected()   each time the daemon has a (new) tor session: SETCONF when attached, find
 *                    the DNSPort, check the TransPort listens, watch STREAM events.
 *   torLost()        upstream gone: DNS answers SERVFAIL at once; the rules stay as they are.
 *   stop()           resolver closed, tor's options put back (attach), then the firewall is left
 *                    in lockdown (default) or removed when `onStop` is "remove" and the router
 *                    does not forward for the inside interface. Never a state that forwards.
 */
import { networkInterfaces as osInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { readFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import type { AbortOptions, Clock, Logger, Rng, TimerHandle } from '../../core/index.ts'
import { errorMessage, isCodedError, logger as makeLogger } from '../../core/index.ts'
import { parseOnionAddress } from '../../crypto/index.ts'
import type { TorControl, TorEvent } from '../../tor/control/index.ts'
import type { Torrc } from '../../tor/launcher.ts'
import { OniError } from '../errors.ts'
import type { MappingDirectory } from '../mapping.ts'
import { parseIpv6, virtualAddressFromPublicKey } from '../virtual-address.ts'
import { EMPTY_BLOCKLIST, loadBlocklist, type Blocklist } from './blocklist.ts'
import { applyRuleset, createNftRunner, readCounters, type FirewallCounters, type NftRunner, type PacketCount } from './nft.ts'
import { checkInterfaceName, renderGatewayRules, renderLockdownRules, renderRemoval, validateFirewallSpec, type FirewallSpec } from './nft-rules.ts'
import { createResolver, type GatewayResolver, type ResolverCounts } from './resolver.ts'
import { StreamAccounting } from './stream-stats.ts'
import { applyTorSettings, gatewayTorrc, torListeners, type AppliedTorSettings, type TorGatewaySpec } from './tor-settings.ts'
import type { Zones } from './zones.ts'

export const DEFAULT_TRANS_PORT = 9040
export const DEFAULT_GATEWAY_DNS_PORT = 9053
export const DEFAULT_VIRTUAL_NETWORK = '10.192.0.0/10'
export const DEFAULT_VIRTUAL_NETWORK6 = 'fdc0:7e11:ab0::/48'
export const DEFAULT_GATEWAY_TABLE = 'oht_gateway'
/** nft counters are read at most this often for status and metrics. */
const COUNTERS_MAX_AGE_MS = 1_000

export interface GatewayInit {
  /** The inside interface: the VMs' side of the router (a bridge when several VMs share it). */
  interface: string
  /** The router's IPv4 address on it. @default the interface's first IPv4 address */
  address?: string
  /** Torify IPv6 from inside too (otherwise all of it is dropped). @default false */
  ipv6?: boolean
  /** With ipv6: the router's IPv6 address on the interface. @default its first global/ULA IPv6 address */
  address6?: string
  /** tor's TransPort on the inside address. @default 9040 */
  transPort?: number
  /** The resolver's UDP/TCP port on the inside address (DNS from inside is DNATed here). @default 9053 */
  dnsPort?: number
  /** Where `.onion` names get their virtual addresses (tor's VirtualAddrNetworkIPv4). @default '10.192.0.0/10' */
  virtualNetwork?: string
  /** The same for IPv6, with ipv6. @default 'fdc0:7e11:ab0::/48' */
  virtualNetwork6?: string
  /** VM hostnames answered locally: name → address(es). @default {} */
  hosts?: Record<string, string | string[]>
  /** `<alias>.onet` → onion address. @default {} */
  onetNames?: Record<string, string>
  /** Hosts-format blocklist, reloaded by `reload()` (SIGHUP in the daemon). @default undefined (none) */
  blocklistFile?: string
  /** nftables table (family inet). @default 'oht_gateway' */
  table?: string
  /** On a clean stop: "block" leaves the lockdown ruleset; "remove" deletes the table if the router does not forward for the interface. @default 'block' */
  onStop?: 'block' | 'remove'
  /** @default 'nft' */
  nftPath?: string
  /** Router ports VMs may reach directly (not through tor). @default [] */
  localTcpPorts?: number[]
  /** @default [] */
  localUdpPorts?: number[]
  /** VMs tracked for status and DNS isolation. @default 1_024 */
  maxVms?: number
  /** Deadline of a DNS answer from tor. @default 10_000 */
  dnsTimeoutMs?: number
  /** How often the rules are checked to be still in the kernel (re-applied if someone removed them). @default 5_000 */
  checkIntervalMs?: number
  /** Who sets tor's options: the daemon's torrc ('launch') or SETCONF here ('attach'). */
  torMode: 'launch' | 'attach'
}

export interface GatewayComponents {
  clock: Clock
  rng: Rng
  log?: Logger
  /** @default createNftRunner(init.nftPath) */
  nft?: NftRunner
  /** Verified onet mappings (the OHT); without it `<onion>.onet` answers the derived address. */
  directory?: MappingDirectory
  /** @default os.networkInterfaces */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
  /** Whether the kernel forwards packets arriving on the interface. @default reads /proc/sys/net/ipv{4,6}/conf/<if>/forwarding */
  forwarding?: (iface: string) => Promise<boolean>
}

export type GatewayState = 'created' | 'active' | 'unavailable' | 'stopped'

export interface GatewayVmStatus {
  address: string
  /** From the configured hosts, when one names this address. */
  name?: string
  connections: { open: number, total: number, failed: number }
  bytesUp: number
  bytesDown: number
  /** tor circuits its streams used lately. */
  circuits: string[]
  dns: ResolverCounts
  /** Packets from this VM the firewall dropped (attempts to leave other than through tor). */
  dropped: PacketCount
}

export interface GatewayStatus {
  state: GatewayState
  error?: { code: string, message: string }
  interface: string
  address?: string
  address6?: string
  firewall: { table: string, rules: 'none' | 'active' | 'lockdown' | 'removed', present: boolean, reapplied: number, dropped: { input: PacketCount, forward: PacketCount }, error?: string }
  tor: { mode: 'launch' | 'attach', connected: boolean, transPort: number, transListening: boolean, dnsPort?: number, error?: string }
  dns: { listen: string[], totals: ResolverCounts }
  blocklist: { file?: string, names: number, skipped: number, loadedAt?: number, error?: string }
  connections: { open: number, total: number, failed: number }
  bytes: { up: number, down: number }
  vms: GatewayVmStatus[]
}

export function createGateway (init: GatewayInit, components: GatewayComponents): Gateway {
  return new Gateway(init, components)
}

function zeroCounts (): ResolverCounts {
  return { queries: 0, local: 0, blocked: 0, forwarded: 0, failed: 0, limited: 0, malformed: 0 }
}

function bad (message: string): OniError {
  return new OniError('ONI_GATEWAY_CONFIG', message)
}

function ipv4Bytes (text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number))
}

function cidr (text: string, family: 4 | 6, what: string): { addr: string, bits: number } {
  const [addr, bitsText] = text.split('/')
  const bits = Number(bitsText)
  const ok = family === 4 ? isIPv4(addr) && Number.isInteger(bits) && bits >= 8 && bits <= 24 : isIPv6(addr) && Number.isInteger(bits) && bits >= 16 && bits <= 104
  if (!ok) throw bad(`${what} ${JSON.stringify(text)} must be an IPv${family} network such as ${family === 4 ? DEFAULT_VIRTUAL_NETWORK : DEFAULT_VIRTUAL_NETWORK6}`)
  return { addr, bits }
}

function inNetwork4 (address: string, net: { addr: string, bits: number }): boolean {
  const a = ipv4Bytes(address)
  const n = ipv4Bytes(net.addr)
  const toInt = (b: Uint8Array): number => ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3]
  const mask = net.bits === 0 ? 0 : (~0 << (32 - net.bits)) >>> 0
  return ((toInt(a) & mask) >>> 0) === ((toInt(n) & mask) >>> 0)
}

/** Whether the kernel forwards for `iface`; when that cannot be read (a sandbox hiding /proc/sys), yes. */
async function procForwarding (iface: string): Promise<boolean> {
  const v4 = await readFile(`/proc/sys/net/ipv4/conf/${iface}/forwarding`, 'utf8').catch(() => '1')
  if (v4.trim() !== '0') return true
  // /proc/sys is visible (the IPv4 file was read): a missing IPv6 file means no IPv6 here.
  // IPv6 forwarding is decided by the global switch as much as by the interface's.
  for (const which of [iface, 'all']) {
    const v6 = await readFile(`/proc/sys/net/ipv6/conf/${which}/forwarding`, 'utf8').catch((err: NodeJS.ErrnoException) => err.code === 'ENOENT' ? '0' : '1')
    if (v6.trim() !== '0') return true
  }
  return false
}

export class Gateway {
  private _state: GatewayState = 'created'
  private error: OniError | undefined
  private readonly init: GatewayInit
  private readonly c: GatewayComponents
  private readonly log: Logger
  private readonly nft: NftRunner
  private readonly table: string
  private readonly transPort: number
  private readonly dnsPort: number
  private readonly hosts = new Map<string, Uint8Array[]>()
  private readonly names = new Map<string, string>()
  private readonly onet = new Map<string, string>()
  private spec: FirewallSpec | undefined
  private rules: GatewayStatus['firewall']['rules'] = 'none'
  private firewallError: string | undefined
  private blocklist: Blocklist = EMPTY_BLOCKLIST
  private blocklistLoadedAt: number | undefined
  private blocklistError: string | undefined
  private resolver: GatewayResolver | undefined
  private upstream: { host: string, port: number } | undefined
  private control: TorControl | undefined
  private unsubscribe: (() => void) | undefined
  private applied: AppliedTorSettings | undefined
  private torBaseline: ReadonlyMap<string, string[]> | undefined
  private transListening = false
  private torError: string | undefined
  private readonly accounting: StreamAccounting
  private counters: { at: number, value: FirewallCounters } | undefined
  private watchdog: TimerHandle | undefined
  private checking = false
  /** Times the rules were found missing and put back. */
  reapplied = 0

  constructor (init: GatewayInit, components: GatewayComponents) {
    this.init = init
    this.c = components
    this.log = components.log ?? makeLogger('oni:gateway')
    this.nft = components.nft ?? createNftRunner(init.nftPath ?? 'nft')
    this.table = init.table ?? DEFAULT_GATEWAY_TABLE
    this.transPort = init.transPort ?? DEFAULT_TRANS_PORT
    this.dnsPort = init.dnsPort ?? DEFAULT_GATEWAY_DNS_PORT
    this.accounting = new StreamAccounting({ isInside: (a) => this.isInside(a), clock: components.clock, maxVms: init.maxVms ?? 1_024 })
    for (const [rawName, value] of Object.entries(init.hosts ?? {})) {
      const name = rawName.toLowerCase().replace(/\.$/, '')
      if (!/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name) || name.length > 253) throw bad(`host name ${JSON.stringify(rawName)} is not a DNS name`)
      const addrs = (Array.isArray(value) ? value : [value]).map((a) => {
        if (isIPv4(a)) return ipv4Bytes(a)
        if (isIPv6(a)) return parseIpv6(a)
        throw bad(`host ${name}: ${JSON.stringify(a)} is not an IP address`)
      })
      if (addrs.length === 0) throw bad(`host ${name} needs at least one address`)
      this.hosts.set(name, addrs)
      for (const a of Array.isArray(value) ? value : [value]) if (!this.names.has(a)) this.names.set(a, name)
    }
    for (const [alias, onion] of Object.entries(init.onetNames ?? {})) {
      if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(alias)) throw bad(`onet name ${JSON.stringify(alias)} must be one label of [a-z0-9-]`)
      try { this.onet.set(alias, parseOnionAddress(onion).address) } catch (err) { throw bad(`onet name ${alias}: ${errorMessage(err)}`) }
    }
  }

  get state (): GatewayState { return this._state }

  /** The tor options a launched tor needs (after start()). */
  torrc (): Torrc {
    return gatewayTorrc(this.torSpec())
  }

  /** Applies the firewall and opens the resolver. Throws ONI_GATEWAY_*; status() then says why. */
  async start (options: AbortOptions = {}): Promise<void> {
    if (this._state !== 'created') throw new OniError('ONI_GATEWAY_CONFIG', 'a gateway starts once')
    try {
      this.spec = this.resolveSpec()
      validateFirewallSpec(this.spec)
      await this.loadBlocklistOrKeep(options)
      await applyRuleset(this.nft, renderGatewayRules(this.spec), options)
      this.rules = 'active'
      this.counters = undefined
      this.log('firewall rules applied (table inet %s, interface %s)', this.table, this.init.interface)
      const listen = [{ host: this.spec.address, port: this.dnsPort }]
      if (this.spec.address6 !== undefined) listen.push({ host: this.spec.address6, port: this.dnsPort })
      const resolver = createResolver({ listen, maxClients: this.init.maxVms ?? 1_024, timeoutMs: this.init.dnsTimeoutMs ?? 10_000 }, {
        clock: this.c.clock,
        rng: this.c.rng,
        zones: () => this.zones(),
        upstream: () => this.upstream,
        resolveOnet: async (name, opts) => await this.resolveOnet(name, opts),
        log: this.log.extend('dns')
      })
      try {
        await resolver.start(options)
      } catch (err) {
        // The rules stay closed: with no resolver, nothing may look as if it worked.
        await this.lockdown()
        throw err
      }
      this.resolver = resolver
      this._state = 'active'
      this.watchdog = this.c.clock.setInterval(() => { void this.check() }, this.init.checkIntervalMs ?? 5_000).unref()
    } catch (err) {
      this._state = 'unavailable'
      this.error = err instanceof OniError ? err : new OniError('ONI_GATEWAY_RULES', errorMessage(err), { cause: err })
      throw this.error
    }
  }

  /**
   * A (new) tor session: applies the options by SETCONF in attach mode, finds the DNSPort,
   * checks the TransPort and watches STREAM events. Failures are reported in status() and
   * thrown; the gateway stays closed meanwhile.
   */
  async torConnected (control: TorControl, options: AbortOptions = {}): Promise<void> {
    if (this._state !== 'active') return
    this.torLost()
    this.control = control
    try {
      if (this.init.torMode === 'attach') {
        this.applied = await applyTorSettings(control, this.torSpec(), { ...options, ...(this.torBaseline !== undefined ? { baseline: this.torBaseline } : {}) })
        this.torBaseline = this.applied.baseline
      }
      const trans = await torListeners(control, 'trans', options)
      const spec = this.spec as FirewallSpec
      this.transListening = trans.some(l => l.host === spec.address && l.port === this.transPort)
      if (!this.transListening) throw new OniError('ONI_GATEWAY_TOR', `tor has no TransPort on ${spec.address}:${this.transPort} (it listens on ${trans.map(l => `${l.host}:${l.port}`).join(', ') || 'none'})`)
      const dns = (await torListeners(control, 'dns', options)).find(l => l.host.startsWith('127.'))
      if (dns === undefined) throw new OniError('ONI_GATEWAY_TOR', 'tor has no DNSPort on loopback for the gateway resolver')
      const onEvent = (e: TorEvent): void => { this.accounting.onEvent(e) }
      this.unsubscribe = control.onEvent(onEvent)
      await control.addEvents(['STREAM', 'STREAM_BW'], options)
      this.upstream = dns
      this.torError = undefined
      this.log('tor ready for the gateway: TransPort %s:%d, DNSPort %s:%d', spec.address, this.transPort, dns.host, dns.port)
    } catch (err) {
      this.torError = errorMessage(err)
      this.upstream = undefined
      throw isCodedError(err) ? err : new OniError('ONI_GATEWAY_TOR', this.torError, { cause: err })
    }
  }

  /** tor went away (the rules stay; DNS now fails at once). */
  torLost (): void {
    this.upstream = undefined
    this.transListening = false
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.control = undefined
    this.applied = undefined
    this.accounting.torGone()
  }

  /** Re-reads the blocklist; on error the previous list stays in force. */
  async reload (options: AbortOptions = {}): Promise<{ names: number, skipped: number, error?: string }> {
    await this.loadBlocklistOrKeep(options)
    return { names: this.blocklist.size, skipped: this.blocklist.skipped, ...(this.blocklistError !== undefined ? { error: this.blocklistError } : {}) }
  }

  async stop (): Promise<void> {
    if (this._state === 'stopped') return
    const wasActive = this.rules === 'active'
    this._state = 'stopped'
    this.watchdog?.cancel()
    await this.resolver?.stop()
    const applied = this.applied
    this.torLost()
    if (applied !== undefined) await applied.restore().catch((err: unknown) => { this.log.warn(`could not put tor's options back: ${errorMessage(err)}`) })
    if (!wasActive || this.spec === undefined) return
    if (this.init.onStop === 'remove') {
      const forwards = await (this.c.forwarding ?? procForwarding)(this.init.interface).catch(() => true)
      if (!forwards) {
        try {
          await applyRuleset(this.nft, renderRemoval(this.table))
          this.rules = 'removed'
          return
        } catch (err) {
          this.firewallError = errorMessage(err)
        }
      } else {
        this.firewallError = `kept the lockdown rules: the kernel forwards packets from ${this.init.interface}, so removing them could route the VMs in the clear`
        this.log.warn(this.firewallError)
      }
    }
    await this.lockdown()
  }

  /** The status with fresh firewall counters (read from the kernel at most once a second). */
  async status (options: AbortOptions = {}): Promise<GatewayStatus> {
    await this.readCountersCached(options)
    return this.snapshot()
  }

  /** The status without waiting: firewall counters as last read (by status() or the rule check). */
  snapshot (): GatewayStatus {
    const counters = this.rules === 'none' || this.rules === 'removed' ? undefined : this.counters?.value
    const resolverClients = new Map((this.resolver?.clientStatus() ?? []).map(c => [c.address, c]))
    const streamVms = new Map(this.accounting.vms().map(v => [v.address, v]))
    const addresses = new Set<string>([...resolverClients.keys(), ...streamVms.keys(), ...(counters?.byAddress.keys() ?? [])])
    const vms: GatewayVmStatus[] = [...addresses].sort().map((address) => {
      const r = resolverClients.get(address)
      const s = streamVms.get(address)
      const name = this.names.get(address)
      const { address: _a, isolationAddress: _i, lastSeen: _l, ...dns } = r ?? { address, isolationAddress: '', lastSeen: 0, ...zeroCounts() }
      return {
        address,
        ...(name !== undefined ? { name } : {}),
        connections: { open: s?.open ?? 0, total: s?.total ?? 0, failed: s?.failed ?? 0 },
        bytesUp: s?.bytesUp ?? 0,
        bytesDown: s?.bytesDown ?? 0,
        circuits: s?.circuits ?? [],
        dns,
        dropped: counters?.byAddress.get(address) ?? { packets: 0, bytes: 0 }
      }
    })
    const t = this.accounting.totals
    return {
      state: this._state,
      ...(this.error !== undefined ? { error: { code: this.error.code, message: this.error.message } } : {}),
      interface: this.init.interface,
      ...(this.spec !== undefined ? { address: this.spec.address } : {}),
      ...(this.spec?.address6 !== undefined ? { address6: this.spec.address6 } : {}),
      firewall: {
        table: this.table,
        rules: this.rules,
        present: counters?.present ?? false,
        reapplied: this.reapplied,
        dropped: { input: counters?.droppedInput ?? { packets: 0, bytes: 0 }, forward: counters?.droppedForward ?? { packets: 0, bytes: 0 } },
        ...(this.firewallError !== undefined ? { error: this.firewallError } : {})
      },
      tor: {
        mode: this.init.torMode,
        connected: this.upstream !== undefined,
        transPort: this.transPort,
        transListening: this.transListening,
        ...(this.upstream !== undefined ? { dnsPort: this.upstream.port } : {}),
        ...(this.torError !== undefined ? { error: this.torError } : {})
      },
      dns: { listen: this.resolver !== undefined && this.spec !== undefined ? [this.spec.address, ...(this.spec.address6 !== undefined ? [`[${this.spec.address6}]`] : [])].map(h => `${h}:${this.dnsPort}`) : [], totals: { ...(this.resolver?.totals ?? zeroCounts()) } },
      blocklist: {
        ...(this.init.blocklistFile !== undefined ? { file: this.init.blocklistFile } : {}),
        names: this.blocklist.size,
        skipped: this.blocklist.skipped,
        ...(this.blocklistLoadedAt !== undefined ? { loadedAt: this.blocklistLoadedAt } : {}),
        ...(this.blocklistError !== undefined ? { error: this.blocklistError } : {})
      },
      connections: { open: t.open, total: t.total, failed: t.failed },
      bytes: { up: t.bytesUp, down: t.bytesDown },
      vms
    }
  }

  // ---- internals ----

  private torSpec (): TorGatewaySpec {
    const spec = this.spec
    if (spec === undefined) throw new OniError('ONI_GATEWAY_CONFIG', 'the gateway has not started: its inside address is not known yet')
    return {
      transListen: [`${spec.address}:${this.transPort}`, ...(spec.address6 !== undefined ? [`[${spec.address6}]:${this.transPort}`] : [])],
      virtualNetwork: this.init.virtualNetwork ?? DEFAULT_VIRTUAL_NETWORK,
      ...(this.init.ipv6 === true ? { virtualNetwork6: this.init.virtualNetwork6 ?? DEFAULT_VIRTUAL_NETWORK6 } : {})
    }
  }

  private resolveSpec (): FirewallSpec {
    const iface = this.init.interface
    checkInterfaceName(iface)
    const all = (this.c.networkInterfaces ?? osInterfaces)()
    const infos = all[iface]
    if (infos === undefined) throw new OniError('ONI_GATEWAY_INTERFACE', `the inside interface ${iface} does not exist or has no address: create it (or fix gateway.interface) and give it the router's inside address`)
    const v4 = infos.filter(i => i.family === 'IPv4').map(i => i.address)
    const address = this.init.address ?? v4[0]
    if (address === undefined) throw new OniError('ONI_GATEWAY_INTERFACE', `the inside interface ${iface} has no IPv4 address: give it the router's inside address`)
    if (!v4.includes(address)) throw new OniError('ONI_GATEWAY_INTERFACE', `${address} is not an address of ${iface} (it has ${v4.join(', ') || 'none'})`)
    let address6: string | undefined
    if (this.init.ipv6 === true) {
      const v6 = infos.filter(i => i.family === 'IPv6' && !i.address.toLowerCase().startsWith('fe80')).map(i => i.address)
      address6 = this.init.address6 ?? v6[0]
      if (address6 === undefined || !v6.includes(address6)) throw new OniError('ONI_GATEWAY_INTERFACE', `gateway.ipv6 needs an IPv6 address (global or ULA) on ${iface}${this.init.address6 !== undefined ? `: ${this.init.address6} is not one of its addresses` : ''}`)
      cidr(this.init.virtualNetwork6 ?? DEFAULT_VIRTUAL_NETWORK6, 6, 'virtual_network6')
    }
    const vnet = cidr(this.init.virtualNetwork ?? DEFAULT_VIRTUAL_NETWORK, 4, 'virtual_network')
    if (inNetwork4(address, vnet)) throw bad(`the inside address ${address} lies in the .onion virtual network ${vnet.addr}/${vnet.bits}: pick another virtual_network`)
    return {
      table: this.table,
      interface: iface,
      address,
      ...(address6 !== undefined ? { address6 } : {}),
      transPort: this.transPort,
      dnsPort: this.dnsPort,
      localTcpPorts: this.init.localTcpPorts ?? [],
      localUdpPorts: this.init.localUdpPorts ?? [],
      maxVms: this.init.maxVms ?? 1_024
    }
  }

  /** Puts the active rules back if they vanished from the kernel (an admin's flush, another tool). */
  private async check (): Promise<void> {
    if (this.checking || this._state !== 'active' || this.rules !== 'active' || this.spec === undefined) return
    this.checking = true
    try {
      const value = await readCounters(this.nft, this.table)
      this.counters = { at: this.c.clock.monotonic(), value }
      if (value.present || this._state !== 'active') return
      this.log.error(`the gateway rules vanished from the kernel (table inet ${this.table}); putting them back`)
      await applyRuleset(this.nft, renderGatewayRules(this.spec))
      this.reapplied++
      this.counters = undefined
    } catch (err) {
      this.log('rule check failed: %s', errorMessage(err))
    } finally {
      this.checking = false
    }
  }

  private async lockdown (): Promise<void> {
    if (this.spec === undefined) return
    try {
      await applyRuleset(this.nft, renderLockdownRules(this.spec))
      this.rules = 'lockdown'
      this.counters = undefined
    } catch (err) {
      // The active rules are still in the kernel (a failed transaction changes nothing): still closed.
      this.firewallError = `could not switch to the lockdown rules: ${errorMessage(err)}`
      this.log.error(this.firewallError)
    }
  }

  private zones (): Zones {
    return { blocklist: this.blocklist, hosts: this.hosts, ipv6: this.spec?.address6 !== undefined }
  }

  private isInside (address: string): boolean {
    // Streams on our TransPort come from inside by construction; loopback and tor's own are not VMs.
    return !address.startsWith('127.') && address !== '::1'
  }

  private async loadBlocklistOrKeep (options: AbortOptions): Promise<void> {
    const file = this.init.blocklistFile
    if (file === undefined) return
    try {
      this.blocklist = await loadBlocklist(file, options)
      this.blocklistLoadedAt = this.c.clock.now()
      this.blocklistError = undefined
      this.log('blocklist %s: %d names (%d lines skipped)', file, this.blocklist.size, this.blocklist.skipped)
    } catch (err) {
      this.blocklistError = errorMessage(err)
      this.log.warn(`blocklist not (re)loaded, keeping ${this.blocklist.size} names: ${this.blocklistError}`)
    }
  }

  private async resolveOnet (name: string, options: AbortOptions): Promise<Uint8Array | undefined> {
    const label = name.slice(0, -'.onet'.length)
    const onion = /^[a-z2-7]{56}$/.test(label) ? label : this.onet.get(label)
    if (onion === undefined) return undefined
    let publicKey: Uint8Array
    try { publicKey = parseOnionAddress(onion).publicKey } catch { return undefined }
    if (this.c.directory === undefined) return virtualAddressFromPublicKey(publicKey)
    const mapping = await this.c.directory.resolve(publicKey, options)
    return mapping?.address
  }

  private async readCountersCached (options: AbortOptions): Promise<FirewallCounters | undefined> {
    if (this.rules === 'none' || this.rules === 'removed') return undefined
    const now = this.c.clock.monotonic()
    if (this.counters !== undefined && now - this.counters.at < COUNTERS_MAX_AGE_MS) return this.counters.value
    try {
      const value = await readCounters(this.nft, this.table, options)
      this.counters = { at: now, value }
      return value
    } catch (err) {
      this.log('cannot read the firewall counters: %s', errorMessage(err))
      return this.counters?.value
    }
  }
}

