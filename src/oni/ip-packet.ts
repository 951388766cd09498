/**
 * Minimal IPv6 / ICMPv6 / UDP / TCP header parsing and UDP packet building for the onet
 * interface. Every parser checks sizes first and throws OniError ONI_PACKET_MALFORMED; nothing
 * here allocates more than the packet it was given.
 *
 * IPv6 fixed header (RFC 8200):
 *    0                   1                   2                   3
 *   +-------+---------------+---------------------------------------+
 *   |Version| Traffic Class |              Flow Label               |
 *   +-------+---------------+-------+---------------+---------------+
 *   |         Payload Length        |  Next Header  |   Hop Limit   |
 *   +-------------------------------+---------------+---------------+
 *   |                  Source Address (16 bytes)                    |
 *   |               Destination Address (16 bytes)                  |
 *   +---------------------------------------------------------------+
 */
import { OniError } from './errors.ts'

export const IPV6_HEADER_BYTES = 40
export const PROTO_TCP = 6
export const PROTO_UDP = 17
export const PROTO_ICMPV6 = 58
const EXTENSION_HEADERS = new Set([0, 43, 44, 60])
/** More extension headers than this is treated as an attack, not a packet. */
const MAX_EXTENSION_HEADERS = 8

export interface Ipv6Packet {
  trafficClass: number
  flowLabel: number
  /** Upper-layer protocol after any extension headers (6 TCP, 17 UDP, 58 ICMPv6, …). */
  protocol: number
  hopLimit: number
  src: Uint8Array
  dst: Uint8Array
  /** Offset of the upper-layer header within the packet. */
  payloadOffset: number
  /** The upper-layer bytes (a view into the packet). */
  payload: Uint8Array
}

function malformed (what: string): OniError {
  return new OniError('ONI_PACKET_MALFORMED', `malformed packet: ${what}`)
}

/** Parses an IPv6 packet as read from a TUN device (IFF_NO_PI: no extra header). */
export function parseIpv6 (packet: Uint8Array): Ipv6Packet {
  if (packet.byteLength < IPV6_HEADER_BYTES) throw malformed(`${packet.byteLength} bytes is shorter than an IPv6 header`)
  const version = packet[0] >> 4
  if (version !== 6) throw malformed(`IP version ${version}, expected 6`)
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  const payloadLength = view.getUint16(4)
  if (IPV6_HEADER_BYTES + payloadLength > packet.byteLength) throw malformed(`payload length ${payloadLength} runs past the ${packet.byteLength}-byte packet`)
  const end = IPV6_HEADER_BYTES + payloadLength
  let next = packet[6]
  let off = IPV6_HEADER_BYTES
  let hops = 0
  while (EXTENSION_HEADERS.has(next)) {
    if (++hops > MAX_EXTENSION_HEADERS) throw malformed('too many extension headers')
    if (off + 8 > end) throw malformed('truncated extension header')
    const len = next === 44 ? 8 : (packet[off + 1] + 1) * 8
    next = packet[off]
    off += len
    if (off > end) throw malformed('extension header runs past the payload')
  }
  return {
    trafficClass: ((packet[0] & 0x0f) << 4) | (packet[1] >> 4),
    flowLabel: ((packet[1] & 0x0f) << 16) | view.getUint16(2),
    protocol: next,
    hopLimit: packet[7],
    src: packet.subarray(8, 24),
    dst: packet.subarray(24, 40),
    payloadOffset: off,
    payload: packet.subarray(off, end)
  }
}

export interface UdpHeader { srcPort: number, dstPort: number, length: number, checksum: number, data: Uint8Array }

export function parseUdp (segment: Uint8Array): UdpHeader {
  if (segment.byteLength < 8) throw malformed('UDP header shorter than 8 bytes')
  const v = new DataView(segment.buffer, segment.byteOffset, segment.byteLength)
  const length = v.getUint16(4)
  if (length < 8 || length > segment.byteLength) throw malformed(`UDP length ${length} does not fit ${segment.byteLength} bytes`)
  return { srcPort: v.getUint16(0), dstPort: v.getUint16(2), length, checksum: v.getUint16(6), data: segment.subarray(8, length) }
}

export interface TcpHeader { srcPort: number, dstPort: number, seq: number, ack: number, dataOffset: number, flags: number, window: number, data: Uint8Array }

export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_ACK = 0x10

export function parseTcp (segment: Uint8Array): TcpHeader {
  if (segment.byteLength < 20) throw malformed('TCP header shorter than 20 bytes')
  const v = new DataView(segment.buffer, segment.byteOffset, segment.byteLength)
  const dataOffset = (segment[12] >> 4) * 4
  if (dataOffset < 20 || dataOffset > segment.byteLength) throw malformed(`TCP data offset ${dataOffset} does not fit ${segment.byteLength} bytes`)
  return {
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    dataOffset,
    flags: segment[13],
    window: v.getUint16(14),
    data: segment.subarray(dataOffset)
  }
}

export interface Icmpv6Header { type: number, code: number, checksum: number, body: Uint8Array }
export const ICMPV6_ECHO_REQUEST = 128
export const ICMPV6_ECHO_REPLY = 129

export function parseIcmpv6 (message: Uint8Array): Icmpv6Header {
  if (message.byteLength < 4) throw malformed('ICMPv6 header shorter than 4 bytes')
  return { type: message[0], code: message[1], checksum: (message[2] << 8) | message[3], body: message.subarray(4) }
}

/** The Internet checksum over the IPv6 pseudo-header and `upper` (RFC 8200 §8.1). */
export function ipv6Checksum (src: Uint8Array, dst: Uint8Array, protocol: number, upper: Uint8Array): number {
  let sum = 0
  const add16 = (b: Uint8Array): void => {
    for (let i = 0; i + 1 < b.byteLength; i += 2) sum += (b[i] << 8) | b[i + 1]
    if ((b.byteLength & 1) === 1) sum += b[b.byteLength - 1] << 8
  }
  add16(src)
  add16(dst)
  const len = upper.byteLength
  sum += (len >>> 16) + (len & 0xffff) + protocol
  add16(upper)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return (~sum) & 0xffff
}

/** True when the checksum of a received UDP/TCP/ICMPv6 segment is right. */
export function verifyUpperChecksum (ip: Ipv6Packet): boolean {
  return ipv6Checksum(ip.src, ip.dst, ip.protocol, ip.payload) === 0
}

/** Builds a complete IPv6+UDP packet with a correct checksum. */
export function buildUdpPacket (src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number, data: Uint8Array, hopLimit = 64): Uint8Array {
  const udpLen = 8 + data.byteLength
  if (udpLen > 0xffff) throw new OniError('ONI_BAD_ARGUMENT', `UDP payload of ${data.byteLength} bytes is too large`)
  const packet = new Uint8Array(IPV6_HEADER_BYTES + udpLen)
  const v = new DataView(packet.buffer)
  packet[0] = 0x60
  v.setUint16(4, udpLen)
  packet[6] = PROTO_UDP
  packet[7] = hopLimit
  packet.set(src, 8)
  packet.set(dst, 24)
  v.setUint16(40, srcPort)
  v.setUint16(42, dstPort)
  v.setUint16(44, udpLen)
  packet.set(data, 48)
  const sum = ipv6Checksum(src, dst, PROTO_UDP, packet.subarray(40))
  v.setUint16(46, sum === 0 ? 0xffff : sum)
  return packet
}
