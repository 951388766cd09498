/**
 * Virtual IPv6 addresses for onion peers on the onet interface.
 *
 *    byte  0      1      2 ............................. 15
 *        +------+------+-----------------------------------+
 *        | 0xfd | 0x6f |  SHA-256(publicKey)[0..14]        |
 *        +------+------+-----------------------------------+
 *          ULA (RFC 4193, fd00::/8) with the fixed global-id byte 0x6f ('o'):
 *          every onet address lives in fd6f::/16; the other 112 bits are the first
 *          14 bytes of SHA-256 of the peer's 32-byte Ed25519 onion public key.
 *
 * The address is a commitment to the key, not an address anyone may pick: a peer's packets are
 * accepted only with the source address derived from the key it proved on the link, and a
 * mapping record (mapping.ts) is accepted only when signed by that key. 112 bits make a second
 * key hitting the same address a 2^112 search. Since OHT node ids are SHA-256(publicKey) too,
 * an onet address is also the top 112 bits of that peer's DHT node id.
 *
 * fd6f::53 (all-zero hash bits except 0x53) is the interface's own DNS responder (dns.ts).
 */
import { createHash } from 'node:crypto'
import { OniError } from './errors.ts'

export const ONET_PREFIX_BYTES = Uint8Array.of(0xfd, 0x6f)
export const ONET_PREFIX = 'fd6f::/16'
export const ONET_PREFIX_LENGTH = 16
/** Where the interface's DNS responder answers for `<name>.onet`. */
export const ONET_DNS_ADDRESS = 'fd6f::53'
export const IPV6_BYTES = 16

/** The onet address of the peer whose onion key is `publicKey` (32 bytes). */
export function virtualAddressFromPublicKey (publicKey: Uint8Array): Uint8Array {
  if (publicKey.byteLength !== 32) throw new OniError('ONI_BAD_ARGUMENT', `an onion public key is 32 bytes, got ${publicKey.byteLength}`)
  const h = createHash('sha256').update(publicKey).digest()
  const out = new Uint8Array(IPV6_BYTES)
  out.set(ONET_PREFIX_BYTES, 0)
  out.set(h.subarray(0, IPV6_BYTES - ONET_PREFIX_BYTES.byteLength), ONET_PREFIX_BYTES.byteLength)
  return out
}

/** True when `addr` (16 bytes) lies in fd6f::/16. */
export function isOnetAddress (addr: Uint8Array): boolean {
  return addr.byteLength === IPV6_BYTES && addr[0] === ONET_PREFIX_BYTES[0] && addr[1] === ONET_PREFIX_BYTES[1]
}

/** RFC 5952 text form: lower case, longest run (≥ 2) of zero groups compressed to `::`. */
export function formatIpv6 (addr: Uint8Array): string {
  if (addr.byteLength !== IPV6_BYTES) throw new OniError('ONI_BAD_ARGUMENT', `an IPv6 address is 16 bytes, got ${addr.byteLength}`)
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((addr[i] << 8) | addr[i + 1])
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map(g => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':')
}

/** Parses an IPv6 literal (no zone, no embedded IPv4). Throws ONI_BAD_ARGUMENT. */
export function parseIpv6 (text: string): Uint8Array {
  const bad = (): OniError => new OniError('ONI_BAD_ARGUMENT', `not an IPv6 address: ${JSON.stringify(text.slice(0, 64))}`)
  if (text.length > 39 || text.length < 2) throw bad()
  const halves = text.toLowerCase().split('::')
  if (halves.length > 2) throw bad()
  const parse = (s: string): number[] => {
    if (s === '') return []
    return s.split(':').map(g => {
      if (!/^[0-9a-f]{1,4}$/.test(g)) throw bad()
      return parseInt(g, 16)
    })
  }
  const head = parse(halves[0])
  const tail = halves.length === 2 ? parse(halves[1]) : []
  if (halves.length === 1 && head.length !== 8) throw bad()
  if (halves.length === 2 && head.length + tail.length > 7) throw bad()
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff })
  return out
}
