/**
 * Frames of the onet link: one persistent onion stream per peer carries IP packets between
 * the peers' TUN devices.
 *
 *   +--------+----------------+---------------------+
 *   | type:1 | length:2 (BE)  | payload (length)    |
 *   +--------+----------------+---------------------+
 *
 *   0x01 CHALLENGE  server → client   version:1 (=1) | nonce:32
 *   0x02 AUTH       client → server   version:1 (=1) | publicKey:32 | signature:64
 *                   signature = Ed25519(client key, "oni/link/v1\0" | serverPublicKey | nonce | clientPublicKey)
 *   0x03 PACKET     both ways          one IPv6 packet (≤ maxPacketBytes)
 *   0x04 PING / 0x05 PONG              8 opaque bytes echoed (keep-alive, RTT)
 *
 * The decoder is incremental, never buffers more than one maximal frame, and throws OniError
 * ONI_FRAME_MALFORMED on an unknown type or an oversized length: the link is then dropped.
 */
import { OniError } from './errors.ts'

export const FRAME_CHALLENGE = 0x01
export const FRAME_AUTH = 0x02
export const FRAME_PACKET = 0x03
export const FRAME_PING = 0x04
export const FRAME_PONG = 0x05
export const FRAME_HEADER_BYTES = 3
export const LINK_VERSION = 1
export const NONCE_BYTES = 32
/** Default largest packet carried; the TUN MTU must not exceed it. */
export const DEFAULT_MAX_PACKET_BYTES = 9000

export interface Frame { type: number, payload: Uint8Array }

const MAX_CONTROL_PAYLOAD: Record<number, number> = {
  [FRAME_CHALLENGE]: 1 + NONCE_BYTES,
  [FRAME_AUTH]: 1 + 32 + 64,
  [FRAME_PING]: 8,
  [FRAME_PONG]: 8
}

export function encodeFrame (type: number, payload: Uint8Array): Uint8Array {
  if (payload.byteLength > 0xffff) throw new OniError('ONI_BAD_ARGUMENT', `frame payload of ${payload.byteLength} bytes exceeds 65535`)
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  out[0] = type
  out[1] = payload.byteLength >> 8
  out[2] = payload.byteLength & 0xff
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

/** Incremental decoder: push bytes, get whole frames. */
export class FrameDecoder {
  private buf: Uint8Array = new Uint8Array(0)
  private readonly maxPacketBytes: number

  constructor (maxPacketBytes = DEFAULT_MAX_PACKET_BYTES) {
    this.maxPacketBytes = maxPacketBytes
  }

  /** Returns the frames completed by `chunk`; throws ONI_FRAME_MALFORMED. */
  push (chunk: Uint8Array): Frame[] {
    if (this.buf.byteLength === 0) {
      this.buf = chunk
    } else {
      const next = new Uint8Array(this.buf.byteLength + chunk.byteLength)
      next.set(this.buf, 0)
      next.set(chunk, this.buf.byteLength)
      this.buf = next
    }
    const frames: Frame[] = []
    let off = 0
    while (this.buf.byteLength - off >= FRAME_HEADER_BYTES) {
      const type = this.buf[off]
      const len = (this.buf[off + 1] << 8) | this.buf[off + 2]
      const limit = type === FRAME_PACKET ? this.maxPacketBytes : MAX_CONTROL_PAYLOAD[type]
      if (limit === undefined) throw new OniError('ONI_FRAME_MALFORMED', `unknown link frame type ${type}`)
      if (len > limit) throw new OniError('ONI_FRAME_MALFORMED', `link frame type ${type} of ${len} bytes exceeds its limit of ${limit}`)
      if (this.buf.byteLength - off - FRAME_HEADER_BYTES < len) break
      // Copy: the payload outlives the receive buffer.
      frames.push({ type, payload: this.buf.slice(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len) })
      off += FRAME_HEADER_BYTES + len
    }
    this.buf = off === 0 ? this.buf : this.buf.slice(off)
    return frames
  }

  get buffered (): number { return this.buf.byteLength }
}

const LINK_TAG = new TextEncoder().encode('oni/link/v1\0')

/** The bytes an AUTH signature covers. */
export function linkAuthMessage (serverPublicKey: Uint8Array, nonce: Uint8Array, clientPublicKey: Uint8Array): Uint8Array {
  const m = new Uint8Array(LINK_TAG.byteLength + 32 + NONCE_BYTES + 32)
  m.set(LINK_TAG, 0)
  m.set(serverPublicKey, LINK_TAG.byteLength)
  m.set(nonce, LINK_TAG.byteLength + 32)
  m.set(clientPublicKey, LINK_TAG.byteLength + 32 + NONCE_BYTES)
  return m
}
