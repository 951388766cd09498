/**
 * The two functions the onion3 transport needs from tor, implemented with the tor layer:
 * a SOCKS connector (tor's SocksPort) and an onion-service publisher (ADD_ONION with the
 * node's own key over an authenticated control connection, ready when every descriptor upload
 * is confirmed).
 */
import type { Clock } from '../core/index.ts'
import { systemClock } from '../core/index.ts'
import { identityFromSeed, torKeyBlob } from '../crypto/index.ts'
import { isTorError, type TorControl } from '../tor/control/index.ts'
import { publishOnion, type OnionProbe } from '../tor/endpoint.ts'
import { socksConnect } from '../tor/socks.ts'
import { NetError } from './errors.ts'
import type { OnionConnector, OnionPublisher } from './onion-transport.ts'

export interface TorConnectorInit {
  socksPort: number
  /** @default '127.0.0.1' */
  socksHost?: string
  /** Deadline for one connect, retries included. @default 60_000 */
  timeoutMs?: number
  /** Retries of tor's 0xF0 "descriptor not found". @default 3 */
  retries?: number
  /** @default systemClock */
  clock?: Clock
  /** Called with the SOCKS endpoint before each connect (audit: every dial goes to tor). */
  onConnect?: (socks: { host: string, port: number }, target: { host: string, port: number }) => void
}

/** Dials onion services through tor's SOCKS port. */
export function torConnector (init: TorConnectorInit): OnionConnector {
  const socksHost = init.socksHost ?? '127.0.0.1'
  return async ({ host, port, isolation, signal }) => {
    init.onConnect?.({ host: socksHost, port: init.socksPort }, { host, port })
    return await socksConnect({
      socksPort: init.socksPort,
      socksHost,
      host,
      port,
      isolation,
      timeoutMs: init.timeoutMs ?? 60_000,
      retries: init.retries ?? 3,
      clock: init.clock ?? systemClock,
      signal
    })
  }
}

export interface TorPublisherInit {
  /** Authenticated control connection; the service lives as long as it (no Detach). */
  control: TorControl
  /** The node's identity seed: the service gets the node's own onion address. */
  seed: Uint8Array
  /** Also wait until a connect through this other tor client's SOCKS port succeeds. */
  probe?: OnionProbe
  /** Deadline for the descriptor uploads (and probe), per attempt. @default 45_000 */
  timeoutMs?: number
  /** Publish attempts when tor does not confirm the uploads in time. @default 2 */
  attempts?: number
  /** @default systemClock */
  clock?: Clock
}

/**
 * Publishes the node's onion service (its own key, so the address matches its PeerId) with a
 * port forwarding to the transport's local listener; resolves once tor confirmed every
 * descriptor upload.
 */
export function torPublisher (init: TorPublisherInit): OnionPublisher {
  const attempts = Math.max(1, init.attempts ?? 2)
  return async ({ virtualPort, targetPort, signal }) => {
    let last: unknown
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const identity = identityFromSeed(init.seed)
      let blob: string
      try { blob = torKeyBlob(identity) } finally { identity.destroy() }
      try {
        const endpoint = await publishOnion(init.control, {
          key: { type: 'ED25519-V3', blob },
          ports: [{ virtualPort, target: `127.0.0.1:${targetPort}` }],
          probe: init.probe,
          timeoutMs: init.timeoutMs ?? 45_000,
          clock: init.clock ?? systemClock,
          signal
        })
        return { address: endpoint.serviceId, remove: async () => { await endpoint.remove() } }
      } catch (err) {
        last = err
        // publishOnion removed the service; a second try re-adds it with fresh uploads, which
        // helps when tor started re-uploads that never got an answer (seen under load)
        if (signal.aborted || !isTorError(err, 'TOR_ONION_UNREACHABLE')) break
      } finally {
        blob = ''
      }
    }
    throw new NetError('NET_BAD_CONFIG', `tor could not publish the node's onion service: ${(last as Error).message}`, { cause: last })
  }
}
