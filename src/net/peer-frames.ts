/**
 * The frames of PeerNet over libp2p (version 1, named in the libp2p protocol id), and a
 * reader that turns a libp2p stream into frames.
 *
 *   frame:  [varint n][type:u8][body: n - 1 bytes]      n >= 1, varint at most 4 bytes
 *   type 0  DATA    body = one message (the request, the response, a stream message),
 *                   at most the protocol's maxMessageBytes
 *   type 1  ACCEPT  body empty: the acceptor took the stream (first frame it sends)
 *   type 2  ERROR   body = [code length:u8 2..64][code: A-Z 0-9 _][message: UTF-8, <= 512 bytes]
 *                   the exchange ends with this code (a refused request or stream, a
 *                   failed handler, a reset)
 *   type 3  WINDOW  body = [bytes:u32 BE]: the reader consumed that many DATA bytes (streams)
 *   type 4  CLOSE   body empty: no more DATA from this side (streams; a half-close)
 *
 * Streams are flow-controlled in-band: a side may have at most STREAM_WINDOW_BYTES of DATA
 * unconsumed by the peer (one message more when nothing is outstanding), and the reader
 * returns WINDOW credit as its consumer reads. The half-close is a CLOSE frame rather than
 * libp2p's FIN, so a side that closed can still grant window; the libp2p stream is closed
 * once both CLOSEs passed. Requests use DATA, ERROR and libp2p's FIN only.
 *
 * A bad varint, an empty frame, an unknown or misplaced type, a malformed ERROR or WINDOW,
 * DATA after CLOSE or beyond the window is OHT_BAD_FRAME; a DATA body over the limit is
 * OHT_MESSAGE_TOO_LARGE, noticed from the length prefix before the body is buffered.
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { abortReason } from '../core/index.ts'
import { OhtError, OhtRemoteError } from '../oht/index.ts'

export const FRAME_DATA = 0
export const FRAME_ACCEPT = 1
export const FRAME_ERROR = 2
export const FRAME_WINDOW = 3
export const FRAME_CLOSE = 4
/** DATA bytes a stream side may have unconsumed by its peer (protocol constant of version 1). */
export const STREAM_WINDOW_BYTES = 1024 * 1024
const ERROR_CODE_MAX = 64
const ERROR_MESSAGE_MAX = 512
const ERROR_BODY_MAX = 1 + ERROR_CODE_MAX + ERROR_MESSAGE_MAX
const CODE_RE = /^[A-Z][A-Z0-9_]{1,63}$/

export interface Frame { type: number, body: Uint8Array }

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Uint8Array.from(out)
}

/** One frame, ready for stream.send(). */
export function encodeFrame (type: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const prefix = varint(body.byteLength + 1)
  const out = new Uint8Array(prefix.byteLength + 1 + body.byteLength)
  out.set(prefix, 0)
  out[prefix.byteLength] = type
  out.set(body, prefix.byteLength + 1)
  return out
}

/** A WINDOW frame granting `bytes` more. */
export function encodeWindow (bytes: number): Uint8Array {
  const body = new Uint8Array(4)
  new DataView(body.buffer).setUint32(0, bytes)
  return encodeFrame(FRAME_WINDOW, body)
}

/** An ERROR frame carrying `code` and (truncated to 512 bytes) `message`. */
export function encodeError (code: string, message = ''): Uint8Array {
  const c = CODE_RE.test(code) ? code : 'OHT_PEER_FAILED'
  let m = Buffer.from(message)
  if (m.byteLength > ERROR_MESSAGE_MAX) m = Buffer.from(m.subarray(0, ERROR_MESSAGE_MAX).toString('utf8').replace(/\uFFFD+$/, ''))
  const body = new Uint8Array(1 + c.length + m.byteLength)
  body[0] = c.length
  body.set(Buffer.from(c, 'ascii'), 1)
  body.set(m, 1 + c.length)
  return encodeFrame(FRAME_ERROR, body)
}

/** The peer's error carried by an ERROR frame body. */
export function decodeError (body: Uint8Array, who: string): OhtRemoteError {
  const n = body[0] ?? 0
  const code = Buffer.from(body.subarray(1, 1 + n)).toString('ascii')
  if (n < 2 || n > ERROR_CODE_MAX || body.byteLength < 1 + n || !CODE_RE.test(code)) {
    throw new OhtError('OHT_BAD_FRAME', `${who} sent a malformed ERROR frame`)
  }
  const message = new TextDecoder('utf-8', { fatal: false }).decode(body.subarray(1 + n))
  return new OhtRemoteError(code, message === '' ? `${who} answered ${code}` : `${who}: ${message}`)
}

/** What a peer learns of a local error: its code if it is a coded one, else (and for local aborts and timeouts) `fallback`. */
export function wireCode (err: unknown, fallback: string): { code: string, message: string } {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string' || !CODE_RE.test(code)) return { code: fallback, message: '' }
  // the peer did not abort or time out: these are local conditions, not the peer's verdict
  if (code === 'CORE_ABORTED' || code === 'CORE_TIMEOUT') return { code: fallback, message: '' }
  return { code, message: String((err as Error).message ?? '') }
}

/**
 * Sends one encoded frame and resolves once libp2p handed all of it to the muxer (while the
 * muxer cannot take more, the bytes wait in the stream's write buffer, and so do we). We wait
 * for 'idle' (write buffer empty) rather than onDrain(): in @libp2p/utils 7.4 onDrain() keeps
 * resolving at once after the first drain, which would let a sender fill the write buffer
 * without bound.
 */
export async function writeFrame (stream: Stream, frame: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (stream.writeStatus !== 'writable') throw new OhtError('OHT_STREAM_CLOSED', `the stream is ${stream.writeStatus} for writing`)
  stream.send(frame)
  if (stream.writeBufferLength === 0) return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('idle', onIdle)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err); else resolve()
    }
    const onIdle = (): void => { if (stream.writeBufferLength === 0) done() }
    const onClose = (): void => { done(new OhtError('OHT_STREAM_CLOSED', 'the stream closed while a message waited to be sent')) }
    const onAbort = (): void => { done(abortReason(signal as AbortSignal)) }
    if (signal?.aborted === true) { onAbort(); return }
    stream.addEventListener('idle', onIdle)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export interface FrameReaderInit {
  /** The largest DATA body accepted. */
  maxMessageBytes: number
  /** Who is at the other end, for messages. */
  who: string
  /** Stream mode: WINDOW and CLOSE frames are allowed and DATA is held to the window. */
  stream: boolean
  /**
   * Called once when the peer's bytes are malformed or too large (the owner answers with an
   * ERROR frame and resets the stream); frames decoded before stay readable.
   */
  onError: (err: OhtError) => void
}

/**
 * Frames from a libp2p stream, in order, on demand. It reads everything libp2p delivers and
 * keeps whole frames until they are read; in stream mode the peer cannot have more than the
 * window outstanding, so what it holds is bounded. An ERROR frame ends reading at once
 * (`onPeerError`), WINDOW frames go to `onWindow` as they arrive (never behind unread DATA),
 * and a CLOSE frame is read in order, after the DATA before it.
 */
export class FrameReader {
  private readonly buf = new Uint8ArrayList()
  private readonly frames: Frame[] = []
  private ended = false
  private closeSeen = false
  private failure: Error | undefined
  /** DATA bytes received and not yet credited back with credit(). */
  private owed = 0
  private waiter: { resolve: () => void } | undefined
  private readonly maxBody: number
  /** Called once when the peer sent an ERROR frame (reading has ended with it). */
  onPeerError: ((err: OhtRemoteError) => void) | undefined
  /** Stream mode: the peer granted this many bytes of window. */
  onWindow: ((bytes: number) => void) | undefined
  /** The peer's libp2p side closed (no WINDOW can come any more). */
  onRemoteEnd: (() => void) | undefined

  constructor (private readonly stream: Stream, private readonly init: FrameReaderInit) {
    this.maxBody = Math.max(init.maxMessageBytes, ERROR_BODY_MAX)
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onRemoteClose)
    stream.addEventListener('close', this.onClose)
  }

  private get who (): string { return this.init.who }

  private readonly onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (this.failure !== undefined) return
    this.buf.append(evt.data)
    try {
      this.decode()
    } catch (err) {
      const e = err instanceof OhtError ? err : new OhtError('OHT_BAD_FRAME', `${this.who} sent bytes that are not PeerNet frames`, { cause: err })
      this.fail(e, true)
      this.init.onError(e)
    }
  }

  private readonly onRemoteClose = (): void => {
    if (this.failure !== undefined) return
    if (this.buf.byteLength > 0) {
      const e = new OhtError('OHT_BAD_FRAME', `${this.who} closed the stream in the middle of a frame`)
      this.fail(e, true)
      this.init.onError(e)
      return
    }
    this.ended = true
    this.onRemoteEnd?.()
    this.wake()
  }

  private readonly onClose = (evt: Event): void => {
    const error = (evt as Event & { error?: Error }).error
    if (error !== undefined) {
      this.fail(new OhtError('OHT_STREAM_CLOSED', `the stream with ${this.who} was reset`, { cause: error }))
    } else if (!this.ended) {
      this.ended = true
      this.onRemoteEnd?.()
      this.wake()
    }
  }

  private decode (): void {
    for (;;) {
      // varint: at most 4 bytes (frames are far below 2^28 bytes)
      let n = 0
      let shift = 0
      let i = 0
      let complete = false
      for (; i < this.buf.byteLength && i < 4; i++) {
        const b = this.buf.get(i)
        n += (b & 0x7f) * 2 ** shift
        shift += 7
        if ((b & 0x80) === 0) { complete = true; i++; break }
      }
      if (!complete) {
        if (this.buf.byteLength >= 4) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a frame length longer than 4 bytes`)
        return
      }
      if (n === 0) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent an empty frame`)
      if (n - 1 > this.maxBody) throw new OhtError('OHT_MESSAGE_TOO_LARGE', `${this.who} sent a message of ${n - 1} bytes, over the ${this.init.maxMessageBytes}-byte limit`)
      if (this.buf.byteLength < i + n) return
      const type = this.buf.get(i)
      const body = this.buf.subarray(i + 1, i + n)
      this.buf.consume(i + n)
      if (type === FRAME_ERROR) {
        if (body.byteLength > ERROR_BODY_MAX) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent an ERROR frame of ${body.byteLength} bytes`)
        // a reset: it ends reading at once, unread messages included
        const e = decodeError(body, this.who)
        this.fail(e)
        this.onPeerError?.(e)
        return
      }
      if (type === FRAME_DATA) {
        if (body.byteLength > this.init.maxMessageBytes) {
          throw new OhtError('OHT_MESSAGE_TOO_LARGE', `${this.who} sent a message of ${body.byteLength} bytes, over the ${this.init.maxMessageBytes}-byte limit`)
        }
        if (this.closeSeen) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a message after closing its side`)
        if (this.init.stream) {
          this.owed += body.byteLength
          // at most one message beyond the window: the peer may send one when it has nothing outstanding
          if (this.owed > STREAM_WINDOW_BYTES + this.init.maxMessageBytes) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent past its window (${this.owed} bytes outstanding)`)
        }
      } else if (type === FRAME_ACCEPT) {
        if (body.byteLength !== 0) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent an ACCEPT frame with a body`)
      } else if (type === FRAME_WINDOW && this.init.stream) {
        if (body.byteLength !== 4) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a malformed WINDOW frame`)
        this.onWindow?.(new DataView(body.buffer, body.byteOffset, 4).getUint32(0))
        continue
      } else if (type === FRAME_CLOSE && this.init.stream) {
        if (body.byteLength !== 0 || this.closeSeen) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a malformed or second CLOSE frame`)
        this.closeSeen = true
      } else {
        throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a frame of type ${type}, which has no place here`)
      }
      // a view of its own: callers keep messages, and a view into the list's chunk would pin it
      this.frames.push({ type, body: Uint8Array.from(body) })
      this.wake()
    }
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = undefined
    w?.resolve()
  }

  /** `bytes` of DATA were credited back to the peer (a WINDOW frame was sent). */
  credit (bytes: number): void { this.owed = Math.max(0, this.owed - bytes) }

  /**
   * Ends reading with `err`: the next read throws it. Frames not yet read are dropped, unless
   * `keepQueued` (our own verdict on the peer's input: what it sent before stays readable).
   */
  fail (err: Error, keepQueued = false): void {
    if (this.failure !== undefined) return
    this.failure = err
    if (!keepQueued) this.frames.length = 0
    this.wake()
  }

  detach (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('remoteCloseWrite', this.onRemoteClose)
    this.stream.removeEventListener('close', this.onClose)
  }

  /** Why reading ended, if it failed. */
  get error (): Error | undefined { return this.failure }

  /** Whole frames decoded and not yet read. */
  get pending (): number { return this.frames.length }

  /** DATA frames decoded and not yet read. */
  get pendingData (): number { return this.frames.filter(f => f.type === FRAME_DATA).length }

  /** The peer's libp2p side has closed (no frame can come any more). */
  get remoteEnded (): boolean { return this.ended }

  /** The next frame, or undefined once the peer's libp2p side closed; throws on a failure. */
  async next (signal?: AbortSignal): Promise<Frame | undefined> {
    for (;;) {
      const frame = this.frames.shift()
      if (frame !== undefined) return frame
      if (this.failure !== undefined) throw this.failure
      if (this.ended) return undefined
      if (signal?.aborted === true) throw abortReason(signal)
      await new Promise<void>((resolve) => {
        const onAbort = (): void => { this.waiter = undefined; resolve() }
        this.waiter = { resolve: () => { signal?.removeEventListener('abort', onAbort); resolve() } }
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }
}
