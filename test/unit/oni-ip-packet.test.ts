import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { buildUdpPacket, ipv6Checksum, parseIcmpv6, parseIpv6, parseTcp, parseUdp, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, verifyUpperChecksum, ICMPV6_ECHO_REQUEST } from '../../src/oni/ip-packet.ts'
import { parseIpv6 as parseAddr } from '../../src/oni/virtual-address.ts'
import { isOniError } from '../../src/oni/errors.ts'

const src = parseAddr('fd6f::1')
const dst = parseAddr('fd6f::2')

function ipv6 (protocol: number, payload: Uint8Array, ext?: Uint8Array): Uint8Array {
  const body = ext === undefined ? payload : Uint8Array.from([...ext, ...payload])
  const p = new Uint8Array(40 + body.byteLength)
  p[0] = 0x60
  p[4] = body.byteLength >> 8
  p[5] = body.byteLength & 0xff
  p[6] = ext === undefined ? protocol : 0
  p[7] = 64
  p.set(src, 8)
  p.set(dst, 24)
  p.set(body, 40)
  return p
}

describe('oni IP packet parsing', () => {
  it('builds a UDP packet whose fields and checksum parse back', () => {
    const data = new TextEncoder().encode('hello onet')
    const pkt = buildUdpPacket(src, dst, 5353, 53, data)
    const ip = parseIpv6(pkt)
    assert.equal(ip.protocol, PROTO_UDP)
    assert.deepEqual(ip.src, src)
    assert.deepEqual(ip.dst, dst)
    assert.ok(verifyUpperChecksum(ip))
    const udp = parseUdp(ip.payload)
    assert.equal(udp.srcPort, 5353)
    assert.equal(udp.dstPort, 53)
    assert.deepEqual(udp.data, data)
    pkt[50] ^= 1
    assert.equal(verifyUpperChecksum(parseIpv6(pkt)), false)
  })

  it('computes the checksum of the RFC example-style odd-length payload', () => {
    const upper = Uint8Array.of(0x80, 0, 0, 0, 0, 1, 0, 1, 0xab)
    const sum = ipv6Checksum(src, dst, PROTO_ICMPV6, upper)
    upper[2] = sum >> 8
    upper[3] = sum & 0xff
    assert.equal(ipv6Checksum(src, dst, PROTO_ICMPV6, upper), 0)
  })

  it('skips extension headers to the upper protocol', () => {
    const hopByHop = Uint8Array.of(PROTO_TCP, 0, 1, 4, 0, 0, 0, 0)
    const tcp = new Uint8Array(20)
    tcp[0] = 0x1f; tcp[1] = 0x90; tcp[2] = 0x00; tcp[3] = 0x50; tcp[12] = 5 << 4; tcp[13] = 0x02
    const ip = parseIpv6(ipv6(0, tcp, hopByHop))
    assert.equal(ip.protocol, PROTO_TCP)
    assert.equal(ip.payloadOffset, 48)
    const h = parseTcp(ip.payload)
    assert.equal(h.srcPort, 8080)
    assert.equal(h.dstPort, 80)
    assert.equal(h.flags, 0x02)
  })

  it('parses ICMPv6 echo', () => {
    const ip = parseIpv6(ipv6(PROTO_ICMPV6, Uint8Array.of(ICMPV6_ECHO_REQUEST, 0, 0, 0, 0, 7, 0, 1)))
    const icmp = parseIcmpv6(ip.payload)
    assert.equal(icmp.type, ICMPV6_ECHO_REQUEST)
    assert.equal(icmp.body.byteLength, 4)
  })

  it('rejects truncated, oversized-length, wrong-version and looping packets with a typed error', () => {
    const good = buildUdpPacket(src, dst, 1, 2, new Uint8Array(4))
    const cases: Uint8Array[] = [
      good.subarray(0, 39),
      (() => { const p = good.slice(); p[0] = 0x45; return p })(),
      (() => { const p = good.slice(); p[5] = 200; return p })(),
      (() => { // nine chained destination-options headers
        const ext = new Uint8Array(72)
        for (let i = 0; i < 9; i++) ext[i * 8] = 60
        return ipv6(0, new Uint8Array(0), ext).map((b, i) => i === 6 ? 60 : b)
      })()
    ]
    for (const c of cases) assert.throws(() => parseIpv6(c), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
    assert.throws(() => parseUdp(new Uint8Array(7)), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
    assert.throws(() => parseUdp(Uint8Array.of(0, 1, 0, 2, 0, 20, 0, 0)), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
    assert.throws(() => parseTcp(new Uint8Array(19)), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
    const badOffset = new Uint8Array(20); badOffset[12] = 15 << 4
    assert.throws(() => parseTcp(badOffset), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
    assert.throws(() => parseIcmpv6(new Uint8Array(3)), (e) => isOniError(e, 'ONI_PACKET_MALFORMED'))
  })
})
