/**
 * The one packet geometry of scramble routing v1. Every packet on `/scramble/hop/1` has exactly
 * PACKET_BYTES bytes, whatever its path length, its position on the path or whether it is a
 * forward message or a SURB reply: a relay learns nothing from sizes.
 *
 *   0      2                34                                   230         246                    2294
 *   +------+----------------+------------------------------------+-----------+----------------------+
 *   | AD   | α group element| β routing information              | γ MAC     | δ payload            |
 *   | ver  | X25519 public  | 4 slots × 49 bytes, ChaCha20       | HMAC-     | LIONESS (wide block, |
 *   | rsvd | key, blinded   | under this hop's header key; slot 0 | SHA256    | fragile), 2048 bytes |
 *   |      | at every hop   | is this hop's, the rest is onion   | truncated |                      |
 *   +------+----------------+------------------------------------+-----------+----------------------+
 *   \__________________ header: 246 bytes (<= 300 at the maximum of 4 Sphinx hops) _/
 *
 * A path has 1 to MAX_HOPS Sphinx hops: up to 3 relays and then the terminal hop (the
 * recipient, or for a SURB the node that made it). One slot of routing information:
 *
 *   next hop:    0x01 | next node id (32: Ed25519 public key) | γ of the next hop (16)
 *   deliver:     0x02 | zero (48)
 *   SURB reply:  0x03 | SURB id (16) | zero (32)
 *
 * Why these sizes: 2 KiB of payload, as Nym's packets carry, fits a wormhole message or a DOA
 * request with a SURB (310 bytes) beside it, and keeps the per-packet public-key cost (two
 * X25519 per hop) small against the bytes moved; the header is the Sphinx minimum for 4 hops
 * with 32-byte node ids (Katzenpost's 2-byte additional data carries the version).
 */

/** Format version carried in the first byte of the additional data. */
export const SPHINX_VERSION = 1
/** Additional data: version, reserved (0). Authenticated by every hop's MAC, never changed. */
export const AD_BYTES = 2
export const GROUP_ELEMENT_BYTES = 32
export const MAC_BYTES = 16
export const NODE_ID_BYTES = 32
export const SURB_ID_BYTES = 16
/** Sphinx hops at most: 3 relays and the terminal hop. */
export const MAX_HOPS = 4
/** Extra hops (relays) a path may have. */
export const MAX_RELAYS = MAX_HOPS - 1
/** One routing-information slot: the largest command (next hop). */
export const SLOT_BYTES = 1 + NODE_ID_BYTES + MAC_BYTES
export const ROUTING_INFO_BYTES = SLOT_BYTES * MAX_HOPS
export const HEADER_BYTES = AD_BYTES + GROUP_ELEMENT_BYTES + ROUTING_INFO_BYTES + MAC_BYTES
export const PAYLOAD_BYTES = 2048
export const PACKET_BYTES = HEADER_BYTES + PAYLOAD_BYTES
/** Zero bytes the payload starts with before encryption: the recipient's integrity check. */
export const PAYLOAD_TAG_BYTES = 16

/** Offsets in a packet. */
export const OFF_ALPHA = AD_BYTES
export const OFF_BETA = OFF_ALPHA + GROUP_ELEMENT_BYTES
export const OFF_GAMMA = OFF_BETA + ROUTING_INFO_BYTES
export const OFF_PAYLOAD = HEADER_BYTES

/** Routing command types (first byte of a slot). */
export const CMD_NEXT_HOP = 0x01
export const CMD_DELIVER = 0x02
export const CMD_SURB_REPLY = 0x03

/** Bytes of a replay tag (derived per hop, see kdf.ts). */
export const REPLAY_TAG_BYTES = 16
