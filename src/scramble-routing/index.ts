/**
 * Scramble routing: extra hops through OHT peers that opted in as relays, in fixed-size Sphinx
 * packets, before a message reaches its recipient (each hop itself over Tor, through PeerNet).
 * With 2 or more relays no single relay, Tor relay or peer sees both the sender and the
 * recipient; SURBs let the recipient answer without learning who asked.
 *
 * - Packets: Sphinx after the Katzenpost specification (sphinx.ts; geometry.ts draws the
 *   layout): X25519 with per-hop blinding, HKDF-SHA256 keys, ChaCha20 routing information,
 *   HMAC-SHA256-128 header MAC, LIONESS payload, 2,294 bytes whatever the path.
 * - Relays: per-epoch X25519 keys with an overlap window, a replay filter per key, per-peer
 *   and total token buckets; malformed, replayed or rate-limited packets are dropped and
 *   counted, never thrown.
 * - Descriptors: signed mutable OHT records of the node's identity (salt "scramble/relay/v1"),
 *   relays listed under a well-known multi-value key (directory.ts).
 * - Paths: 0-3 relays, distinct, not the endpoints, diverse by id prefix and tor client,
 *   rebuilt on failure without the relay that failed.
 * - Modes: `FlowMode` (anonymous, scrambled, fast) with descriptions and the fast-mode warning.
 *
 * The layer imports src/core, src/crypto and src/oht only and reaches peers through PeerNet,
 * time through a Clock, chance through an Rng: the same code runs over onion services and in
 * the simulator.
 *
 * @example
 * import { createScrambleNode, createOhtRelayDirectory } from './scramble-routing/index.ts'
 * const directory = createOhtRelayDirectory(ohtNode, relayBoard, {}, { clock })
 * const scramble = createScrambleNode({ relay: true, addrs: [myAddr] }, { identity, peers, directory, clock, rng })
 * scramble.onMessage(async ({ message, canReply, reply }) => { if (canReply) await reply(answerTo(message)) })
 * await scramble.start()                                   // keys, handler, descriptor published
 * const sent = await scramble.send(bytes, { recipient: contact, hops: 2, reply: true })
 * const answer = await sent.reply                           // through the SURB, single use
 * console.log(scramble.stats.dropped)                      // malformed, badMac, replay, rateLimited …
 * await scramble.stop()                                    // handler gone, keys destroyed
 *
 * Errors are ScrambleError (code prefix SCRAMBLE_, errors.ts lists them).
 */
import { ScrambleNodeImpl, type ScrambleNode, type ScrambleNodeComponents, type ScrambleNodeInit } from './node.ts'

export {
  HOP_PROTOCOL,
  type ScrambleNode, type ScrambleNodeInit, type ScrambleNodeComponents, type SendOptions, type SendResult,
  type InboundMessage, type MessageHandler
} from './node.ts'
export { ScrambleError, isScrambleError, type ScrambleErrorCode } from './errors.ts'
export type { ScrambleStats } from './stats.ts'
export * from './geometry.ts'
export {
  createHeader, createPacket, createSurb, packetFromSurb, decryptSurbReply, unwrapPacket, BODY_BYTES, SURB_BYTES,
  type SphinxHop, type TerminalCommand, type BuiltHeader, type BuiltPacket, type SurbToken, type Unwrapped, type ReplayCheck
} from './sphinx.ts'
export { lionessEncrypt, lionessDecrypt, lionessKeys, type LionessKeys } from './lioness.ts'
export { deriveHopKeys, type HopKeys } from './kdf.ts'
export { privateKeyFromScalar, publicFromScalar, importPublic, x25519 } from './x25519.ts'
export { encodeInner, decodeInner, MAX_MESSAGE_BYTES, MAX_MESSAGE_WITH_SURB_BYTES, type InnerMessage } from './payload.ts'
export {
  createReport, wrapReport, readReport, encodeHopResponse, decodeHopResponse, REPORT_CODE, RESPONSE_BYTES,
  type HopResponse, type ReportCode
} from './hop-response.ts'
export { ReplayFilter, type ReplayFilterInit, type ReplayVerdict } from './replay-filter.ts'
export { EpochKeyRing, EPOCH_MS_DEFAULT, OVERLAP_MS_DEFAULT, type EpochKey, type KeyRingInit } from './key-ring.ts'
export {
  RELAY_SALT, DESCRIPTOR_VERSION, MAX_DESCRIPTOR_BYTES, encodeDescriptorValue, decodeDescriptorValue, signRelayDescriptor,
  verifyRelayDescriptor, isDescriptorValid, usableKey, encodeSignedDescriptor, decodeSignedDescriptor,
  type RelayDescriptor, type RelayKey, type DescriptorSigner
} from './descriptor.ts'
export {
  RELAY_LIST_KEY, createOhtRelayDirectory, createMemoryRelayDirectory, createMemoryRelayBoard,
  type RelayDirectory, type RelayRecordStore, type RelayBoard, type DirectoryInit, type DirectoryComponents
} from './directory.ts'
export { selectPath, idPrefix, FailedRelays, type PathRequest, type SelectedPath } from './path.ts'
export { FLOW_MODES, FAST_MODE_WARNING, formatModeChoice, isFlowMode, type FlowMode, type FlowModeInfo, type ModeCost } from './modes.ts'

/** A scramble node (relay when `init.relay`, always an endpoint and a client). */
export function createScrambleNode (init: ScrambleNodeInit, components: ScrambleNodeComponents): ScrambleNode {
  return new ScrambleNodeImpl(init, components)
}
