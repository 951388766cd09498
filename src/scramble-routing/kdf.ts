/**
 * Per-hop keys (the Katzenpost Sphinx specification's Sphinx_KDF, section 2.1), from
 * HKDF-SHA256 (RFC 5869):
 *
 *   okm = HKDF-SHA256(ikm = shared secret s, salt = α (the group element as received),
 *                     info = "oht/scramble/sphinx/v1 hop keys", L = 176)
 *
 *   [0,32)     header MAC key         HMAC-SHA256, truncated to 16 bytes
 *   [32,64)    header stream key      ChaCha20 (zero nonce: the key is new for every packet)
 *   [64,96)    payload secret         expanded into the four LIONESS keys (lioness.ts)
 *   [96,128)   blinding factor b      α' = X25519(b, α)
 *   [128,144)  replay tag             unique per (key, packet): the replay filter's input
 *   [144,176)  response key           this hop's layer of the hop response (hop-response.ts)
 *
 * Deviation from the spec: α is the HKDF salt, where Katzenpost derives from the shared secret
 * alone. X25519 ignores the top bit of the u-coordinate (RFC 7748 §5), so two encodings of α
 * give one shared secret; binding the keys to α's exact bytes makes a flipped top bit fail the
 * MAC (fragility) and keeps the blinding factor tied to the element it blinds, as Substrate's
 * mixnet does with its kx_public.
 */
import { hkdfSync } from 'node:crypto'

const INFO = Buffer.from('oht/scramble/sphinx/v1 hop keys')
export const HOP_KEYS_BYTES = 176

export interface HopKeys {
  macKey: Uint8Array
  headerKey: Uint8Array
  payloadSecret: Uint8Array
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
    payloadSecret: okm.subarray(64, 96),
    blinding: okm.subarray(96, 128),
    replayTag: okm.subarray(128, 144),
    responseKey: okm.subarray(144, 176),
    okm
  }
}
