/**
 * Signed receipts: the recipient's proof that a message arrived, checkable by the sender alone.
 * ```
 *  0       1                 17               25
 *  | ver=1 | message id [16] | receivedAt u64 | sig [64] |
 * ```
 * sig = Ed25519(recipient, "oht/wormhole/receipt/v1\0" || sender key || recipient key ||
 * message id || receivedAt): bound to both parties, so a receipt cannot be shown to a third
 * person as if for their message, nor replayed for another message.
 */
import { concatBytes } from '../core/bytes.ts'
import { verifySignature } from '../crypto/index.ts'
import { wormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import { checkSize, label, Reader, Writer } from './wire.ts'

export const RECEIPT_VERSION = 1
export const RECEIPT_BYTES = 1 + 16 + 8 + 64
const TAG = label('oht/wormhole/receipt/v1\0')

export interface Receipt { messageId: Uint8Array, receivedAt: number, signature: Uint8Array, bytes: Uint8Array }

function signable (sender: Uint8Array, recipient: Uint8Array, messageId: Uint8Array, receivedAt: number): Uint8Array {
  return concatBytes(TAG, sender, recipient, messageId, new Writer(8).u64(receivedAt).finish())
}

/** The receipt `me` gives `senderPublicKey` for `messageId`. */
export function createReceipt (me: WormholeIdentity, senderPublicKey: Uint8Array, messageId: Uint8Array, receivedAt: number): Receipt {
  if (messageId.byteLength !== 16) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a message id has 16 bytes')
  const at = Math.max(0, Math.floor(receivedAt))
  const signature = me.sign(signable(senderPublicKey, me.publicKey, messageId, at))
  const bytes = new Writer(RECEIPT_BYTES).u8(RECEIPT_VERSION).bytes(messageId).u64(at).bytes(signature).finish()
  return { messageId: Uint8Array.from(messageId), receivedAt: at, signature, bytes }
}

/** Parses and verifies a receipt from `recipientPublicKey` for a message of `senderPublicKey`. */
export function verifyReceipt (bytes: Uint8Array, recipientPublicKey: Uint8Array, senderPublicKey: Uint8Array): Receipt {
  checkSize(bytes, RECEIPT_BYTES, 'receipt')
  const r = new Reader(bytes, 'receipt')
  const v = r.u8()
  if (v !== RECEIPT_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `receipt version ${v} is not supported`)
  const messageId = r.bytes(16)
  const receivedAt = r.u64()
  const signature = r.bytes(64)
  r.end()
  if (!verifySignature(recipientPublicKey, signable(senderPublicKey, recipientPublicKey, messageId, receivedAt), signature)) {
    throw wormholeError('WORMHOLE_BAD_SIGNATURE', 'receipt signature does not verify for this sender and recipient')
  }
  return { messageId, receivedAt, signature, bytes: Uint8Array.from(bytes) }
}
