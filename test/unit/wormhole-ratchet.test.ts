/**
 * The double ratchet on its own: round trips, out-of-order and skipped messages within and beyond
 * MAX_SKIP, replays, tampering with every byte, serialisation mid-conversation, and healing after
 * a state compromise. There are no published Double Ratchet vectors; these are the properties the
 * spec requires.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng, isCodedError, type Rng } from '../../src/core/index.ts'
import { Ratchet, X25519KeyPair, RATCHET_OVERHEAD_BYTES } from '../../src/wormhole/index.ts'
import { Reader } from '../../src/wormhole/wire.ts'

const code = (c: string) => (e: unknown) => isCodedError(e, c)
const AD = new TextEncoder().encode('associated data of the session')
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

function pair (seed: string, limits = {}): { a: Ratchet, b: Ratchet, rng: SeededRng } {
  const rng = new SeededRng(seed)
  const sk = rng.bytes(32)
  const bobSpk = X25519KeyPair.generate(rng)
  const a = Ratchet.initAlice(sk, bobSpk.publicKey, rng.fork('a'), limits)
  const b = Ratchet.initBob(sk, bobSpk, rng.fork('b'), limits)
  return { a, b, rng }
}

function restore (r: Ratchet, rng: Rng): Ratchet {
  return Ratchet.decodeFrom(new Reader(r.encode(), 'ratchet state'), rng)
}

describe('double ratchet', () => {
  it('carries a conversation both ways in random turns', () => {
    const { a, b, rng } = pair('turns')
    assert.equal(b.canSend, false)
    for (let i = 0; i < 200; i++) {
      const bobSends = i > 0 && rng.next() >= 0.5 && b.canSend
      const from: Ratchet = bobSends ? b : a
      const to: Ratchet = bobSends ? a : b
      const text = `message ${i}`
      const m: Uint8Array = from.encrypt(enc(text), AD)
      assert.equal(dec(to.decrypt(m, AD)), text)
    }
  })

  it('never produces the same ciphertext twice for the same plaintext', () => {
    const { a } = pair('distinct')
    const seen = new Set<string>()
    for (let i = 0; i < 50; i++) seen.add(Buffer.from(a.encrypt(enc('same'), AD).subarray(41)).toString('hex'))
    assert.equal(seen.size, 50)
  })

  it('decrypts messages in any order within MAX_SKIP, across ratchet steps', () => {
    const { a, b } = pair('order')
    const first = Array.from({ length: 30 }, (_, i) => a.encrypt(enc(`a${i}`), AD))
    assert.equal(dec(b.decrypt(first[29], AD)), 'a29')
    const reply = b.encrypt(enc('b0'), AD)
    assert.equal(dec(a.decrypt(reply, AD)), 'b0')
    const second = Array.from({ length: 10 }, (_, i) => a.encrypt(enc(`c${i}`), AD))
    // New chain first, then the old chain's stragglers, in reverse.
    for (let i = 9; i >= 0; i--) assert.equal(dec(b.decrypt(second[i], AD)), `c${i}`)
    for (let i = 28; i >= 0; i--) assert.equal(dec(b.decrypt(first[i], AD)), `a${i}`)
    assert.equal(b.skippedKeys, 0)
  })

  it('refuses a message more than MAX_SKIP ahead, and stays usable', () => {
    const { a, b } = pair('maxskip', { maxSkip: 10 })
    const ms = Array.from({ length: 13 }, (_, i) => a.encrypt(enc(`m${i}`), AD))
    assert.throws(() => b.decrypt(ms[12], AD), code('WORMHOLE_TOO_MANY_SKIPPED'))
    assert.equal(dec(b.decrypt(ms[10], AD)), 'm10') // exactly MAX_SKIP ahead is fine
    assert.equal(dec(b.decrypt(ms[12], AD)), 'm12') // now within reach
    assert.equal(dec(b.decrypt(ms[3], AD)), 'm3')
  })

  it('also bounds the skip through a ratchet step (PN of the previous chain)', () => {
    const { a, b } = pair('pn', { maxSkip: 5 })
    assert.equal(dec(b.decrypt(a.encrypt(enc('x'), AD), AD)), 'x')
    a.decrypt(b.encrypt(enc('y'), AD), AD)
    for (let i = 0; i < 3; i++) a.encrypt(enc('lost'), AD) // previous chain length 3: fine
    const bb = b.encrypt(enc('z'), AD)
    a.decrypt(bb, AD)
    const next = a.encrypt(enc('after'), AD)
    assert.equal(dec(b.decrypt(next, AD)), 'after')
    assert.equal(b.skippedKeys, 3)
  })

  it('keeps at most maxSkippedKeys skipped keys, dropping the oldest', () => {
    const { a, b } = pair('evict', { maxSkip: 100, maxSkippedKeys: 20 })
    const ms = Array.from({ length: 60 }, (_, i) => a.encrypt(enc(`m${i}`), AD))
    b.decrypt(ms[50], AD)
    assert.equal(b.skippedKeys, 20)
    assert.throws(() => b.decrypt(ms[0], AD), code('WORMHOLE_REPLAY')) // its key was dropped
    assert.equal(dec(b.decrypt(ms[49], AD)), 'm49')
  })

  it('refuses replays: in the current chain, of a skipped key, and of an older chain', () => {
    const { a, b } = pair('replay')
    const m0 = a.encrypt(enc('m0'), AD)
    const m1 = a.encrypt(enc('m1'), AD)
    b.decrypt(m1, AD)
    b.decrypt(m0, AD) // skipped key used
    assert.throws(() => b.decrypt(m0, AD), code('WORMHOLE_REPLAY'))
    assert.throws(() => b.decrypt(m1, AD), code('WORMHOLE_REPLAY'))
    a.decrypt(b.encrypt(enc('r'), AD), AD)
    b.decrypt(a.encrypt(enc('new chain'), AD), AD)
    assert.throws(() => b.decrypt(m1, AD), code('WORMHOLE_REPLAY'))
  })

  it('refuses every flipped byte of header and body, and the state is unchanged after each', () => {
    const { a, b } = pair('tamper')
    b.decrypt(a.encrypt(enc('warm up'), AD), AD)
    a.decrypt(b.encrypt(enc('reply'), AD), AD)
    const m = a.encrypt(enc('the one that matters, long enough to have a body'), AD)
    assert.ok(m.byteLength > RATCHET_OVERHEAD_BYTES)
    const codes = new Set<string>()
    for (let i = 0; i < m.byteLength; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Uint8Array.from(m); bad[i] ^= bit
        assert.throws(() => b.decrypt(bad, AD), (e: unknown) => {
          const c = (e as { code?: string }).code ?? ''
          codes.add(c)
          return ['WORMHOLE_DECRYPT_FAILED', 'WORMHOLE_BAD_VERSION', 'WORMHOLE_TOO_MANY_SKIPPED', 'WORMHOLE_BAD_KEY'].includes(c)
        }, `byte ${i} bit ${bit}`)
      }
    }
    assert.ok(codes.has('WORMHOLE_DECRYPT_FAILED'))
    assert.throws(() => b.decrypt(m, enc('other associated data')), code('WORMHOLE_DECRYPT_FAILED'))
    assert.throws(() => b.decrypt(m.subarray(0, 50), AD), code('WORMHOLE_TRUNCATED'))
    assert.equal(dec(b.decrypt(m, AD)), 'the one that matters, long enough to have a body')
    assert.equal(b.skippedKeys, 0)
  })

  it('survives serialisation at any point of a conversation', () => {
    let { a, b, rng } = pair('serial')
    const pending: Uint8Array[] = []
    for (let i = 0; i < 40; i++) {
      if (i % 7 === 3) { a = restore(a, rng.fork(`a${i}`)); b = restore(b, rng.fork(`b${i}`)) }
      const m = a.encrypt(enc(`a${i}`), AD)
      if (i % 5 === 0) pending.push(m); else assert.equal(dec(b.decrypt(m, AD)), `a${i}`)
      if (i % 4 === 1) assert.equal(dec(a.decrypt(b.encrypt(enc(`b${i}`), AD), AD)), `b${i}`)
    }
    b = restore(b, rng.fork('last'))
    for (const m of pending) assert.match(dec(b.decrypt(m, AD)), /^a\d+$/)
  })

  it('heals after a compromise: a stolen state cannot read past the next round trip', () => {
    const { a, b, rng } = pair('heal')
    b.decrypt(a.encrypt(enc('1'), AD), AD)
    const stolen = restore(b, rng.fork('thief')) // the attacker copies Bob's whole state
    const soon = a.encrypt(enc('still readable by the thief'), AD)
    assert.equal(dec(stolen.decrypt(soon, AD)), 'still readable by the thief')
    b.decrypt(soon, AD)
    // Bob's reply still uses the ratchet key the thief copied; Alice's answer brings a new one of
    // hers, and Bob's next reply a new one of his, made with randomness the thief never saw.
    a.decrypt(b.encrypt(enc('reply on the copied key'), AD), AD)
    b.decrypt(a.encrypt(enc('Alice, new key'), AD), AD)
    const bobFresh = b.encrypt(enc('Bob, fresh key'), AD)
    assert.throws(() => stolen.decrypt(bobFresh, AD), code('WORMHOLE_DECRYPT_FAILED'))
    a.decrypt(bobFresh, AD)
    const healed = a.encrypt(enc('secret again'), AD)
    assert.throws(() => stolen.decrypt(healed, AD), code('WORMHOLE_DECRYPT_FAILED'))
    assert.equal(dec(b.decrypt(healed, AD)), 'secret again')
  })

  it('refuses a corrupted serialised state with typed errors', () => {
    const { a } = pair('state')
    const bytes = a.encode()
    assert.throws(() => Ratchet.decodeFrom(new Reader(bytes.subarray(0, 40), 's'), new SeededRng('x')), code('WORMHOLE_TRUNCATED'))
    const v = Uint8Array.from(bytes); v[0] = 7
    assert.throws(() => Ratchet.decodeFrom(new Reader(v, 's'), new SeededRng('x')), code('WORMHOLE_BAD_VERSION'))
    const f = Uint8Array.from(bytes); f[33] = 0xf0
    assert.throws(() => Ratchet.decodeFrom(new Reader(f, 's'), new SeededRng('x')), code('WORMHOLE_MALFORMED'))
  })
})
