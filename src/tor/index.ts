/**
 * The Tor layer: a typed control-port client, a launcher for the system `tor`, onion endpoints
 * with real readiness, a SOCKS5 client with tor's extended error codes, and a private Tor
 * network on 127.0.0.1. It knows nothing of the OHT.
 *
 * @example
 * // run our own tor (against a private network here: nothing reaches the public one)
 * const net = await startTestnet({ clients: 1 })
 * const tor = await launchTor({ torrc: net.clientTorrc(), onProgress: p => console.log(p.percent) })
 * const ep = await publishOnion(tor.control, {
 *   key: { type: 'ED25519-V3', blob: torKeyBlob(identity) },
 *   ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }],
 *   probe: { socksPort: net.clients[0].socksPort }
 * })
 * const socket = await socksConnect({ socksPort: net.clients[0].socksPort, host: ep.address, port: 80 })
 * await tor.stop(); await net.stop()
 *
 * // or attach to a tor that already runs
 * const control = await attachTor({ port: 9051 })
 *
 * Errors are TorError (code prefix TOR_): TOR_NOT_INSTALLED, TOR_LAUNCH_FAILED,
 * TOR_BOOTSTRAP_FAILED, TOR_BAD_CONFIG, TOR_ONION_UNREACHABLE, TOR_SOCKS (with `socksReply`),
 * TOR_SOCKS_TIMEOUT, TOR_TESTNET_KEYS, TOR_TESTNET_STATE, and the control client's codes
 * (TOR_CONTROL_CLOSED, TOR_COMMAND_FAILED with `status`, ...). Aborts are CORE_ABORTED.
 */
export * from './control/index.ts'
export { launchTor, renderTorrc, parseBootstrapPhase, stopTorByPid, pidAlive } from './launcher.ts'
export type { LaunchTorInit, TorProcess, Torrc, TorrcValue, BootstrapProgress } from './launcher.ts'
export { attachTor } from './attach.ts'
export type { AttachTorOptions } from './attach.ts'
export { publishOnion } from './endpoint.ts'
export type { PublishOnionOptions, OnionEndpoint, OnionProbe } from './endpoint.ts'
export { socksConnect, socksReplyMessage, connectRequest, SOCKS_REPLY_MESSAGES, SOCKS_DESCRIPTOR_NOT_FOUND } from './socks.ts'
export type { SocksConnectOptions } from './socks.ts'
export * from './testnet/index.ts'
