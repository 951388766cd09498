/**
 * Which names the gateway's resolver answers itself and which go to tor, decided per query
 * before any network is touched. In order:
 *
 *   class not IN, the root, qtype ANY     REFUSED / NOTIMP
 *   localhost, *.localhost                 127.0.0.1 / ::1 (RFC 6761)
 *   configured VM hostnames                their addresses (no data for the other family)
 *   blocklisted names and their children   0.0.0.0 / :: ("null" blocking: clients fail fast)
 *   *.onet                                 the onet address of that key (looked up by the resolver)
 *   local-only zones                       NXDOMAIN: .local, .home.arpa, .internal, .invalid,
 *                                          and reverse names of private, loopback and link-local
 *                                          ranges (RFC 6303): asking exits would publish them
 *   *.onion                                A to tor (AutomapHostsOnResolve gives a virtual
 *                                          address); AAAA to tor only with IPv6; a malformed
 *                                          onion name is NXDOMAIN
 *   anything else                          A, PTR (and AAAA with IPv6) to tor's DNSPort; other
 *                                          types NOTIMP (tor resolves only these)
 */
import { CLASS_IN, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_PTR } from './dns-wire.ts'
import type { Blocklist } from './blocklist.ts'

export type ZoneDecision =
  /** Answered here: `addresses` are 4- or 16-byte addresses already filtered by qtype. */
  | { kind: 'local', rcode: number, addresses: Uint8Array[], reason: 'hosts' | 'localhost' | 'reserved' | 'unsupported' | 'nodata' }
  | { kind: 'blocked', addresses: Uint8Array[] }
  | { kind: 'onet', name: string }
  | { kind: 'forward' }

export interface Zones {
  blocklist: Blocklist
  /** VM hostnames: lower-case name → addresses (4 or 16 bytes). */
  hosts: ReadonlyMap<string, Uint8Array[]>
  /** Whether AAAA for forwarded names goes to tor (IPv6 torified) or is answered with no data. */
  ipv6: boolean
}

const LOCALHOST4 = Uint8Array.of(127, 0, 0, 1)
const LOCALHOST6 = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
const NULL4 = new Uint8Array(4)
const NULL6 = new Uint8Array(16)
const LOCAL_ZONES = ['local', 'home.arpa', 'internal', 'invalid']
const ONION_RE = /^(?:[a-z0-9-]{1,63}\.)*[a-z2-7]{56}\.onion$/

function under (name: string, zone: string): boolean {
  return name === zone || name.endsWith('.' + zone)
}

function byType (qtype: number, addrs: Uint8Array[]): Uint8Array[] {
  return addrs.filter(a => (qtype === TYPE_A && a.byteLength === 4) || (qtype === TYPE_AAAA && a.byteLength === 16))
}

/** Reverse names of ranges that never leave the machine or the private network. */
export function isPrivateReverse (name: string): boolean {
  if (name.endsWith('.in-addr.arpa') || name === 'in-addr.arpa') {
    const octets = name.slice(0, -'in-addr.arpa'.length).split('.').filter(s => s !== '').reverse().map(Number)
    if (octets.length === 0 || octets.some(o => !Number.isInteger(o) || o < 0 || o > 255)) return true
    const [a, b] = octets
    if (a === 10 || a === 127 || a === 0) return true
    if (b === undefined) return a === 169 || a === 172 || a === 192 || a === 100
    return (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)
  }
  if (name.endsWith('.ip6.arpa') || name === 'ip6.arpa') {
    const nibbles = name.slice(0, -'ip6.arpa'.length).split('.').filter(s => s !== '').reverse().join('')
    if (nibbles.length === 0) return true
    // fc00::/7 (ULA), fe80::/10 (link-local), ::1 and the rest of ::/8
    if (nibbles[0] === 'f' && (nibbles.length < 2 || 'cd'.includes(nibbles[1]))) return true
    if (nibbles.startsWith('fe') && (nibbles.length < 3 || '89ab'.includes(nibbles[2]))) return true
    if (nibbles.startsWith('00')) return true
    return false
  }
  return false
}

export function decide (name: string, qtype: number, qclass: number, zones: Zones): ZoneDecision {
  if (qclass !== CLASS_IN || name === '') return { kind: 'local', rcode: RCODE_REFUSED, addresses: [], reason: 'unsupported' }
  if (qtype === TYPE_ANY) return { kind: 'local', rcode: RCODE_NOTIMP, addresses: [], reason: 'unsupported' }
  if (under(name, 'localhost')) return { kind: 'local', rcode: RCODE_NOERROR, addresses: byType(qtype, [LOCALHOST4, LOCALHOST6]), reason: 'localhost' }
  const host = zones.hosts.get(name)
  if (host !== undefined) return { kind: 'local', rcode: RCODE_NOERROR, addresses: byType(qtype, host), reason: 'hosts' }
  if (zones.blocklist.blocks(name)) return { kind: 'blocked', addresses: byType(qtype, [NULL4, NULL6]) }
  if (under(name, 'onet')) return { kind: 'onet', name }
  if (LOCAL_ZONES.some(z => under(name, z)) || isPrivateReverse(name)) return { kind: 'local', rcode: RCODE_NXDOMAIN, addresses: [], reason: 'reserved' }
  if (under(name, 'onion')) {
    if (!ONION_RE.test(name)) return { kind: 'local', rcode: RCODE_NXDOMAIN, addresses: [], reason: 'reserved' }
    if (qtype === TYPE_A || (qtype === TYPE_AAAA && zones.ipv6)) return { kind: 'forward' }
    return { kind: 'local', rcode: RCODE_NOERROR, addresses: [], reason: 'nodata' }
  }
  if (qtype === TYPE_A || qtype === TYPE_PTR) return { kind: 'forward' }
  if (qtype === TYPE_AAAA) return zones.ipv6 ? { kind: 'forward' } : { kind: 'local', rcode: RCODE_NOERROR, addresses: [], reason: 'nodata' }
  return { kind: 'local', rcode: RCODE_NOTIMP, addresses: [], reason: 'unsupported' }
}
