/**
 * onet: the TUN mode of ONI. Each peer's IPv6 packets travel over one persistent, authenticated
 * onion stream per peer (link.ts), from our TUN device into the peer's.
 *
 *   app ──▶ kernel ──▶ onet0 (TUN) ──▶ this process ──▶ tor SOCKS ─ ─ onion ─ ─▶ peer's link
 *   listener ──▶ peer's process ──▶ peer's onet0 ──▶ peer's kernel ──▶ app
 *
 * - Addresses: ours and every peer's come from their onion keys (virtual-address.ts).
 * - A peer becomes routable when its name is resolved (`<onion>.onet`, a configured alias, or
 *   a name the `names` component resolves to an onion address, such as a DOA name
 *   `chess.alice.onet`; through the DNS responder at fd6f::53), when `addPeer()` is called, or
 *   when it opens an authenticated link to us. With a mapping directory, a peer we resolve must have published
 *   a mapping signed by its own key (mapping.ts), which also gives its link port.
 * - Packets from a link are accepted only with the source address of the key that link proved
 *   and our own address as destination; anything else is dropped and counted.
 * - Packets for a peer whose link is still opening wait in a short queue; beyond it they are
 *   dropped, as a router would.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { AbortOptions, Clock, Logger, Rng } from '../core/index.ts'
import { errorMessage, logger as makeLogger, systemClock, toHex } from '../core/index.ts'
import { onionAddressFromPublicKey, parseOnionAddress } from '../crypto/index.ts'
import { socksConnect } from '../tor/socks.ts'
import { answerDnsQuery, DNS_PORT } from './dns.ts'
import { OniError } from './errors.ts'
import { configureInterface } from './ip-command.ts'
import { buildUdpPacket, parseIpv6, parseUdp, PROTO_UDP } from './ip-packet.ts'
import { acceptLink, openLink, type LinkIdentity, type PeerLink } from './link.ts'
import { DEFAULT_MAX_PACKET_BYTES } from './link-frame.ts'
import { signMapping, type Mapping, type MappingDirectory } from './mapping.ts'
import type { TorDialer } from './socks-server.ts'
import { openTun, type TunDevice } from './tun.ts'
import { formatIpv6, isOnetAddress, ONET_DNS_ADDRESS, ONET_PREFIX, parseIpv6 as parseAddress, virtualAddressFromPublicKey } from './virtual-address.ts'

/** Onion port of onet links unless a peer's mapping says otherwise. */
export const DEFAULT_LINK_PORT = 4789

export interface OnetInit {
  /** tor's SocksPort for outbound links. */
  torSocksPort: number
  /** @default '127.0.0.1' */
  torSocksHost?: string
  /** Interface name. @default 'onet0' */
  ifname?: string
  /** Move the interface into this network namespace (the fd stays here). @default undefined */
  netns?: string
  /** @default 1400 */
  mtu?: number
  /** Onion port our link listener is published on (goes into our mapping). @default DEFAULT_LINK_PORT */
  linkPort?: number
  /** Our name in the mapping (optional). */
  name?: string
  /** Local aliases: `<alias>.onet` → onion address. @default {} */
  names?: Record<string, string>
  /** Talk only to peers with a verified mapping (when a directory is given). @default true */
  requireMapping?: boolean
  /** Packets held per peer while its link opens. @default 64 */
  maxQueuedPackets?: number
  /** Deadline for opening a link (SOCKS connect + handshake). @default 90_000 */
  connectTimeoutMs?: number
  /** After a failed link, wait this long before dialling that peer again. @default 2_000 */
  redialDelayMs?: number
}

/**
 * Resolves a name that is neither an onion address nor an alias (`chess.alice` of
 * `chess.alice.onet`) to a 56-character onion address, or undefined. The daemon passes DOA's
 * name resolution here; ONI itself knows nothing of where names come from.
 */
export type OnetNameSource = (name: string, options: AbortOptions) => Promise<string | undefined>

export interface OnetComponents {
  /** The onion key our endpoint uses: links are signed with it and our address derives from it. */
  identity: LinkIdentity
  /** @default systemClock */
  clock?: Clock
  rng: Rng
  directory?: MappingDirectory
  /** @default socksConnect */
  dial?: TorDialer
  log?: Logger
  /** Names beyond onion addresses and aliases. @default none */
  names?: OnetNameSource
}

export interface OnetStats {
  fromTun: number
  toTun: number
  noRoute: number
  dropped: number
  spoofed: number
  malformed: number
  dnsQueries: number
  linksOpened: number
  linksAccepted: number
  linkFailures: number
}

export interface OnetPeerStatus {
  onion: string
  address: string
  name?: string
  link: 'up' | 'connecting' | 'down'
  direction?: 'inbound' | 'outbound'
  packetsIn: number
  packetsOut: number
  bytesIn: number
  bytesOut: number
}

interface Peer {
  publicKey: Uint8Array
  onion: string
  address: Uint8Array
  linkPort: number
  name?: string
  link?: PeerLink
  connecting?: Promise<void>
  queue: Uint8Array[]
  retryAt: number
  totals: { packetsIn: number, packetsOut: number, bytesIn: number, bytesOut: number }
}

export function createOnet (init: OnetInit, components: OnetComponents): Onet {
  return new Onet(init, components)
}

export class Onet {
  readonly address: Uint8Array
  readonly addressText: string
  readonly stats: OnetStats = { fromTun: 0, toTun: 0, noRoute: 0, dropped: 0, spoofed: 0, malformed: 0, dnsQueries: 0, linksOpened: 0, linksAccepted: 0, linkFailures: 0 }
  private readonly init: OnetInit
  private readonly identity: LinkIdentity
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly directory: MappingDirectory | undefined
  private readonly names: OnetNameSource | undefined
  private readonly dial: TorDialer
  private readonly log: Logger
  private readonly peers = new Map<string, Peer>()
  private readonly byName = new Map<string, string>()
  private readonly dnsAddress = parseAddress(ONET_DNS_ADDRESS)
  private tun: TunDevice | undefined
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly stopping = new AbortController()
  private port = 0

  constructor (init: OnetInit, components: OnetComponents) {
    this.init = init
    this.identity = components.identity
    this.clock = components.clock ?? systemClock
    this.rng = components.rng
    this.directory = components.directory
    this.names = components.names
    this.dial = components.dial ?? socksConnect
    this.log = components.log ?? makeLogger('oni:onet')
    this.address = virtualAddressFromPublicKey(this.identity.publicKey)
    this.addressText = formatIpv6(this.address)
  }

  /** Our onion address (56 chars). */
  get onion (): string { return onionAddressFromPublicKey(this.identity.publicKey) }
  /** The loopback port of our link listener: publish it as the onion route `linkPort → 127.0.0.1:<listenPort>`. */
  get listenPort (): number { return this.port }
  get linkPort (): number { return this.init.linkPort ?? DEFAULT_LINK_PORT }
  get ifname (): string | undefined { return this.tun?.name }

  /**
   * Opens the link listener and the TUN device, configures it (address, fd6f::/16 route,
   * MTU) and publishes our mapping. Throws ONI_TUN_UNAVAILABLE without root or /dev/net/tun.
   */
  async start (options: AbortOptions = {}): Promise<void> {
    this.server = createServer((socket) => { void this.accept(socket) })
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen({ host: '127.0.0.1', port: 0 }, () => { resolve() })
    })
    const a = this.server.address()
    this.port = typeof a === 'object' && a !== null ? a.port : 0
    const tun = await openTun({ name: this.init.ifname ?? 'onet0' })
    this.tun = tun
    try {
      await configureInterface({
        name: tun.name,
        netns: this.init.netns,
        mtu: this.init.mtu ?? 1400,
        addresses: [`${this.addressText}/128`],
        routes: [ONET_PREFIX],
        signal: options.signal
      })
    } catch (err) {
      await this.stop()
      throw err
    }
    tun.onPacket((p) => { this.fromTun(p) })
    for (const [alias, onion] of Object.entries(this.init.names ?? {})) this.byName.set(alias.toLowerCase(), parseOnionAddress(onion).address)
    if (this.directory !== undefined) {
      await this.directory.publish(signMapping(this.identity, { linkPort: this.linkPort, issuedAt: this.clock.now(), ...(this.init.name !== undefined ? { name: this.init.name } : {}) }), options)
    }
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    for (const p of this.peers.values()) p.link?.close()
    for (const s of this.sockets) s.destroy()
    if (this.server?.listening === true) await new Promise<void>((resolve) => { this.server?.close(() => { resolve() }) })
    await this.tun?.close()
  }

  /**
   * Makes a peer routable: verifies its mapping (when a directory is configured) and returns
   * its onet address. Throws ONI_MAPPING_NOT_FOUND / ONI_MAPPING_INVALID.
   */
  async addPeer (onion: string, options: AbortOptions = {}): Promise<Uint8Array> {
    const { address: id, publicKey } = parseOnionAddress(onion)
    const known = this.peers.get(toHex(virtualAddressFromPublicKey(publicKey)))
    if (known !== undefined) return known.address
    let mapping: Mapping | undefined
    if (this.directory !== undefined) {
      mapping = await this.directory.resolve(publicKey, options)
      if (mapping === undefined && this.init.requireMapping !== false) {
        throw new OniError('ONI_MAPPING_NOT_FOUND', `${id}.onion has published no onet mapping: it does not run onet, or has not published yet`)
      }
    }
    const peer = this.register(publicKey, mapping?.linkPort ?? DEFAULT_LINK_PORT)
    if (mapping?.name !== undefined) peer.name = mapping.name
    return peer.address
  }

  /** `<onion>.onet` or `<alias>.onet` → onet address (registers the peer). */
  async resolveName (name: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    const n = name.toLowerCase().replace(/\.$/, '')
    if (!n.endsWith('.onet')) return undefined
    const label = n.slice(0, -'.onet'.length)
    if (label === this.onion || label === this.init.name) return this.address
    let onion = /^[a-z2-7]{56}$/.test(label) ? label : this.byName.get(label)
    if (onion === undefined && this.names !== undefined && label !== '') {
      try {
        const found = await this.names(label, options)
        if (found !== undefined && /^[a-z2-7]{56}$/.test(found)) onion = found
      } catch (err) {
        this.log('name source cannot resolve %s: %s', n, errorMessage(err))
      }
    }
    if (onion === undefined) return undefined
    try {
      return await this.addPeer(onion, options)
    } catch (err) {
      this.log('cannot resolve %s: %s', n, errorMessage(err))
      return undefined
    }
  }

  status (): { interface?: string, address: string, onion: string, linkPort: number, listenPort: number, peers: OnetPeerStatus[], stats: OnetStats } {
    return {
      ...(this.tun !== undefined ? { interface: this.tun.name } : {}),
      address: this.addressText,
      onion: this.onion,
      linkPort: this.linkPort,
      listenPort: this.port,
      peers: [...this.peers.values()].map(p => ({
        onion: p.onion,
        address: formatIpv6(p.address),
        ...(p.name !== undefined ? { name: p.name } : {}),
        link: p.link !== undefined && !p.link.closed ? 'up' : (p.connecting !== undefined ? 'connecting' : 'down'),
        ...(p.link !== undefined ? { direction: p.link.direction } : {}),
        ...p.totals
      })),
      stats: { ...this.stats }
    }
  }

  // ---- internals ----

  private register (publicKey: Uint8Array, linkPort: number): Peer {
    const address = virtualAddressFromPublicKey(publicKey)
    const key = toHex(address)
    let peer = this.peers.get(key)
    if (peer === undefined) {
      peer = { publicKey, onion: onionAddressFromPublicKey(publicKey), address, linkPort, queue: [], retryAt: 0, totals: { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 } }
      this.peers.set(key, peer)
    }
    return peer
  }

  private fromTun (packet: Uint8Array): void {
    this.stats.fromTun++
    let ip
    try { ip = parseIpv6(packet) } catch { this.stats.malformed++; return }
    if (!isOnetAddress(ip.dst)) { this.stats.noRoute++; return }
    if (ip.protocol === PROTO_UDP && toHex(ip.dst) === toHex(this.dnsAddress)) { void this.dns(ip.src, ip.payload); return }
    const peer = this.peers.get(toHex(ip.dst))
    if (peer === undefined) { this.stats.noRoute++; return }
    this.sendTo(peer, packet)
  }

  private sendTo (peer: Peer, packet: Uint8Array): void {
    if (peer.link !== undefined && !peer.link.closed) {
      if (peer.link.send(packet)) { peer.totals.packetsOut++; peer.totals.bytesOut += packet.byteLength } else this.stats.dropped++
      return
    }
    if (peer.queue.length >= (this.init.maxQueuedPackets ?? 64)) { this.stats.dropped++; return }
    peer.queue.push(packet)
    if (peer.connecting === undefined && this.clock.now() >= peer.retryAt) peer.connecting = this.connect(peer).finally(() => { peer.connecting = undefined })
  }

  private async connect (peer: Peer): Promise<void> {
    try {
      const socket = await this.dial({
        socksPort: this.init.torSocksPort,
        socksHost: this.init.torSocksHost,
        host: `${peer.onion}.onion`,
        port: peer.linkPort,
        isolation: 'oni-onet',
        timeoutMs: this.init.connectTimeoutMs ?? 90_000,
        clock: this.clock,
        signal: this.stopping.signal
      })
      this.track(socket)
      const link = await openLink(socket, this.identity, peer.publicKey, { clock: this.clock, signal: this.stopping.signal, maxPacketBytes: DEFAULT_MAX_PACKET_BYTES })
      this.stats.linksOpened++
      this.attachLink(peer, link)
    } catch (err) {
      this.stats.linkFailures++
      this.stats.dropped += peer.queue.length
      peer.queue = []
      peer.retryAt = this.clock.now() + (this.init.redialDelayMs ?? 2_000)
      this.log('link to %s failed: %s', peer.onion, errorMessage(err))
    }
  }

  private track (socket: Socket): void {
    socket.setNoDelay(true)
    this.sockets.add(socket)
    socket.once('close', () => { this.sockets.delete(socket) })
  }

  private async accept (socket: Socket): Promise<void> {
    this.track(socket)
    socket.on('error', () => { socket.destroy() })
    try {
      const link = await acceptLink(socket, this.identity, this.rng, { clock: this.clock, signal: this.stopping.signal, maxPacketBytes: DEFAULT_MAX_PACKET_BYTES })
      this.stats.linksAccepted++
      // The peer proved its key; its reply traffic uses this link until it closes.
      this.attachLink(this.register(link.peerPublicKey, DEFAULT_LINK_PORT), link)
    } catch (err) {
      this.log('inbound link refused: %s', errorMessage(err))
    }
  }

  private attachLink (peer: Peer, link: PeerLink): void {
    peer.link = link
    link.onPacket((packet) => { this.fromLink(peer, packet) })
    link.onClose(() => { if (peer.link === link) peer.link = undefined })
    const queued = peer.queue
    peer.queue = []
    for (const p of queued) this.sendTo(peer, p)
  }

  private fromLink (peer: Peer, packet: Uint8Array): void {
    let ip
    try { ip = parseIpv6(packet) } catch { this.stats.malformed++; return }
    if (toHex(ip.src) !== toHex(peer.address) || toHex(ip.dst) !== toHex(this.address)) { this.stats.spoofed++; return }
    peer.totals.packetsIn++
    peer.totals.bytesIn += packet.byteLength
    if (this.tun?.write(packet) === true) this.stats.toTun++
    else this.stats.dropped++
  }

  private async dns (client: Uint8Array, segment: Uint8Array): Promise<void> {
    let udp
    try { udp = parseUdp(segment) } catch { this.stats.malformed++; return }
    if (udp.dstPort !== DNS_PORT) { this.stats.noRoute++; return }
    this.stats.dnsQueries++
    const answer = await answerDnsQuery(udp.data, async (name) => await this.resolveName(name, { signal: this.stopping.signal }))
    if (answer === undefined || this.tun === undefined || this.tun.closed) return
    this.tun.write(buildUdpPacket(this.dnsAddress, client.slice(), DNS_PORT, udp.srcPort, answer))
  }
}
