/**
 * The OHT daemon for router VMs (and desktops): reads its config, starts or attaches to tor,
 * loads its identity, runs the SDK's OHT node (its own records kept in a journal in the state
 * dir), serves the local API on a 0600 unix socket with a bearer token, runs ONI's endpoint
 * manager (onion endpoints at the same addresses after restarts) and survives tor restarting
 * under it. `oht daemon` (src/cli) is its command line; docs/daemon.md the guide.
 *
 * @example
 * import { createDaemon, loadConfig, createJsonLog } from './daemon/index.ts'
 * const config = await loadConfig('/etc/multiverse/oht.toml', '/var/lib/oht', true)
 * const daemon = createDaemon({ config, stateDir: '/var/lib/oht' }, {
 *   clock: systemClock, log: createJsonLog(l => process.stderr.write(l + '\n'), systemClock),
 *   createNode: defaultNodeFactory, launchTor, attachTor
 * })
 * await daemon.start({ signal })
 * // ... until SIGTERM:
 * await daemon.stop()   // endpoints withdrawn (unless kept), store wiped, socket removed
 */
import type { OhtSdkNode } from '../sdk/index.ts'
import { Daemon, type DaemonComponents, type DaemonInit } from './daemon.ts'
import type { NodeFactoryInput } from './node.ts'

export { Daemon, type DaemonInit, type DaemonComponents, type DaemonPhase } from './daemon.ts'
export { DaemonError } from './errors.ts'
export { loadConfig, parseConfigText, validateConfig, parseControlAddress, type DaemonConfig, type TorMode, type Transport, type LogLevel, type ControlAddress } from './config.ts'
export { resolvePaths, defaultConfigDir, defaultStateDir, identityPath, defaultSocketPath, defaultTokenPath, endpointsPath, torDataDir, type ResolvedPaths, type PathInputs } from './paths.ts'
export { createJsonLog, type JsonLog } from './json-log.ts'
export { readToken, ensureToken, tokenMatches } from './token.ts'
export { startApiServer, MAX_BODY_BYTES, type ApiBackend, type ApiServer, type ApiServerInit, type PutRequest } from './api-server.ts'
export { loadIdentity } from './identity-source.ts'
export { parseEndpointRequest, type EndpointRequest, type EndpointKeyRequest } from './endpoint-request.ts'
export { migrateDaemonEndpoints } from './endpoints-migration.ts'
export type { DaemonPeer, NodeCounters, NodeFactory, NodeFactoryInput } from './node.ts'

export function createDaemon (init: DaemonInit, components: DaemonComponents): Daemon {
  return new Daemon(init, components)
}

/**
 * The SDK's node for `node.transport` (tor, tcp or local), loaded lazily: the SDK pulls in
 * libp2p, which only the daemon needs.
 */
export async function defaultNodeFactory (input: NodeFactoryInput): Promise<OhtSdkNode> {
  const { createSdkDaemonNode } = await import('./sdk-node.ts')
  return await createSdkDaemonNode(input)
}
