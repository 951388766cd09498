/**
 * The frames of PeerNet over libp2p (version 1, named in the libp2p protocol id), and a
 * reader that turns a libp2p stream into frames with back-pressure.
 *
 *   frame:  [varint n][type:u8][body: n - 1 bytes]      n >= 1, varint at most 4 bytes
 *   type 0  DATA    body = one message (the request, the response, a stream message),
 *                   at most the protocol's maxMessageBytes
 *   type 1  ACCEPT  body empty: the acceptor took the stream (first frame it sends)
 *   type 2  ERROR   body = [code length:u8 1..64][code: A-Z 0-9 _][message: UTF-8, <= 512 bytes]
 *                   the exchange ends with this code (a refused request or stream, a
 *                   failed handler, a reset)
 *
 * A bad varint, an empty frame, an unknown type or a malformed ERROR is OHT_BAD_FRAME; a
 * DATA body over the limit is OHT_MESSAGE_TOO_LARGE, noticed from the length prefix before
 * the body is buffered.
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { abortReason } from '../core/index.ts'
import { OhtError, OhtRemoteError } from '../oht/index.ts'

export const FRAME_DATA = 0
export const FRAME_ACCEPT = 1
export const FRAME_ERROR = 2
const ERROR_CODE_MAX = 64
const ERROR_MESSAGE_MAX = 512
const ERROR_BODY_MAX = 1 + ERROR_CODE_MAX + ERROR_MESSAGE_MAX
const CODE_RE = /^[A-Z][A-Z0-9_]{1,63}$/
/** Whole messages waiting unread above which the stream is paused (the sender's window then runs dry). */
const HIGH_WATER_BYTES = 64 * 1024
/** While paused, libp2p buffers what the peer may still send within its window (yamux: at most 16 MiB). */
const PAUSED_READ_BUFFER_MAX = 17 * 1024 * 1024

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
 * Sends one encoded frame and resolves once libp2p handed all of it to the muxer: while the
 * peer's receive window is exhausted the bytes wait in the stream's write buffer, and so do
 * we (back-pressure). We wait for 'idle' (write buffer empty) rather than onDrain(): in
 * @libp2p/utils 7.4 onDrain() keeps resolving at once after the first drain, which would let
 * a sender fill the write buffer without bound.
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

/**
 * Frames from a libp2p stream, in order, on demand. It decodes as data arrives and keeps
 * whole frames until they are read (an ERROR frame ends reading at once, see onPeerError); above 64 KiB of them it pauses the stream, so the muxer
 * stops granting the peer send window and the peer's send() waits (back-pressure), and
 * resumes once the reader caught up.
 */
export class FrameReader {
  private readonly buf = new Uint8ArrayList()
  private readonly frames: Frame[] = []
  private queued = 0
  private ended = false
  private failure: Error | undefined
  private paused = false
  private waiter: { resolve: () => void } | undefined
  private readonly maxBody: number
  /** Called once when the peer sent an ERROR frame (reading has ended with it). */
  onPeerError: ((err: OhtRemoteError) => void) | undefined

  /**
   * @param maxMessageBytes the largest DATA body accepted
   * @param onError called once when the peer's bytes are malformed or too large (the owner
   *   answers with an ERROR frame and resets the stream)
   */
  constructor (private readonly stream: Stream, private readonly maxMessageBytes: number, private readonly who: string, private readonly onError: (err: OhtError) => void) {
    this.maxBody = Math.max(maxMessageBytes, ERROR_BODY_MAX)
    if (stream.maxReadBufferLength < PAUSED_READ_BUFFER_MAX) stream.maxReadBufferLength = PAUSED_READ_BUFFER_MAX
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onRemoteClose)
    stream.addEventListener('close', this.onClose)
  }

  private readonly onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (this.failure !== undefined) return
    this.buf.append(evt.data)
    try {
      this.decode()
    } catch (err) {
      const e = err instanceof OhtError ? err : new OhtError('OHT_BAD_FRAME', `${this.who} sent bytes that are not PeerNet frames`, { cause: err })
      this.fail(e, true)
      this.onError(e)
      return
    }
    if (!this.paused && this.queued >= HIGH_WATER_BYTES && this.stream.readStatus === 'readable') {
      this.paused = true
      this.stream.pause()
    }
  }

  private readonly onRemoteClose = (): void => {
    if (this.buf.byteLength > 0 && this.failure === undefined) {
      const e = new OhtError('OHT_BAD_FRAME', `${this.who} closed the stream in the middle of a frame`)
      this.fail(e, true)
      this.onError(e)
      return
    }
    this.ended = true
    this.wake()
  }

  private readonly onClose = (evt: Event): void => {
    // data the muxer holds for a paused stream comes first
    if (this.paused) { this.paused = false; try { this.stream.resume() } catch {} }
    const error = (evt as Event & { error?: Error }).error
    if (error !== undefined) {
      this.fail(new OhtError('OHT_STREAM_CLOSED', `the stream with ${this.who} was reset`, { cause: error }))
    } else {
      this.ended = true
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
      if (n - 1 > this.maxBody) throw new OhtError('OHT_MESSAGE_TOO_LARGE', `${this.who} sent a message of ${n - 1} bytes, over the ${this.maxMessageBytes}-byte limit`)
      if (this.buf.byteLength < i + n) return
      const type = this.buf.get(i)
      const body = this.buf.subarray(i + 1, i + n)
      this.buf.consume(i + n)
      if (type === FRAME_DATA && body.byteLength > this.maxMessageBytes) {
        throw new OhtError('OHT_MESSAGE_TOO_LARGE', `${this.who} sent a message of ${body.byteLength} bytes, over the ${this.maxMessageBytes}-byte limit`)
      }
      if (type !== FRAME_DATA && type !== FRAME_ACCEPT && type !== FRAME_ERROR) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent a frame of unknown type ${type}`)
      if (type === FRAME_ACCEPT && body.byteLength !== 0) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent an ACCEPT frame with a body`)
      if (type === FRAME_ERROR) {
        if (body.byteLength > ERROR_BODY_MAX) throw new OhtError('OHT_BAD_FRAME', `${this.who} sent an ERROR frame of ${body.byteLength} bytes`)
        // a reset: it ends reading at once, unread messages included
        const e = decodeError(body.subarray(), this.who)
        this.fail(e)
        this.onPeerError?.(e)
        return
      }
      // a view of its own: callers keep messages, and a view into the list's chunk would pin it
      this.frames.push({ type, body: Uint8Array.from(body) })
      this.queued += body.byteLength
      this.wake()
    }
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = undefined
    w?.resolve()
  }

  /**
   * Ends reading with `err`: the next read throws it. Frames not yet read are dropped, unless
   * `keepQueued` (our own verdict on the peer's input: what it sent before stays readable).
   */
  fail (err: Error, keepQueued = false): void {
    if (this.failure !== undefined) return
    this.failure = err
    if (!keepQueued) { this.frames.length = 0; this.queued = 0 }
    this.wake()
    this.detach()
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

  get done (): boolean { return this.failure !== undefined || (this.ended && this.frames.length === 0) }

  /** The next frame, or undefined once the peer closed its side; throws on a failure. */
  async next (signal?: AbortSignal): Promise<Frame | undefined> {
    for (;;) {
      const frame = this.frames.shift()
      if (frame !== undefined) {
        this.queued -= frame.body.byteLength
        if (this.paused && this.queued < HIGH_WATER_BYTES / 4) {
          this.paused = false
          try { this.stream.resume() } catch {}
        }
        return frame
      }
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
