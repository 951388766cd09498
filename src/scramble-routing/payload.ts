/**
 * The message inside a packet body (what the recipient gets after the last layer is removed):
 *
 *   0        1        2             4                      4+s              4+s+m      2032
 *   +--------+--------+-------------+----------------------+----------------+----------+
 *   | ver=1  | flags  | length m    | SURB (310), if flag  | message (m)    | zero     |
 *   +--------+--------+-------------+----------------------+----------------+----------+
 *   flags: bit 0 = a SURB follows (the recipient may answer once through it); others zero.
 *
 * The body has one size (sphinx.ts BODY_BYTES), so the message length is hidden from every
 * relay; the padding must be zero (it is covered by the payload's integrity tag anyway).
 */
import { ScrambleError } from './errors.ts'
import { BODY_BYTES, SURB_BYTES } from './sphinx.ts'

export const MESSAGE_VERSION = 1
const FLAG_SURB = 1
const FIXED = 4
/** Largest message a packet carries without a SURB. */
export const MAX_MESSAGE_BYTES = BODY_BYTES - FIXED
/** Largest message a packet carries with a SURB beside it. */
export const MAX_MESSAGE_WITH_SURB_BYTES = BODY_BYTES - FIXED - SURB_BYTES

export interface InnerMessage { message: Uint8Array, surb?: Uint8Array }

export function encodeInner (m: InnerMessage): Uint8Array {
  const max = m.surb === undefined ? MAX_MESSAGE_BYTES : MAX_MESSAGE_WITH_SURB_BYTES
  if (m.message.byteLength > max) {
    throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a scrambled message holds at most ${max} bytes${m.surb === undefined ? '' : ' when it carries a SURB'}, got ${m.message.byteLength}: split it`)
  }
  if (m.surb !== undefined && m.surb.byteLength !== SURB_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a SURB has ${SURB_BYTES} bytes`)
  const out = new Uint8Array(BODY_BYTES)
  out[0] = MESSAGE_VERSION
  out[1] = m.surb === undefined ? 0 : FLAG_SURB
  out[2] = m.message.byteLength >>> 8
  out[3] = m.message.byteLength & 0xff
  let off = FIXED
  if (m.surb !== undefined) { out.set(m.surb, off); off += SURB_BYTES }
  out.set(m.message, off)
  return out
}

/** Strict decoder: SCRAMBLE_BAD_ENCODING on a wrong size, version, flag, length or padding. */
export function decodeInner (body: Uint8Array): InnerMessage {
  if (body.byteLength !== BODY_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `a packet body has ${BODY_BYTES} bytes, got ${body.byteLength}`)
  if (body[0] !== MESSAGE_VERSION) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `unknown message version ${body[0]}`)
  const flags = body[1]
  if ((flags & ~FLAG_SURB) !== 0) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `unknown message flags ${flags}`)
  const hasSurb = (flags & FLAG_SURB) !== 0
  const len = (body[2] << 8) | body[3]
  const max = hasSurb ? MAX_MESSAGE_WITH_SURB_BYTES : MAX_MESSAGE_BYTES
  if (len > max) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `message length ${len} is over ${max}`)
  let off = FIXED
  const surb = hasSurb ? body.slice(off, off + SURB_BYTES) : undefined
  if (hasSurb) off += SURB_BYTES
  const message = body.slice(off, off + len)
  let pad = 0
  for (let i = off + len; i < BODY_BYTES; i++) pad |= body[i]
  if (pad !== 0) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', 'non-zero padding after the message')
  return surb === undefined ? { message } : { message, surb }
}
