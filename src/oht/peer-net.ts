/**
 * PeerNet: direct protocols between peers, beside DhtNet. Request/response and message
 * streams to a peer (by its contact: public key + addresses) under a protocol id, with one
 * handler per protocol. Wormhole direct delivery, scramble-routing hops and app APIs use it;
 * none of them sees libp2p. src/net implements it with libp2p protocols over the node's
 * existing (long-lived, multiplexed) connections; src/netsim with simulated streams on the
 * virtual clock. Neither is imported here.
 *
 * Protocol ids look like `/wormhole/deliver/1` (a leading slash, then [a-z0-9._-] segments,
 * at most 128 bytes). The transport authenticates `from`: it is the key the peer proved
 * (noise handshake over libp2p), never a claim read from the bytes.
 *
 * Messages are bytes, bounded per protocol (`maxMessageBytes`, default 65,536): a bigger
 * outbound message is refused before sending (OHT_MESSAGE_TOO_LARGE), a bigger inbound one
 * ends the request or stream with that code. Streams are message-oriented: each `send()` is
 * one message at the other end, in order.
 *
 * Every call settles: a request or stream opening without `timeoutMs` gets the
 * implementation's default deadline (60 s unless configured), and a stream whose peer
 * crashed or became unreachable fails its pending reads and sends (OHT_STREAM_CLOSED)
 * instead of hanging.
 *
 * Stream endings, on both implementations:
 * - `close()` is a half-close: the peer's iteration ends after our last message.
 * - `abort(err)` is a reset: unread messages are discarded on both sides; the peer's pending
 *   and later reads and sends reject with `err`'s code when it is a coded error of the stack
 *   (CORE_ABORTED and CORE_TIMEOUT, being local conditions, arrive as OHT_STREAM_CLOSED),
 *   else with OHT_STREAM_CLOSED; `remote` is true on the peer's error.
 * - When an inbound stream handler returns, its stream is closed; a message that still
 *   arrives afterwards resets the stream (the sender sees OHT_STREAM_CLOSED), as does a peer
 *   that never closes its side within 30 s. A handler that throws resets it with its code
 *   (OHT_PEER_FAILED when it had none, or had CORE_ABORTED / CORE_TIMEOUT).
 * - Leaving a `for await` loop early (break) does not end the stream.
 *
 * @example
 * peers.handle('/echo/1', async (from, body) => body)
 * const answer = await peers.request(contact, '/echo/1', bytes, { signal, timeoutMs: 10_000 })
 *
 * peers.handleStream('/chat/1', async (stream) => {
 *   for await (const msg of stream) await stream.send(msg)   // echo every message
 *   await stream.close()
 * })
 * const s = await peers.openStream(contact, '/chat/1', { signal })
 * await s.send(hello)                                          // waits while the window is full
 * for await (const msg of s) handle(msg)                       // ends when the peer closes
 */
import type { AbortOptions } from '../core/abort.ts'
import { OhtError } from './errors.ts'
import type { PeerContact } from './network.ts'

/** Largest message a protocol accepts unless it says otherwise. */
export const PEER_MESSAGE_MAX_DEFAULT = 65_536
/** No protocol may allow messages above this, whatever it asks for (bounds every allocation). */
export const PEER_MESSAGE_MAX_LIMIT = 16 * 1024 * 1024
/** Largest protocol id, in bytes. */
export const PEER_PROTOCOL_MAX_BYTES = 128

export interface PeerRequestOptions extends AbortOptions {
  /**
   * Give up after this many ms: rejects with a TimeoutError (code CORE_TIMEOUT) and releases
   * what the request holds (the stream; never the connection, which others share).
   * Default: the implementation's deadline (60 s unless configured).
   */
  timeoutMs?: number
  /**
   * Largest request and response accepted. Default: this node's `maxMessageBytes` for the
   * protocol if it handles it too, else 65,536.
   */
  maxMessageBytes?: number
}

export interface PeerStreamOptions extends AbortOptions {
  /** Give up opening after this many ms (CORE_TIMEOUT). Default: the implementation's deadline. */
  timeoutMs?: number
  /** Largest message sent or accepted on this stream. Default as for requests. */
  maxMessageBytes?: number
}

/**
 * Inbound request handler. Its result is the response body. A thrown error with a `code`
 * (a coded OhtStackError) travels back: the requester's promise rejects with an
 * OhtRemoteError carrying that code and message (at most 512 bytes of it). Any other error,
 * and CORE_ABORTED / CORE_TIMEOUT (the handler's own conditions), travels back as
 * OHT_PEER_FAILED without its message (no internals leak to peers). A handler that does not
 * answer within `inboundTimeoutMs` is answered for: OHT_PEER_FAILED.
 * `options.signal` aborts when the requester goes away or the node stops.
 */
export type PeerRequestHandler = (from: PeerContact, body: Uint8Array, options: AbortOptions) => Promise<Uint8Array>

/** One direction-pair of ordered messages with a peer. */
export interface PeerStream extends AsyncIterable<Uint8Array> {
  /** The authenticated peer at the other end. */
  readonly remote: PeerContact
  readonly protocol: string
  /**
   * Sends one message. Resolves when the transport took it; waits (back-pressure) while the
   * peer has not consumed earlier ones. Rejects after close()/abort(), when the stream broke,
   * or when `signal` aborts (the stream is then aborted too: a half-sent message cannot stay).
   */
  send(message: Uint8Array, options?: AbortOptions): Promise<void>
  /**
   * Ends our sending side after the messages already sent; the peer's iteration ends after
   * the last of them. Our iteration goes on until the peer closes its side too.
   */
  close(options?: AbortOptions): Promise<void>
  /** Ends both sides at once: pending and later sends and reads reject with `err`. */
  abort(err?: Error): void
}

/**
 * Inbound stream handler. The stream is the handler's: when the returned promise settles the
 * transport closes it (and aborts it if the handler threw).
 */
export type PeerStreamHandler = (stream: PeerStream, from: PeerContact) => void | Promise<void>

export interface PeerProtocolOptions {
  /** Largest message accepted or sent on this protocol (at most PEER_MESSAGE_MAX_LIMIT). @default 65536 */
  maxMessageBytes?: number
  /** Concurrent inbound requests/streams per peer on this protocol; more are refused (OHT_RATE_LIMITED). @default 32 */
  maxInboundPerPeer?: number
  /** Inbound: time a request may take (read + handler + write). Streams have none. @default 30000 */
  inboundTimeoutMs?: number
}

/**
 * Errors (coded, see src/oht/errors.ts):
 * - OHT_PEER_UNREACHABLE: no connection could be made to the peer (dial failed, offline).
 * - OHT_PROTOCOL_UNSUPPORTED: the peer has no handler for the protocol.
 * - OHT_MESSAGE_TOO_LARGE: a message over the protocol's `maxMessageBytes`.
 * - OHT_PEER_FAILED: the peer's handler failed without a code of its own.
 * - OHT_STREAM_CLOSED: send after close/abort, or the stream broke.
 * - OHT_RATE_LIMITED: the peer refused: too many concurrent requests/streams from us.
 * - OHT_BAD_ARGUMENT: a malformed protocol id or a protocol already handled.
 * - CORE_TIMEOUT / CORE_ABORTED: the deadline passed or the signal aborted.
 */
export interface PeerNet {
  /** One request, one response, under `protocol`. */
  request(to: PeerContact, protocol: string, body: Uint8Array, options?: PeerRequestOptions): Promise<Uint8Array>
  /** A new message stream under `protocol`. Resolves once the peer accepted it. */
  openStream(to: PeerContact, protocol: string, options?: PeerStreamOptions): Promise<PeerStream>
  /** Installs the request handler of `protocol` (one per protocol: OHT_BAD_ARGUMENT if taken). */
  handle(protocol: string, handler: PeerRequestHandler, options?: PeerProtocolOptions): void
  /** Installs the stream handler of `protocol` (one per protocol, requests and streams together). */
  handleStream(protocol: string, handler: PeerStreamHandler, options?: PeerProtocolOptions): void
  /** Removes the handler of `protocol`; streams already open go on. */
  unhandle(protocol: string): void
}

const PROTOCOL_RE = /^(\/[a-z0-9._-]+)+$/

/**
 * Throws OHT_BAD_ARGUMENT unless `protocol` is a well-formed protocol id. (src/netsim applies
 * the same rule without importing this file; the PeerNet compliance suite checks both.)
 */
export function checkProtocolId (protocol: string): void {
  if (typeof protocol !== 'string' || Buffer.byteLength(protocol) > PEER_PROTOCOL_MAX_BYTES || !PROTOCOL_RE.test(protocol)) {
    throw new OhtError('OHT_BAD_ARGUMENT', `protocol id must be /segment[/segment…] of [a-z0-9._-], at most ${PEER_PROTOCOL_MAX_BYTES} bytes, got ${JSON.stringify(String(protocol)).slice(0, 140)}`)
  }
}
