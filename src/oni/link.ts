/**
 * One authenticated onet link over a stream socket (an onion stream in practice).
 *
 * The caller (client) dialled the peer's onion address, so tor already proved the server's
 * key. The server proves nothing more; it sends a fresh nonce and the client signs it together
 * with both keys (link-frame.ts), so the server learns the client's key and therefore the only
 * onet source address it will accept packets from.
 */
import type { Socket } from 'node:net'
import type { AbortOptions, Clock, Rng } from '../core/index.ts'
import { abortReason, bytesEqual, scopedSignal } from '../core/index.ts'
import { verifySignature } from '../crypto/index.ts'
import { OniError } from './errors.ts'
import {
  encodeFrame, FrameDecoder, FRAME_AUTH, FRAME_CHALLENGE, FRAME_PACKET, FRAME_PING, FRAME_PONG,
  LINK_VERSION, linkAuthMessage, NONCE_BYTES, type Frame
} from './link-frame.ts'

export interface LinkIdentity { publicKey: Uint8Array, sign(message: Uint8Array): Uint8Array }

export interface LinkStats { packetsIn: number, packetsOut: number, bytesIn: number, bytesOut: number, dropped: number }

/** Above this many bytes queued in the socket, packets are dropped (IP semantics) rather than buffered. */
const MAX_SOCKET_BACKLOG_BYTES = 4 * 1024 * 1024
/** Packets held for a listener not yet attached. */
const MAX_EARLY_PACKETS = 256

export class PeerLink {
  readonly peerPublicKey: Uint8Array
  readonly direction: 'inbound' | 'outbound'
  readonly stats: LinkStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 }
  private readonly socket: Socket
  private readonly decoder: FrameDecoder
  private packetListener: ((packet: Uint8Array) => void) | undefined
  /** Packets that arrived before onPacket() was called (e.g. in the same read as AUTH). */
  private early: Uint8Array[] = []
  private readonly closeListeners = new Set<(err?: Error) => void>()
  private isClosed = false

  constructor (socket: Socket, decoder: FrameDecoder, peerPublicKey: Uint8Array, direction: 'inbound' | 'outbound', pending: Frame[]) {
    this.socket = socket
    this.decoder = decoder
    this.peerPublicKey = peerPublicKey
    this.direction = direction
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[]
      try { frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)) } catch (err) {
        this.close(err instanceof Error ? err : undefined)
        return
      }
      for (const f of frames) this.onFrame(f)
    })
    socket.once('close', () => { this.close() })
    socket.on('error', (err) => { this.close(err) })
    for (const f of pending) this.onFrame(f)
  }

  get closed (): boolean { return this.isClosed }

  onPacket (listener: (packet: Uint8Array) => void): void {
    this.packetListener = listener
    const early = this.early
    this.early = []
    for (const p of early) listener(p)
  }

  onClose (listener: (err?: Error) => void): () => void {
    this.closeListeners.add(listener)
    return () => { this.closeListeners.delete(listener) }
  }

  /** Sends one IP packet; false when dropped (closed link or a full socket). */
  send (packet: Uint8Array): boolean {
    if (this.isClosed || this.socket.writableLength > MAX_SOCKET_BACKLOG_BYTES) { this.stats.dropped++; return false }
    this.socket.write(encodeFrame(FRAME_PACKET, packet))
    this.stats.packetsOut++
    this.stats.bytesOut += packet.byteLength
    return true
  }

  close (err?: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    this.socket.destroy()
    for (const l of this.closeListeners) l(err)
    this.closeListeners.clear()
  }

  private onFrame (f: Frame): void {
    if (f.type === FRAME_PACKET) {
      this.stats.packetsIn++
      this.stats.bytesIn += f.payload.byteLength
      if (this.packetListener !== undefined) this.packetListener(f.payload)
      else if (this.early.length < MAX_EARLY_PACKETS) this.early.push(f.payload)
      else this.stats.dropped++
    } else if (f.type === FRAME_PING) {
      if (!this.isClosed) this.socket.write(encodeFrame(FRAME_PONG, f.payload))
    } else if (f.type === FRAME_PONG) {
      // keep-alive answered; nothing to do
    } else {
      this.close(new OniError('ONI_FRAME_MALFORMED', `unexpected link frame type ${f.type} after the handshake`))
    }
  }
}

/** Reads frames until `want` arrives (earlier handshake frames are errors). */
async function readHandshakeFrame (socket: Socket, decoder: FrameDecoder, want: number, signal: AbortSignal): Promise<{ frame: Frame, rest: Frame[] }> {
  return await new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
      signal.removeEventListener('abort', onAbort)
      socket.pause()
    }
    const onData = (chunk: Buffer): void => {
      let frames: Frame[]
      try { frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)) } catch (err) { cleanup(); reject(err); return }
      if (frames.length === 0) return
      cleanup()
      if (frames[0].type !== want) { reject(new OniError('ONI_LINK_AUTH', `link handshake expected frame ${want}, got ${frames[0].type}`)); return }
      resolve({ frame: frames[0], rest: frames.slice(1) })
    }
    const onClose = (): void => { cleanup(); reject(new OniError('ONI_LINK_CLOSED', 'the peer closed the link during the handshake')) }
    const onError = (err: Error): void => { cleanup(); reject(new OniError('ONI_LINK_CLOSED', `link failed during the handshake: ${err.message}`, { cause: err })) }
    const onAbort = (): void => { cleanup(); reject(abortReason(signal)) }
    if (signal.aborted) { onAbort(); return }
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.resume()
  })
}

export interface HandshakeOptions extends AbortOptions {
  clock: Clock
  /** @default 30_000 */
  timeoutMs?: number
  maxPacketBytes?: number
}

/** Server side: challenge, verify the client's signature, return the link bound to its key. */
export async function acceptLink (socket: Socket, self: LinkIdentity, rng: Rng, opts: HandshakeOptions): Promise<PeerLink> {
  const scoped = scopedSignal(opts.clock, opts.timeoutMs ?? 30_000, opts.signal)
  const decoder = new FrameDecoder(opts.maxPacketBytes)
  try {
    const nonce = rng.bytes(NONCE_BYTES)
    const challenge = new Uint8Array(1 + NONCE_BYTES)
    challenge[0] = LINK_VERSION
    challenge.set(nonce, 1)
    socket.write(encodeFrame(FRAME_CHALLENGE, challenge))
    const { frame, rest } = await readHandshakeFrame(socket, decoder, FRAME_AUTH, scoped.signal)
    const p = frame.payload
    if (p.byteLength !== 1 + 32 + 64 || p[0] !== LINK_VERSION) throw new OniError('ONI_LINK_AUTH', 'malformed link AUTH frame')
    const clientKey = p.slice(1, 33)
    const signature = p.subarray(33, 97)
    if (bytesEqual(clientKey, self.publicKey)) throw new OniError('ONI_LINK_AUTH', 'a link from our own key')
    if (!verifySignature(clientKey, linkAuthMessage(self.publicKey, nonce, clientKey), signature)) {
      throw new OniError('ONI_LINK_AUTH', 'link AUTH signature does not verify: refusing the peer')
    }
    const link = new PeerLink(socket, decoder, clientKey, 'inbound', rest)
    socket.resume()
    return link
  } catch (err) {
    socket.destroy()
    throw err
  } finally {
    scoped.clear()
  }
}

/** Client side: answer the challenge of the peer we dialled (its key is `peerPublicKey`). */
export async function openLink (socket: Socket, self: LinkIdentity, peerPublicKey: Uint8Array, opts: HandshakeOptions): Promise<PeerLink> {
  const scoped = scopedSignal(opts.clock, opts.timeoutMs ?? 30_000, opts.signal)
  const decoder = new FrameDecoder(opts.maxPacketBytes)
  try {
    const { frame, rest } = await readHandshakeFrame(socket, decoder, FRAME_CHALLENGE, scoped.signal)
    const p = frame.payload
    if (p.byteLength !== 1 + NONCE_BYTES || p[0] !== LINK_VERSION) throw new OniError('ONI_LINK_AUTH', 'malformed link CHALLENGE frame')
    const nonce = p.subarray(1)
    const auth = new Uint8Array(1 + 32 + 64)
    auth[0] = LINK_VERSION
    auth.set(self.publicKey, 1)
    auth.set(self.sign(linkAuthMessage(peerPublicKey, nonce, self.publicKey)), 33)
    socket.write(encodeFrame(FRAME_AUTH, auth))
    const link = new PeerLink(socket, decoder, peerPublicKey, 'outbound', rest)
    socket.resume()
    return link
  } catch (err) {
    socket.destroy()
    throw err
  } finally {
    scoped.clear()
  }
}
