/**
 * Tor control-port client: connect, authenticate, and drive a running tor with typed calls.
 *
 * Layers (like stem): `framing.ts` turns bytes into replies, `replies.ts` / `events.ts`
 * parse each reply or event type, `commands.ts` builds checked command lines, `auth.ts` does
 * the cookie and SAFECOOKIE work, and `tor-control.ts` is the controller (one reader, a FIFO of
 * pipelined commands, per-command deadlines on the injected Clock).
 *
 * @example
 * const control = await connectTorControl({ port: 9051 })
 * await control.authenticate()                       // SAFECOOKIE when tor offers it
 * const version = await control.getInfoOne('version')
 * control.onEvent((e) => { if (e.type === 'HS_DESC' && e.action === 'UPLOADED') ... })
 * await control.addEvents(['HS_DESC', 'STATUS_CLIENT'])   // union with what is subscribed
 * const uploaded = control.waitForEvent((e) => e.type === 'HS_DESC' && e.action === 'UPLOADED')
 * const { serviceId } = await control.addOnion({
 *   key: { type: 'ED25519-V3', blob: torKeyBlob(identity) },
 *   ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }]
 * })
 * await uploaded
 * await control.delOnion(serviceId)
 * await control.close()
 *
 * Authentication trusts nothing the peer says about itself: SAFECOOKIE (tor proves it knows
 * the cookie before we send anything derived from it) with the cookie file tor names or
 * `cookiePath`; COOKIE only with `cookie` or `cookiePath` (it sends the file's bytes, so never
 * a file named by the peer); HASHEDPASSWORD with `password`; NULL only with `allowNullAuth`.
 *
 * Events are a union on `type`: 'STATUS_CLIENT' | 'STATUS_GENERAL' | 'STATUS_SERVER' (with
 * `bootstrap` for BOOTSTRAP), 'HS_DESC', 'CIRC', 'STREAM' parsed into fields; every other
 * event arrives as type 'RAW' with its keyword in `name` and its lines (data blocks
 * included) in `lines`.
 *
 * Errors are TorError with codes TOR_CONTROL_CONNECT, TOR_CONTROL_CLOSED,
 * TOR_CONTROL_PROTOCOL, TOR_CONTROL_TIMEOUT, TOR_AUTH_FAILED, TOR_AUTH_COOKIE,
 * TOR_BAD_ARGUMENT, TOR_COMMAND_FAILED (tor's code in `status`: 552 unknown id, 512 bad
 * argument, 550 collision...). Aborting a call through its signal rejects with the core
 * AbortError (CORE_ABORTED).
 */
import { createConnection } from 'node:net'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { AbortOptions } from '../../core/index.ts'
import { abortReason, systemClock } from '../../core/index.ts'
import { TorError } from '../errors.ts'
import type { TorControlInit } from './tor-control.ts'
import { DEFAULT_COMMAND_TIMEOUT_MS, TorControl } from './tor-control.ts'

export { TorControl, DEFAULT_COMMAND_TIMEOUT_MS } from './tor-control.ts'
export type { TorControlInit, CommandOptions, AuthenticateOptions, AuthMethod } from './tor-control.ts'
export type { AddOnionOptions, AddOnionPort, PowDefenses, ConfValue, SignalName, OnionClientAuthOptions } from './commands.ts'
export type { AddOnionResult, ProtocolInfo, AuthChallenge } from './replies.ts'
export type { TorEvent, StatusEvent, HsDescEvent, CircEvent, StreamEvent, RawTorEvent } from './events.ts'
export { TYPED_EVENTS, parseEvent } from './events.ts'
export type { ControlReply, ReplyLine, ReplyDivider, ReplyFramerInit } from './framing.ts'
export { ReplyFramer, parseReplies, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_REPLY_BYTES } from './framing.ts'
export { quoteString, unquote, tokenize, splitArgs } from './quoting.ts'
export { readCookieFile } from './auth.ts'
export { TorError, isTorError } from '../errors.ts'

/** Wraps an already-connected stream (a socket, or an in-memory Duplex in tests). */
export function createTorControl (transport: Duplex, init: TorControlInit = {}): TorControl {
  return new TorControl(transport, init)
}

/** Where tor's control port listens: TCP (host defaults to 127.0.0.1) or a unix socket. */
export type ControlTarget = { host?: string, port: number } | { path: string }

/**
 * Opens a control connection (not yet authenticated: call `authenticate()` next). Fails with
 * TOR_CONTROL_CONNECT when nothing listens there, within `commandTimeoutMs`.
 */
export async function connectTorControl (target: ControlTarget, init: TorControlInit & AbortOptions = {}): Promise<TorControl> {
  const { signal } = init
  if (signal?.aborted === true) throw abortReason(signal)
  const clock = init.clock ?? systemClock
  const where = 'path' in target ? target.path : `${target.host ?? '127.0.0.1'}:${target.port}`
  if (!('path' in target) && (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535)) {
    throw new TorError('TOR_BAD_ARGUMENT', `control port ${target.port} is not a port number (1-65535)`)
  }
  const socket: Socket = 'path' in target
    ? createConnection({ path: target.path })
    : createConnection({ host: target.host ?? '127.0.0.1', port: target.port })
  const timeoutMs = init.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      timer.cancel()
      socket.off('connect', onConnect)
      socket.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
    }
    const onConnect = (): void => { cleanup(); resolve() }
    const onError = (err: Error): void => {
      cleanup()
      socket.destroy()
      reject(new TorError('TOR_CONTROL_CONNECT', `cannot connect to tor's control port at ${where}: is tor running with that ControlPort?`, { cause: err }))
    }
    const onAbort = (): void => {
      cleanup()
      socket.destroy()
      reject(abortReason(signal as AbortSignal))
    }
    const timer = clock.setTimeout(() => {
      cleanup()
      socket.destroy()
      reject(new TorError('TOR_CONTROL_CONNECT', `connecting to tor's control port at ${where} took longer than ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', onConnect)
    socket.once('error', onError)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  socket.setNoDelay(true)
  return new TorControl(socket, init)
}
