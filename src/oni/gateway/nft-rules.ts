/**
 * The gateway's nftables rules, as text for one `nft -f` transaction. Three rulesets, each of
 * which replaces whatever table of that name was there before (`table …{}` then `delete table`
 * then the new table, all in one transaction: the kernel swaps them atomically or not at all):
 *
 * - active: DNS from the inside interface (UDP and TCP port 53, to any address) is DNATed to
 *   the router's resolver, every other TCP connection to tor's TransPort, and nothing else is
 *   accepted or forwarded. The forward drop does not depend on any process: with tor dead or
 *   the daemon killed the rules stay in the kernel and inside traffic still goes nowhere.
 * - lockdown: what a clean stop leaves by default. Nothing redirected, nothing forwarded, only
 *   the router's configured local ports reachable; VMs are cut off, never routed in the clear.
 * - removal: the table deleted (only when the router does not forward for the interface).
 *
 * Our chains have `policy accept` and drop only what comes from or goes to the inside
 * interface: the rest of the machine is not touched. A drop in any base chain is final in
 * nftables, so another table's accept cannot undo ours.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { OniError } from '../errors.ts'

export interface FirewallSpec {
  /** nftables table (family inet). */
  table: string
  /** The inside interface: the VMs' side. */
  interface: string
  /** The router's IPv4 address on the inside interface (DNAT target). */
  address: string
  /** The router's IPv6 address on the inside interface; set only when IPv6 is torified. */
  address6?: string
  /** tor's TransPort on the inside address. */
  transPort: number
  /** The resolver's port (UDP and TCP) on the inside address. */
  dnsPort: number
  /** Ports of the router itself the VMs may reach directly (not torified), e.g. 22. */
  localTcpPorts: number[]
  /** e.g. 67 for a DHCP server on the router. */
  localUdpPorts: number[]
  /** Size of the per-VM drop counter sets. */
  maxVms: number
}

const TABLE_RE = /^[a-z][a-z0-9_]{0,31}$/
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/
/** Pings to the router itself, per second (diagnostics, not a flood reflector). */
const PING_RATE_PER_S = 10

function bad (message: string): OniError {
  return new OniError('ONI_GATEWAY_CONFIG', message)
}

function checkPort (what: string, p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw bad(`${what} ${p} is not a port (1-65535)`)
}

/** Checks every value that goes into rule text; throws ONI_GATEWAY_CONFIG. */
export function validateFirewallSpec (spec: FirewallSpec): void {
  if (!TABLE_RE.test(spec.table)) throw bad(`table name ${JSON.stringify(spec.table)} must be 1-32 of [a-z0-9_], starting with a letter`)
  checkInterfaceName(spec.interface)
  if (!isIPv4(spec.address)) throw bad(`inside address ${JSON.stringify(spec.address)} is not an IPv4 address`)
  if (spec.address6 !== undefined && !isIPv6(spec.address6)) throw bad(`inside IPv6 address ${JSON.stringify(spec.address6)} is not an IPv6 address`)
  checkPort('trans port', spec.transPort)
  checkPort('dns port', spec.dnsPort)
  if (spec.transPort === spec.dnsPort) throw bad('the TransPort and the resolver port must differ')
  for (const p of spec.localTcpPorts) checkPort('local TCP port', p)
  for (const p of spec.localUdpPorts) checkPort('local UDP port', p)
  if (spec.localTcpPorts.includes(spec.transPort) || spec.localTcpPorts.includes(spec.dnsPort)) throw bad('a local TCP port cannot be the TransPort or the resolver port')
  if (spec.localUdpPorts.includes(spec.dnsPort)) throw bad('a local UDP port cannot be the resolver port')
  if (spec.localTcpPorts.includes(53) || spec.localUdpPorts.includes(53)) throw bad('port 53 cannot be a local port: DNS from inside always goes to the gateway\'s resolver')
  if (!Number.isInteger(spec.maxVms) || spec.maxVms < 1 || spec.maxVms > 65536) throw bad(`max VMs ${spec.maxVms} must be 1-65536`)
}

export function checkInterfaceName (name: string): void {
  if (!IFNAME_RE.test(name)) throw bad(`interface name ${JSON.stringify(name)} is not a Linux interface name (1-15 of [A-Za-z0-9_.-])`)
}

function set (ports: number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b)
  return `{ ${sorted.join(', ')} }`
}

function replaceTable (table: string): string[] {
  return [`table inet ${table} {}`, `delete table inet ${table}`]
}

function counters (): string[] {
  return [
    '\tcounter dropped_input {}',
    '\tcounter dropped_forward {}',
    ''
  ]
}

function dropSets (maxVms: number): string[] {
  const body = (type: string): string[] => [`\t\ttype ${type}`, `\t\tsize ${maxVms}`, '\t\tflags dynamic,timeout', '\t\ttimeout 1h', '\t\tcounter']
  return [
    '\t# Dropped packets per inside source address (oht gateway status).',
    '\tset vm_drops4 {', ...body('ipv4_addr'), '\t}',
    '\tset vm_drops6 {', ...body('ipv6_addr'), '\t}',
    ''
  ]
}

/** Per-VM accounting, then the final drop with a named counter. */
function dropLines (ifq: string, counter: string): string[] {
  return [
    `\t\tiifname ${ifq} meta nfproto ipv4 update @vm_drops4 { ip saddr } counter name "${counter}" drop`,
    `\t\tiifname ${ifq} meta nfproto ipv6 update @vm_drops6 { ip6 saddr } counter name "${counter}" drop`,
    `\t\tiifname ${ifq} counter name "${counter}" drop`
  ]
}

/**
 * The router's own services VMs may use. TCP is matched on the router's inside address (the
 * nat chain lets exactly that through un-redirected); UDP on any destination the input hook
 * sees, so broadcasts (DHCP) reach the router too.
 */
function localPortLines (ifq: string, spec: Pick<FirewallSpec, 'address' | 'address6' | 'localTcpPorts' | 'localUdpPorts'>, verdict: 'accept' | 'return'): string[] {
  const out: string[] = []
  const families: Array<[string, string]> = [['ip', spec.address]]
  if (spec.address6 !== undefined) families.push(['ip6', spec.address6])
  if (spec.localTcpPorts.length > 0) {
    for (const [fam, addr] of families) out.push(`\t\tiifname ${ifq} ${fam} daddr ${addr} tcp dport ${set(spec.localTcpPorts)} ${verdict}`)
  }
  if (spec.localUdpPorts.length > 0 && verdict === 'accept') out.push(`\t\tiifname ${ifq} udp dport ${set(spec.localUdpPorts)} accept`)
  return out
}

/** The active ruleset (see the file comment). */
export function renderGatewayRules (spec: FirewallSpec): string {
  validateFirewallSpec(spec)
  const ifq = JSON.stringify(spec.interface)
  const { table, address: a4, address6: a6, transPort: tp, dnsPort: dp } = spec
  const nat: string[] = [
    ...localPortLines(ifq, spec, 'return'),
    `\t\tiifname ${ifq} meta nfproto ipv4 udp dport 53 dnat ip to ${a4}:${dp}`,
    `\t\tiifname ${ifq} meta nfproto ipv4 tcp dport 53 dnat ip to ${a4}:${dp}`,
    `\t\tiifname ${ifq} meta nfproto ipv4 meta l4proto tcp dnat ip to ${a4}:${tp}`
  ]
  const input: string[] = [
    // The TransPort and the resolver serve the inside only: reached from any other interface
    // (the router answers for all its addresses) they would be an open Tor proxy.
    `\t\tiifname != ${ifq} ip daddr ${a4} tcp dport ${set([tp, dp])} counter name "dropped_input" drop`,
    `\t\tiifname != ${ifq} ip daddr ${a4} udp dport ${dp} counter name "dropped_input" drop`,
    ...(a6 !== undefined
      ? [`\t\tiifname != ${ifq} ip6 daddr ${a6} tcp dport ${set([tp, dp])} counter name "dropped_input" drop`, `\t\tiifname != ${ifq} ip6 daddr ${a6} udp dport ${dp} counter name "dropped_input" drop`]
      : []),
    `\t\tiifname ${ifq} ct state invalid counter name "dropped_input" drop`,
    `\t\tiifname ${ifq} ct state established,related accept`,
    `\t\tiifname ${ifq} ip daddr ${a4} udp dport ${dp} accept`,
    `\t\tiifname ${ifq} ip daddr ${a4} tcp dport ${set([tp, dp])} accept`,
    `\t\tiifname ${ifq} ip daddr ${a4} icmp type echo-request limit rate ${PING_RATE_PER_S}/second accept`
  ]
  if (a6 !== undefined) {
    nat.push(
      `\t\tiifname ${ifq} meta nfproto ipv6 udp dport 53 dnat ip6 to [${a6}]:${dp}`,
      `\t\tiifname ${ifq} meta nfproto ipv6 tcp dport 53 dnat ip6 to [${a6}]:${dp}`,
      `\t\tiifname ${ifq} meta nfproto ipv6 meta l4proto tcp dnat ip6 to [${a6}]:${tp}`
    )
    input.push(
      `\t\tiifname ${ifq} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept`,
      `\t\tiifname ${ifq} ip6 daddr ${a6} udp dport ${dp} accept`,
      `\t\tiifname ${ifq} ip6 daddr ${a6} tcp dport ${set([tp, dp])} accept`,
      `\t\tiifname ${ifq} ip6 daddr ${a6} icmpv6 type echo-request limit rate ${PING_RATE_PER_S}/second accept`
    )
  }
  input.push(...localPortLines(ifq, spec, 'accept'), ...dropLines(ifq, 'dropped_input'))
  return [
    `# oht gateway (active): transparent Tor for the VMs behind ${ifq}. Generated; do not edit.`,
    ...replaceTable(table),
    `table inet ${table} {`,
    ...counters(),
    ...dropSets(spec.maxVms),
    '\t# DNS to any address goes to the router\'s resolver; every other TCP connection to tor\'s TransPort.',
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat - 10; policy accept;',
    ...nat,
    '\t}',
    '',
    '\t# From inside the router accepts replies, its resolver, the TransPort and pings to itself.',
    '\tchain input {',
    '\t\ttype filter hook input priority filter - 10; policy accept;',
    ...input,
    '\t}',
    '',
    '\t# Nothing is ever routed to or from inside: there is no path in the clear.',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter - 10; policy accept;',
    ...dropLines(ifq, 'dropped_forward'),
    `\t\toifname ${ifq} counter name "dropped_forward" drop`,
    '\t}',
    '}',
    ''
  ].join('\n')
}

/** What a clean stop leaves by default: nothing redirected, nothing forwarded. */
export function renderLockdownRules (spec: FirewallSpec): string {
  validateFirewallSpec(spec)
  const ifq = JSON.stringify(spec.interface)
  const { table } = spec
  return [
    `# oht gateway (lockdown): the gateway is stopped; the VMs behind ${ifq} are cut off. Generated; do not edit.`,
    `# Remove with: nft delete table inet ${table}   (only if this router does not forward for ${ifq})`,
    ...replaceTable(table),
    `table inet ${table} {`,
    ...counters(),
    ...dropSets(spec.maxVms),
    '\tchain input {',
    '\t\ttype filter hook input priority filter - 10; policy accept;',
    ...localPortLines(ifq, spec, 'accept'),
    `\t\tiifname ${ifq} ct state established,related accept`,
    ...dropLines(ifq, 'dropped_input'),
    '\t}',
    '',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter - 10; policy accept;',
    ...dropLines(ifq, 'dropped_forward'),
    `\t\toifname ${ifq} counter name "dropped_forward" drop`,
    '\t}',
    '}',
    ''
  ].join('\n')
}

/** Deletes the table; succeeds whether or not it exists. */
export function renderRemoval (table: string): string {
  if (!TABLE_RE.test(table)) throw bad(`table name ${JSON.stringify(table)} must be 1-32 of [a-z0-9_], starting with a letter`)
  return [...replaceTable(table), ''].join('\n')
}
