/**
 * X25519 (RFC 7748) through node:crypto, the group of our Sphinx packets. Sphinx blinds the
 * group element at every hop (α_{i+1} = α_i ^ b_i); with X25519 that is a clamped scalar
 * multiplication of the u-coordinate, X25519(b_i, α_i), the approach of the Katzenpost Sphinx
 * specification (its EXP(X, Y)). Scalar multiplications commute, so a hop's
 * X25519(sk, X25519(b, … X25519(x, 9))) equals the sender's X25519(b, … X25519(x, pk)).
 *
 * Cost here: importing a raw private scalar as PKCS#8 DER costs ~400 µs in OpenSSL 3's decoder;
 * as a JWK ~30 µs. A JWK needs the public `x`, which node recomputes from `d` and otherwise
 * ignores, so we pass a placeholder (checked once at load: if a runtime ever validated it, we
 * fall back to DER, slower but right). OpenSSL refuses low-order points (an all-zero shared
 * secret): that surfaces here as SCRAMBLE_BAD_POINT.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto'
import { ScrambleError } from './errors.ts'

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const PLACEHOLDER_X = Buffer.alloc(32).toString('base64url')
const BASE_POINT = new Uint8Array(32)
BASE_POINT[0] = 9

function b64u (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

function importJwk (scalar: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(scalar), x: PLACEHOLDER_X }, format: 'jwk' })
}

function importDer (scalar: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, scalar]), format: 'der', type: 'pkcs8' })
}

/** RFC 7748 section 5.2, first vector: checks the fast import gives X25519's answer. */
function jwkImportWorks (): boolean {
  try {
    const k = Buffer.from('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'hex')
    const u = Buffer.from('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'hex')
    const out = diffieHellman({ privateKey: importJwk(k), publicKey: importPublic(u) })
    return out.toString('hex') === 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'
  } catch {
    return false
  }
}

const importScalar: (scalar: Uint8Array) => KeyObject = jwkImportWorks() ? importJwk : importDer

/** A 32-byte scalar as a private KeyObject (X25519 clamps it). The bytes are not kept. */
export function privateKeyFromScalar (scalar: Uint8Array): KeyObject {
  if (scalar.byteLength !== 32) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `an X25519 scalar has 32 bytes, got ${scalar.byteLength}`)
  return importScalar(scalar)
}

/** A 32-byte u-coordinate as a public KeyObject (no check: X25519 accepts every string). */
export function importPublic (u: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(u) }, format: 'jwk' })
}

const BASE_KEY = importPublic(BASE_POINT)

/** X25519(k, u). Throws SCRAMBLE_BAD_POINT where OpenSSL refuses the point (all-zero output). */
export function x25519 (privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  try {
    return new Uint8Array(diffieHellman({ privateKey, publicKey }))
  } catch (err) {
    throw new ScrambleError('SCRAMBLE_BAD_POINT', 'the group element is not a usable X25519 point', { cause: err })
  }
}

/** X25519(scalar, u) with raw bytes on both sides (the blinding step). */
export function x25519Raw (scalar: Uint8Array, u: Uint8Array | KeyObject): Uint8Array {
  return x25519(privateKeyFromScalar(scalar), u instanceof Uint8Array ? importPublic(u) : u)
}

/** The public key of a scalar: X25519(scalar, 9). */
export function publicFromScalar (scalar: Uint8Array | KeyObject): Uint8Array {
  return x25519(scalar instanceof Uint8Array ? privateKeyFromScalar(scalar) : scalar, BASE_KEY)
}
