/**
 * ONI decoders: the SOCKS5 server handshake (src/oni/socks-protocol.ts, run in the order the
 * server runs it), onet link frames (src/oni/link-frame.ts, incremental), DNS queries on
 * onet0 (src/oni/dns.ts) and IPv6 packets read from the TUN device (src/oni/ip-packet.ts).
 */
import { buildDnsResponse, parseDnsQuery, QCLASS_IN, QTYPE_AAAA } from '../../src/oni/dns.ts'
import { OniError } from '../../src/oni/errors.ts'
import { buildUdpPacket, parseIcmpv6, parseIpv6, parseTcp, parseUdp, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, verifyUpperChecksum } from '../../src/oni/ip-packet.ts'
import { encodeFrame, FRAME_AUTH, FRAME_CHALLENGE, FRAME_HEADER_BYTES, FRAME_PACKET, FRAME_PING, FRAME_PONG, FrameDecoder } from '../../src/oni/link-frame.ts'
import { MAX_GREETING_BYTES, MAX_REQUEST_BYTES, MAX_USERPASS_BYTES, METHOD_USERPASS, parseGreeting, parseRequest, parseUserPass } from '../../src/oni/socks-protocol.ts'
import type { FuzzTarget } from '../harness.ts'

const isOniError = (err: unknown): boolean => err instanceof OniError
const cat = (...parts: Array<Uint8Array | number[]>): Uint8Array => new Uint8Array(Buffer.concat(parts.map(p => Uint8Array.from(p))))
const text = (s: string): number[] => [...Buffer.from(s, 'latin1')]
const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion'

/** The server's order: greeting, credentials when USERPASS is offered, then the request. */
function socksHandshake (input: Uint8Array): unknown {
  let off = 0
  const step = <T>(parse: (b: Uint8Array) => { value: T, used: number } | undefined, max: number, what: string): T | undefined => {
    const r = parse(input.subarray(off))
    if (r === undefined) {
      if (input.byteLength - off > max) throw new Error(`${what} parser wants more than ${max} bytes`)
      return undefined
    }
    if (r.used <= 0 || r.used > max || off + r.used > input.byteLength) throw new Error(`${what} parser used ${r.used} bytes`)
    off += r.used
    return r.value
  }
  const methods = step(parseGreeting, MAX_GREETING_BYTES, 'greeting')
  if (methods === undefined) return undefined
  const creds = methods.includes(METHOD_USERPASS) ? step(parseUserPass, MAX_USERPASS_BYTES, 'credentials') : null
  if (creds === undefined) return undefined
  return { methods, creds, request: step(parseRequest, MAX_REQUEST_BYTES, 'request') }
}

const LINK_CHUNKS = [1, 3, 2, 100, 9003, 5]
const LINK_MAX_PACKET = 1500

function linkFrames (input: Uint8Array): unknown {
  const decoder = new FrameDecoder(LINK_MAX_PACKET)
  let frames = 0
  for (let off = 0, k = input.byteLength; off < input.byteLength; k++) {
    const n = LINK_CHUNKS[k % LINK_CHUNKS.length]
    for (const f of decoder.push(input.subarray(off, off + n))) {
      frames++
      const limit = f.type === FRAME_PACKET ? LINK_MAX_PACKET : 97
      if (f.payload.byteLength > limit) throw new Error(`a type ${f.type} frame of ${f.payload.byteLength} bytes passed the decoder`)
    }
    if (decoder.buffered > FRAME_HEADER_BYTES + LINK_MAX_PACKET + n) throw new Error(`the decoder buffers ${decoder.buffered} bytes`)
    off += n
  }
  return frames
}

function dnsQuery (name: string, qtype: number, id = 0x1234): Uint8Array {
  const labels = name.split('.').flatMap(l => [l.length, ...text(l)])
  return cat([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0], labels, [0, qtype >> 8, qtype & 0xff, 0, QCLASS_IN])
}

function ipPacket (input: Uint8Array): unknown {
  const ip = parseIpv6(input)
  const upper = ip.protocol === PROTO_UDP ? parseUdp(ip.payload) : ip.protocol === PROTO_TCP ? parseTcp(ip.payload) : ip.protocol === PROTO_ICMPV6 ? parseIcmpv6(ip.payload) : undefined
  return { ip, upper, checksumOk: verifyUpperChecksum(ip) }
}

const SRC = Uint8Array.from([0xfd, 0x6f, ...new Array<number>(13).fill(1), 2])
const DST = Uint8Array.from([0xfd, 0x6f, ...new Array<number>(13).fill(3), 4])

function ipv6 (protocol: number, upper: Uint8Array, extension?: number[]): Uint8Array {
  const ext = extension ?? []
  const payload = cat(ext, upper)
  return cat([0x60, 0, 0, 0, payload.byteLength >> 8, payload.byteLength & 0xff, ext.length > 0 ? 0 : protocol, 64], SRC, DST, payload)
}

export const oniTargets: FuzzTarget[] = [
  {
    name: 'oni.socks-handshake',
    seeds: () => [
      cat([5, 1, 0], [5, 1, 0, 3, ONION.length], text(ONION), [0, 80]),
      cat([5, 2, 0, 2], [1, 7], text('browser'), [2], text('pw'), [5, 1, 0, 3, 11], text('example.com'), [1, 187]),
      cat([5, 1, 0], [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]),
      cat([5, 1, 0], [5, 1, 0, 4], new Array<number>(15).fill(0), [1, 0, 22]),
      cat([5, 1, 2], [1, 255], new Array<number>(255).fill(0x75), [255], new Array<number>(255).fill(0x70), [5, 1, 0, 3, 3], text('a.b'), [0, 1])
    ],
    decode: socksHandshake,
    rejects: isOniError,
    maxInputBytes: 2048
  },
  {
    name: 'oni.link-frame',
    seeds: () => [
      encodeFrame(FRAME_CHALLENGE, cat([1], new Array<number>(32).fill(7))),
      encodeFrame(FRAME_AUTH, cat([1], new Array<number>(96).fill(9))),
      cat(encodeFrame(FRAME_PING, new Uint8Array(8)), encodeFrame(FRAME_PONG, new Uint8Array(8).fill(1))),
      cat(encodeFrame(FRAME_PACKET, buildUdpPacket(SRC, DST, 4000, 53, new Uint8Array(20))), encodeFrame(FRAME_PACKET, new Uint8Array(0)))
    ],
    decode: linkFrames,
    rejects: isOniError,
    maxInputBytes: 4096
  },
  {
    name: 'oni.dns-query',
    seeds: () => [dnsQuery('peer.onet', QTYPE_AAAA), dnsQuery('abc.def.onet', 1, 7), dnsQuery('x', 255, 0xffff)],
    decode: (input) => {
      const q = parseDnsQuery(input)
      // What the resolver answers with must build for every query the parser accepts.
      return buildDnsResponse(q, 0, [new Uint8Array(16).fill(0xfd)])
    },
    rejects: isOniError,
    maxInputBytes: 600
  },
  {
    name: 'oni.ip-packet',
    seeds: () => [
      buildUdpPacket(SRC, DST, 4000, 53, new TextEncoder().encode('hello')),
      ipv6(PROTO_TCP, cat([0x1f, 0x90, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0])),
      ipv6(PROTO_ICMPV6, cat([128, 0, 0, 0, 0, 1, 0, 1], text('ping'))),
      ipv6(PROTO_UDP, cat([0, 1, 0, 2, 0, 8, 0, 0]), [PROTO_UDP, 0, 0, 0, 0, 0, 0, 0])
    ],
    decode: ipPacket,
    rejects: isOniError,
    maxInputBytes: 2048
  }
]
