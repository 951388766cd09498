/**
 * createNode(): one call that gives a running OHT node, over tor (onion-only: it launches a
 * tor or attaches to a running one, publishes the node's onion service under its own key and
 * never connects outside tor) or over TCP (LAN/dev), with put/get and stop().
 */
import { join } from 'node:path'
import { cryptoRng, systemClock, wipe, type AbortOptions, type Clock, type Rng } from '../core/index.ts'
import { onionAddressFromPublicKey } from '../crypto/index.ts'
import {
  createOverlayNode, libp2pKeyFromSeed, NetError, torConnector, torPublisher,
  type OverlayNode
} from '../net/index.ts'
import type { GetResult, OhtNodeInit, PeerContact, PeerNet, PutMutableOptions, PutResult } from '../oht/index.ts'
import { attachTor, launchTor, type LaunchTorInit, type OnionProbe, type TorControl, type TorProcess } from '../tor/index.ts'

export interface CreateNodeInit extends AbortOptions {
  /**
   * `'tor'`: onion-only, every connection through tor's SOCKS port, reachable at the node's
   * own onion address. `'tcp'`: libp2p over TCP (LAN and development).
   * @default 'tor'
   */
  transport?: 'tor' | 'tcp'
  /** 32-byte identity seed (e.g. deriveChildSeed(master, 'universe.router.multiverse')). @default a fresh random identity */
  seed?: Uint8Array
  /** Directory for the node's routing table, tried first after a restart. @default undefined (not saved) */
  dataDir?: string
  /** Multiaddrs with /p2p/ to join through. @default [] */
  bootstrap?: string[]
  /** TCP listen addresses (transport 'tcp'). @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Tor settings (transport 'tor'). Without `attach`, a tor is launched. */
  tor?: {
    /** A running tor: its control port; the SOCKS port is asked from tor when not given. */
    attach?: { controlPort: number, host?: string, socksPort?: number, password?: string, cookiePath?: string }
    /** Settings for a launched tor (e.g. `{ torrc: testnet.clientTorrc() }`). @default {} */
    launch?: Omit<LaunchTorInit, 'signal' | 'socksPort'>
    /** The onion service port peers dial. @default 4001 */
    virtualPort?: number
    /** Also wait until the service is reachable through this other tor client. */
    probe?: OnionProbe
  }
  /** OHT engine settings. */
  oht?: Omit<OhtNodeInit, 'addrs'>
  /** @default systemClock */
  clock?: Clock
  /** @default cryptoRng */
  rng?: Rng
}

export interface OhtSdkNode {
  /** The node's Ed25519 public key (identity, PeerId, onion address). */
  readonly publicKey: Uint8Array
  /** 56-character onion address (no ".onion"); set for transport 'tor'. */
  readonly onion?: string
  /** Addresses to give others as `bootstrap`. */
  readonly multiaddrs: string[]
  readonly contact: PeerContact
  /** Stores an immutable record (key = SHA-256(value)) at the k closest nodes. */
  put(value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<PutResult>
  /** Stores a signed mutable record (key = H(publicKey || salt)). */
  putMutable(options: PutMutableOptions): Promise<PutResult>
  get(key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined>
  /**
   * Direct protocols between peers: request/response and message streams to a peer's
   * contact under a protocol id, over the node's existing (onion) connections.
   *
   * @example
   * node.peers.handle('/hello/1', async (from, body) => new TextEncoder().encode(`hi ${body.byteLength}`))
   * const answer = await other.peers.request(node.contact, '/hello/1', bytes, { timeoutMs: 30_000 })
   */
  readonly peers: PeerNet
  /** The node underneath: libp2p, the OHT engine, the DhtNet adapter. */
  readonly overlay: OverlayNode
  /** Stops the node, closes its tor control connection and stops a tor it launched. */
  stop(): Promise<void>
}

const TABLE_FILE = 'routing-table.json'

/**
 * @example
 * // join an OHT network over tor, with a tor launched for this node
 * const node = await createNode({ seed, dataDir: '/var/lib/oht', bootstrap: ['/onion3/…:4001/p2p/12D3Koo…'] })
 * const { key } = await node.put(new TextEncoder().encode('hello'))
 * const hit = await node.get(key)
 * await node.stop()
 *
 * @example
 * // over TCP on a LAN
 * const node = await createNode({ transport: 'tcp', listen: ['/ip4/0.0.0.0/tcp/4001'] })
 */
export async function createNode (init: CreateNodeInit = {}): Promise<OhtSdkNode> {
  const transport = init.transport ?? 'tor'
  const seed = init.seed !== undefined ? Uint8Array.from(init.seed) : cryptoRng.bytes(32)
  if (seed.byteLength !== 32) throw new NetError('NET_BAD_CONFIG', `the identity seed has 32 bytes, got ${seed.byteLength}`)
  const clock = init.clock ?? systemClock
  const rng = init.rng ?? cryptoRng
  const tablePath = init.dataDir !== undefined ? join(init.dataDir, TABLE_FILE) : undefined
  const cleanups: Array<() => Promise<void>> = []
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
    cleanups.length = 0
  }
  try {
    let overlay: OverlayNode
    let onion: string | undefined
    if (transport === 'tcp') {
      overlay = await createOverlayNode({
        seed, tcp: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'] }, bootstrap: init.bootstrap, tablePath, oht: init.oht
      }, { clock, rng })
    } else {
      const tor = await connectTor(init, clock)
      cleanups.push(tor.close)
      onion = onionAddressFromPublicKey(libp2pKeyFromSeed(seed).publicKey.raw)
      overlay = await createOverlayNode({
        seed,
        onionOnly: true,
        onion: {
          connect: torConnector({ socksPort: tor.socksPort, clock }),
          publish: torPublisher({ control: tor.control, seed, probe: init.tor?.probe, clock }),
          virtualPort: init.tor?.virtualPort
        },
        bootstrap: init.bootstrap,
        tablePath,
        oht: init.oht
      }, { clock, rng })
    }
    wipe(seed)
    return new SdkNode(overlay, onion, cleanup)
  } catch (err) {
    wipe(seed)
    await cleanup()
    throw err
  }
}

interface TorHandle { control: TorControl, socksPort: number, close: () => Promise<void> }

async function connectTor (init: CreateNodeInit, clock: Clock): Promise<TorHandle> {
  const attach = init.tor?.attach
  if (attach !== undefined) {
    const control = await attachTor({ host: attach.host ?? '127.0.0.1', port: attach.controlPort }, {
      password: attach.password, cookiePath: attach.cookiePath, clock, signal: init.signal
    })
    try {
      const socksPort = attach.socksPort ?? await socksPortOf(control, init.signal)
      return { control, socksPort, close: async () => { await control.close() } }
    } catch (err) {
      await control.close().catch(() => {})
      throw err
    }
  }
  const proc: TorProcess = await launchTor({ ...init.tor?.launch, socksPort: 'auto', clock, signal: init.signal })
  try {
    if (proc.socksPort === undefined) throw new NetError('NET_BAD_CONFIG', 'the launched tor has no SOCKS port')
    // a control connection of our own: publishing changes its event subscriptions
    const control = await attachTor({ host: '127.0.0.1', port: proc.controlPort }, { cookiePath: proc.cookiePath, clock, signal: init.signal })
    return {
      control,
      socksPort: proc.socksPort,
      close: async () => { await control.close().catch(() => {}); await proc.stop() }
    }
  } catch (err) {
    await proc.stop().catch(() => {})
    throw err
  }
}

/** tor's first SOCKS listener on loopback (GETINFO net/listeners/socks). */
async function socksPortOf (control: TorControl, signal?: AbortSignal): Promise<number> {
  const value = await control.getInfoOne('net/listeners/socks', { signal })
  for (const m of value.matchAll(/"?(?:127\.0\.0\.1|\[::1\]|localhost):(\d+)"?/g)) return Number(m[1])
  throw new NetError('NET_BAD_CONFIG', `the tor at this control port has no SOCKS port on loopback (${value || 'none'}): set SocksPort or pass tor.attach.socksPort`)
}

class SdkNode implements OhtSdkNode {
  private stopped = false
  constructor (readonly overlay: OverlayNode, readonly onion: string | undefined, private readonly cleanup: () => Promise<void>) {}

  get publicKey (): Uint8Array { return this.overlay.contact.publicKey }
  get multiaddrs (): string[] { return this.overlay.multiaddrs }
  get contact (): PeerContact { return this.overlay.contact }
  get peers (): PeerNet { return this.overlay.peers }

  async put (value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<PutResult> {
    return await this.overlay.oht.putImmutable(value, options)
  }

  async putMutable (options: PutMutableOptions): Promise<PutResult> {
    return await this.overlay.oht.putMutable(options)
  }

  async get (key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined> {
    return await this.overlay.oht.get(key, options)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.overlay.stop()
    await this.cleanup()
  }
}
