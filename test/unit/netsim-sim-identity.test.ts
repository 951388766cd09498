import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { identityFromSeed, verifySignature } from '../../src/crypto/index.ts'
import { simIdentityFromSeed } from '../../src/netsim/world/index.ts'

describe('netsim fast simulated identities', () => {
  it('derive the same public key and signatures as src/crypto for the same seed', () => {
    const rng = new SeededRng('ids')
    for (let i = 0; i < 20; i++) {
      const seed = rng.bytes(32)
      const fast = simIdentityFromSeed(seed)
      const ref = identityFromSeed(seed)
      assert.deepEqual(fast.publicKey, ref.publicKey)
      const msg = rng.bytes(40)
      const sig = fast.sign(msg)
      assert.deepEqual(sig, ref.sign(msg))
      assert.equal(verifySignature(ref.publicKey, msg, sig), true)
      fast.destroy()
      assert.throws(() => fast.sign(msg))
    }
  })
})
