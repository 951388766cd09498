/**
 * A private Tor network on 127.0.0.1 for tests and for SDK users (no machine here reaches the
 * public Tor network): 3 directory authorities with their own keys (tor-gencert, cached under
 * ~/.cache/oht/testnet-authority-keys), 2 relays, and client tors that host onion services
 * (ADD_ONION on their control port) and reach them (SOCKS5). `startTestnet()` resolves once the
 * network is usable: every client bootstrapped 100 % and seeing every relay as an HSDir
 * (~15-17 s on 2 cores). Every tor binds to 127.0.0.1 only, gets `__OwningControllerProcess`
 * (it exits within ~15 s if this process dies) and is stopped by PID in `stop()`.
 *
 * @example
 * const net = await startTestnet({ clients: 2, signal })
 * try {
 *   const control = await net.clients[0].control()
 *   const ep = await publishOnion(control, { ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }],
 *     probe: { socksPort: net.clients[1].socksPort } })
 *   const socket = await socksConnect({ socksPort: net.clients[1].socksPort, host: ep.address, port: 80 })
 * } finally {
 *   await net.stop()
 * }
 *
 * From a shell: `node --import tsx src/tor/testnet/cli.ts up --dir D` (detached, pids in
 * D/state.json), `... env --dir D [--json]`, `... down --dir D`.
 */
export { startTestnet, stopTestnetDir, clearTestnetDir, readTestnetState, stateEnv, torVersion, countHsDirs } from './network.ts'
export type { Testnet, TestnetInit, TestnetClient, TestnetNodeInfo, TestnetState, TestnetTimings, TestnetProgress } from './network.ts'
export { defaultKeyCacheDir, rsaFingerprint } from './authority-keys.ts'
export { nodeTorrc, networkTorrc, votingSchedule, dirAuthorityLine, VOTING_INTERVAL_S, FIRST_CONSENSUS_LEAD_S } from './torrc.ts'
export type { NodeRole, AuthorityLine } from './torrc.ts'
