/**
 * SOCKS5 server-side message parsers (RFC 1928, username/password RFC 1929). Each parser takes
 * the bytes received so far and returns `undefined` when more are needed, the message and the
 * bytes it used when complete, or throws OniError ONI_SOCKS_PROTOCOL when the bytes can never
 * form a valid message. Every message has a fixed upper size, so buffers stay small.
 *
 *   greeting   05 NMETHODS(1..255) METHODS…                    ≤ 257 bytes
 *   auth       01 ULEN(1..255) UNAME PLEN(0..255) PASSWD       ≤ 513 bytes
 *   request    05 CMD 00 ATYP DST.ADDR DST.PORT(2)             ≤ 262 bytes
 *              ATYP 01 = IPv4 (4), 03 = domain (1 + len), 04 = IPv6 (16)
 *   reply      05 REP 00 01 0.0.0.0 port 0                     10 bytes
 */
import { OniError } from './errors.ts'
import { formatIpv6 } from './virtual-address.ts'

export const SOCKS_VERSION = 0x05
export const METHOD_NONE = 0x00
export const METHOD_USERPASS = 0x02
export const METHOD_UNACCEPTABLE = 0xff
export const CMD_CONNECT = 0x01

/** RFC 1928 reply codes. tor's extended codes 0xF0–0xF7 are passed through unchanged. */
export const REP = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08
} as const

/** The largest greeting: 05 NMETHODS(255) METHODS. */
export const MAX_GREETING_BYTES = 2 + 255
/** The largest RFC 1929 sub-negotiation: 01 ULEN(255) UNAME PLEN(255) PASSWD. */
export const MAX_USERPASS_BYTES = 3 + 255 + 255
/** The largest CONNECT request: a 255-byte domain name. */
export const MAX_REQUEST_BYTES = 5 + 255 + 2
/**
 * The largest single handshake message. The limit applies per message: a client may pipeline
 * a greeting, credentials and a request in one write (up to 1,032 bytes), all legal.
 */
export const MAX_HANDSHAKE_MESSAGE_BYTES = MAX_USERPASS_BYTES

export interface Parsed<T> { value: T, used: number }

function protocolError (message: string, rep?: number): OniError & { socksReply?: number } {
  const e = new OniError('ONI_SOCKS_PROTOCOL', message) as OniError & { socksReply?: number }
  if (rep !== undefined) e.socksReply = rep
  return e
}

export function parseGreeting (buf: Uint8Array): Parsed<number[]> | undefined {
  if (buf.byteLength < 2) return undefined
  if (buf[0] !== SOCKS_VERSION) throw protocolError(`client speaks SOCKS version ${buf[0]}, only 5 is served`)
  const n = buf[1]
  if (n === 0) throw protocolError('client offered no authentication method')
  if (buf.byteLength < 2 + n) return undefined
  return { value: [...buf.subarray(2, 2 + n)], used: 2 + n }
}

export interface Credentials { username: string, password: string }

export function parseUserPass (buf: Uint8Array): Parsed<Credentials> | undefined {
  if (buf.byteLength < 2) return undefined
  if (buf[0] !== 0x01) throw protocolError(`username/password sub-negotiation version ${buf[0]}, expected 1`)
  const ulen = buf[1]
  if (ulen === 0) throw protocolError('empty SOCKS username')
  if (buf.byteLength < 2 + ulen + 1) return undefined
  const plen = buf[2 + ulen]
  const end = 3 + ulen + plen
  if (buf.byteLength < end) return undefined
  const dec = new TextDecoder('utf-8', { fatal: false })
  return { value: { username: dec.decode(buf.subarray(2, 2 + ulen)), password: dec.decode(buf.subarray(3 + ulen, end)) }, used: end }
}

export type DestinationKind = 'onion' | 'domain' | 'ipv4' | 'ipv6'

export interface SocksRequest {
  command: number
  kind: DestinationKind
  /** A domain name exactly as the client sent it (never resolved here), or an IP literal. */
  host: string
  port: number
}

/** A domain name as tor accepts it: LDH labels, dots, optional trailing dot; no spaces or NULs. */
const DOMAIN_RE = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/

/**
 * Parses a CONNECT request. Errors carry `socksReply`: the code to answer with before closing
 * (0x07 other commands, 0x08 unknown address types, 0x01 malformed names).
 */
export function parseRequest (buf: Uint8Array): Parsed<SocksRequest> | undefined {
  if (buf.byteLength < 5) return undefined
  if (buf[0] !== SOCKS_VERSION) throw protocolError(`request version ${buf[0]}, expected 5`, REP.GENERAL_FAILURE)
  const command = buf[1]
  const atyp = buf[3]
  let addrLen: number
  let addrOff = 4
  if (atyp === 0x01) addrLen = 4
  else if (atyp === 0x04) addrLen = 16
  else if (atyp === 0x03) { addrLen = buf[4]; addrOff = 5 }
  else throw protocolError(`address type ${atyp} is not supported`, REP.ADDRESS_TYPE_NOT_SUPPORTED)
  const end = addrOff + addrLen + 2
  if (buf.byteLength < end) return undefined
  if (command !== CMD_CONNECT) throw protocolError(`SOCKS command ${command} is not supported (only CONNECT)`, REP.COMMAND_NOT_SUPPORTED)
  const addr = buf.subarray(addrOff, addrOff + addrLen)
  const port = (buf[end - 2] << 8) | buf[end - 1]
  if (port === 0) throw protocolError('destination port 0', REP.GENERAL_FAILURE)
  let host: string
  let kind: DestinationKind
  if (atyp === 0x01) { host = [...addr].join('.'); kind = 'ipv4' } else if (atyp === 0x04) { host = formatIpv6(addr); kind = 'ipv6' } else {
    host = Buffer.from(addr).toString('latin1')
    if (!DOMAIN_RE.test(host)) throw protocolError('destination is not a valid domain name', REP.GENERAL_FAILURE)
    host = host.toLowerCase().replace(/\.$/, '')
    kind = host.endsWith('.onion') ? 'onion' : 'domain'
  }
  return { value: { command, kind, host, port }, used: end }
}

/** A reply with an all-zero IPv4 bound address: tor and clients ignore BND for CONNECT. */
export function encodeReply (rep: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0)
}
