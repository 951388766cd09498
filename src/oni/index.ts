/**
 * ONI, the onion network interface: onion endpoints with inbound routes, a SOCKS5 egress
 * through tor, and onet, a TUN device whose IPv6 packets travel over onion links.
 *
 * @example
 * const oni = createOni({
 *   stateDir: '/var/lib/oht/oni',
 *   masterSeed,                                   // key tree: derived endpoint keys, the onet key
 *   torSocksPort: 9050,
 *   probeSocksPort: 9060,                         // a separate tor client: readiness + probes
 *   socks: { port: 9150 },                        // apps: curl --socks5-hostname 127.0.0.1:9150 …
 *   onet: { ifname: 'onet0' }                     // needs root; otherwise status().onet.unavailable
 * }, {
 *   connectTor: async ({ signal }) => await attachTor({ port: 9051 }, { signal }),
 *   directory: createOhtMappingDirectory(ohtNode)
 * })
 * await oni.start()
 * await oni.endpoints.create({
 *   name: 'router', key: { type: 'derived', path: 'universe.router.multiverse' },
 *   routes: [{ virtualPort: 80, target: '127.0.0.1:8080' }]
 * })
 * oni.endpoints.onEvent((e) => console.log(e.type))   // endpoint-ready, endpoint-republished, tor-disconnected …
 * console.log(JSON.stringify(oni.status()))          // endpoints, routes, connections, bytes
 * await oni.stop()                                   // detached services stay in tor
 *
 * Errors are OniError (code prefix ONI_): ONI_TUN_UNAVAILABLE, ONI_SOCKS_*, ONI_ENDPOINT_*,
 * ONI_MAPPING_INVALID / ONI_MAPPING_NOT_FOUND, ONI_LINK_*, ONI_FRAME_MALFORMED,
 * ONI_PACKET_MALFORMED, ONI_DNS_MALFORMED, ONI_ROUTE, ONI_KEY_STORE, ONI_BAD_ARGUMENT, and the
 * gateway's ONI_GATEWAY_* (router-VM gateway mode: src/oni/gateway, transparent Tor for VMs).
 */
export { createOni, ONET_ENDPOINT_NAME, DEFAULT_ONET_KEY_PATH, type Oni, type OniInit, type OniComponents, type OniStatus } from './oni.ts'
export { OniError, isOniError, type OniErrorCode } from './errors.ts'
export { createEndpointManager, importEndpoints, EndpointManager, type ImportedEndpoint, type ImportResult, type EndpointManagerInit, type EndpointManagerComponents, type EndpointSpec, type EndpointKeySpec, type RouteSpec, type EndpointStatus, type RouteStatus, type EndpointState, type OniEndpointEvent } from './endpoints.ts'
export { createSocksServer, type SocksServer, type SocksServerInit, type SocksServerComponents, type SocksServerStats, type SocksPolicy, type SocksDecision, type SocksDestination, type TorDialer } from './socks-server.ts'
export { createOnet, Onet, DEFAULT_LINK_PORT, type OnetInit, type OnetComponents, type OnetStats, type OnetPeerStatus, type OnetNameSource } from './onet.ts'
export { openTun, type TunDevice, type TunInit, type TunStats } from './tun.ts'
export { configureInterface, runIp, type InterfaceConfig } from './ip-command.ts'
export { startForwarder, parseRouteTarget, formatRouteTarget, type Forwarder, type RouteTarget } from './forwarder.ts'
export { signMapping, decodeMapping, createOhtMappingDirectory, createMemoryMappingDirectory, MAPPING_SALT, type Mapping, type MappingDirectory, type MappingDht } from './mapping.ts'
export { virtualAddressFromPublicKey, formatIpv6, parseIpv6 as parseIpv6Address, isOnetAddress, ONET_PREFIX, ONET_DNS_ADDRESS } from './virtual-address.ts'
export { parseIpv6, parseUdp, parseTcp, parseIcmpv6, buildUdpPacket, ipv6Checksum } from './ip-packet.ts'
export { answerDnsQuery, parseDnsQuery, buildDnsResponse } from './dns.ts'
export * from './gateway/index.ts'
