/**
 * LIONESS (Anderson & Biham, "Two Practical and Provably Secure Block Ciphers: BEAR and LION",
 * 1996), the wide-block cipher (SPRP) on Sphinx payloads, as the Katzenpost and Substrate
 * specifications use it. A message M = L || R with |L| = 32:
 *
 *   encrypt:  R ^= S(L ^ K1);  L ^= H(K2, R);  R ^= S(L ^ K3);  L ^= H(K4, R)
 *   decrypt:  L ^= H(K4, R);  R ^= S(L ^ K3);  L ^= H(K2, R);  R ^= S(L ^ K1)
 *
 * S(k) = ChaCha20 keystream under key k, zero nonce (node:crypto); H = HMAC-SHA256 (node:crypto),
 * a keyed SHA-256 (Substrate uses keyed BLAKE2b; HMAC-SHA256 is the keyed hash node:crypto runs
 * natively here, ~5 µs per 2 KiB). A hop's four 32-byte keys come straight from its KDF
 * (kdf.ts); a SURB's first-layer key is one 32-byte secret, expanded by HKDF-SHA256
 * (info "oht/scramble/lioness/v1"), so a SURB carries 32 bytes of payload key.
 *
 * Why a wide block and not a stream cipher: any change to the ciphertext, one bit anywhere,
 * turns the whole plaintext into noise, so a relay that tags a packet (flips bits to recognise
 * it further down the path) only destroys it, and the recipient's zero-prefix check catches it.
 */
import { createCipheriv, createHmac, hkdfSync } from 'node:crypto'
import { ScrambleError } from './errors.ts'

const INFO = Buffer.from('oht/scramble/lioness/v1')
const ZERO_IV = Buffer.alloc(16)
const HALF = 32

export interface LionessKeys { k1: Uint8Array, k2: Uint8Array, k3: Uint8Array, k4: Uint8Array, bytes: Uint8Array }

/** The four keys as views of 128 bytes of key material (not copied). */
export function lionessKeysOf (bytes: Uint8Array): LionessKeys {
  if (bytes.byteLength !== 128) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `LIONESS takes 128 bytes of keys, got ${bytes.byteLength}`)
  return { k1: bytes.subarray(0, 32), k2: bytes.subarray(32, 64), k3: bytes.subarray(64, 96), k4: bytes.subarray(96, 128), bytes }
}

/** The four keys expanded from a 32-byte secret (a SURB's first layer). */
export function lionessKeys (secret: Uint8Array): LionessKeys {
  return lionessKeysOf(new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), INFO, 128)))
}

function xorStream (key: Uint8Array, left: Uint8Array, data: Uint8Array): void {
  const k = Buffer.allocUnsafe(32)
  for (let i = 0; i < 32; i++) k[i] = left[i] ^ key[i]
  const c = createCipheriv('chacha20', k, ZERO_IV)
  // Encrypting `data` in place with ChaCha20 is the XOR with its keystream.
  const out = c.update(data)
  data.set(out)
  out.fill(0)
  k.fill(0)
}

function xorHash (key: Uint8Array, right: Uint8Array, left: Uint8Array): void {
  const h = createHmac('sha256', key).update(right).digest()
  for (let i = 0; i < HALF; i++) left[i] ^= h[i]
  h.fill(0)
}

function check (block: Uint8Array): void {
  if (block.byteLength <= HALF) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `LIONESS needs more than ${HALF} bytes, got ${block.byteLength}`)
}

/** Encrypts `block` in place. */
export function lionessEncrypt (keys: LionessKeys, block: Uint8Array): void {
  check(block)
  const L = block.subarray(0, HALF)
  const R = block.subarray(HALF)
  xorStream(keys.k1, L, R)
  xorHash(keys.k2, R, L)
  xorStream(keys.k3, L, R)
  xorHash(keys.k4, R, L)
}

/** Decrypts `block` in place. */
export function lionessDecrypt (keys: LionessKeys, block: Uint8Array): void {
  check(block)
  const L = block.subarray(0, HALF)
  const R = block.subarray(HALF)
  xorHash(keys.k4, R, L)
  xorStream(keys.k3, L, R)
  xorHash(keys.k2, R, L)
  xorStream(keys.k1, L, R)
}

/** Encrypts or decrypts with the keys of a 32-byte `secret`, wiping the expanded keys afterwards. */
export function lionessWith (secret: Uint8Array, block: Uint8Array, op: 'encrypt' | 'decrypt'): void {
  const keys = lionessKeys(secret)
  try {
    if (op === 'encrypt') lionessEncrypt(keys, block)
    else lionessDecrypt(keys, block)
  } finally {
    keys.bytes.fill(0)
  }
}

/** Encrypts or decrypts with 128 bytes of key material (a hop's payload keys). */
export function lionessWithKeys (keyBytes: Uint8Array, block: Uint8Array, op: 'encrypt' | 'decrypt'): void {
  const keys = lionessKeysOf(keyBytes)
  if (op === 'encrypt') lionessEncrypt(keys, block)
  else lionessDecrypt(keys, block)
}
