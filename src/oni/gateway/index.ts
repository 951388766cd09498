/**
 * Router-VM gateway mode (the Whonix model): the VMs behind an inside interface are torified
 * without knowing it. All their TCP goes through tor's TransPort, their DNS (to whatever address
 * they send it) through the router's own resolver to tor's DNSPort, and everything else is
 * dropped: non-DNS UDP, ICMP beyond the router, IPv6 unless torified too. Nothing from inside
 * is ever forwarded, so when tor or the daemon dies the VMs are cut off, not exposed.
 *
 *   VM ──TCP──▶ inside if ──DNAT──▶ tor TransPort (IsolateClientAddr: one VM, its own circuits)
 *   VM ──DNS──▶ inside if ──DNAT──▶ resolver ──(from 127.83.x.y, per VM)──▶ tor DNSPort
 *                                     └─ answers itself: VM hostnames, *.onet, blocklist, local zones
 *   VM ──anything else──▶ dropped (and counted per VM)
 *
 * `.onion` names resolve to virtual addresses (tor's AutomapHostsOnResolve) that the TransPort
 * maps back, so an unmodified `curl http://<56 chars>.onion/` works from a VM.
 *
 * @example
 * const gw = createGateway({
 *   interface: 'br-vms',                      // the VMs' bridge; its first IPv4 address is the router's
 *   torMode: 'launch',                        // the daemon puts gw.torrc() into the tor it launches
 *   hosts: { 'files.vm': '10.152.152.21' },
 *   blocklistFile: '/etc/multiverse/blocklist.hosts'
 * }, { clock: systemClock, rng: cryptoRng })
 * await gw.start()                            // rules in the kernel (one nft transaction), resolver up
 * const tor = await launchTor({ torrc: { ...clientTorrc, ...gw.torrc() } })
 * await gw.torConnected(tor.control)          // DNSPort found, TransPort checked, STREAM events watched
 * console.log(await gw.status())              // per VM: connections, bytes, DNS answered/blocked, drops
 * await gw.reload()                           // the blocklist again (SIGHUP)
 * await gw.stop()                             // lockdown rules stay: the VMs are cut off, not routed
 *
 * Errors are OniError: ONI_GATEWAY_CONFIG, ONI_GATEWAY_INTERFACE, ONI_GATEWAY_NFT_MISSING (no nft
 * binary), ONI_GATEWAY_PERMISSION (no CAP_NET_ADMIN), ONI_GATEWAY_RULES (nft refused the rules),
 * ONI_GATEWAY_LISTEN, ONI_GATEWAY_BLOCKLIST, ONI_GATEWAY_TOR; DNS decoding errors are
 * ONI_DNS_MALFORMED.
 */
export { createGateway, Gateway, DEFAULT_TRANS_PORT, DEFAULT_GATEWAY_DNS_PORT, DEFAULT_VIRTUAL_NETWORK, DEFAULT_VIRTUAL_NETWORK6, DEFAULT_GATEWAY_TABLE, type GatewayInit, type GatewayComponents, type GatewayStatus, type GatewayVmStatus, type GatewayState } from './gateway.ts'
export { renderGatewayRules, renderLockdownRules, renderRemoval, validateFirewallSpec, type FirewallSpec } from './nft-rules.ts'
export { createNftRunner, applyRuleset, readCounters, parseCounters, classifyNftError, type NftRunner, type FirewallCounters, type PacketCount } from './nft.ts'
export { createResolver, GatewayResolver, type ResolverInit, type ResolverComponents, type ResolverCounts, type ResolverClientStatus } from './resolver.ts'
export { decide, isPrivateReverse, type Zones, type ZoneDecision } from './zones.ts'
export { parseBlocklist, loadBlocklist, EMPTY_BLOCKLIST, MAX_BLOCKLIST_BYTES, MAX_BLOCKLIST_NAMES, type Blocklist } from './blocklist.ts'
export { gatewayTorrc, applyTorSettings, parseListeners, torListeners, GATEWAY_TOR_OPTIONS, type TorGatewaySpec, type AppliedTorSettings } from './tor-settings.ts'
export { StreamAccounting, type VmStreamStats, type StreamAccountingInit } from './stream-stats.ts'
export * as dnsWire from './dns-wire.ts'
