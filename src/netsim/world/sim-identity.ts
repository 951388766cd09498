/**
 * Ed25519 identities for simulated nodes, from a seed, ~10× faster to make than
 * src/crypto's identityFromSeed: node:crypto imports a JWK private key (it derives the public
 * key from `d` and ignores `x`) in ~0.09 ms here, while the PKCS#8 DER import goes through
 * OpenSSL 3's decoder lookup at ~0.85 ms. With 10,000 nodes plus ~48,000 joins in a day of
 * churn that is the difference between ~5 s and ~50 s of setup. Node 24 checks `x` against `d`
 * (the placeholder is refused) but imports PKCS#8 as fast (~0.08 ms), so there the DER path
 * is used. The keys and signatures are the same (test/unit/netsim-sim-identity.test.ts checks
 * it against identityFromSeed).
 */
import { createPrivateKey, createPublicKey, sign as edSign, type KeyObject } from 'node:crypto'

export interface SimIdentity {
  readonly publicKey: Uint8Array
  sign(message: Uint8Array): Uint8Array
  destroy(): void
}

// Any 32-byte value: node:crypto (before 24) requires the field but derives the public key from `d`.
const PLACEHOLDER_X = Buffer.alloc(32).toString('base64url')
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

function jwkKey (seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: PLACEHOLDER_X }, format: 'jwk' })
}

/** Whether this Node takes the placeholder `x` (20, 22) or checks it (24). */
const JWK_IGNORES_X = (() => {
  try { jwkKey(new Uint8Array(32)); return true } catch { return false }
})()

export function simIdentityFromSeed (seed: Uint8Array): SimIdentity {
  let key: KeyObject | undefined = JWK_IGNORES_X
    ? jwkKey(seed)
    : createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const x = createPublicKey(key).export({ format: 'jwk' }).x as string
  const publicKey = new Uint8Array(Buffer.from(x, 'base64url'))
  return {
    publicKey,
    sign (message) {
      if (key === undefined) throw new Error('this simulated identity was destroyed')
      return new Uint8Array(edSign(null, message, key))
    },
    destroy () { key = undefined }
  }
}
