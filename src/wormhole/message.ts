/**
 * The message inside a session (what the ratchet or a sender key encrypts), version 1:
 * ```
 *  0       1         2                       18        26           34            38
 *  | ver=1 | kind u8 | conversation id [16] | seq u64 | sentAt u64 | bodyLen u32 | body (<= 63 KiB) |
 * ```
 * - kind: what the body is (MESSAGE_KINDS).
 * - conversation id: which conversation (a pairwise chat, a group); seq: per conversation and
 *   sender, from 1, so the receiver orders messages and sees gaps to ask for (resend).
 * - sentAt: the sender's clock, ms since the epoch (shown, never trusted for ordering).
 * The message id that names a message (dedupe, receipts, acks) is in the sealed content around
 * it (envelope.ts) and authenticated by the ratchet as associated data.
 */
import { wormholeError } from './errors.ts'
import { checkSize, Reader, Writer } from './wire.ts'

export const MESSAGE_VERSION = 1
/** Largest body: what fits the 64 KiB envelope with every header around it, rounded down. */
export const MAX_BODY_BYTES = 63 * 1024
export const MESSAGE_HEADER_BYTES = 38
export const CONVERSATION_ID_BYTES = 16

export const MESSAGE_KINDS = {
  /** Application payload (text, a file chunk …). */
  message: 1,
  /** A signed receipt (receipts.ts) for a message id. */
  receipt: 2,
  /** Acknowledgement: the sender may stop retrying and holders may drop the fragments. */
  ack: 3,
  /** Resend request: the body lists the missing seqs of a conversation. */
  resend: 4,
  /** A sender-key distribution (sender-keys.ts). */
  'sender-key': 5,
  /** A group update from its admin (members, epoch, group secret). */
  'group-update': 6
} as const

export type MessageKind = keyof typeof MESSAGE_KINDS
const KIND_BY_NUMBER = new Map<number, MessageKind>(Object.entries(MESSAGE_KINDS).map(([k, v]) => [v, k as MessageKind]))

export interface WormholeMessage {
  kind: MessageKind
  conversationId: Uint8Array
  seq: number
  sentAt: number
  body: Uint8Array
}

export function encodeMessage (m: WormholeMessage): Uint8Array {
  const kind = MESSAGE_KINDS[m.kind]
  if (kind === undefined) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `unknown message kind ${String(m.kind)}`)
  if (!(m.conversationId instanceof Uint8Array) || m.conversationId.byteLength !== CONVERSATION_ID_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `a conversation id has ${CONVERSATION_ID_BYTES} bytes`)
  if (!(m.body instanceof Uint8Array)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a message body is a Uint8Array')
  if (m.body.byteLength > MAX_BODY_BYTES) throw wormholeError('WORMHOLE_MESSAGE_TOO_LARGE', `a message body has at most ${MAX_BODY_BYTES} bytes, got ${m.body.byteLength}: split it`)
  if (!Number.isSafeInteger(m.seq) || m.seq < 0) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'seq must be a non-negative integer')
  return new Writer(MESSAGE_HEADER_BYTES + m.body.byteLength)
    .u8(MESSAGE_VERSION).u8(kind).bytes(m.conversationId).u64(m.seq).u64(Math.max(0, Math.floor(m.sentAt))).u32(m.body.byteLength).bytes(m.body).finish()
}

export function decodeMessage (bytes: Uint8Array): WormholeMessage {
  checkSize(bytes, MESSAGE_HEADER_BYTES + MAX_BODY_BYTES, 'message')
  const r = new Reader(bytes, 'message')
  const v = r.u8()
  if (v !== MESSAGE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `message version ${v} is not supported`)
  const k = r.u8()
  const kind = KIND_BY_NUMBER.get(k)
  if (kind === undefined) throw wormholeError('WORMHOLE_MALFORMED', `unknown message kind ${k}`)
  const conversationId = r.bytes(CONVERSATION_ID_BYTES)
  const seq = r.u64()
  const sentAt = r.u64()
  const body = r.lenBytes32(MAX_BODY_BYTES, 'body')
  r.end()
  return { kind, conversationId, seq, sentAt, body }
}
