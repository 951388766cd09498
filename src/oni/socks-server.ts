/**
 * The ONI SOCKS5 egress: applications connect here (127.0.0.1 only) and every permitted
 * destination is reached through tor's SocksPort.
 *
 * - `.onion` destinations always go through tor; other names and IP literals follow the policy
 *   (`through tor` or refused with reply 0x02 "connection not allowed by ruleset").
 * - No DNS query is ever made here: a hostname goes to tor as a SOCKS domain name (ATYP 3).
 * - RFC 1929 credentials are not checked against a user database (the port is loopback-only);
 *   they name an isolation group: streams with different credentials never share a tor circuit
 *   (passed on as tor's SOCKS username, IsolateSOCKSAuth).
 * - tor's errors come back to the client as the matching SOCKS reply (tor's extended codes
 *   0xF0–0xF7 unchanged), anything else as 0x01; timeouts as 0x04.
 *
 * Per connection: a handshake deadline and a size limit per handshake message, then a plain
 * pipe closed after `idleTimeoutMs` without traffic. A refused client gets its reply and
 * `lingerMs` to read it; then its socket is destroyed whether or not it ever sends its FIN
 * (the server runs half-open so that a client's early FIN does not cut a tunnel short, which
 * would otherwise let half-open clients hold their slots forever). At most
 * `maxConnections` clients at once, and at most `maxConnectionsPerSource` from one address.
 */
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net'
import type { AbortOptions, Clock, Logger, TimerHandle } from '../core/index.ts'
import { isCodedError, logger as makeLogger, systemClock } from '../core/index.ts'
import { socksConnect } from '../tor/socks.ts'
import { OniError } from './errors.ts'
import {
  encodeReply, MAX_GREETING_BYTES, MAX_REQUEST_BYTES, MAX_USERPASS_BYTES, METHOD_NONE, METHOD_UNACCEPTABLE, METHOD_USERPASS,
  parseGreeting, parseRequest, parseUserPass, REP, type Credentials, type DestinationKind, type SocksRequest
} from './socks-protocol.ts'

/** How one destination is handled. */
export type SocksDecision = 'tor' | 'refuse'

export interface SocksDestination { kind: DestinationKind, host: string, port: number, username?: string }

/** Decides a destination that is not an onion address. */
export type SocksPolicy = (dest: SocksDestination) => SocksDecision

/** Dials `host:port` through tor; the default is socksConnect from the tor layer. */
export type TorDialer = (opts: { socksPort: number, socksHost?: string, host: string, port: number, isolation?: string, timeoutMs?: number, clock?: Clock } & AbortOptions) => Promise<Socket>

export interface SocksServerInit {
  /** tor's SocksPort. */
  torSocksPort: number
  /** @default '127.0.0.1' */
  torSocksHost?: string
  /** Listen address: loopback only ('127.0.0.1' or '::1'). @default '127.0.0.1' */
  host?: string
  /** @default 0 (the OS picks; read `port` after listen) */
  port?: number
  /**
   * What to do with destinations that are not `.onion`: 'tor' sends them through tor,
   * 'refuse' answers 0x02, or a function decides per destination. @default 'refuse'
   */
  clearnet?: SocksDecision | SocksPolicy
  /** Require RFC 1929 credentials (every app names its isolation group). @default false */
  requireCredentials?: boolean
  /** Deadline from accept to the CONNECT request. @default 10_000 */
  handshakeTimeoutMs?: number
  /** Deadline for reaching the destination through tor. @default 120_000 */
  connectTimeoutMs?: number
  /** Further clients are closed at once. @default 512 */
  maxConnections?: number
  /**
   * Clients at once from one source address; further ones are closed at once. On loopback
   * every app shares 127.0.0.1, so this keeps one runaway app from taking every slot; it is
   * no fence against a local attacker, who can bind other 127/8 addresses. @default 256
   */
  maxConnectionsPerSource?: number
  /** How long a refused client may take to read our reply before its socket is destroyed. @default 2000 */
  lingerMs?: number
  /** An established tunnel with no bytes either way for this long is closed; 0 never. @default 3_600_000 */
  idleTimeoutMs?: number
}

export interface SocksServerComponents {
  /** @default systemClock */
  clock?: Clock
  /** @default socksConnect from src/tor/socks.ts */
  dial?: TorDialer
  log?: Logger
}

export interface SocksServerStats {
  accepted: number
  open: number
  refused: number
  failed: number
  /** Tunnels closed by idleTimeoutMs. */
  idleClosed: number
  bytesUp: number
  bytesDown: number
  /** Replies sent, by code. */
  replies: Record<string, number>
}

export interface SocksServer {
  readonly host: string
  readonly port: number
  readonly stats: Readonly<SocksServerStats>
  listen(options?: AbortOptions): Promise<void>
  close(): Promise<void>
  /** JSON status for `oht oni ls`. */
  status(): { host: string, port: number, stats: SocksServerStats }
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000
const DEFAULT_CONNECT_TIMEOUT_MS = 120_000
const DEFAULT_MAX_CONNECTIONS = 512
const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 256
const DEFAULT_LINGER_MS = 2_000
const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000

/** The size limit of the message expected in each handshake state. */
const MAX_MESSAGE_BYTES = { greeting: MAX_GREETING_BYTES, auth: MAX_USERPASS_BYTES, request: MAX_REQUEST_BYTES } as const

export function createSocksServer (init: SocksServerInit, components: SocksServerComponents = {}): SocksServer {
  return new OniSocksServer(init, components)
}

/** Isolation group for tor: the app's credentials, or none. */
function isolationOf (creds: Credentials | undefined): string | undefined {
  if (creds === undefined) return undefined
  const s = creds.password === '' ? `oni:${creds.username}` : `oni:${creds.username}:${creds.password}`
  return Buffer.from(s).subarray(0, 255).toString()
}

function replyForError (err: unknown): number {
  const socksReply = (err as { socksReply?: unknown } | null)?.socksReply
  if (typeof socksReply === 'number' && socksReply > 0 && socksReply <= 0xff) return socksReply
  if (isCodedError(err, 'TOR_SOCKS_TIMEOUT') || isCodedError(err, 'CORE_TIMEOUT')) return REP.HOST_UNREACHABLE
  return REP.GENERAL_FAILURE
}

class OniSocksServer implements SocksServer {
  readonly host: string
  private boundPort = 0
  private readonly init: SocksServerInit
  private readonly clock: Clock
  private readonly dial: TorDialer
  private readonly log: Logger
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private clients = 0
  private readonly perSource = new Map<string, number>()
  private readonly closing = new AbortController()
  readonly stats: SocksServerStats = { accepted: 0, open: 0, refused: 0, failed: 0, idleClosed: 0, bytesUp: 0, bytesDown: 0, replies: {} }

  constructor (init: SocksServerInit, components: SocksServerComponents) {
    const host = init.host ?? '127.0.0.1'
    if (host !== '127.0.0.1' && host !== '::1') {
      throw new OniError('ONI_BAD_ARGUMENT', `the SOCKS server binds loopback only (127.0.0.1 or ::1), not ${host}`)
    }
    if (!Number.isInteger(init.torSocksPort) || init.torSocksPort < 1 || init.torSocksPort > 65535) {
      throw new OniError('ONI_BAD_ARGUMENT', `torSocksPort must be tor's SocksPort (1-65535), got ${String(init.torSocksPort)}`)
    }
    for (const key of ['maxConnections', 'maxConnectionsPerSource', 'lingerMs', 'idleTimeoutMs', 'handshakeTimeoutMs', 'connectTimeoutMs'] as const) {
      const v = init[key]
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new OniError('ONI_BAD_ARGUMENT', `${key} must be a whole number >= 0, got ${String(v)}`)
    }
    this.host = host
    this.init = init
    this.clock = components.clock ?? systemClock
    this.dial = components.dial ?? socksConnect
    this.log = components.log ?? makeLogger('oni:socks')
    this.server = createServer({ allowHalfOpen: true }, (socket) => { this.accept(socket) })
  }

  get port (): number { return this.boundPort }

  async listen (options: AbortOptions = {}): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(new OniError('ONI_SOCKS_LISTEN', `cannot listen on ${this.host}:${this.init.port ?? 0}: ${err.message}`, { cause: err })) }
      this.server.once('error', onError)
      this.server.listen({ host: this.host, port: this.init.port ?? 0, signal: options.signal }, () => {
        this.server.off('error', onError)
        const a = this.server.address()
        this.boundPort = typeof a === 'object' && a !== null ? a.port : 0
        resolve()
      })
    })
  }

  async close (): Promise<void> {
    this.closing.abort()
    for (const s of this.sockets) s.destroy()
    if (!this.server.listening) return
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }

  status (): { host: string, port: number, stats: SocksServerStats } {
    return { host: this.host, port: this.port, stats: { ...this.stats, replies: { ...this.stats.replies } } }
  }

  private track (socket: Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => { this.sockets.delete(socket) })
  }

  private reply (socket: Socket, rep: number, thenClose: boolean): void {
    const key = `0x${rep.toString(16).padStart(2, '0')}`
    this.stats.replies[key] = (this.stats.replies[key] ?? 0) + 1
    if (thenClose) this.endWith(socket, encodeReply(rep))
    else socket.write(encodeReply(rep))
  }

  /**
   * Sends a last message and ends our side. end() alone would wait for the client's FIN
   * forever (allowHalfOpen), so the socket is destroyed after lingerMs; until then whatever the
   * client still sends is read and dropped, so closing does not answer with a RST that could
   * discard our reply before the client reads it.
   */
  private endWith (socket: Socket, last: Uint8Array): void {
    if (socket.destroyed) return
    socket.removeAllListeners('data')
    socket.end(last)
    socket.resume()
    const linger = this.clock.setTimeout(() => { socket.destroy() }, this.init.lingerMs ?? DEFAULT_LINGER_MS)
    socket.once('close', () => { linger.cancel() })
  }

  private accept (client: Socket): void {
    this.stats.accepted++
    const source = client.remoteAddress ?? ''
    const fromSource = this.perSource.get(source) ?? 0
    if (this.clients >= (this.init.maxConnections ?? DEFAULT_MAX_CONNECTIONS) ||
        fromSource >= (this.init.maxConnectionsPerSource ?? DEFAULT_MAX_CONNECTIONS_PER_SOURCE)) {
      this.stats.refused++
      client.destroy()
      return
    }
    this.clients++
    this.perSource.set(source, fromSource + 1)
    client.once('close', () => {
      this.clients--
      const n = (this.perSource.get(source) ?? 1) - 1
      if (n <= 0) this.perSource.delete(source)
      else this.perSource.set(source, n)
    })
    this.track(client)
    client.setNoDelay(true)
    client.on('error', () => { client.destroy() })
    let buf = new Uint8Array(0)
    let state: 'greeting' | 'auth' | 'request' | 'connecting' = 'greeting'
    let creds: Credentials | undefined
    const timer: TimerHandle = this.clock.setTimeout(() => {
      this.log('handshake timed out')
      client.destroy()
    }, this.init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS)
    client.once('close', () => { timer.cancel() })

    const fail = (err: unknown): void => {
      timer.cancel()
      const rep = (err as { socksReply?: number }).socksReply
      this.log('handshake failed: %s', err instanceof Error ? err.message : String(err))
      if (state === 'request' && rep !== undefined) this.reply(client, rep, true)
      else client.destroy()
    }

    /** The parsers ask for more only while a message is shorter than its limit; kept as a fence. */
    const checkSize = (): void => {
      if (state !== 'connecting' && buf.byteLength > MAX_MESSAGE_BYTES[state]) {
        throw new OniError('ONI_SOCKS_PROTOCOL', `SOCKS ${state} message over ${MAX_MESSAGE_BYTES[state]} bytes`)
      }
    }

    const onData = (chunk: Buffer): void => {
      // buf holds only the unfinished message (smaller than its limit, checked below), so it
      // stays bounded by one message plus one chunk.
      const next = new Uint8Array(buf.byteLength + chunk.byteLength)
      next.set(buf, 0)
      next.set(chunk, buf.byteLength)
      buf = next
      try {
        for (;;) {
          if (state === 'greeting') {
            const g = parseGreeting(buf)
            if (g === undefined) { checkSize(); return }
            buf = buf.subarray(g.used)
            const method = g.value.includes(METHOD_USERPASS)
              ? METHOD_USERPASS
              : (g.value.includes(METHOD_NONE) && this.init.requireCredentials !== true ? METHOD_NONE : METHOD_UNACCEPTABLE)
            if (method === METHOD_UNACCEPTABLE) { timer.cancel(); this.endWith(client, Uint8Array.of(0x05, METHOD_UNACCEPTABLE)); return }
            client.write(Uint8Array.of(0x05, method))
            state = method === METHOD_USERPASS ? 'auth' : 'request'
          } else if (state === 'auth') {
            const a = parseUserPass(buf)
            if (a === undefined) { checkSize(); return }
            buf = buf.subarray(a.used)
            creds = a.value
            client.write(Uint8Array.of(0x01, 0x00))
            state = 'request'
          } else if (state === 'request') {
            const r = parseRequest(buf)
            if (r === undefined) { checkSize(); return }
            const rest = buf.slice(r.used)
            buf = new Uint8Array(0)
            state = 'connecting'
            timer.cancel()
            client.off('data', onData)
            client.pause()
            void this.connect(client, r.value, creds, rest)
            return
          } else {
            return
          }
        }
      } catch (err) {
        client.off('data', onData)
        fail(err)
      }
    }
    client.on('data', onData)
  }

  private decide (req: SocksRequest, creds: Credentials | undefined): SocksDecision {
    if (req.kind === 'onion') return 'tor'
    const policy = this.init.clearnet ?? 'refuse'
    if (typeof policy === 'string') return policy
    const dest: SocksDestination = { kind: req.kind, host: req.host, port: req.port }
    if (creds !== undefined) dest.username = creds.username
    return policy(dest)
  }

  private async connect (client: Socket, req: SocksRequest, creds: Credentials | undefined, pending: Uint8Array): Promise<void> {
    if (this.decide(req, creds) === 'refuse') {
      this.stats.refused++
      this.log('refused %s:%d by policy', req.kind === 'onion' ? '<onion>' : req.host, req.port)
      this.reply(client, REP.NOT_ALLOWED, true)
      return
    }
    // Names go to tor as names (never resolved here); literals as literals.
    const host = req.host
    if ((req.kind === 'ipv4' && !isIPv4(host)) || (req.kind === 'ipv6' && !isIPv6(host))) { this.reply(client, REP.ADDRESS_TYPE_NOT_SUPPORTED, true); return }
    const abort = new AbortController()
    const onClientGone = (): void => { abort.abort() }
    client.once('close', onClientGone)
    const onServerClose = (): void => { abort.abort() }
    this.closing.signal.addEventListener('abort', onServerClose, { once: true })
    let upstream: Socket
    try {
      upstream = await this.dial({
        socksPort: this.init.torSocksPort,
        socksHost: this.init.torSocksHost,
        host,
        port: req.port,
        isolation: isolationOf(creds),
        timeoutMs: this.init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        clock: this.clock,
        signal: abort.signal
      })
    } catch (err) {
      this.stats.failed++
      if (!client.destroyed) this.reply(client, replyForError(err), true)
      return
    } finally {
      client.off('close', onClientGone)
      this.closing.signal.removeEventListener('abort', onServerClose)
    }
    if (client.destroyed) { upstream.destroy(); return }
    this.track(upstream)
    upstream.setNoDelay(true)
    this.reply(client, REP.SUCCEEDED, false)
    this.splice(client, upstream, pending)
  }

  private splice (client: Socket, upstream: Socket, pending: Uint8Array): void {
    this.stats.open++
    let closed = 0
    // A clean end travels through pipe() as a half-close; an error tears down both sides.
    const onClose = (hadError: boolean): void => {
      if (hadError) { client.destroy(); upstream.destroy() }
      if (++closed === 2) this.stats.open--
    }
    client.once('close', onClose)
    upstream.once('close', onClose)
    this.watchIdle(client, upstream)
    client.on('error', () => { client.destroy() })
    upstream.on('error', () => { upstream.destroy() })
    if (pending.byteLength > 0) { upstream.write(pending); this.stats.bytesUp += pending.byteLength }
    client.on('data', (d: Buffer) => { this.stats.bytesUp += d.byteLength })
    upstream.on('data', (d: Buffer) => { this.stats.bytesDown += d.byteLength })
    client.pipe(upstream)
    upstream.pipe(client)
    client.resume()
  }

  /**
   * Closes a tunnel idle for idleTimeoutMs. One timer per tunnel, re-armed for the time left
   * when it fires, rather than reset on every chunk.
   */
  private watchIdle (client: Socket, upstream: Socket): void {
    const idleMs = this.init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    if (idleMs === 0) return
    let last = this.clock.monotonic()
    const touch = (): void => { last = this.clock.monotonic() }
    client.on('data', touch)
    upstream.on('data', touch)
    let timer: TimerHandle
    const check = (): void => {
      const idle = this.clock.monotonic() - last
      if (idle < idleMs) { timer = this.clock.setTimeout(check, idleMs - idle); return }
      this.stats.idleClosed++
      this.log('closing a tunnel idle for %d ms', idle)
      client.destroy()
      upstream.destroy()
    }
    timer = this.clock.setTimeout(check, idleMs)
    const stop = (): void => { timer.cancel() }
    client.once('close', stop)
    upstream.once('close', stop)
  }
}
