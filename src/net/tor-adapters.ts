/**
 * The two functions the onion3 transport needs from tor, implemented with the tor layer:
 * a SOCKS connector (tor's SocksPort) and an onion-service publisher (ADD_ONION with the
 * node's own key over an authenticated control connection, ready when every descriptor upload
 * is confirmed).
 */
import type { Clock } from '../core/index.ts'
import { systemClock } from '../core/index.ts'
import { socksConnect } from '../tor/socks.ts'
import type { OnionConnector } from './onion-transport.ts'

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
