/**
 * The onion3 libp2p transport. Dialling `/onion3/<56 chars>:<port>[/p2p/<id>]` opens a stream
 * through tor's SOCKS port (never a direct socket), after validating the onion checksum.
 * Listening on `/onion3/<own address>:<port>` starts a TCP server on 127.0.0.1 (OS-chosen port),
 * publishes an onion service forwarding to it, and resolves only when the service is ready.
 *
 * Tor itself is behind two small functions (an `OnionConnector` and an `OnionPublisher`), so
 * the same transport runs against a real tor (src/net/tor-adapters.ts) or a test double.
 */
import { setMaxListeners } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import {
  TypedEventEmitter, serviceCapabilities, transportSymbol,
  type ComponentLogger, type Connection, type CreateListenerOptions, type DialTransportOptions,
  type Listener, type ListenerEvents, type Logger, type PeerId, type Transport, type Upgrader
} from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { NetError } from './errors.ts'
import { isOnion3, parseOnion3Multiaddr, type Onion3Addr } from './onion-addr.ts'
import { onionOfPeerId } from './identity.ts'
import { socketToMultiaddrConnection } from './socket-conn.ts'

export interface OnionConnectOptions {
  /** "<56 chars>.onion" */
  host: string
  port: number
  /** SOCKS username for tor's IsolateSOCKSAuth: one circuit per distinct value. */
  isolation?: string
  signal: AbortSignal
}

/** Opens a TCP stream to an onion service through tor's SOCKS port. */
export type OnionConnector = (options: OnionConnectOptions) => Promise<Socket>

export interface OnionPublishOptions {
  /** The onion service port peers dial. */
  virtualPort: number
  /** Where tor forwards inbound streams: our listener on 127.0.0.1. */
  targetPort: number
  signal: AbortSignal
}

export interface PublishedOnion {
  /** 56 characters, no ".onion". */
  address: string
  remove(): Promise<void>
}

/** Publishes an onion service and resolves once it is reachable. */
export type OnionPublisher = (options: OnionPublishOptions) => Promise<PublishedOnion>

export interface OnionTransportInit {
  connect: OnionConnector
  /** Without it the transport only dials (a client-only node). */
  publish?: OnionPublisher
  /**
   * `'per-peer'`: one tor circuit per remote peer (SOCKS username = its onion address), so
   * traffic to different peers cannot be linked by a relay. `'none'`: tor's default. A
   * function gives the SOCKS username per target (e.g. to force fresh circuits).
   * @default 'per-peer'
   */
  isolation?: 'per-peer' | 'none' | ((target: Onion3Addr) => string)
  /** Called before every dial with the target, for audit logs and tests. */
  onDial?: (target: Onion3Addr) => void
}

export interface OnionTransportComponents {
  peerId: PeerId
  logger: ComponentLogger
}

class OnionTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = '@oht/onion3'
  readonly [serviceCapabilities]: string[] = ['@libp2p/transport']
  private readonly log: Logger

  constructor (private readonly components: OnionTransportComponents, private readonly init: OnionTransportInit) {
    this.log = components.logger.forComponent('oht:net:onion3')
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const target = parseOnion3Multiaddr(ma)
    options.signal.throwIfAborted()
    this.init.onDial?.(target)
    const mode = this.init.isolation ?? 'per-peer'
    const isolation = typeof mode === 'function' ? mode(target) : mode === 'per-peer' ? target.address : undefined
    let socket: Socket
    try {
      socket = await this.init.connect({ host: `${target.address}.onion`, port: target.port, isolation, signal: options.signal })
    } catch (err) {
      throw new NetError('NET_DIAL_FAILED', `could not reach ${target.address}.onion:${target.port} through tor: ${(err as Error).message}`, { cause: err })
    }
    const maConn = socketToMultiaddrConnection({
      socket, remoteAddr: ma, direction: 'outbound', log: this.log.newScope('conn')
    })
    try {
      return await options.upgrader.upgradeOutbound(maConn, options)
    } catch (err) {
      maConn.abort(err as Error)
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    if (this.init.publish === undefined) {
      throw new NetError('NET_BAD_CONFIG', 'this onion3 transport cannot listen: give it a publisher (a tor control connection)')
    }
    return new OnionListener(this.components, this.init.publish, options.upgrader, this.log.newScope('listener'))
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    if (this.init.publish === undefined) return []
    return multiaddrs.filter(ma => isOnion3(ma))
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(ma => {
      if (!isOnion3(ma)) return false
      try { parseOnion3Multiaddr(ma); return true } catch { return false }
    })
  }
}

class OnionListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private server: Server | undefined
  private published: PublishedOnion | undefined
  private addr: Multiaddr | undefined
  private readonly sockets = new Set<Socket>()
  private readonly shutdown = new AbortController()

  constructor (
    private readonly components: OnionTransportComponents,
    private readonly publish: OnionPublisher,
    private readonly upgrader: Upgrader,
    private readonly log: Logger
  ) {
    super()
    // every inbound upgrade listens on this signal
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  async listen (ma: Multiaddr): Promise<void> {
    const { address, port } = parseOnion3Multiaddr(ma)
    const own = onionOfPeerId(this.components.peerId)
    if (own !== address) {
      throw new NetError('NET_BAD_CONFIG', `cannot listen on ${address}.onion: this node's key owns ${String(own)}.onion`)
    }
    const server = this.server = createServer({ noDelay: true }, (socket) => { this.onSocket(socket) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // loopback only: tor is the one that connects here
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    const local = server.address()
    if (local === null || typeof local === 'string') throw new NetError('NET_BAD_CONFIG', 'the onion target listener has no TCP port')
    try {
      this.published = await this.publish({ virtualPort: port, targetPort: local.port, signal: this.shutdown.signal })
    } catch (err) {
      server.close()
      throw new NetError('NET_BAD_CONFIG', `could not publish ${address}.onion:${port}: ${(err as Error).message}`, { cause: err })
    }
    this.addr = ma.decapsulateCode(421)
    this.log('listening on %s (target 127.0.0.1:%d)', this.addr.toString(), local.port)
    this.safeDispatchEvent('listening')
  }

  private onSocket (socket: Socket): void {
    if (this.addr === undefined) { socket.destroy(); return }
    const remote = multiaddr(`/ip4/127.0.0.1/tcp/${socket.remotePort ?? 0}`)
    this.sockets.add(socket)
    socket.once('close', () => { this.sockets.delete(socket) })
    const maConn = socketToMultiaddrConnection({ socket, remoteAddr: remote, direction: 'inbound', log: this.log.newScope('conn') })
    this.upgrader.upgradeInbound(maConn, { signal: this.shutdown.signal }).catch((err: Error) => {
      this.log('inbound upgrade failed: %s', err.message)
      maConn.abort(err)
    })
  }

  getAddrs (): Multiaddr[] { return this.addr === undefined ? [] : [this.addr] }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    this.shutdown.abort()
    const published = this.published
    this.published = undefined
    this.addr = undefined
    for (const s of this.sockets) s.destroy()
    await Promise.allSettled([
      published?.remove(),
      new Promise<void>((resolve) => { if (this.server === undefined) resolve(); else this.server.close(() => { resolve() }) })
    ])
    this.safeDispatchEvent('close')
  }
}

/**
 * The onion3 transport for libp2p's `transports` list.
 *
 * @example
 * createLibp2p({ transports: [onion3({ connect: torConnector({ socksPort }), publish: torPublisher(control, seed) })] })
 */
export function onion3 (init: OnionTransportInit): (components: OnionTransportComponents) => Transport {
  return (components) => new OnionTransport(components, init)
}
