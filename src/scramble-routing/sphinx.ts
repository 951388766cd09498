/**
 * Sphinx packets (Danezis & Goldberg, "Sphinx: A Compact and Provably Secure Mix Format", 2009)
 * after the Katzenpost "Sphinx Mix Network Cryptographic Packet Format Specification"
 * (katzenpost/katzenpost, specs/sphinx.rst): header creation (§5.1), packet creation (§5.2),
 * Sphinx_Unwrap (§6.1) with its post-processing (§6.2), SURBs (§7, §8). Parameters:
 *
 *   EXP(X, Y)        X25519 (node:crypto), blinding by clamped scalar multiplication (x25519.ts)
 *   KDF              HKDF-SHA256, salt = α (kdf.ts; a deviation, explained there)
 *   MAC(K, M)        HMAC-SHA256 truncated to 16 bytes (the spec's HMAC-SHA256-128)
 *   S(K, IV)         ChaCha20, zero nonce (one key per packet and hop)
 *   SPRP             LIONESS over ChaCha20 and HMAC-SHA256 (lioness.ts)
 *   AD               2 bytes: version 1, reserved 0
 *   geometry         geometry.ts: 4 Sphinx hops at most, 49-byte slots, 2048-byte payload
 *
 * Other deviations, and why:
 * - The replay tag is a KDF output (Katzenpost: H(shared secret)): one HKDF call gives all keys.
 * - The unused part of the terminal hop's routing information is random, not zero (as
 *   Substrate's mixnet does), so the terminal hop cannot count the zeros to learn the path length.
 * - One routing command per hop (next hop, deliver or SURB reply), padding must be zero; the
 *   spec allows a list. Unknown commands are refused (as the spec requires).
 * - The payload tag is checked by the caller after the final decryption (unwrapPacket returns
 *   the body of a delivery only when its 16-byte zero prefix is intact).
 */
import { createCipheriv, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { Rng } from '../core/index.ts'
import { ScrambleError } from './errors.ts'
import {
  AD_BYTES, CMD_DELIVER, CMD_NEXT_HOP, CMD_SURB_REPLY, GROUP_ELEMENT_BYTES, HEADER_BYTES, MAC_BYTES, MAX_HOPS,
  NODE_ID_BYTES, OFF_ALPHA, OFF_BETA, OFF_GAMMA, OFF_PAYLOAD, PACKET_BYTES, PAYLOAD_BYTES, PAYLOAD_TAG_BYTES,
  ROUTING_INFO_BYTES, SLOT_BYTES, SPHINX_VERSION, SURB_ID_BYTES
} from './geometry.ts'
import { deriveHopKeys, type HopKeys } from './kdf.ts'
import { lionessWith, lionessWithKeys } from './lioness.ts'
import { importPublic, privateKeyFromScalar, publicFromScalar, x25519, x25519Raw } from './x25519.ts'

const ZERO_IV = Buffer.alloc(16)
const AD = Uint8Array.from([SPHINX_VERSION, 0])
/** Largest body a packet carries (after the payload's zero tag). */
export const BODY_BYTES = PAYLOAD_BYTES - PAYLOAD_TAG_BYTES
/** A SURB: header | first hop id | payload secret for the reply's first layer. */
export const SURB_BYTES = HEADER_BYTES + NODE_ID_BYTES + 32

/** One Sphinx hop as the sender sees it. */
export interface SphinxHop {
  /** The node's id on the path: its Ed25519 identity public key (32 bytes). */
  nodeId: Uint8Array
  /** The node's X25519 public key for the key epoch the packet is built for. */
  publicKey: Uint8Array
}

export type TerminalCommand = { type: 'deliver' } | { type: 'surb-reply', surbId: Uint8Array }

export interface BuiltHeader {
  header: Uint8Array
  /** Per hop, in path order: the payload keys (LIONESS, 128 bytes) and the response key. */
  payloadKeys: Uint8Array[]
  responseKeys: Uint8Array[]
}

function keystream (key: Uint8Array, length: number): Uint8Array {
  const c = createCipheriv('chacha20', key, ZERO_IV)
  return new Uint8Array(c.update(new Uint8Array(length)))
}

function mac (key: Uint8Array, alpha: Uint8Array, beta: Uint8Array): Uint8Array {
  const h = createHmac('sha256', key).update(AD).update(alpha).update(beta).digest()
  return new Uint8Array(h.buffer, h.byteOffset, MAC_BYTES)
}

function xorInto (dst: Uint8Array, src: Uint8Array, srcOff = 0): void {
  for (let i = 0; i < dst.byteLength; i++) dst[i] ^= src[srcOff + i]
}

function checkPath (hops: SphinxHop[]): void {
  if (!Array.isArray(hops) || hops.length < 1 || hops.length > MAX_HOPS) {
    throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a Sphinx path has 1 to ${MAX_HOPS} hops, got ${Array.isArray(hops) ? hops.length : typeof hops}`)
  }
  for (const h of hops) {
    if (h.nodeId?.byteLength !== NODE_ID_BYTES || h.publicKey?.byteLength !== GROUP_ELEMENT_BYTES) {
      throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'every hop needs a 32-byte node id and a 32-byte X25519 public key')
    }
  }
}

/**
 * Sphinx_Create_Header. `rng` supplies the ephemeral scalar and the random fill: it must be
 * cryptographic outside tests (cryptoRng).
 */
export function createHeader (hops: SphinxHop[], terminal: TerminalCommand, rng: Rng): BuiltHeader {
  checkPath(hops)
  const n = hops.length
  // 1. Per-hop shared secrets and group elements: s_i = b_{i-1}·…·b_0·x·pk_i, α_i = b_{i-1}·…·b_0·x·G.
  const x = rng.bytes(32)
  const xKey = privateKeyFromScalar(x)
  x.fill(0)
  const alphas: Uint8Array[] = [publicFromScalar(xKey)]
  const keys: HopKeys[] = []
  for (let i = 0; i < n; i++) {
    let s = x25519(xKey, importPublic(hops[i].publicKey))
    for (let j = 0; j < i; j++) {
      const next = x25519Raw(keys[j].blinding, s)
      s.fill(0)
      s = next
    }
    if (i > 0) alphas.push(x25519Raw(keys[i - 1].blinding, alphas[i - 1]))
    keys.push(deriveHopKeys(s, alphas[i]))
    s.fill(0)
  }
  try {
    // 2. Keystreams over β plus one slot, and the filler the later hops will see.
    const R = ROUTING_INFO_BYTES
    const r = SLOT_BYTES
    const streams = keys.map(k => keystream(k.headerKey, R + r))
    let filler = new Uint8Array(0)
    for (let i = 0; i < n - 1; i++) {
      const next = new Uint8Array(filler.byteLength + r)
      next.set(filler, 0)
      xorInto(next, streams[i], R - i * r)
      filler = next
    }
    // 3. β of the terminal hop, then of every earlier hop, each MACed under its hop's key.
    const terminalPlain = new Uint8Array(R - (n - 1) * r)
    if (terminal.type === 'deliver') {
      terminalPlain[0] = CMD_DELIVER
    } else {
      if (terminal.surbId?.byteLength !== SURB_ID_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a SURB id has ${SURB_ID_BYTES} bytes`)
      terminalPlain[0] = CMD_SURB_REPLY
      terminalPlain.set(terminal.surbId, 1)
    }
    if (terminalPlain.byteLength > r) terminalPlain.set(rng.bytes(terminalPlain.byteLength - r), r)
    xorInto(terminalPlain, streams[n - 1])
    let beta = new Uint8Array(R)
    beta.set(terminalPlain, 0)
    beta.set(filler, terminalPlain.byteLength)
    let gamma = mac(keys[n - 1].macKey, alphas[n - 1], beta)
    for (let i = n - 2; i >= 0; i--) {
      const plain = new Uint8Array(R)
      plain[0] = CMD_NEXT_HOP
      plain.set(hops[i + 1].nodeId, 1)
      plain.set(gamma, 1 + NODE_ID_BYTES)
      plain.set(beta.subarray(0, R - r), r)
      xorInto(plain, streams[i])
      beta = plain
      gamma = mac(keys[i].macKey, alphas[i], beta)
    }
    // 4. Assemble.
    const header = new Uint8Array(HEADER_BYTES)
    header.set(AD, 0)
    header.set(alphas[0], OFF_ALPHA)
    header.set(beta, OFF_BETA)
    header.set(gamma, OFF_GAMMA)
    for (const st of streams) st.fill(0)
    return {
      header,
      payloadKeys: keys.map(k => k.payloadKeys.slice()),
      responseKeys: keys.map(k => k.responseKey.slice())
    }
  } finally {
    for (const k of keys) k.okm.fill(0)
  }
}

function framePayload (body: Uint8Array): Uint8Array {
  if (body.byteLength > BODY_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a packet body holds at most ${BODY_BYTES} bytes, got ${body.byteLength}`)
  const payload = new Uint8Array(PAYLOAD_BYTES)
  payload.set(body, PAYLOAD_TAG_BYTES)
  return payload
}

export interface BuiltPacket {
  packet: Uint8Array
  /** Per hop, the key of its layer of the hop response (keep it to read the answer). */
  responseKeys: Uint8Array[]
}

/** Sphinx_Create_Packet: the body (at most BODY_BYTES) is zero-padded, tagged and layered. */
export function createPacket (hops: SphinxHop[], body: Uint8Array, rng: Rng): BuiltPacket {
  const payload = framePayload(body)
  const built = createHeader(hops, { type: 'deliver' }, rng)
  for (let i = hops.length - 1; i >= 0; i--) lionessWithKeys(built.payloadKeys[i], payload, 'encrypt')
  for (const k of built.payloadKeys) k.fill(0)
  const packet = new Uint8Array(PACKET_BYTES)
  packet.set(built.header, 0)
  packet.set(payload, OFF_PAYLOAD)
  payload.fill(0)
  return { packet, responseKeys: built.responseKeys }
}

/** What the SURB's maker keeps to read the reply (the spec's decryption token). */
export interface SurbToken {
  id: Uint8Array
  /**
   * [the reply's first-layer secret (32 bytes), then each hop's payload keys (128 bytes) in
   * path order].
   */
  secrets: Uint8Array[]
}

/** Sphinx_Create_SURB: `hops` ends with the SURB's maker, who receives the reply. */
export function createSurb (hops: SphinxHop[], surbId: Uint8Array, rng: Rng): { surb: Uint8Array, token: SurbToken } {
  const built = createHeader(hops, { type: 'surb-reply', surbId }, rng)
  const finalSecret = rng.bytes(32)
  const surb = new Uint8Array(SURB_BYTES)
  surb.set(built.header, 0)
  surb.set(hops[0].nodeId, HEADER_BYTES)
  surb.set(finalSecret, HEADER_BYTES + NODE_ID_BYTES)
  const token = { id: surbId.slice(), secrets: [finalSecret.slice(), ...built.payloadKeys] }
  finalSecret.fill(0)
  return { surb, token }
}

/** Sphinx_Create_SURB_Reply: the packet to send to `firstHop`. */
export function packetFromSurb (surb: Uint8Array, body: Uint8Array): { packet: Uint8Array, firstHop: Uint8Array } {
  if (surb.byteLength !== SURB_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `a SURB has ${SURB_BYTES} bytes, got ${surb.byteLength}`)
  if (surb[0] !== SPHINX_VERSION || surb[1] !== 0) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `SURB of unknown version ${surb[0]}`)
  const payload = framePayload(body)
  lionessWith(surb.subarray(HEADER_BYTES + NODE_ID_BYTES), payload, 'encrypt')
  const packet = new Uint8Array(PACKET_BYTES)
  packet.set(surb.subarray(0, HEADER_BYTES), 0)
  packet.set(payload, OFF_PAYLOAD)
  return { packet, firstHop: surb.slice(HEADER_BYTES, HEADER_BYTES + NODE_ID_BYTES) }
}

function tagIntact (payload: Uint8Array): boolean {
  let acc = 0
  for (let i = 0; i < PAYLOAD_TAG_BYTES; i++) acc |= payload[i]
  return acc === 0
}

/**
 * Sphinx_Decrypt_SURB_Reply: `payload` as the maker's own hop unwrapped it. Returns the body
 * (BODY_BYTES, zero-padded); throws SCRAMBLE_BAD_PAYLOAD when the check fails. The token's
 * secrets are wiped either way (single use).
 */
export function decryptSurbReply (token: SurbToken, payload: Uint8Array): Uint8Array {
  try {
    if (payload.byteLength !== PAYLOAD_BYTES) throw new ScrambleError('SCRAMBLE_BAD_PAYLOAD', `a payload has ${PAYLOAD_BYTES} bytes`)
    const p = payload.slice()
    for (let i = token.secrets.length - 1; i > 0; i--) lionessWithKeys(token.secrets[i], p, 'encrypt')
    lionessWith(token.secrets[0], p, 'decrypt')
    if (!tagIntact(p)) throw new ScrambleError('SCRAMBLE_BAD_PAYLOAD', 'the reply payload failed its integrity check: it was changed on the way')
    return p.subarray(PAYLOAD_TAG_BYTES)
  } finally {
    for (const s of token.secrets) s.fill(0)
  }
}

/** The result of one hop's Sphinx_Unwrap. */
export type Unwrapped =
  | { type: 'forward', keyIndex: number, nextHop: Uint8Array, packet: Uint8Array, responseKey: Uint8Array }
  | { type: 'deliver', keyIndex: number, body: Uint8Array, responseKey: Uint8Array }
  | { type: 'surb-reply', keyIndex: number, surbId: Uint8Array, payload: Uint8Array, responseKey: Uint8Array }

/**
 * Called once the header MAC verified under key `keyIndex`, before any further work: throws
 * (SCRAMBLE_REPLAY, SCRAMBLE_REPLAY_FILTER_FULL) to refuse the packet, returns to accept it.
 */
export type ReplayCheck = (keyIndex: number, replayTag: Uint8Array) => void

function isZero (b: Uint8Array): boolean {
  let acc = 0
  for (let i = 0; i < b.byteLength; i++) acc |= b[i]
  return acc === 0
}

/**
 * Sphinx_Unwrap with the replay check in the middle, where the spec puts it (after the header
 * is authenticated) but before the payload work. `keys` are tried in order (current epoch
 * first): the first whose MAC verifies is the packet's. Throws ScrambleError only:
 * SCRAMBLE_BAD_PACKET, SCRAMBLE_BAD_POINT, SCRAMBLE_BAD_MAC, SCRAMBLE_BAD_COMMAND,
 * SCRAMBLE_BAD_PAYLOAD, or what `replay` throws.
 */
export function unwrapPacket (packet: Uint8Array, keys: KeyObject[], replay: ReplayCheck): Unwrapped {
  if (!(packet instanceof Uint8Array) || packet.byteLength !== PACKET_BYTES) {
    throw new ScrambleError('SCRAMBLE_BAD_PACKET', `a packet has ${PACKET_BYTES} bytes, got ${packet instanceof Uint8Array ? packet.byteLength : typeof packet}`)
  }
  if (packet[0] !== SPHINX_VERSION || packet[1] !== 0) throw new ScrambleError('SCRAMBLE_BAD_PACKET', `unknown packet version ${packet[0]}.${packet[1]}`)
  const alpha = packet.subarray(OFF_ALPHA, OFF_BETA)
  const beta = packet.subarray(OFF_BETA, OFF_GAMMA)
  const gamma = packet.subarray(OFF_GAMMA, OFF_PAYLOAD)
  let alphaKey: KeyObject
  try { alphaKey = importPublic(alpha) } catch (err) { throw new ScrambleError('SCRAMBLE_BAD_POINT', 'the group element does not import', { cause: err }) }
  let hk: HopKeys | undefined
  let keyIndex = -1
  for (let i = 0; i < keys.length && hk === undefined; i++) {
    const s = x25519(keys[i], alphaKey)
    const k = deriveHopKeys(s, alpha)
    s.fill(0)
    if (timingSafeEqual(mac(k.macKey, alpha, beta), gamma)) { hk = k; keyIndex = i } else k.okm.fill(0)
  }
  if (hk === undefined) throw new ScrambleError('SCRAMBLE_BAD_MAC', 'no key of this node verifies the header MAC')
  try {
    replay(keyIndex, hk.replayTag)
    // B = (β | zero slot) XOR keystream: ChaCha20 "encrypting" B is exactly that XOR.
    const padded = new Uint8Array(ROUTING_INFO_BYTES + SLOT_BYTES)
    padded.set(beta, 0)
    const B = new Uint8Array(createCipheriv('chacha20', hk.headerKey, ZERO_IV).update(padded))
    const cmd = B[0]
    const responseKey = hk.responseKey.slice()
    const payload = packet.slice(OFF_PAYLOAD)
    if (cmd === CMD_NEXT_HOP) {
      const nextHop = B.slice(1, 1 + NODE_ID_BYTES)
      lionessWithKeys(hk.payloadKeys, payload, 'decrypt')
      const out = new Uint8Array(PACKET_BYTES)
      out.set(AD, 0)
      out.set(x25519Raw(hk.blinding, alphaKey), OFF_ALPHA)
      out.set(B.subarray(SLOT_BYTES), OFF_BETA)
      out.set(B.subarray(1 + NODE_ID_BYTES, SLOT_BYTES), OFF_GAMMA)
      out.set(payload, OFF_PAYLOAD)
      return { type: 'forward', keyIndex, nextHop, packet: out, responseKey }
    }
    if (cmd === CMD_DELIVER) {
      if (!isZero(B.subarray(1, SLOT_BYTES))) throw new ScrambleError('SCRAMBLE_BAD_COMMAND', 'deliver command with non-zero padding')
      lionessWithKeys(hk.payloadKeys, payload, 'decrypt')
      if (!tagIntact(payload)) throw new ScrambleError('SCRAMBLE_BAD_PAYLOAD', 'the payload failed its integrity check: it was changed on the way')
      return { type: 'deliver', keyIndex, body: payload.subarray(PAYLOAD_TAG_BYTES), responseKey }
    }
    if (cmd === CMD_SURB_REPLY) {
      if (!isZero(B.subarray(1 + SURB_ID_BYTES, SLOT_BYTES))) throw new ScrambleError('SCRAMBLE_BAD_COMMAND', 'SURB reply command with non-zero padding')
      lionessWithKeys(hk.payloadKeys, payload, 'decrypt')
      return { type: 'surb-reply', keyIndex, surbId: B.slice(1, 1 + SURB_ID_BYTES), payload, responseKey }
    }
    throw new ScrambleError('SCRAMBLE_BAD_COMMAND', `unknown routing command ${cmd}`)
  } finally {
    hk.okm.fill(0)
  }
}
