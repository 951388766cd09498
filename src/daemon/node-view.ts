/**
 * The SDK node as the daemon sees it: its peers and counters as the API and /metrics show
 * them, and the daemon's tor session as the SDK attaches to it.
 */
import { toHex } from '../core/index.ts'
import { onionAddressFromPublicKey } from '../crypto/index.ts'
import type { OhtSdkNode, TorAttach } from '../sdk/index.ts'
import { DaemonError } from './errors.ts'
import type { DaemonPeer, NodeCounters } from './node.ts'
import type { TorSession } from './tor-link.ts'

export function peersOf (node: OhtSdkNode): DaemonPeer[] {
  return node.routingPeers().map(p => ({ publicKey: toHex(p.publicKey), onion: onionAddressFromPublicKey(p.publicKey), addrs: p.addrs }))
}

export function countersOf (node: OhtSdkNode): NodeCounters {
  const s = node.stats()
  const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)
  return {
    peers: s.peers,
    recordsStored: s.records,
    bytesStored: s.recordBytes,
    ownRecords: s.journalEntries ?? 0,
    lookups: s.engine.lookups,
    lookupFailures: s.engine.requestFailures,
    requestsIn: sum(s.engine.requestsIn),
    requestsOut: sum(s.engine.requestsOut),
    timeouts: s.engine.timeouts,
    republished: s.engine.republished
  }
}

/** How the SDK attaches to the daemon's tor session. */
export function torAttachOf (tor: TorSession): TorAttach {
  if (tor.controlPort === undefined) throw new DaemonError('DAEMON_TOR', 'the node attaches to tor\'s TCP control port, and this tor has none: add ControlPort 127.0.0.1:<port> to its torrc')
  return {
    controlPort: tor.controlPort,
    socksPort: tor.socksPort,
    ...(tor.controlHost !== undefined ? { host: tor.controlHost } : {}),
    ...(tor.cookiePath !== undefined ? { cookiePath: tor.cookiePath } : {}),
    ...(tor.password !== undefined ? { password: tor.password } : {}),
    ...(tor.allowNullAuth === true ? { allowNullAuth: true } : {})
  }
}
