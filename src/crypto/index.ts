/**
 * Identity keys, onion v3 addresses, the key tree, key files and passphrase sealing.
 * Ed25519 and hashes run on node:crypto, except SHA-256 of small inputs and HMAC-SHA256 from
 * key midstates (sha256.ts: no per-call allocation); XChaCha20-Poly1305 comes from @noble/ciphers.
 *
 * @example
 * import { identityFromSeed, deriveChildSeed, torKeyBlob } from './crypto/index.ts'
 * const vm = identityFromSeed(deriveChildSeed(masterSeed, 'universe.router.multiverse'))
 * await control.addOnion({ key: { type: 'ED25519-V3', blob: torKeyBlob(vm).slice('ED25519-V3:'.length) }, ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }] })
 * // tor answers ServiceID === vm.onion
 */
export { CryptoError } from './errors.ts'
export { sha256, sha3_256, sha512 } from './hash.ts'
export { onionAddressFromPublicKey, parseOnionAddress, isValidOnionAddress, ONION_V3_LENGTH, type ParsedOnionAddress } from './onion.ts'
export { identityFromSeed, generateIdentity, verifySignature, torKeyBlob, type Identity } from './identity.ts'
export { deriveChildSeed, normaliseKeyPath } from './key-tree.ts'
export { writeKeyFile, readKeyFile, type KeyFileOptions, type ReadKeyFileOptions } from './key-file.ts'
export { sealWithPassphrase, openWithPassphrase, derivePassphraseKey, xchachaEncrypt, xchachaDecrypt, DEFAULT_SCRYPT, type PassphraseKey, type ScryptParams, type SealedBox } from './seal.ts'
