/**
 * Write tokens: a PUT must carry the token this node handed the same requester for the same
 * key in a prior GET/FIND_NODE answer, so nobody can store at a node without first talking to
 * it from its own key (no blind, spoofed or amplified writes).
 *
 *   token = HMAC-SHA256(secret, requesterPublicKey || key)
 *
 * The secret rotates every `rotateMs` on the injected clock (lazily, on use: no timer); tokens
 * made with the current or the previous secret are accepted, so a token lives between one and
 * two rotation periods.
 */
import * as nodeCrypto from 'node:crypto'
import type { Clock } from '../core/clock.ts'
import type { Rng } from '../core/rng.ts'
import { secretEqual } from '../core/bytes.ts'

export interface WriteTokens {
  issue(requester: Uint8Array, key: Uint8Array): Uint8Array
  check(requester: Uint8Array, key: Uint8Array, token: Uint8Array): boolean
  /** Zeroes both secrets. */
  destroy(): void
}

/** Node's one-shot digest (20.12+), cheaper than a Hash or Hmac object for one small input. */
const hashOnce = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash

/**
 * HMAC-SHA256 with a 32-byte secret over two 32-byte inputs, as RFC 2104 defines it, with the
 * padded key blocks prepared once per secret: SHA-256((K ^ opad) || SHA-256((K ^ ipad) || m)),
 * two one-shot digests instead of an Hmac object per token (a node answers every GET with a
 * token). Other input lengths go through createHmac; both give the same bytes (tested).
 */
class Mac {
  private readonly ipad = new Uint8Array(64)
  private readonly opad = new Uint8Array(64)

  constructor (readonly secret: Uint8Array) {
    for (let i = 0; i < 64; i++) {
      const b = i < secret.byteLength ? secret[i] : 0
      this.ipad[i] = b ^ 0x36
      this.opad[i] = b ^ 0x5c
    }
  }

  of (a: Uint8Array, b: Uint8Array): Uint8Array {
    if (hashOnce === undefined || a.byteLength !== 32 || b.byteLength !== 32 || this.secret.byteLength > 64) {
      return new Uint8Array(nodeCrypto.createHmac('sha256', this.secret).update(a).update(b).digest())
    }
    INNER.set(this.ipad, 0); INNER.set(a, 64); INNER.set(b, 96)
    OUTER.set(this.opad, 0); OUTER.set(hashOnce('sha256', INNER, 'buffer'), 64)
    const mac = new Uint8Array(hashOnce('sha256', OUTER, 'buffer'))
    INNER.fill(0, 0, 64); OUTER.fill(0, 0, 64) // no key material left in the shared scratch
    return mac
  }

  wipe (): void { this.secret.fill(0); this.ipad.fill(0); this.opad.fill(0) }
}

/** Scratch for one MAC at a time (synchronous, nothing re-enters): no buffers per secret. */
const INNER = new Uint8Array(64 + 64)
const OUTER = new Uint8Array(64 + 32)

export function createWriteTokens (clock: Clock, rng: Rng, rotateMs = 5 * 60_000): WriteTokens {
  let current = new Mac(rng.bytes(32))
  let previous = new Mac(rng.bytes(32))
  let rotatedAt = clock.now()

  const rotate = (): void => {
    const now = clock.now()
    const periods = Math.floor((now - rotatedAt) / rotateMs)
    if (periods <= 0) return
    previous.wipe()
    if (periods === 1) {
      previous = current
    } else {
      current.wipe()
      previous = new Mac(rng.bytes(32)) // both expired: nothing old stays valid
    }
    current = new Mac(rng.bytes(32))
    rotatedAt += periods * rotateMs
  }

  return {
    issue (requester, key) { rotate(); return current.of(requester, key) },
    check (requester, key, token) {
      rotate()
      if (token.byteLength !== 32) return false
      return secretEqual(current.of(requester, key), token) || secretEqual(previous.of(requester, key), token)
    },
    destroy () { current.wipe(); previous.wipe() }
  }
}
