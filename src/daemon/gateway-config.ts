/**
 * The `[gateway]` section of the daemon's config: router-VM gateway mode (src/oni/gateway).
 * Validated field by field like the rest of the config; unknown fields are errors and every
 * message names the file and the field (`oht.toml: gateway.trans_port must be …`).
 *
 * ```toml
 * [gateway]
 * enabled = true
 * interface = "br-vms"              # the VMs' side of the router (a bridge for several VMs)
 * # address = "10.152.152.10"       # the router's address on it; default: its first IPv4 address
 * # trans_port = 9040               # tor's TransPort on that address
 * # dns_port = 9053                 # the gateway resolver (all DNS from inside is sent here)
 * # virtual_network = "10.192.0.0/10"   # virtual addresses for .onion names
 * # ipv6 = false                    # true: torify IPv6 too (needs an IPv6 address on the interface)
 * # address6 = "fd00:152::10"
 * # virtual_network6 = "fdc0:7e11:ab0::/48"
 * # blocklist_file = "/etc/multiverse/blocklist.hosts"   # hosts format; reloaded on SIGHUP
 * # on_stop = "block"               # block: VMs stay cut off after a stop | remove: delete the rules
 * # table = "oht_gateway"           # nftables table (family inet)
 * # nft_path = "nft"
 * # local_tcp_ports = [22]          # router ports VMs may reach directly (not through tor)
 * # local_udp_ports = [67]
 * # max_vms = 1024
 * # [gateway.hosts]                 # Multiverse VM hostnames answered by the resolver
 * # "files.vm" = "10.152.152.21"
 * # [gateway.onet_names]            # <alias>.onet → an onion address (its verified onet address)
 * # peer = "<56 characters>.onion"
 * ```
 */
import { isIPv4, isIPv6 } from 'node:net'
import { isAbsolute, join } from 'node:path'
import { DaemonError } from './errors.ts'

export interface GatewayConfig {
  /** @default false */
  enabled: boolean
  /** Required when enabled. */
  interface?: string
  /** @default the interface's first IPv4 address */
  address?: string
  /** @default 9040 */
  transPort: number
  /** @default 9053 */
  dnsPort: number
  /** @default '10.192.0.0/10' */
  virtualNetwork: string
  /** @default false */
  ipv6: boolean
  /** @default the interface's first global/ULA IPv6 address (with ipv6) */
  address6?: string
  /** @default 'fdc0:7e11:ab0::/48' */
  virtualNetwork6: string
  /** @default {} */
  hosts: Record<string, string[]>
  /** @default {} */
  onetNames: Record<string, string>
  /** @default undefined (no blocklist) */
  blocklistFile?: string
  /** @default 'block' */
  onStop: 'block' | 'remove'
  /** @default 'oht_gateway' */
  table: string
  /** @default 'nft' */
  nftPath: string
  /** @default [] */
  localTcpPorts: number[]
  /** @default [] */
  localUdpPorts: number[]
  /** @default 1024 */
  maxVms: number
}

/** torrc options the gateway owns: setting them in [tor.torrc] as well is a config error. */
export const GATEWAY_OWNED_TORRC = ['transport', 'dnsport', 'automaphostsonresolve', 'automaphostssuffixes', 'virtualaddrnetworkipv4', 'virtualaddrnetworkipv6']

type Raw = Record<string, unknown>

function isTable (v: unknown): v is Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a table'
  return `${typeof v} ${JSON.stringify(v)}`
}

const KNOWN = ['enabled', 'interface', 'address', 'trans_port', 'dns_port', 'virtual_network', 'ipv6', 'address6', 'virtual_network6', 'hosts', 'onet_names', 'blocklist_file', 'on_stop', 'table', 'nft_path', 'local_tcp_ports', 'local_udp_ports', 'max_vms']
const HOST_RE = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** Parses `[gateway]` (undefined = absent). Throws DaemonError DAEMON_CONFIG naming the field. */
export function parseGatewaySection (source: string, raw: unknown, stateDir: string): GatewayConfig {
  const fail = (field: string, what: string): never => { throw new DaemonError('DAEMON_CONFIG', `${source}: gateway.${field} ${what}`) }
  if (raw !== undefined && !isTable(raw)) throw new DaemonError('DAEMON_CONFIG', `${source}: [gateway] must be a table, got ${describe(raw)}`)
  const g: Raw = raw ?? {}
  for (const k of Object.keys(g)) if (!KNOWN.includes(k)) fail(k, 'is not a known setting (see docs/daemon.md)')
  const str = (f: string): string | undefined => {
    const v = g[f]
    if (v === undefined || v === '') return undefined
    if (typeof v !== 'string') return fail(f, `must be a string, got ${describe(v)}`)
    if (v.includes('\0')) return fail(f, 'must not contain NUL bytes')
    return v
  }
  const bool = (f: string): boolean | undefined => {
    const v = g[f]
    if (v === undefined) return undefined
    if (typeof v !== 'boolean') return fail(f, `must be true or false, got ${describe(v)}`)
    return v
  }
  const int = (f: string, min: number, max: number): number | undefined => {
    const v = g[f]
    if (v === undefined) return undefined
    const n = typeof v === 'bigint' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isInteger(n)) return fail(f, `must be a whole number, got ${describe(v)}`)
    if (n < min || n > max) return fail(f, `must be between ${min} and ${max}, got ${n}`)
    return n
  }
  const ports = (f: string): number[] => {
    const v = g[f]
    if (v === undefined) return []
    if (!Array.isArray(v)) return fail(f, `must be a list of ports, got ${describe(v)}`)
    return v.map((x, i) => {
      const n = typeof x === 'bigint' ? Number(x) : x
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) return fail(`${f}[${i}]`, `must be a port (1-65535), got ${describe(x)}`)
      if (n === 53) return fail(`${f}[${i}]`, 'cannot be 53: DNS from inside always goes to the gateway resolver')
      return n
    })
  }

  const enabled = bool('enabled') ?? false
  const iface = str('interface')
  if (iface !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(iface)) fail('interface', `must be a Linux interface name (1-15 of [A-Za-z0-9_.-]), got ${JSON.stringify(iface)}`)
  if (enabled && iface === undefined) fail('interface', 'must be set when the gateway is enabled: the inside interface, the VMs\' side of the router (e.g. "br-vms")')
  const address = str('address')
  if (address !== undefined && !isIPv4(address)) fail('address', `must be an IPv4 address, got ${JSON.stringify(address)}`)
  const address6 = str('address6')
  if (address6 !== undefined && !isIPv6(address6)) fail('address6', `must be an IPv6 address, got ${JSON.stringify(address6)}`)
  const transPort = int('trans_port', 1, 65535) ?? 9040
  const dnsPort = int('dns_port', 1, 65535) ?? 9053
  if (transPort === dnsPort) fail('dns_port', 'must differ from gateway.trans_port')
  const virtualNetwork = str('virtual_network') ?? '10.192.0.0/10'
  {
    const [a, bits] = virtualNetwork.split('/')
    if (!isIPv4(a) || !/^\d+$/.test(bits ?? '') || Number(bits) < 8 || Number(bits) > 24) fail('virtual_network', `must be an IPv4 network of /8 to /24 such as "10.192.0.0/10", got ${JSON.stringify(virtualNetwork)}`)
  }
  const ipv6 = bool('ipv6') ?? false
  const virtualNetwork6 = str('virtual_network6') ?? 'fdc0:7e11:ab0::/48'
  {
    const [a, bits] = virtualNetwork6.split('/')
    if (!isIPv6(a) || !/^\d+$/.test(bits ?? '') || Number(bits) < 16 || Number(bits) > 104) fail('virtual_network6', `must be an IPv6 network of /16 to /104 such as "fdc0:7e11:ab0::/48", got ${JSON.stringify(virtualNetwork6)}`)
  }
  if (address6 !== undefined && !ipv6) fail('address6', 'only applies with gateway.ipv6 = true')

  const hosts: Record<string, string[]> = {}
  const hostsRaw = g.hosts
  if (hostsRaw !== undefined) {
    if (!isTable(hostsRaw)) fail('hosts', `must be a table of name = address, got ${describe(hostsRaw)}`)
    for (const [name, v] of Object.entries(hostsRaw as Raw)) {
      const n = name.toLowerCase().replace(/\.$/, '')
      if (!HOST_RE.test(n) || n.length > 253) fail(`hosts.${name}`, 'is not a DNS name')
      const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined
      if (list === undefined || list.length === 0 || list.some(a => typeof a !== 'string' || (!isIPv4(a) && !isIPv6(a)))) fail(`hosts.${name}`, 'must be an IP address or a list of them')
      hosts[n] = list as string[]
    }
  }
  const onetNames: Record<string, string> = {}
  const onetRaw = g.onet_names
  if (onetRaw !== undefined) {
    if (!isTable(onetRaw)) fail('onet_names', `must be a table of alias = onion address, got ${describe(onetRaw)}`)
    for (const [alias, v] of Object.entries(onetRaw as Raw)) {
      if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(alias)) fail(`onet_names.${alias}`, 'must be one label of [a-z0-9-]')
      if (typeof v !== 'string' || !/^[a-z2-7]{56}(\.onion)?$/.test(v.toLowerCase())) fail(`onet_names.${alias}`, 'must be a v3 onion address (56 characters, optionally with .onion)')
      onetNames[alias] = (v as string).toLowerCase()
    }
  }
  const blocklist = str('blocklist_file')
  const onStopText = str('on_stop') ?? 'block'
  if (onStopText !== 'block' && onStopText !== 'remove') fail('on_stop', `must be one of "block", "remove", got "${onStopText}"`)
  const table = str('table') ?? 'oht_gateway'
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(table)) fail('table', `must be 1-32 of [a-z0-9_] starting with a letter, got ${JSON.stringify(table)}`)
  const nftPath = str('nft_path') ?? 'nft'
  const localTcpPorts = ports('local_tcp_ports')
  const localUdpPorts = ports('local_udp_ports')
  if (localTcpPorts.includes(transPort) || localTcpPorts.includes(dnsPort)) fail('local_tcp_ports', 'cannot hold the TransPort or the resolver port')
  if (localUdpPorts.includes(dnsPort)) fail('local_udp_ports', 'cannot hold the resolver port')
  const maxVms = int('max_vms', 1, 65_000) ?? 1024

  return {
    enabled,
    ...(iface !== undefined ? { interface: iface } : {}),
    ...(address !== undefined ? { address } : {}),
    transPort,
    dnsPort,
    virtualNetwork,
    ipv6,
    ...(address6 !== undefined ? { address6 } : {}),
    virtualNetwork6,
    hosts,
    onetNames,
    ...(blocklist !== undefined ? { blocklistFile: isAbsolute(blocklist) ? blocklist : join(stateDir, blocklist) } : {}),
    onStop: onStopText as 'block' | 'remove',
    table,
    nftPath,
    localTcpPorts,
    localUdpPorts,
    maxVms
  }
}
