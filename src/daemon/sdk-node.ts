/**
 * The real node behind the daemon: the SDK's createNode() (the OHT on libp2p), over tor
 * (onion-only, attached to the daemon's tor: SOCKS for dialling, the node's own onion service
 * published with its key) or over TCP. When tor restarts, the SDK node cannot move to the new
 * tor, so it is rebuilt on it: same identity, same onion address, routing table reloaded from
 * the state dir, peers re-joined; records this node held for others are rebuilt by the
 * network's republishing.
 */
import type { AbortOptions } from '../core/index.ts'
import { errorMessage, toHex } from '../core/index.ts'
import { onionAddressFromPublicKey } from '../crypto/index.ts'
import { createNode, type OhtSdkNode } from '../sdk/index.ts'
import { DaemonError } from './errors.ts'
import type { DaemonGetResult, DaemonNode, DaemonPeer, DaemonPutResult, NodeCounters, NodeFactoryInput } from './node.ts'
import type { TorSession } from './tor-link.ts'

async function build (input: NodeFactoryInput, tor: TorSession | undefined, options: AbortOptions): Promise<OhtSdkNode> {
  const { config, identity, clock } = input
  try {
    if (config.node.transport === 'tcp') {
      return await createNode({ transport: 'tcp', seed: identity.seed, dataDir: input.stateDir, listen: config.node.listen, oht: { maxValueBytes: config.node.maxValueBytes }, clock, ...options })
    }
    if (tor === undefined) throw new DaemonError('DAEMON_NODE', 'the tor transport needs a tor')
    if (tor.controlPort === undefined) throw new DaemonError('DAEMON_TOR', 'the node attaches to tor\'s TCP control port, and this tor has none: add ControlPort 127.0.0.1:<port> to its torrc')
    return await createNode({
      transport: 'tor',
      seed: identity.seed,
      dataDir: input.stateDir,
      tor: {
        attach: {
          controlPort: tor.controlPort,
          ...(tor.controlHost !== undefined ? { host: tor.controlHost } : {}),
          socksPort: tor.socksPort,
          ...(tor.cookiePath !== undefined ? { cookiePath: tor.cookiePath } : {}),
          ...(tor.password !== undefined ? { password: tor.password } : {}),
          ...(tor.allowNullAuth === true ? { allowNullAuth: true } : {})
        },
        virtualPort: config.node.onionPort
      },
      oht: { maxValueBytes: config.node.maxValueBytes },
      clock,
      ...options
    })
  } catch (err) {
    if (err instanceof DaemonError) throw err
    throw new DaemonError('DAEMON_NODE', `the OHT node did not start: ${errorMessage(err)}`, { cause: err })
  }
}

export async function createSdkDaemonNode (input: NodeFactoryInput): Promise<DaemonNode> {
  const signalOpt = (o: AbortOptions): AbortOptions => o.signal !== undefined ? { signal: o.signal } : {}
  let sdk = await build(input, input.tor as TorSession | undefined, signalOpt(input))
  let joined: string[] = []
  const live = (): OhtSdkNode => sdk

  return {
    get addrs () { return live().multiaddrs },
    async putImmutable (value, options = {}): Promise<DaemonPutResult> {
      const r = await live().put(value, options)
      return { key: r.key, stored: r.stored, attempted: r.attempted }
    },
    async putMutable (options): Promise<DaemonPutResult> {
      const r = await live().putMutable({ salt: options.salt, value: options.value, ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}), ...signalOpt(options) })
      return { key: r.key, stored: r.stored, attempted: r.attempted, ...(r.seq !== undefined ? { seq: r.seq } : {}) }
    },
    async get (key, options = {}): Promise<DaemonGetResult | undefined> {
      const r = await live().get(key, options)
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
      joined = addrs
      const r = await live().overlay.join(addrs, options)
      return { peers: r.peers }
    },
    peers (): DaemonPeer[] {
      return live().overlay.oht.routingTable.contacts().map(e => ({
        publicKey: toHex(e.contact.publicKey),
        onion: onionAddressFromPublicKey(e.contact.publicKey),
        addrs: e.contact.addrs
      }))
    },
    counters (): NodeCounters {
      const oht = live().overlay.oht
      const s = oht.stats
      const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)
      return {
        peers: oht.routingTable.size,
        recordsStored: oht.store.size,
        bytesStored: oht.store.bytes,
        lookups: s.lookups,
        lookupFailures: s.requestFailures,
        requestsIn: sum(s.requestsIn),
        requestsOut: sum(s.requestsOut),
        timeouts: s.timeouts
      }
    },
    async torReconnected (tor, options: AbortOptions = {}) {
      const old = sdk
      await old.stop().catch(() => {})
      sdk = await build(input, tor as TorSession, signalOpt(options))
      if (joined.length > 0) await sdk.overlay.join(joined, options).catch((err: unknown) => { input.log.warn('re-join after tor restart failed: %s', errorMessage(err)) })
      input.log('node rebuilt on the new tor session')
    },
    async stop () {
      await sdk.stop()
    }
  }
}
