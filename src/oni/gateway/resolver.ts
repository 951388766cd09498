/**
 * The router's own resolver for the VMs behind the gateway: UDP and TCP on the router's inside
 * address (the firewall DNATs every DNS packet from inside here, whatever address it was sent
 * to). It answers local names itself (zones.ts) and sends the rest to tor's DNSPort, never
 * anywhere else: there is no system resolver, no fallback server, no getaddrinfo().
 *
 * Per-VM isolation: each VM's upstream queries leave from its own loopback source address
 * (127.83.x.y, one per VM), so tor's IsolateClientAddr keeps one VM's lookups off another
 * VM's circuits, just as the TransPort does for its connections.
 *
 * Upstream queries carry a fresh random id, only the VM's question (no EDNS options of the VM
 * travel on), and are matched on id, source and question before the answer is relayed with
 * the VM's own id. Limits: pending queries in all and per VM, queries per second per VM, TCP
 * connections, message sizes (dns-wire.ts), VMs tracked (least recently seen evicted).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import type { AbortOptions, Clock, Logger, Rng, TimerHandle } from '../../core/index.ts'
import { errorMessage, logger as makeLogger } from '../../core/index.ts'
import { OniError } from '../errors.ts'
import { addressRecord, buildAnswer, checkResponse, encodeQuery, fitAnswer, formatError, MAX_MESSAGE_BYTES, parseQuery, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_AAAA, withId, type DnsQuery } from './dns-wire.ts'
import { decide, type Zones } from './zones.ts'

export interface ResolverInit {
  /** Where to listen (UDP and TCP on each). */
  listen: Array<{ host: string, port: number }>
  /** Deadline of an upstream answer (then SERVFAIL). @default 10_000 */
  timeoutMs?: number
  /** Upstream queries waiting, in all. @default 2_048 */
  maxPending?: number
  /** Upstream queries waiting, per VM. @default 128 */
  maxPendingPerClient?: number
  /** VMs tracked (each with a loopback source address and counters). @default 1_024 */
  maxClients?: number
  /** First two octets of the per-VM loopback source addresses. @default '127.83' */
  isolationPrefix?: string
  /** Queries per second a VM may send (bursts up to twice that). @default 200 */
  queriesPerSecond?: number
  /** @default 256 */
  maxTcpConnections?: number
  /** A TCP connection without a query for this long is closed. @default 15_000 */
  tcpIdleMs?: number
  /** TTL of the answers we make ourselves. @default 60 */
  localTtlS?: number
}

export interface ResolverComponents {
  clock: Clock
  rng: Rng
  /** The zones in force (swapped when the blocklist is reloaded). */
  zones: () => Zones
  /** tor's DNSPort, or undefined while tor is away (queries then fail at once). */
  upstream: () => { host: string, port: number } | undefined
  /** `<label>.onet` → its onet address, or undefined when unknown. */
  resolveOnet?: (name: string, options: AbortOptions) => Promise<Uint8Array | undefined>
  log?: Logger
}

export interface ResolverCounts {
  queries: number
  /** Answered here (VM names, localhost, reserved zones, unsupported types). */
  local: number
  blocked: number
  /** Sent to tor and answered by it (whatever its rcode). */
  forwarded: number
  /** Sent to tor, no usable answer (timeout, tor away, malformed): SERVFAIL. */
  failed: number
  /** Over the per-VM rate or pending limit: REFUSED. */
  limited: number
  malformed: number
}

export interface ResolverClientStatus extends ResolverCounts {
  address: string
  /** The loopback address this VM's upstream queries leave from. */
  isolationAddress: string
  lastSeen: number
}

type Outcome = 'local' | 'blocked' | 'forwarded' | 'failed' | 'limited' | 'malformed'

interface Pending {
  id: number
  question: Uint8Array
  resolve: (answer: Uint8Array | undefined) => void
  timer: TimerHandle
}

interface Client {
  address: string
  slot: number
  isolation: string
  socket?: UdpSocket
  pending: Map<number, Pending>
  tokens: number
  refilledAt: number
  lastSeen: number
  counts: ResolverCounts
}

const MAX_SLOTS = 65_000

function zeroCounts (): ResolverCounts {
  return { queries: 0, local: 0, blocked: 0, forwarded: 0, failed: 0, limited: 0, malformed: 0 }
}

export function createResolver (init: ResolverInit, components: ResolverComponents): GatewayResolver {
  return new GatewayResolver(init, components)
}

export class GatewayResolver {
  readonly totals: ResolverCounts = zeroCounts()
  private readonly init: Required<Omit<ResolverInit, 'listen'>> & Pick<ResolverInit, 'listen'>
  private readonly c: ResolverComponents
  private readonly log: Logger
  private readonly clients = new Map<string, Client>()
  private readonly usedSlots = new Set<number>()
  private nextSlot = 1
  private pendingTotal = 0
  private readonly udp: UdpSocket[] = []
  private readonly tcp: Server[] = []
  private readonly tcpSockets = new Set<Socket>()
  private readonly stopping = new AbortController()
  private stopped = false

  constructor (init: ResolverInit, components: ResolverComponents) {
    this.init = {
      listen: init.listen,
      timeoutMs: init.timeoutMs ?? 10_000,
      maxPending: init.maxPending ?? 2_048,
      maxPendingPerClient: init.maxPendingPerClient ?? 128,
      maxClients: Math.min(init.maxClients ?? 1_024, 65_000),
      isolationPrefix: init.isolationPrefix ?? '127.83',
      queriesPerSecond: init.queriesPerSecond ?? 200,
      maxTcpConnections: init.maxTcpConnections ?? 256,
      tcpIdleMs: init.tcpIdleMs ?? 15_000,
      localTtlS: init.localTtlS ?? 60
    }
    if (!/^127\.\d{1,3}$/.test(this.init.isolationPrefix) || Number(this.init.isolationPrefix.split('.')[1]) > 255) {
      throw new OniError('ONI_GATEWAY_CONFIG', `isolation prefix ${JSON.stringify(this.init.isolationPrefix)} must be "127.<0-255>"`)
    }
    this.c = components
    this.log = components.log ?? makeLogger('oni:gateway:dns')
  }

  /** Ports actually bound, in `listen` order (useful with port 0). */
  get ports (): number[] {
    return this.udp.map(s => s.address().port)
  }

  /** Binds every listen address (UDP and TCP). Throws ONI_GATEWAY_LISTEN naming the address. */
  async start (options: AbortOptions = {}): Promise<void> {
    try {
      for (const l of this.init.listen) {
        const v6 = isIPv6(l.host)
        const sock = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 })
        this.udp.push(sock)
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject)
          sock.bind({ address: l.host, port: l.port, exclusive: true }, () => { sock.off('error', reject); resolve() })
        })
        sock.on('error', (err) => { this.log('udp socket error: %s', errorMessage(err)) })
        sock.on('message', (msg, rinfo) => { void this.onUdp(sock, msg, rinfo) })
        const port = sock.address().port
        const server = createServer({ pauseOnConnect: false }, (s) => { this.onTcp(s) })
        server.maxConnections = this.init.maxTcpConnections
        this.tcp.push(server)
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen({ host: l.host, port, exclusive: true }, () => { server.off('error', reject); resolve() })
        })
        if (options.signal?.aborted === true) throw options.signal.reason
      }
    } catch (err) {
      await this.stop()
      const where = this.init.listen.map(l => `${l.host}:${l.port}`).join(', ')
      throw new OniError('ONI_GATEWAY_LISTEN', `the gateway resolver cannot listen on ${where}: ${errorMessage(err)} (is the inside address on this machine, and the port free?)`, { cause: err })
    }
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.stopping.abort()
    for (const client of this.clients.values()) this.dropClient(client)
    for (const s of this.tcpSockets) s.destroy()
    await Promise.all(this.tcp.map(async (srv) => await new Promise<void>((resolve) => { srv.close(() => { resolve() }) })))
    await Promise.all(this.udp.map(async (s) => await new Promise<void>((resolve) => { try { s.close(() => { resolve() }) } catch { resolve() } })))
  }

  clientStatus (): ResolverClientStatus[] {
    return [...this.clients.values()].map(c => ({ address: c.address, isolationAddress: c.isolation, lastSeen: c.lastSeen, ...c.counts }))
  }

  /**
   * Answers one query message from `client` (the VM's address). Undefined: no answer at all
   * (a response sent to us, or a header too short to answer).
   */
  async answer (msg: Uint8Array, client: string): Promise<{ answer: Uint8Array | undefined, query?: DnsQuery }> {
    const c = this.client(client)
    this.totals.queries++
    c.counts.queries++
    let q: DnsQuery
    try {
      q = parseQuery(msg)
    } catch {
      this.count(c, 'malformed')
      return { answer: formatError(msg) }
    }
    if (!this.take(c)) {
      this.count(c, 'limited')
      return { answer: buildAnswer(q, RCODE_REFUSED), query: q }
    }
    const d = decide(q.name, q.qtype, q.qclass, this.c.zones())
    const ttl = this.init.localTtlS
    switch (d.kind) {
      case 'local':
        this.count(c, 'local')
        return { answer: buildAnswer(q, d.rcode, d.addresses.map(addressRecord), ttl), query: q }
      case 'blocked':
        this.count(c, 'blocked')
        return { answer: buildAnswer(q, RCODE_NOERROR, d.addresses.map(addressRecord), ttl), query: q }
      case 'onet':
        return { answer: await this.onet(c, q, d.name), query: q }
      case 'forward':
        return { answer: await this.forward(c, q), query: q }
    }
  }

  // ---- internals ----

  private count (c: Client, outcome: Outcome): void {
    this.totals[outcome]++
    c.counts[outcome]++
  }

  private client (address: string): Client {
    const now = this.c.clock.now()
    let c = this.clients.get(address)
    if (c !== undefined) {
      // Map order is recency order: move to the end.
      this.clients.delete(address)
      this.clients.set(address, c)
      c.lastSeen = now
      return c
    }
    if (this.clients.size >= this.init.maxClients) {
      const oldest = this.clients.values().next().value as Client
      this.dropClient(oldest)
    }
    const slot = this.allocateSlot()
    const isolation = `${this.init.isolationPrefix}.${slot >> 8}.${slot & 0xff}`
    c = { address, slot, isolation, pending: new Map(), tokens: this.init.queriesPerSecond * 2, refilledAt: this.c.clock.monotonic(), lastSeen: now, counts: zeroCounts() }
    this.clients.set(address, c)
    return c
  }

  private dropClient (c: Client): void {
    for (const p of c.pending.values()) { p.timer.cancel(); p.resolve(undefined) }
    this.pendingTotal -= c.pending.size
    c.pending.clear()
    try { c.socket?.close() } catch {}
    c.socket = undefined
    this.clients.delete(c.address)
    this.usedSlots.delete(c.slot)
  }

  /**
   * A loopback source address for a new VM. Addresses are handed out in turn and reused only
   * after all 65,000 went round, so a new VM is unlikely to inherit a recent VM's source (and
   * with it tor's circuits for that source).
   */
  private allocateSlot (): number {
    for (;;) {
      const slot = this.nextSlot
      this.nextSlot = slot >= MAX_SLOTS ? 1 : slot + 1
      if (!this.usedSlots.has(slot)) { this.usedSlots.add(slot); return slot }
    }
  }

  private take (c: Client): boolean {
    const now = this.c.clock.monotonic()
    const rate = this.init.queriesPerSecond
    c.tokens = Math.min(rate * 2, c.tokens + ((now - c.refilledAt) / 1000) * rate)
    c.refilledAt = now
    if (c.tokens < 1) return false
    c.tokens -= 1
    return true
  }

  private async onet (c: Client, q: DnsQuery, name: string): Promise<Uint8Array> {
    const resolve = this.c.resolveOnet
    if (resolve === undefined) { this.count(c, 'local'); return buildAnswer(q, RCODE_NXDOMAIN) }
    let addr: Uint8Array | undefined
    const ac = new AbortController()
    const timer = this.c.clock.setTimeout(() => { ac.abort(new OniError('ONI_GATEWAY_TOR', 'onet lookup timed out')) }, this.init.timeoutMs)
    const onStop = (): void => { ac.abort() }
    this.stopping.signal.addEventListener('abort', onStop, { once: true })
    try {
      addr = await resolve(name, { signal: ac.signal })
    } catch (err) {
      this.log('onet lookup of %s failed: %s', name, errorMessage(err))
      this.count(c, 'failed')
      return buildAnswer(q, RCODE_SERVFAIL)
    } finally {
      timer.cancel()
      this.stopping.signal.removeEventListener('abort', onStop)
    }
    this.count(c, 'local')
    if (addr === undefined) return buildAnswer(q, RCODE_NXDOMAIN)
    return buildAnswer(q, RCODE_NOERROR, q.qtype === TYPE_AAAA ? [addressRecord(addr)] : [], this.init.localTtlS)
  }

  private async forward (c: Client, q: DnsQuery): Promise<Uint8Array> {
    const up = this.c.upstream()
    if (up === undefined || this.stopped) { this.count(c, 'failed'); return buildAnswer(q, RCODE_SERVFAIL) }
    if (this.pendingTotal >= this.init.maxPending || c.pending.size >= this.init.maxPendingPerClient) {
      this.count(c, 'limited')
      return buildAnswer(q, RCODE_REFUSED)
    }
    let socket: UdpSocket
    try {
      socket = await this.upstreamSocket(c)
    } catch (err) {
      this.log('cannot open the upstream socket for %s: %s', c.address, errorMessage(err))
      this.count(c, 'failed')
      return buildAnswer(q, RCODE_SERVFAIL)
    }
    let id = this.c.rng.int(0x10000)
    for (let tries = 0; c.pending.has(id) && tries < 8; tries++) id = this.c.rng.int(0x10000)
    if (c.pending.has(id)) { this.count(c, 'limited'); return buildAnswer(q, RCODE_REFUSED) }
    const reply = await new Promise<Uint8Array | undefined>((resolve) => {
      const timer = this.c.clock.setTimeout(() => { c.pending.delete(id); this.pendingTotal--; resolve(undefined) }, this.init.timeoutMs)
      c.pending.set(id, {
        id,
        question: q.question,
        resolve: (a) => { resolve(a) },
        timer
      })
      this.pendingTotal++
      socket.send(encodeQuery(id, q.question), up.port, up.host, (err) => {
        if (err == null) return
        const p = c.pending.get(id)
        if (p === undefined) return
        p.timer.cancel()
        c.pending.delete(id)
        this.pendingTotal--
        resolve(undefined)
      })
    })
    if (reply === undefined) { this.count(c, 'failed'); return buildAnswer(q, RCODE_SERVFAIL) }
    this.count(c, 'forwarded')
    return withId(reply, q.id)
  }

  private async upstreamSocket (c: Client): Promise<UdpSocket> {
    if (c.socket !== undefined) return c.socket
    const sock = createSocket({ type: 'udp4' })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind({ address: c.isolation, port: 0 }, () => { sock.off('error', reject); resolve() })
    })
    sock.on('error', (err) => { this.log('upstream socket %s: %s', c.isolation, errorMessage(err)) })
    sock.on('message', (msg, rinfo) => { this.onUpstream(c, msg, rinfo) })
    if (c.socket !== undefined || !this.clients.has(c.address)) {
      // Raced with another query for the same VM, or the VM was evicted meanwhile.
      sock.close()
      if (c.socket !== undefined) return c.socket
      throw new OniError('ONI_CLOSED', 'client evicted')
    }
    c.socket = sock
    return sock
  }

  private onUpstream (c: Client, msg: Buffer, rinfo: RemoteInfo): void {
    const up = this.c.upstream()
    // Only tor's DNSPort may answer; anything else on this socket is ignored.
    if (up === undefined || rinfo.port !== up.port || rinfo.address !== up.host) return
    if (msg.byteLength < 2) return
    const id = (msg[0] << 8) | msg[1]
    const p = c.pending.get(id)
    if (p === undefined) return
    try {
      checkResponse(msg, p.question)
    } catch (err) {
      this.log('dropping a malformed answer from tor: %s', errorMessage(err))
      return
    }
    p.timer.cancel()
    c.pending.delete(id)
    this.pendingTotal--
    p.resolve(new Uint8Array(msg))
  }

  private async onUdp (sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    if (this.stopped) return
    const { answer, query } = await this.answer(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), rinfo.address)
    if (answer === undefined || this.stopped) return
    const out = query !== undefined ? fitAnswer(answer, query.question.byteLength, query.udpSize) : answer
    sock.send(out, rinfo.port, rinfo.address, () => {})
  }

  private onTcp (s: Socket): void {
    this.tcpSockets.add(s)
    s.setNoDelay(true)
    let buf: Buffer = Buffer.alloc(0)
    let inflight = 0
    let idle: TimerHandle | undefined
    const arm = (): void => {
      idle?.cancel()
      idle = this.c.clock.setTimeout(() => { s.destroy() }, this.init.tcpIdleMs)
    }
    arm()
    s.on('error', () => { s.destroy() })
    s.on('close', () => { idle?.cancel(); this.tcpSockets.delete(s) })
    const client = s.remoteAddress ?? 'unknown'
    s.on('data', (chunk: Buffer) => {
      arm()
      buf = buf.byteLength === 0 ? chunk : Buffer.concat([buf, chunk])
      while (buf.byteLength >= 2) {
        const len = buf.readUInt16BE(0)
        if (len > MAX_MESSAGE_BYTES || len < 12) { s.destroy(); return }
        if (buf.byteLength < 2 + len) {
          if (buf.byteLength > 2 + MAX_MESSAGE_BYTES) { s.destroy(); return }
          break
        }
        const msg = new Uint8Array(buf.subarray(2, 2 + len))
        buf = buf.subarray(2 + len)
        if (++inflight > 16) { s.destroy(); return }
        void this.answer(msg, client).then(({ answer }) => {
          inflight--
          if (answer === undefined || s.destroyed) return
          const frame = Buffer.alloc(2 + answer.byteLength)
          frame.writeUInt16BE(answer.byteLength, 0)
          frame.set(answer, 2)
          s.write(frame)
        })
      }
    })
  }
}
