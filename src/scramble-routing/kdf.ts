/**
 * Per-hop keys (the Katzenpost Sphinx specification's Sphinx_KDF, section 2.1), from
 * HKDF-SHA256 (RFC 5869):
 *
 *   okm = HKDF-SHA256(ikm = shared secret s, salt = α (the group element as received),
 *                     info = "oht/scramble/sphinx/v1 hop keys", L = 272)
 *
 *   [0,32)     header MAC key         HMAC-SHA256, truncated to 16 bytes
 *   [32,64)    header stream key      ChaCha20 (zero nonce: the key is new for every packet)
 *   [64,192)   payload keys           the four LIONESS keys K1..K4 (lioness.ts), 32 bytes each
 *   [192,224)  blinding factor b      α' = X25519(b, α)
 *   [224,240)  replay tag             unique per (key, packet): the replay filter's input
 *   [240,272)  response key           this hop's layer of the hop response (hop-response.ts)
 *
 * One HKDF call for all of them: a second one to expand a payload secret cost ~14 µs a hop.
 *
 * Deviation from the spec: α is the HKDF salt, where Katzenpost derives from the shared secret
 * alone. X25519 ignores the top bit of the u-coordinate (RFC 7748 §5), so two encodings of α
 * give one shared secret; binding the keys to α's exact bytes makes a flipped top bit fail the
 * MAC (fragility) and keeps the blinding factor tied to the element it blinds, as Substrate's
 * mixnet does with its kx_public.
 */
import { hkdfSync } from 'node:crypto'

const INFO = Buffer.from('oht/scramble/sphinx/v1 hop keys')
export const HOP_KEYS_BYTES = 272

export interface HopKeys {
  macKey: Uint8Array
  headerKey: Uint8Array
  /** K1..K4 of LIONESS, 128 bytes. */
  payloadKeys: Uint8Array
  blinding: Uint8Array
  replayTag: Uint8Array
  responseKey: Uint8Array
  /** The backing bytes of every key above: zero it when done. */
  okm: Uint8Array
}

export function deriveHopKeys (sharedSecret: Uint8Array, alpha: Uint8Array): HopKeys {
  const okm = new Uint8Array(hkdfSync('sha256', sharedSecret, alpha, INFO, HOP_KEYS_BYTES))
  return {
    macKey: okm.subarray(0, 32),
    headerKey: okm.subarray(32, 64),
    payloadKeys: okm.subarray(64, 192),
    blinding: okm.subarray(192, 224),
    replayTag: okm.subarray(224, 240),
    responseKey: okm.subarray(240, 272),
    okm
  }
}
