/**
 * The controller: one reader, a FIFO of commands, typed calls on top of the framing and
 * reply parsers.
 *
 * ```
 *   caller ──command()──► write "CMD ...\r\n" ──► tor          (commands are pipelined)
 *                └─► inflight FIFO [c1, c2, c3]
 *   tor ──bytes──► ReplyFramer ──► reply ──┬─ status 6xx ──► parseEvent ──► onEvent listeners
 *                                           └─ otherwise ───► inflight.shift() settles c1
 * ```
 * Tor answers commands strictly in order, so the n-th non-event reply belongs to the n-th
 * command written. A command that times out or is aborted stays in the FIFO marked
 * abandoned: its reply is still consumed and dropped, so the stream never desynchronises.
 */
import type { Duplex } from 'node:stream'
import type { AbortOptions, Clock, Logger, Rng, TimerHandle } from '../../core/index.ts'
import { abortReason, cryptoRng, logger, systemClock, toHex, wipe } from '../../core/index.ts'
import { TorError } from '../errors.ts'
import { readCookieFile, safeCookieClientHash, SAFECOOKIE_NONCE_BYTES, verifyServerHash } from './auth.ts'
import type { AddOnionOptions, ConfValue, OnionClientAuthOptions, SignalName } from './commands.ts'
import {
  addOnionCommand, authenticateCommand, delOnionCommand, getConfCommand, getInfoCommand,
  onionClientAuthAddCommand, onionClientAuthRemoveCommand, resetConfCommand, setConfCommand,
  setEventsCommand, signalCommand
} from './commands.ts'
import type { TorEvent } from './events.ts'
import { parseEvent } from './events.ts'
import type { ControlReply } from './framing.ts'
import { isEventReply, ReplyFramer, replyMessage } from './framing.ts'
import { assertSafeArgument } from './quoting.ts'
import type { AddOnionResult, ProtocolInfo } from './replies.ts'
import { expectOk, parseAddOnion, parseAuthChallenge, parseGetConf, parseGetInfo, parseOnionList, parseProtocolInfo } from './replies.ts'

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000

export interface TorControlInit {
  /** @default systemClock */
  clock?: Clock
  /** Randomness for the SAFECOOKIE client nonce. @default cryptoRng */
  rng?: Rng
  /** Deadline per command, from the moment it is queued. @default 30000 */
  commandTimeoutMs?: number
  /** Longest accepted reply line. @default 65536 */
  maxLineBytes?: number
  /** Largest accepted reply (data blocks included). @default 16777216 */
  maxReplyBytes?: number
  /**
   * Sees every byte sent and received, for recording transcripts in tests. Secrets (cookie
   * proofs, onion keys) pass through it: never wire it to a log in production.
   * @default undefined
   */
  onWire?: (direction: 'send' | 'recv', bytes: Uint8Array) => void
  /** @default logger('tor:control') */
  log?: Logger
}

export interface CommandOptions extends AbortOptions {
  /** Overrides the connection's commandTimeoutMs for this command. */
  timeoutMs?: number
}

export interface AuthenticateOptions extends CommandOptions {
  /** For HASHEDPASSWORD. Sent as it is: only to a tor you mean to trust. @default undefined */
  password?: string
  /** The cookie bytes themselves (32), trusted like `cookiePath`. @default undefined */
  cookie?: Uint8Array
  /**
   * A cookie file we trust: configured by the user, or the one a tor we launched writes in our
   * own data dir. Used instead of the file PROTOCOLINFO names, and the only kind of cookie
   * plain COOKIE authentication will send. @default undefined
   */
  cookiePath?: string
  /**
   * Accept NULL authentication (a tor with no authentication at all, which any local process
   * may control, and what an impostor on the port would offer). `method: 'NULL'` opts in too.
   * @default false
   */
  allowNullAuth?: boolean
  /** Use this method instead of the best one offered (fails if tor does not offer it). @default undefined */
  method?: AuthMethod
}

export type AuthMethod = 'SAFECOOKIE' | 'COOKIE' | 'HASHEDPASSWORD' | 'NULL'

interface Pending {
  /** Command keyword, for messages (never the arguments: they may hold secrets). */
  name: string
  settled: boolean
  resolve: (reply: ControlReply) => void
  reject: (err: Error) => void
}

type CloseListener = (err?: Error) => void
type EventListener = (event: TorEvent) => void

/**
 * A control-port connection. Build it with `connectTorControl()` (TCP or unix socket), or
 * around any Duplex (tests use an in-memory one).
 */
export class TorControl {
  private readonly transport: Duplex
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly commandTimeoutMs: number
  private readonly framer: ReplyFramer
  private readonly onWire?: (direction: 'send' | 'recv', bytes: Uint8Array) => void
  private readonly log: Logger
  private readonly inflight: Pending[] = []
  private readonly eventListeners = new Set<EventListener>()
  private readonly closeListeners = new Set<CloseListener>()
  private closeError: TorError | undefined
  private isClosed = false
  private transportError: unknown
  private cachedProtocolInfo: ProtocolInfo | undefined
  private isAuthenticated = false
  private subscribed: string[] = []
  private eventsChain: Promise<void> = Promise.resolve()

  constructor (transport: Duplex, init: TorControlInit = {}) {
    this.transport = transport
    this.clock = init.clock ?? systemClock
    this.rng = init.rng ?? cryptoRng
    this.commandTimeoutMs = init.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    this.framer = new ReplyFramer({ maxLineBytes: init.maxLineBytes, maxReplyBytes: init.maxReplyBytes })
    if (init.onWire !== undefined) this.onWire = init.onWire
    this.log = init.log ?? logger('tor:control')
    transport.on('data', (chunk: Uint8Array | string) => { this.onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk) })
    transport.on('error', (err: unknown) => {
      this.transportError = err
      this.shutdown(this.closedError('the control connection failed', err))
    })
    transport.on('close', () => { this.shutdown(this.closedError('tor closed the control connection')) })
    transport.on('end', () => { this.shutdown(this.closedError('tor closed the control connection')) })
  }

  /** True once the connection is gone; every later command rejects with TOR_CONTROL_CLOSED. */
  get closed (): boolean { return this.isClosed }

  /** True after a successful authenticate(). */
  get authenticated (): boolean { return this.isAuthenticated }

  /** Number of commands written whose replies have not arrived (abandoned ones included). */
  get pendingCommands (): number { return this.inflight.length }

  /** Called once when the connection closes: with the cause, or no argument after close(). */
  onClose (listener: CloseListener): () => void {
    if (this.isClosed) {
      queueMicrotask(() => { listener(this.closeError) })
      return () => {}
    }
    this.closeListeners.add(listener)
    return () => { this.closeListeners.delete(listener) }
  }

  /** Receives every asynchronous event (after setEvents subscribed to it). */
  onEvent (listener: EventListener): () => void {
    this.eventListeners.add(listener)
    return () => { this.eventListeners.delete(listener) }
  }

  /**
   * Resolves with the first event `match` accepts from now on. It does not subscribe: call
   * setEvents/addEvents too, and start waiting before the command that causes the event (its
   * event can arrive together with the command's reply). Rejects TOR_CONTROL_TIMEOUT after `timeoutMs` (default: the
   * command timeout), TOR_CONTROL_CLOSED if the connection closes, CORE_ABORTED on abort.
   *
   * @example
   * await control.addEvents(['HS_DESC'])
   * const uploaded = control.waitForEvent((e): e is HsDescEvent => e.type === 'HS_DESC' && e.action === 'UPLOADED', { timeoutMs: 30_000 })
   * await control.addOnion({ ... })
   * await uploaded
   */
  async waitForEvent<E extends TorEvent = TorEvent> (match: ((event: TorEvent) => event is E) | ((event: TorEvent) => boolean), opts: CommandOptions = {}): Promise<E> {
    if (opts.signal?.aborted === true) throw abortReason(opts.signal)
    if (this.isClosed) throw this.closedError('cannot wait for an event: the control connection is closed')
    return await new Promise<E>((resolve, reject) => {
      const signal = opts.signal
      const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs
      const done = (): void => {
        offEvent()
        offClose()
        timer?.cancel()
        signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => { done(); if (signal !== undefined) reject(abortReason(signal)) }
      const offEvent = this.onEvent((event) => {
        let ok = false
        try { ok = match(event) } catch (err) { done(); reject(err); return }
        if (ok) { done(); resolve(event as E) }
      })
      const offClose = this.onClose((err) => { done(); reject(err ?? this.closedError('the control connection was closed while waiting for an event')) })
      const timer = Number.isFinite(timeoutMs)
        ? this.clock.setTimeout(() => { done(); reject(new TorError('TOR_CONTROL_TIMEOUT', `no matching tor event within ${timeoutMs} ms`)) }, timeoutMs)
        : undefined
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Sends one raw command line (no CRLF) and resolves with tor's reply, whatever its status.
   * Prefer the typed calls; this is the escape hatch for commands they do not cover.
   */
  async command (line: string, opts: CommandOptions = {}): Promise<ControlReply> {
    assertSafeArgument('command', line)
    return await this.send(line, opts)
  }

  private async send (line: string, opts: CommandOptions): Promise<ControlReply> {
    const name = line.split(' ', 1)[0]
    if (opts.signal?.aborted === true) throw abortReason(opts.signal)
    if (this.isClosed) throw this.closedError(`cannot send ${name}: the control connection is closed`)
    return await new Promise<ControlReply>((resolve, reject) => {
      let timer: TimerHandle | undefined
      const signal = opts.signal
      const onAbort = (): void => { if (signal !== undefined) settle(undefined, abortReason(signal)) }
      const entry: Pending = {
        name,
        settled: false,
        resolve: (reply) => { settle(reply) },
        reject: (err) => { settle(undefined, err) }
      }
      const settle = (reply?: ControlReply, err?: Error): void => {
        if (entry.settled) return
        entry.settled = true
        timer?.cancel()
        signal?.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err)
        else resolve(reply as ControlReply)
      }
      const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs
      if (Number.isFinite(timeoutMs)) {
        timer = this.clock.setTimeout(() => {
          settle(undefined, new TorError('TOR_CONTROL_TIMEOUT', `tor did not answer ${name} within ${timeoutMs} ms; the connection stays usable, its late reply is discarded`))
        }, timeoutMs)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.inflight.push(entry)
      this.log(`send ${name}`)
      const bytes = Buffer.from(line + '\r\n', 'utf8')
      this.onWire?.('send', bytes)
      try {
        this.transport.write(bytes)
      } catch (cause) {
        this.shutdown(this.closedError('writing to the control connection failed', cause))
      }
    })
  }

  private onData (chunk: Uint8Array): void {
    if (this.isClosed) return
    this.onWire?.('recv', chunk)
    let replies: ControlReply[]
    try {
      replies = this.framer.push(chunk)
    } catch (err) {
      this.fail(err as TorError)
      return
    }
    for (const reply of replies) {
      if (this.isClosed) return
      if (isEventReply(reply)) { this.dispatchEvent(reply); continue }
      const head = this.inflight.shift()
      if (head === undefined) {
        this.fail(new TorError('TOR_CONTROL_PROTOCOL', `tor sent a ${reply.status} reply no command was waiting for: ${replyMessage(reply).slice(0, 100)}`))
        return
      }
      this.log(`recv ${reply.status} for ${head.name}${head.settled ? ' (abandoned, dropped)' : ''}`)
      head.resolve(reply)
    }
    // Replies before a broken line were delivered above; now the stream is unusable.
    if (this.framer.error !== undefined && !this.isClosed) this.fail(this.framer.error)
  }

  private dispatchEvent (reply: ControlReply): void {
    let event: TorEvent
    try {
      event = parseEvent(reply)
    } catch (err) {
      // A malformed event says nothing about our commands: keep the connection, deliver raw.
      this.log.warn(`malformed event, delivered raw: ${(err as Error).message}`)
      const first = reply.lines[0].text
      const sp = first.indexOf(' ')
      event = { type: 'RAW', name: sp === -1 ? first : first.slice(0, sp), body: sp === -1 ? '' : first.slice(sp + 1), lines: reply.lines, args: {} }
    }
    for (const listener of [...this.eventListeners]) {
      try {
        listener(event)
      } catch (err) {
        this.log.error('event listener threw', err)
      }
    }
  }

  /** A protocol error: the stream can no longer be trusted, so drop the connection. */
  private fail (err: TorError): void {
    const head = this.inflight.find(p => !p.settled)
    head?.reject(err)
    this.shutdown(this.closedError('the control connection was dropped after a protocol error', err))
  }

  private closedError (message: string, cause?: unknown): TorError {
    const c = cause ?? this.transportError
    const truncated = this.framer.midReply ? ' in the middle of a reply' : ''
    return new TorError('TOR_CONTROL_CLOSED', `${message}${truncated}`, c === undefined ? {} : { cause: c })
  }

  private shutdown (err: TorError | undefined): void {
    if (this.isClosed) return
    this.isClosed = true
    this.closeError = err
    const pending = this.inflight.splice(0)
    const reason = err ?? new TorError('TOR_CONTROL_CLOSED', 'the control connection was closed by close()')
    for (const p of pending) p.reject(reason)
    if (!this.transport.destroyed) this.transport.destroy()
    for (const listener of [...this.closeListeners]) {
      try { listener(err) } catch (e) { this.log.error('close listener threw', e) }
    }
    this.closeListeners.clear()
    this.log(`closed${err !== undefined ? `: ${err.message}` : ''}`)
  }

  /** Closes the connection; pending commands reject with TOR_CONTROL_CLOSED. */
  async close (): Promise<void> {
    if (this.isClosed) return
    const done = new Promise<void>((resolve) => {
      if (this.transport.closed) resolve()
      else this.transport.once('close', () => { resolve() })
    })
    this.shutdown(undefined)
    await done
  }

  // ---- typed calls ------------------------------------------------------------------------

  /** PROTOCOLINFO 1. Cached: tor allows it only once before authentication. */
  async protocolInfo (opts: CommandOptions = {}): Promise<ProtocolInfo> {
    if (this.cachedProtocolInfo !== undefined) return this.cachedProtocolInfo
    const info = parseProtocolInfo(await this.send('PROTOCOLINFO 1', opts))
    this.cachedProtocolInfo = info
    return info
  }

  /**
   * Authenticates with the best method tor offers that is safe with what we were given:
   *
   * - SAFECOOKIE, with the cookie given, `cookiePath`, or else the file PROTOCOLINFO names:
   *   tor must prove it knows the cookie (SERVERHASH) before we send anything derived from it.
   * - COOKIE, only with a cookie given or `cookiePath`: it sends the cookie's bytes as they are,
   *   so a file named only by the peer is never used (an impostor could name any file).
   * - HASHEDPASSWORD, with `password`.
   * - NULL, only with `allowNullAuth` (or `method: 'NULL'`).
   *
   * Otherwise TOR_AUTH_FAILED says what to configure.
   */
  async authenticate (opts: AuthenticateOptions = {}): Promise<void> {
    if (this.isAuthenticated) return
    const info = await this.protocolInfo(opts)
    let methods = new Set(info.authMethods)
    if (opts.method !== undefined) {
      if (!methods.has(opts.method)) {
        throw new TorError('TOR_AUTH_FAILED', `tor does not offer ${opts.method} authentication (it offers ${info.authMethods.join(', ') || 'none'})`)
      }
      methods = new Set([opts.method])
    }
    const allowNull = opts.allowNullAuth === true || opts.method === 'NULL'
    let cookie: Uint8Array | undefined
    let trustedCookie = false
    let ownCookie = false
    let cookieError: unknown
    const read = async (path: string): Promise<void> => {
      try {
        cookie = await readCookieFile(path)
        ownCookie = true
      } catch (err) {
        cookieError = err
      }
    }
    try {
      if (methods.has('SAFECOOKIE') || methods.has('COOKIE')) {
        if (opts.cookie !== undefined) {
          if (opts.cookie.byteLength !== 32) throw new TorError('TOR_AUTH_COOKIE', `a tor control cookie is 32 bytes, got ${opts.cookie.byteLength}`)
          cookie = opts.cookie
          trustedCookie = true
        } else if (opts.cookiePath !== undefined) {
          await read(opts.cookiePath)
          trustedCookie = cookie !== undefined
        } else if (methods.has('SAFECOOKIE') && info.cookieFile !== undefined) {
          // Named by the peer: good for SAFECOOKIE only, which checks the peer first.
          await read(info.cookieFile)
        }
      }
      if (cookie !== undefined && methods.has('SAFECOOKIE')) {
        await this.safeCookie(cookie, opts)
      } else if (cookie !== undefined && trustedCookie && methods.has('COOKIE')) {
        await this.sendAuthenticate({ hex: toHex(cookie) }, opts)
      } else if (methods.has('HASHEDPASSWORD') && opts.password !== undefined) {
        await this.sendAuthenticate({ password: opts.password }, opts)
      } else if (methods.has('NULL') && allowNull) {
        await this.sendAuthenticate(null, opts)
      } else {
        throw new TorError('TOR_AUTH_FAILED', refusalMessage(info, methods, opts, cookieError), cookieError !== undefined ? { cause: cookieError } : {})
      }
      this.isAuthenticated = true
    } finally {
      if (ownCookie) wipe(cookie)
    }
  }

  private async safeCookie (cookie: Uint8Array, opts: CommandOptions): Promise<void> {
    const clientNonce = this.rng.bytes(SAFECOOKIE_NONCE_BYTES)
    const reply = await this.send(`AUTHCHALLENGE SAFECOOKIE ${toHex(clientNonce)}`, opts)
    if (reply.status !== 250) {
      throw new TorError('TOR_AUTH_FAILED', `tor refused the SAFECOOKIE challenge: ${reply.status} ${replyMessage(reply)}`, { status: reply.status })
    }
    const challenge = parseAuthChallenge(reply)
    try {
      verifyServerHash(cookie, clientNonce, challenge.serverNonce, challenge.serverHash)
    } catch (err) {
      // Never answer an impostor: drop the connection before sending any proof.
      this.shutdown(this.closedError('closed after a failed SAFECOOKIE server check', err))
      throw err
    }
    const proof = safeCookieClientHash(cookie, clientNonce, challenge.serverNonce)
    await this.sendAuthenticate({ hex: toHex(proof) }, opts)
  }

  private async sendAuthenticate (secret: { hex: string } | { password: string } | null, opts: CommandOptions): Promise<void> {
    const reply = await this.send(authenticateCommand(secret), opts)
    if (reply.status !== 250) {
      throw new TorError('TOR_AUTH_FAILED', `tor rejected authentication: ${reply.status} ${replyMessage(reply)}`, { status: reply.status })
    }
  }

  /** GETINFO for several keys; data values come back with lines joined by "\n". */
  async getInfo (keys: string[], opts: CommandOptions = {}): Promise<Map<string, string>> {
    return parseGetInfo(await this.send(getInfoCommand(keys), opts), keys)
  }

  async getInfoOne (key: string, opts: CommandOptions = {}): Promise<string> {
    return (await this.getInfo([key], opts)).get(key) as string
  }

  /** GETCONF: each key maps to its values ([] when unset/default). Keys come back in tor's casing. */
  async getConf (keys: string[], opts: CommandOptions = {}): Promise<Map<string, string[]>> {
    return parseGetConf(await this.send(getConfCommand(keys), opts))
  }

  /** SETCONF; null resets a key, arrays set a repeatable option. Tor applies all or none. */
  async setConf (entries: Record<string, ConfValue>, opts: CommandOptions = {}): Promise<void> {
    expectOk('SETCONF', await this.send(setConfCommand(entries), opts))
  }

  async resetConf (keys: string[], opts: CommandOptions = {}): Promise<void> {
    expectOk('RESETCONF', await this.send(resetConfCommand(keys), opts))
  }

  /** The event types of the last successful SETEVENTS on this connection. */
  get events (): readonly string[] { return this.subscribed }

  /** Replaces the event subscription (an empty list unsubscribes from everything). */
  async setEvents (types: string[], opts: CommandOptions = {}): Promise<void> {
    const wanted = [...new Set(types)]
    const line = setEventsCommand(wanted)
    await this.serialEvents(async () => {
      expectOk('SETEVENTS', await this.send(line, opts))
      this.subscribed = wanted
    })
  }

  /**
   * Adds to the subscription instead of replacing it (SETEVENTS always replaces), so several
   * components can share one connection.
   */
  async addEvents (types: string[], opts: CommandOptions = {}): Promise<void> {
    setEventsCommand(types)
    await this.serialEvents(async () => {
      const wanted = [...new Set([...this.subscribed, ...types])]
      if (wanted.length === this.subscribed.length) return
      expectOk('SETEVENTS', await this.send(setEventsCommand(wanted), opts))
      this.subscribed = wanted
    })
  }

  /** Removes types from the subscription, keeping the others. */
  async removeEvents (types: string[], opts: CommandOptions = {}): Promise<void> {
    setEventsCommand(types)
    await this.serialEvents(async () => {
      const drop = new Set(types)
      const wanted = this.subscribed.filter(t => !drop.has(t))
      if (wanted.length === this.subscribed.length) return
      expectOk('SETEVENTS', await this.send(setEventsCommand(wanted), opts))
      this.subscribed = wanted
    })
  }

  /** Read-modify-write of the subscription must not interleave. */
  private async serialEvents (fn: () => Promise<void>): Promise<void> {
    const run = this.eventsChain.then(fn, fn)
    this.eventsChain = run.catch(() => {})
    await run
  }

  /** ADD_ONION. Returning is not readiness: the descriptor is uploaded later (HS_DESC UPLOADED). */
  async addOnion (opts: AddOnionOptions & CommandOptions): Promise<AddOnionResult> {
    return parseAddOnion(await this.send(addOnionCommand(opts), opts))
  }

  /** DEL_ONION; an unknown id fails with TOR_COMMAND_FAILED status 552. */
  async delOnion (serviceId: string, opts: CommandOptions = {}): Promise<void> {
    expectOk('DEL_ONION', await this.send(delOnionCommand(serviceId), opts))
  }

  /**
   * Services of this connection ('current') or detached ones ('detached'). Tor answers 551
   * when there are none; that maps to [].
   */
  async listOnions (which: 'current' | 'detached', opts: CommandOptions = {}): Promise<string[]> {
    if (which !== 'current' && which !== 'detached') throw new TorError('TOR_BAD_ARGUMENT', 'listOnions takes "current" or "detached"')
    const key = `onions/${which}`
    const reply = await this.send(getInfoCommand([key]), opts)
    if (reply.status === 551) return []
    return parseOnionList(parseGetInfo(reply, [key]).get(key) ?? '')
  }

  async signal (name: SignalName, opts: CommandOptions = {}): Promise<void> {
    expectOk('SIGNAL', await this.send(signalCommand(name), opts))
  }

  /**
   * Registers the x25519 private key (base64, 32 bytes) this tor uses to reach an onion
   * service that requires client authorization (ClientAuthV3). Resolves with tor's code:
   * 250 added, 251 replaced an existing credential, 252 added and a cached descriptor
   * could now be decrypted.
   */
  async onionClientAuthAdd (address: string, x25519PrivateKey: string, opts: OnionClientAuthOptions & CommandOptions = {}): Promise<number> {
    return expectOk('ONION_CLIENT_AUTH_ADD', await this.send(onionClientAuthAddCommand(address, x25519PrivateKey, opts), opts)).status
  }

  /** Forgets the credential for `address`; resolves 250, or 251 when there was none. */
  async onionClientAuthRemove (address: string, opts: CommandOptions = {}): Promise<number> {
    return expectOk('ONION_CLIENT_AUTH_REMOVE', await this.send(onionClientAuthRemoveCommand(address), opts)).status
  }

  /** DROPOWNERSHIP: undoes TAKEOWNERSHIP, so tor outlives this connection. */
  async dropOwnership (opts: CommandOptions = {}): Promise<void> {
    expectOk('DROPOWNERSHIP', await this.send('DROPOWNERSHIP', opts))
  }

  /** TAKEOWNERSHIP: tor exits when this connection closes. */
  async takeOwnership (opts: CommandOptions = {}): Promise<void> {
    expectOk('TAKEOWNERSHIP', await this.send('TAKEOWNERSHIP', opts))
  }
}

/** Why no offered method could be used, and what to configure for each. */
function refusalMessage (info: ProtocolInfo, methods: Set<string>, opts: AuthenticateOptions, cookieError: unknown): string {
  const offered = info.authMethods.join(', ') || 'none'
  const hints: string[] = []
  if (cookieError !== undefined) hints.push(`the cookie file could not be read (${(cookieError as Error).message})`)
  if (methods.has('COOKIE') && !methods.has('SAFECOOKIE') && opts.cookie === undefined && opts.cookiePath === undefined) {
    const named = info.cookieFile !== undefined ? ` it names ${JSON.stringify(info.cookieFile)}, but` : ''
    hints.push(`COOKIE without SAFECOOKIE sends the cookie's bytes to whoever listens on this port:${named} a cookie file named only by the peer is never used; if you trust this tor, configure its cookie file (cookiePath)`)
  }
  if (methods.has('HASHEDPASSWORD') && opts.password === undefined) hints.push('HASHEDPASSWORD needs the control password (password, e.g. from a password file)')
  if (methods.has('NULL')) hints.push('NULL means tor has no control authentication, which lets any local process control it (and is what an impostor would offer): set CookieAuthentication 1 in its torrc, or opt in with allowNullAuth if you accept that')
  return `no usable authentication method: tor offers ${offered}${hints.length > 0 ? `; ${hints.join('; ')}` : ''}`
}
