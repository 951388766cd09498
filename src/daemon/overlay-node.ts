/**
 * The real node behind the daemon: the OHT on libp2p (src/net createOverlayNode), over tor
 * (onion3 transport: SOCKS through the daemon's tor, the node's own onion service published
 * on its control connection) or over TCP. The tor adapters read the daemon's *current* tor
 * session, so after tor restarts the node dials through the new SOCKS port and its onion
 * service is re-published with the same key and local port.
 */
import { join } from 'node:path'
import type { AbortOptions } from '../core/index.ts'
import { errorMessage, toHex } from '../core/index.ts'
import { onionAddressFromPublicKey } from '../crypto/index.ts'
import { createOverlayNode, torConnector, torPublisher, type OverlayNode } from '../net/index.ts'
import type { OnionPublisher } from '../net/index.ts'
import type { TorControl } from '../tor/control/index.ts'
import { DaemonError } from './errors.ts'
import type { DaemonGetResult, DaemonNode, DaemonPeer, DaemonPutResult, NodeCounters, NodeFactoryInput } from './node.ts'

export async function createOverlayDaemonNode (input: NodeFactoryInput): Promise<DaemonNode> {
  const { config, identity, clock } = input
  const seed = Uint8Array.from(identity.seed)
  let tor = input.tor
  let published: { virtualPort: number, targetPort: number, remove: () => Promise<void> } | undefined
  const publisher = (control: TorControl): OnionPublisher => torPublisher({ control, seed, clock })
  let overlay: OverlayNode
  try {
    if (config.node.transport === 'tor') {
      if (tor === undefined) throw new DaemonError('DAEMON_NODE', 'the tor transport needs a tor')
      overlay = await createOverlayNode({
        seed,
        onionOnly: true,
        onion: {
          virtualPort: config.node.onionPort,
          connect: async (opts) => {
            const current = tor
            if (current === undefined) throw new DaemonError('DAEMON_TOR', 'tor is not connected right now')
            return await torConnector({ socksPort: current.socksPort, clock })(opts)
          },
          publish: async (opts) => {
            const current = tor
            if (current === undefined) throw new DaemonError('DAEMON_TOR', 'tor is not connected right now')
            const r = await publisher(current.control)(opts)
            published = { virtualPort: opts.virtualPort, targetPort: opts.targetPort, remove: r.remove }
            return { ...r, remove: async () => { await published?.remove() } }
          }
        },
        bootstrap: config.node.bootstrap,
        tablePath: join(input.stateDir, 'routing-table.json'),
        join: false,
        oht: { maxValueBytes: config.node.maxValueBytes }
      }, { clock, log: input.log })
    } else {
      overlay = await createOverlayNode({
        seed,
        tcp: { listen: config.node.listen },
        bootstrap: config.node.bootstrap,
        tablePath: join(input.stateDir, 'routing-table.json'),
        join: false,
        oht: { maxValueBytes: config.node.maxValueBytes }
      }, { clock, log: input.log })
    }
  } catch (err) {
    seed.fill(0)
    if (err instanceof DaemonError) throw err
    throw new DaemonError('DAEMON_NODE', `the OHT node did not start: ${errorMessage(err)}`, { cause: err })
  }
  // The saved routing table, else the configured bootstrap list; no peers yet is fine for the first node.
  try { await overlay.join(undefined, input.signal !== undefined ? { signal: input.signal } : {}) } catch (err) { input.log.warn('join failed: %s', errorMessage(err)) }

  const node: DaemonNode = {
    get addrs () { return overlay.multiaddrs },
    async putImmutable (value, options = {}): Promise<DaemonPutResult> {
      const r = await overlay.oht.putImmutable(value, options)
      return { key: r.key, stored: r.stored, attempted: r.attempted }
    },
    async putMutable (options): Promise<DaemonPutResult> {
      const r = await overlay.oht.putMutable({ salt: options.salt, value: options.value, ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}) })
      return { key: r.key, stored: r.stored, attempted: r.attempted, ...(r.seq !== undefined ? { seq: r.seq } : {}) }
    },
    async get (key, options = {}): Promise<DaemonGetResult | undefined> {
      const r = await overlay.oht.get(key, options)
      if (r === undefined) return undefined
      const rec = r.record
      return {
        kind: rec.kind,
        value: r.value,
        responses: r.responses,
        ...(r.seq !== undefined ? { seq: r.seq } : {}),
        ...(rec.kind === 'mutable' ? { publicKey: rec.publicKey } : {})
      }
    },
    async bootstrap (addrs, options: AbortOptions = {}) {
      const r = await overlay.join(addrs, options)
      return { peers: r.peers }
    },
    peers (): DaemonPeer[] {
      return overlay.oht.routingTable.contacts().map(e => ({
        publicKey: toHex(e.contact.publicKey),
        onion: onionAddressFromPublicKey(e.contact.publicKey),
        addrs: e.contact.addrs
      }))
    },
    counters (): NodeCounters {
      const s = overlay.oht.stats
      const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)
      return {
        peers: overlay.oht.routingTable.size,
        recordsStored: overlay.oht.store.size,
        bytesStored: overlay.oht.store.bytes,
        lookups: s.lookups,
        lookupFailures: s.requestFailures,
        requestsIn: sum(s.requestsIn),
        requestsOut: sum(s.requestsOut),
        timeouts: s.timeouts
      }
    },
    async torReconnected (next, options: AbortOptions = {}) {
      tor = next
      if (published !== undefined) {
        const r = await publisher(next.control)({ virtualPort: published.virtualPort, targetPort: published.targetPort, signal: options.signal ?? new AbortController().signal })
        published = { ...published, remove: r.remove }
        input.log('node onion service re-published')
      }
    },
    async stop () {
      try {
        await overlay.stop()
      } finally {
        seed.fill(0)
      }
    }
  }
  return node
}
