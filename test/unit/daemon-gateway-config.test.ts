import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText, validateConfig } from '../../src/daemon/config.ts'
import { DaemonError } from '../../src/daemon/errors.ts'

const STATE = '/var/lib/oht'
const ONION = 'pzg6v235igvnd32bldoaoi2z32ua3b2quq7j7jiibsuoli5ueesvfwyd'

function fails (raw: unknown, pattern: RegExp): void {
  assert.throws(() => validateConfig(raw, 'oht.toml', STATE), (err: unknown) => {
    assert.ok(err instanceof DaemonError)
    assert.equal(err.code, 'DAEMON_CONFIG')
    assert.match(err.message, pattern)
    return true
  })
}

describe('daemon config: [gateway]', () => {
  it('is off by default, with documented defaults', () => {
    const g = validateConfig({}, 'defaults', STATE).gateway
    assert.deepEqual(g, {
      enabled: false, transPort: 9040, dnsPort: 9053, virtualNetwork: '10.192.0.0/10', ipv6: false, virtualNetwork6: 'fdc0:7e11:ab0::/48',
      hosts: {}, onetNames: {}, onStop: 'block', table: 'oht_gateway', nftPath: 'nft', localTcpPorts: [], localUdpPorts: [], maxVms: 1024
    })
  })

  it('reads every field from TOML', () => {
    const c = parseConfigText(`
[gateway]
enabled = true
interface = "br-vms"
address = "10.152.152.10"
trans_port = 9041
dns_port = 5353
virtual_network = "10.200.0.0/16"
blocklist_file = "blocklist.hosts"
on_stop = "remove"
table = "gw_main"
nft_path = "/usr/sbin/nft"
local_tcp_ports = [22]
local_udp_ports = [67]
max_vms = 64
[gateway.hosts]
"Files.VM" = "10.152.152.21"
"dual.vm" = ["10.152.152.22", "fd00::22"]
[gateway.onet_names]
peer = "${ONION}.onion"
`, '/etc/multiverse/oht.toml', STATE)
    assert.deepEqual(c.gateway, {
      enabled: true, interface: 'br-vms', address: '10.152.152.10', transPort: 9041, dnsPort: 5353, virtualNetwork: '10.200.0.0/16', ipv6: false,
      virtualNetwork6: 'fdc0:7e11:ab0::/48', hosts: { 'files.vm': ['10.152.152.21'], 'dual.vm': ['10.152.152.22', 'fd00::22'] }, onetNames: { peer: `${ONION}.onion` },
      blocklistFile: '/var/lib/oht/blocklist.hosts', onStop: 'remove', table: 'gw_main', nftPath: '/usr/sbin/nft', localTcpPorts: [22], localUdpPorts: [67], maxVms: 64
    })
  })

  it('names the bad field', () => {
    fails({ gateway: { enabled: true } }, /oht\.toml: gateway\.interface must be set when the gateway is enabled/)
    fails({ gateway: { interface: 'eth0; drop' } }, /gateway\.interface must be a Linux interface name/)
    fails({ gateway: { interfaces: 'br0' } }, /gateway\.interfaces is not a known setting/)
    fails({ gateway: { trans_port: 0 } }, /gateway\.trans_port must be between 1 and 65535, got 0/)
    fails({ gateway: { trans_port: 9053 } }, /gateway\.dns_port must differ from gateway\.trans_port/)
    fails({ gateway: { address: 'fd00::1' } }, /gateway\.address must be an IPv4 address/)
    fails({ gateway: { address6: 'fd00::1' } }, /gateway\.address6 only applies with gateway\.ipv6 = true/)
    fails({ gateway: { virtual_network: '10.0.0.0/30' } }, /gateway\.virtual_network must be an IPv4 network/)
    fails({ gateway: { on_stop: 'forward' } }, /gateway\.on_stop must be one of "block", "remove", got "forward"/)
    fails({ gateway: { table: 'Bad Table' } }, /gateway\.table must be 1-32 of/)
    fails({ gateway: { local_tcp_ports: [22, 'ssh'] } }, /gateway\.local_tcp_ports\[1\] must be a port/)
    fails({ gateway: { local_udp_ports: [53] } }, /gateway\.local_udp_ports\[0\] cannot be 53/)
    fails({ gateway: { local_tcp_ports: [9040] } }, /gateway\.local_tcp_ports cannot hold the TransPort/)
    fails({ gateway: { hosts: { 'bad name': '10.0.0.1' } } }, /gateway\.hosts\.bad name is not a DNS name/)
    fails({ gateway: { hosts: { 'a.vm': 'nowhere' } } }, /gateway\.hosts\.a\.vm must be an IP address/)
    fails({ gateway: { onet_names: { peer: 'example.com' } } }, /gateway\.onet_names\.peer must be a v3 onion address/)
    fails({ gateway: 'on' }, /oht\.toml: gateway must be a table/)
  })

  it('needs the tor transport, and owns the torrc options it sets', () => {
    fails({ node: { transport: 'tcp' }, gateway: { enabled: true, interface: 'br0' } }, /gateway\.enabled needs node\.transport = "tor" \(got "tcp"\)/)
    fails({ tor: { torrc: { TransPort: '9040' } }, gateway: { enabled: true, interface: 'br0' } }, /tor\.torrc\.TransPort is set by the gateway/)
    // Without the gateway, the same torrc is the user's business.
    assert.equal(validateConfig({ tor: { torrc: { TransPort: '9040' } } }, 'oht.toml', STATE).tor.torrc.TransPort, '9040')
  })
})
