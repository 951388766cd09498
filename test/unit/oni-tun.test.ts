import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { openTun } from '../../src/oni/tun.ts'
import { configureInterface } from '../../src/oni/ip-command.ts'
import { ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ipv6Checksum, parseIcmpv6, parseIpv6, PROTO_ICMPV6 } from '../../src/oni/ip-packet.ts'
import { isOniError } from '../../src/oni/errors.ts'
import { canUseNetns, createNetns } from '../helpers/netns.ts'

/** Turns an echo request into the matching reply (swap addresses, type 129, new checksum). */
function echoReply (request: Uint8Array): Uint8Array {
  const p = request.slice()
  p.set(request.subarray(24, 40), 8)
  p.set(request.subarray(8, 24), 24)
  p[40] = ICMPV6_ECHO_REPLY
  p[42] = 0; p[43] = 0
  const ip = parseIpv6(p)
  const sum = ipv6Checksum(ip.src, ip.dst, PROTO_ICMPV6, ip.payload)
  p[42] = sum >> 8; p[43] = sum & 0xff
  return p
}

describe('oni TUN device', async () => {
  const privileged = await canUseNetns()

  it('reads a ping sent inside a network namespace and the reply it writes reaches ping', { timeout: 20_000 }, async () => {
    if (!privileged) {
      // Without root, the one promise is a clear typed error.
      await assert.rejects(openTun({ name: 'onitest%d' }), (e) => isOniError(e, 'ONI_TUN_UNAVAILABLE'))
      return
    }
    const ns = await createNetns('tun')
    const tun = await openTun({ name: 'onitest%d' })
    try {
      assert.match(tun.name, /^onitest\d+$/)
      await configureInterface({ name: tun.name, netns: ns.name, addresses: ['fd6f::1/128'], routes: ['fd6f::/16'], mtu: 1280 })
      const seen: number[] = []
      tun.onPacket((packet) => {
        let ip
        try { ip = parseIpv6(packet) } catch { return }
        if (ip.protocol !== PROTO_ICMPV6) return
        const icmp = parseIcmpv6(ip.payload)
        if (icmp.type !== ICMPV6_ECHO_REQUEST) return
        seen.push(icmp.type)
        assert.ok(tun.write(echoReply(packet)))
      })
      const r = await ns.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd6f::2'])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /2 received/)
      assert.equal(seen.length, 2)
      assert.ok(tun.stats.packetsIn >= 2)
      assert.equal(tun.stats.packetsOut, 2)
    } finally {
      await tun.close()
      await ns.delete()
    }
  })

  it('refuses an interface name the kernel cannot take', async () => {
    await assert.rejects(openTun({ name: 'this-name-is-too-long' }), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'))
  })
})
