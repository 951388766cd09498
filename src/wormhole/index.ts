/**
 * Wormhole: end-to-end encrypted messaging for people who are often offline, over the OHT.
 * This is its cryptographic core, which needs no network: identities from the key tree, contact
 * cards, safety numbers, prekey bundles, X3DH and the double ratchet, sealed-sender envelopes
 * padded to four sizes, signed receipts, sender keys for groups, a Reed-Solomon erasure code,
 * mailbox keys, and the persistent session store. Delivery (direct, or as fragments in
 * mailboxes) builds on `createWormholeCrypto()` and the mailbox functions.
 *
 * Everything here uses node:crypto (X25519, Ed25519, HKDF-SHA256, HMAC-SHA256,
 * ChaCha20-Poly1305) and @noble/ciphers (XChaCha20-Poly1305 for stored state); time and
 * randomness come only from the injected Clock and Rng, so the same code runs in the simulator.
 * docs/wormhole.md explains the design: formats, derivations, what holders see.
 *
 * @example
 * import { createWormholeCrypto, createContactCard, wormholeIdentityFromMaster, createMemorySessionStore,
 *   decodePrekeyBundle, erasureEncode, erasureDecode } from './wormhole/index.ts'
 * import { systemClock, cryptoRng } from './core/index.ts'
 *
 * const alice = wormholeIdentityFromMaster(aliceMaster)
 * const aliceCard = createContactCard(alice, { node: aliceNode.onion, name: 'Alice' }, systemClock)
 * const wa = await createWormholeCrypto({}, { identity: alice, card: aliceCard, store: createMemorySessionStore(), clock: systemClock, rng: cryptoRng })
 * // (Bob likewise: wb, bobCard.) Bob publishes wb.prekeyRecord({ ttlMs }); Alice fetches it:
 * const bundle = decodePrekeyBundle(record.value, bobCard.publicKey)
 * const { envelope, firstContact } = await wa.seal(bobCard, { conversationId, seq: 1, body: text }, { bundle })
 * const fragments = erasureEncode(envelope, 4, 8)      // 8 fragments, any 4 rebuild it
 * const { message, sender } = await wb.open(erasureDecode(fragments.slice(2, 6)))
 */
import type { AbortOptions } from '../core/abort.ts'
import type { Clock } from '../core/clock.ts'
import type { Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import type { MutableRecord } from '../oht/index.ts'
import type { ContactCard } from './contact-card.ts'
import type { WormholeError } from './errors.ts'
import type { WormholeIdentity } from './identity.ts'
import type { MailboxSlot } from './mailbox.ts'
import type { MessageKind, WormholeMessage } from './message.ts'
import type { PrekeyBundle, PrekeyInit } from './prekeys.ts'
import type { RatchetLimits } from './ratchet.ts'
import type { Receipt } from './receipts.ts'
import type { SessionStore } from './session-store.ts'
import { WormholeCryptoImpl } from './wormhole-crypto.ts'

export { WormholeError, type WormholeErrorCode } from './errors.ts'
export { wormholeIdentityFromMaster, wormholeIdentityFromSeed, WORMHOLE_IDENTITY_PATH, type WormholeIdentity } from './identity.ts'
export {
  createContactCard, decodeContactCard, encodeContactCard, contactCardQrText, decodeCardBytes, sameIdentity,
  CARD_PREFIX, CARD_VERSION, MAX_CARD_BYTES, MAX_NAME_BYTES, type ContactCard, type CreateCardOptions
} from './contact-card.ts'
export { safetyNumber, formatSafetyNumber, fingerprintHalf, combineHalves, SAFETY_NUMBER_ITERATIONS, type SafetyKeys } from './safety-number.ts'
export {
  decodePrekeyBundle, prekeyBundleKey, prekeyBundleRecord, PrekeyStore, PREKEY_DEFAULTS, PREKEY_RECORD_SALT,
  MAX_BUNDLE_BYTES, MAX_ONE_TIME_PREKEYS, type PrekeyBundle, type PrekeyInit
} from './prekeys.ts'
export { x3dhInitiate, x3dhRespond, x3dhAssociatedData, encodePrekeyMessage, decodePrekeyMessage, type X3dhInitiation, type PrekeyMessage, type IdentityKeys } from './x3dh.ts'
export { Ratchet, parseRatchetHeader, RATCHET_DEFAULTS, RATCHET_OVERHEAD_BYTES, type RatchetLimits, type RatchetHeader } from './ratchet.ts'
export {
  sealEnvelope, openEnvelope, sealGroupEnvelope, openGroupEnvelope, encodeContent, decodeContent, bucketFor,
  ENVELOPE_BUCKETS, MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, MESSAGE_ID_BYTES, type SealedContent, type ContentType
} from './envelope.ts'
export { encodeMessage, decodeMessage, MESSAGE_KINDS, MAX_BODY_BYTES, CONVERSATION_ID_BYTES, type MessageKind, type WormholeMessage } from './message.ts'
export { createReceipt, verifyReceipt, RECEIPT_BYTES, type Receipt } from './receipts.ts'
export { SenderKeyChain, encodeDistribution, decodeDistribution, parseGroupMessage, GROUP_ID_BYTES, type SenderKeyDistribution, type SenderKeyLimits } from './sender-keys.ts'
export { GroupState, encodeGroupUpdate, decodeGroupUpdate, groupEnvelopeSecret, MAX_GROUP_MEMBERS, type GroupUpdate } from './groups.ts'
export { erasureEncode, erasureDecode, parseFragment, FRAGMENT_HEADER_BYTES, MAX_ERASURE_DATA_BYTES, type Fragment } from './erasure.ts'
export {
  mailboxEpoch, mailboxRoot, pairwiseMailbox, introMailbox, groupMailbox, mailboxSlot, introSlot, type MailboxSlot
} from './mailbox.ts'
export { createMemorySessionStore, checkStoreName, type SessionStore, type MemorySessionStore } from './session-store.ts'
export { createFileSessionStore, MAX_STATE_FILE_BYTES, type FileSessionStoreInit, type FileSessionStoreComponents } from './file-store.ts'
export { X25519KeyPair, x25519, hkdf, hmacSha256, aeadSeal, aeadOpen } from './primitives.ts'

export interface WormholeCryptoInit extends PrekeyInit, RatchetLimits {
  /** Session states kept per contact (simultaneous starts, restores). @default 4 */
  maxSessionsPerContact?: number
  /** Mailbox epoch length. @default 86400000 (1 day) */
  epochMs?: number
}

export interface WormholeCryptoComponents {
  identity: WormholeIdentity
  /** Our own card (sent inside first messages); it must carry `identity`'s keys. */
  card: ContactCard
  store: SessionStore
  clock: Clock
  /** Every key (prekeys, ratchet, envelopes, groups) comes from it: `cryptoRng` for real use; a SeededRng only in the simulator and tests. */
  rng: Rng
  /** @default logger('wormhole:crypto') (codes and ids only, never keys or plaintext) */
  log?: Logger
}

export interface OutgoingMessage {
  /** @default 'message' */
  kind?: MessageKind
  /** 16 bytes. */
  conversationId: Uint8Array
  seq: number
  body: Uint8Array
  /** 16 bytes; random when absent. */
  messageId?: Uint8Array
}

export interface SealOptions extends AbortOptions {
  /** The contact's prekey bundle, needed when no session exists yet. */
  bundle?: PrekeyBundle
}

export interface SealedMessage {
  /** The padded, sealed envelope to deliver. */
  envelope: Uint8Array
  messageId: Uint8Array
  /**
   * True while the contact has not answered yet: the envelope carries the X3DH header and, stored
   * for an offline contact, belongs in their intro mailbox (outgoingSlot says where).
   */
  firstContact: boolean
}

/** A pairwise message the delivery layer must seal and send (group keys and updates). Its body holds secrets. */
export interface ControlMessage {
  to: ContactCard
  kind: MessageKind
  conversationId: Uint8Array
  body: Uint8Array
}

export type GroupEvent =
  | { type: 'joined' | 'updated', groupId: Uint8Array, epoch: number }
  | { type: 'removed', groupId: Uint8Array }
  | { type: 'sender-key', groupId: Uint8Array, member: Uint8Array }
  | { type: 'sender-key-pending', groupId: Uint8Array, member: Uint8Array }

export interface OpenedMessage {
  /** The sender's Ed25519 identity key. */
  sender: Uint8Array
  /** The newest card we hold for the sender. */
  card?: ContactCard
  messageId: Uint8Array
  message: WormholeMessage
  /** A first message that started a new session. */
  newSession: boolean
  /** What a group-update or sender-key message did. */
  group?: GroupEvent
  /** A group message that could not be applied (the pairwise message itself was fine). */
  groupError?: WormholeError
  /** Messages to seal and send in consequence (our sender key to members, after an update). */
  sends: ControlMessage[]
}

export interface OpenedGroupMessage {
  groupId: Uint8Array
  sender: Uint8Array
  card?: ContactCard
  messageId: Uint8Array
  message: WormholeMessage
  /** The group epoch it was sealed in. */
  epoch: number
}

export interface GroupInfo {
  groupId: Uint8Array
  name: string
  admin: Uint8Array
  epoch: number
  members: ContactCard[]
}

export interface SessionInfo {
  states: number
  /** We started and the contact has not answered. */
  pending: boolean
  card?: ContactCard
}

/** The wormhole cryptographic core of one person. */
export interface WormholeCrypto {
  readonly identity: WormholeIdentity
  readonly card: ContactCard

  /** The prekey bundle to publish. */
  prekeyBundle(): PrekeyBundle
  /** The signed mutable OHT record publishing the bundle. */
  prekeyRecord(options: { ttlMs: number, seq?: number }): MutableRecord
  /** Rotates and tops up prekeys; `changed` means: publish the bundle again. */
  maintainPrekeys(options?: AbortOptions): Promise<{ changed: boolean, bundle: PrekeyBundle }>

  /** Encrypts `message` for `to` (a bundle is needed for the first message). */
  seal(to: ContactCard, message: OutgoingMessage, options?: SealOptions): Promise<SealedMessage>
  /** Opens an envelope sealed to us by a contact. */
  open(envelope: Uint8Array, options?: AbortOptions): Promise<OpenedMessage>

  session(peer: Uint8Array, options?: AbortOptions): Promise<SessionInfo | undefined>
  /** The newest card of every contact we hold sessions with. */
  contacts(options?: AbortOptions): Promise<ContactCard[]>
  /** Wipes every session with `peer` (they must start a new one). */
  forget(peer: Uint8Array, options?: AbortOptions): Promise<void>
  safetyNumber(peer: Pick<ContactCard, 'publicKey' | 'dhPublicKey'>): string

  /** A receipt for a message of `sender`, signed by us. */
  receipt(sender: Uint8Array, messageId: Uint8Array): Receipt
  /** Checks a receipt `recipient` gave for one of our messages. */
  verifyReceipt(bytes: Uint8Array, recipient: Uint8Array): Receipt

  /** The epoch number of `now` (default: the clock's). */
  epoch(now?: number): number
  /** Where fragment `index` of a message to `peer` goes in `epoch` (their intro mailbox while firstContact). */
  outgoingSlot(peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot>
  /** Where fragments from `peer` wait for us: one slot per session state. */
  incomingSlots(peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot[]>
  /** Where first messages to us wait (key only: the writers differ per sender). */
  introSlotKey(epoch: number, index: number): Uint8Array
  /** The intro slot `peer` wrote to (its writer signs deletes), once their first message opened. */
  introSlotFrom(peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot | undefined>

  createGroup(options: { name: string, members: ContactCard[] }, abort?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }>
  addGroupMembers(groupId: Uint8Array, members: ContactCard[], options?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }>
  removeGroupMembers(groupId: Uint8Array, members: Uint8Array[], options?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }>
  group(groupId: Uint8Array, options?: AbortOptions): Promise<GroupInfo | undefined>
  groups(options?: AbortOptions): Promise<GroupInfo[]>
  /** Encrypts once for every member (conversation id = group id). */
  sealGroup(groupId: Uint8Array, message: Omit<OutgoingMessage, 'conversationId'>, options?: AbortOptions): Promise<{ envelope: Uint8Array, messageId: Uint8Array, epoch: number }>
  openGroup(groupId: Uint8Array, envelope: Uint8Array, options?: AbortOptions): Promise<OpenedGroupMessage>
  /**
   * Where fragment `index` of group messages of time epoch `epoch` waits: for the current group
   * epoch, or `groupEpoch`, one of the previous ones still held (to fetch what was missed).
   */
  groupSlot(groupId: Uint8Array, epoch: number, index: number, options?: AbortOptions & { groupEpoch?: number }): Promise<MailboxSlot>

  /** Wipes cached state (the store stays open: it is the caller's). */
  close(): Promise<void>
}

/**
 * Loads (or, the first time, creates and stores) the prekeys and returns the core.
 *
 * @example
 * const wh = await createWormholeCrypto({}, { identity, card, store, clock: systemClock, rng: cryptoRng })
 * const { envelope } = await wh.seal(bobCard, { conversationId, seq: 1, body }, { bundle })
 * // … on Bob's side: const { message } = await whBob.open(envelope)
 */
export async function createWormholeCrypto (init: WormholeCryptoInit, components: WormholeCryptoComponents, options: AbortOptions = {}): Promise<WormholeCrypto> {
  const w = new WormholeCryptoImpl(init, components)
  await w.start(options)
  return w
}
