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
import { createHmac } from 'node:crypto'
import type { Clock } from '../core/clock.ts'
import type { Rng } from '../core/rng.ts'
import { secretEqual } from '../core/bytes.ts'

export interface WriteTokens {
  issue(requester: Uint8Array, key: Uint8Array): Uint8Array
  check(requester: Uint8Array, key: Uint8Array, token: Uint8Array): boolean
  /** Zeroes both secrets. */
  destroy(): void
}

export function createWriteTokens (clock: Clock, rng: Rng, rotateMs = 5 * 60_000): WriteTokens {
  let current = rng.bytes(32)
  let previous = rng.bytes(32)
  let rotatedAt = clock.now()

  const rotate = (): void => {
    const now = clock.now()
    const periods = Math.floor((now - rotatedAt) / rotateMs)
    if (periods <= 0) return
    previous.fill(0)
    if (periods === 1) {
      previous = current
    } else {
      current.fill(0)
      previous = rng.bytes(32) // both expired: nothing old stays valid
    }
    current = rng.bytes(32)
    rotatedAt += periods * rotateMs
  }
  const mac = (secret: Uint8Array, requester: Uint8Array, key: Uint8Array): Uint8Array =>
    new Uint8Array(createHmac('sha256', secret).update(requester).update(key).digest())

  return {
    issue (requester, key) { rotate(); return mac(current, requester, key) },
    check (requester, key, token) {
      rotate()
      if (token.byteLength !== 32) return false
      return secretEqual(mac(current, requester, key), token) || secretEqual(mac(previous, requester, key), token)
    },
    destroy () { current.fill(0); previous.fill(0) }
  }
}
