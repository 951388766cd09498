/**
 * SOCKS5 client (RFC 1928, username auth RFC 1929) for connecting through tor's SocksPort,
 * with tor's ExtendedErrors reply codes (0xF0-0xF7) mapped to messages.
 *
 *   client                                  tor
 *   05 01 M                       ->        greeting, one method: 00 none or 02 user/pass
 *                                 <-        05 M
 *   01 ULEN user PLEN pass        ->        (M = 02 only; IsolateSOCKSAuth isolates circuits
 *                                 <-        01 00   by these credentials)
 *   05 01 00 ATYP addr port(2)    ->        CONNECT; ATYP 03 = hostname (x.onion), 01 = IPv4
 *                                 <-        05 REP 00 ATYP bnd.addr bnd.port(2)
 *
 * Every reply is read with an exact length; anything tor sends after the reply stays in the
 * socket for the caller.
 */
import { Socket, isIPv4, isIPv6 } from 'node:net'
import type { Clock } from '../core/index.ts'
import { AbortError, abortReason, scopedSignal, systemClock, TimeoutError } from '../core/index.ts'
import type { AbortOptions } from '../core/index.ts'
import { TorError } from './errors.ts'

/** Retry delays for "descriptor not found" (the HSDirs may not have the descriptor yet). */
const RETRY_BASE_MS = 250
const RETRY_MAX_MS = 2000
const MAX_HOSTNAME_BYTES = 255

export interface SocksConnectOptions extends AbortOptions {
  /** tor's SocksPort. */
  socksPort: number
  /** @default '127.0.0.1' */
  socksHost?: string
  /** Destination host: an onion address (`x.onion`), an IPv4/IPv6 literal or a hostname. */
  host: string
  port: number
  /**
   * Username sent to tor; with IsolateSOCKSAuth (tor's default) streams with different
   * usernames never share a circuit. @default undefined (no authentication offered)
   */
  isolation?: string
  /** Deadline for the whole connect including retries. @default 120_000 */
  timeoutMs?: number
  /** How often to retry a 0xF0 "descriptor not found" reply. @default 3 */
  retries?: number
  /** @default systemClock */
  clock?: Clock
}

/** SOCKS5 reply codes: RFC 1928 and tor's ExtendedErrors (tor's socks-extensions.txt). */
export const SOCKS_REPLY_MESSAGES: Readonly<Record<number, string>> = {
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  0xf0: 'onion service descriptor can not be found (not published yet, or the service is gone)',
  0xf1: 'onion service descriptor is invalid',
  0xf2: 'onion service introduction failed (the service is offline or unreachable)',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service requires client authorization, none was given',
  0xf5: 'onion service client authorization is wrong',
  0xf6: 'invalid onion address',
  0xf7: 'onion service introduction timed out'
}

export const SOCKS_DESCRIPTOR_NOT_FOUND = 0xf0

/** Human text for a SOCKS5 reply code. */
export function socksReplyMessage (code: number): string {
  return SOCKS_REPLY_MESSAGES[code] ?? `unknown SOCKS reply 0x${code.toString(16).padStart(2, '0')}`
}

/**
 * Opens a TCP stream to `host:port` through tor's SOCKS port. Resolves with a connected socket
 * (TCP_NODELAY on). Retries 0xF0 (descriptor not found) with a short back-off, since a client
 * may ask an HSDir that has not got a fresh descriptor yet.
 *
 * Throws TorError `TOR_SOCKS` (with `socksReply` when tor answered with an error code),
 * `TOR_SOCKS_TIMEOUT` past `timeoutMs`, AbortError when `signal` aborts.
 *
 * @example
 * const socket = await socksConnect({ socksPort: 9050, host: `${id}.onion`, port: 80, signal })
 */
export async function socksConnect (opts: SocksConnectOptions): Promise<Socket> {
  const clock = opts.clock ?? systemClock
  const timeoutMs = opts.timeoutMs ?? 120_000
  const retries = opts.retries ?? 3
  validate(opts)
  const scoped = scopedSignal(clock, timeoutMs, opts.signal)
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await connectOnce(opts, scoped.signal)
      } catch (err) {
        if (scoped.signal.aborted) throw deadlineError(opts, scoped.signal, timeoutMs, err)
        const retryable = err instanceof TorError && err.socksReply === SOCKS_DESCRIPTOR_NOT_FOUND
        if (!retryable || attempt >= retries) throw err
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt)
        try {
          await clock.sleep(delay, { signal: scoped.signal })
        } catch {
          throw deadlineError(opts, scoped.signal, timeoutMs, err)
        }
      }
    }
  } finally {
    scoped.clear()
  }
}

function validate (opts: SocksConnectOptions): void {
  if (!Number.isInteger(opts.socksPort) || opts.socksPort < 1 || opts.socksPort > 65535) {
    throw new TorError('TOR_SOCKS', `invalid SOCKS port ${String(opts.socksPort)}: pass tor's SocksPort (1-65535)`)
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new TorError('TOR_SOCKS', `invalid destination port ${String(opts.port)}: use 1-65535`)
  }
  if (opts.host.length === 0 || Buffer.byteLength(opts.host) > MAX_HOSTNAME_BYTES) {
    throw new TorError('TOR_SOCKS', `invalid destination host (1-${MAX_HOSTNAME_BYTES} bytes): ${JSON.stringify(opts.host.slice(0, 64))}`)
  }
  if (opts.isolation !== undefined && (opts.isolation.length === 0 || Buffer.byteLength(opts.isolation) > 255)) {
    throw new TorError('TOR_SOCKS', 'isolation must be 1-255 bytes: it is sent as the SOCKS username')
  }
}

function deadlineError (opts: SocksConnectOptions, signal: AbortSignal, timeoutMs: number, last: unknown): Error {
  const reason = abortReason(signal)
  if (reason instanceof TimeoutError) {
    const lastMsg = last instanceof Error ? `; last error: ${last.message}` : ''
    const socksReply = last instanceof TorError ? last.socksReply : undefined
    return new TorError('TOR_SOCKS_TIMEOUT', `could not connect to ${opts.host}:${opts.port} through tor within ${timeoutMs} ms${lastMsg}`, { cause: last, socksReply })
  }
  return reason instanceof AbortError ? reason : new AbortError(undefined, { cause: last })
}

/** One SOCKS handshake on a new TCP connection to tor. */
async function connectOnce (opts: SocksConnectOptions, signal: AbortSignal): Promise<Socket> {
  const socksHost = opts.socksHost ?? '127.0.0.1'
  const socket = new Socket()
  socket.setNoDelay(true)
  const onAbort = (): void => { socket.destroy() }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        socket.off('error', onError)
        signal.removeEventListener('abort', onAbortConnect)
      }
      const onError = (err: Error): void => {
        cleanup()
        reject(new TorError('TOR_SOCKS', `could not reach tor's SOCKS port ${socksHost}:${opts.socksPort} (${err.message}): is tor running with that SocksPort?`, { cause: err }))
      }
      const onAbortConnect = (): void => { cleanup(); reject(abortReason(signal)) }
      socket.once('error', onError)
      signal.addEventListener('abort', onAbortConnect, { once: true })
      socket.connect(opts.socksPort, socksHost, () => { cleanup(); resolve() })
    })
    const reader = new ExactReader(socket, signal)
    try {
      const method = opts.isolation === undefined ? 0x00 : 0x02
      socket.write(Uint8Array.of(0x05, 0x01, method))
      const choice = await reader.read(2)
      if (choice[0] !== 0x05) throw protocolError(`tor answered the greeting with version ${choice[0]}, not SOCKS5: is ${socksHost}:${opts.socksPort} a SocksPort?`)
      if (choice[1] !== method) throw protocolError(`tor refused SOCKS auth method ${method} (chose 0x${choice[1].toString(16)})`)
      if (method === 0x02) {
        const user = Buffer.from(opts.isolation ?? '')
        // tor ignores the password for auth; a fixed one keeps isolation keyed on the user.
        const pass = Buffer.from('oht')
        socket.write(Buffer.concat([Uint8Array.of(0x01, user.length), user, Uint8Array.of(pass.length), pass]))
        const auth = await reader.read(2)
        if (auth[1] !== 0x00) throw protocolError(`tor rejected SOCKS username authentication (status ${auth[1]})`)
      }
      socket.write(connectRequest(opts.host, opts.port))
      // Read exactly the reply (the bound address too, even on failure), never past it.
      let reply = await reader.read(4)
      let decoded = decodeSocksReply(reply)
      while ('need' in decoded) {
        reply = Buffer.concat([reply, await reader.read(decoded.need)])
        decoded = decodeSocksReply(reply)
      }
      const rep = decoded.rep
      if (rep !== 0x00) {
        throw new TorError('TOR_SOCKS', `tor could not connect to ${opts.host}:${opts.port}: ${socksReplyMessage(rep)} (SOCKS reply 0x${rep.toString(16).padStart(2, '0')})`, { socksReply: rep })
      }
    } finally {
      reader.release()
    }
    return socket
  } catch (err) {
    socket.destroy()
    if (signal.aborted && !(err instanceof TorError && err.socksReply !== undefined)) throw abortReason(signal)
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function protocolError (message: string): TorError {
  return new TorError('TOR_SOCKS', message)
}

/** A CONNECT reply decoded (`rep`, its length in bytes), or how many more bytes it needs. */
export type SocksReplyDecoding = { rep: number, bytes: number } | { need: number }

/**
 * Decodes tor's reply to CONNECT (RFC 1928 section 6) from the bytes read so far:
 * ```
 *   05 REP 00 ATYP BND.ADDR BND.PORT(2)
 *   ATYP 01: 4 address bytes, 04: 16, 03: a length byte then that many
 * ```
 * Answers `{ need }` until the reply is complete, so the caller can read exactly the reply
 * and leave what follows in the socket. An unknown ATYP ends a failure reply after 4 bytes
 * (tor sends no address then); on success it is TOR_SOCKS, as is any version but 5.
 */
export function decodeSocksReply (buf: Uint8Array): SocksReplyDecoding {
  if (buf.byteLength < 4) return { need: 4 - buf.byteLength }
  if (buf[0] !== 0x05) throw protocolError(`bad SOCKS reply version ${buf[0]}`)
  const rep = buf[1]
  const atyp = buf[3]
  let bytes: number
  if (atyp === 0x01) bytes = 4 + 4 + 2
  else if (atyp === 0x04) bytes = 4 + 16 + 2
  else if (atyp === 0x03) {
    if (buf.byteLength < 5) return { need: 5 - buf.byteLength }
    bytes = 5 + buf[4] + 2
  } else if (rep !== 0x00) bytes = 4
  else throw protocolError(`bad SOCKS reply address type ${atyp}`)
  if (buf.byteLength < bytes) return { need: bytes - buf.byteLength }
  return { rep, bytes }
}

/** The CONNECT request for a hostname, IPv4 or IPv6 destination. */
export function connectRequest (host: string, port: number): Uint8Array {
  const portBytes = Uint8Array.of(port >> 8, port & 0xff)
  if (isIPv4(host)) {
    return Buffer.concat([Uint8Array.of(0x05, 0x01, 0x00, 0x01), Uint8Array.from(host.split('.').map(Number)), portBytes])
  }
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (isIPv6(bare)) {
    return Buffer.concat([Uint8Array.of(0x05, 0x01, 0x00, 0x04), ipv6Bytes(bare), portBytes])
  }
  const name = Buffer.from(host)
  return Buffer.concat([Uint8Array.of(0x05, 0x01, 0x00, 0x03, name.length), name, portBytes])
}

function ipv6Bytes (addr: string): Uint8Array {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => { const v = parseInt(g, 16); out[2 * i] = v >> 8; out[2 * i + 1] = v & 0xff })
  return out
}

/**
 * Reads exact byte counts from a socket in paused mode, so bytes past the SOCKS reply stay
 * buffered in the socket for whoever reads it next. The listeners stay attached for the whole
 * handshake: attaching a 'readable' listener while a partial reply is buffered re-emits at once
 * (on nextTick), which would spin without ever letting the rest of the reply in.
 */
class ExactReader {
  private readonly socket: Socket
  private readonly signal: AbortSignal
  private ended = false
  private failure?: Error
  private wake?: () => void
  private readonly onReadable = (): void => { this.wake?.() }
  private readonly onEnd = (): void => { this.ended = true; this.wake?.() }
  private readonly onError = (err: Error): void => {
    this.failure = new TorError('TOR_SOCKS', `SOCKS connection failed: ${err.message}`, { cause: err })
    this.wake?.()
  }

  constructor (socket: Socket, signal: AbortSignal) {
    this.socket = socket
    this.signal = signal
    socket.on('readable', this.onReadable)
    socket.on('end', this.onEnd)
    socket.on('close', this.onEnd)
    socket.on('error', this.onError)
  }

  async read (n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0)
    for (;;) {
      if (this.failure !== undefined) throw this.failure
      const chunk = this.socket.read(n) as Buffer | null
      if (chunk !== null) {
        if (chunk.length < n) throw protocolError('tor closed the SOCKS connection in the middle of a reply')
        return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      }
      if (this.ended || this.socket.destroyed) throw protocolError('tor closed the SOCKS connection before replying')
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { this.wake = undefined; reject(abortReason(this.signal)) }
        if (this.signal.aborted) { onAbort(); return }
        this.signal.addEventListener('abort', onAbort, { once: true })
        this.wake = () => {
          this.wake = undefined
          this.signal.removeEventListener('abort', onAbort)
          resolve()
        }
      })
    }
  }

  /** Detaches; with no 'readable' or 'data' listener left, a later 'data' listener starts the flow. */
  release (): void {
    this.socket.off('readable', this.onReadable)
    this.socket.off('end', this.onEnd)
    this.socket.off('close', this.onEnd)
    this.socket.off('error', this.onError)
  }
}
