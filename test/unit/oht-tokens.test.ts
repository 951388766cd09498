import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { FakeClock, HOUR, MINUTE, SeededRng } from '../../src/core/index.ts'
import { createWriteTokens, immutableKey } from '../../src/oht/index.ts'
import { errorCode, singleNode } from './oht-helpers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('write tokens', () => {
  it('a PUT without a token from a prior GET is rejected (OHT_BAD_TOKEN)', async () => {
    const { node, peer } = await singleNode()
    const rec = { kind: 'immutable' as const, ttlMs: HOUR, value: text('a') }
    assert.equal(errorCode(await peer.put(node.contact, rec, { token: new Uint8Array(32) })), 'OHT_BAD_TOKEN')
    assert.equal(node.store.size, 0)
    assert.equal(errorCode(await peer.put(node.contact, rec)), 'stored')
    await node.stop()
  })

  it('a token is bound to the requester and to the key', async () => {
    const { node, peer, other } = await singleNode()
    const rec = { kind: 'immutable' as const, ttlMs: HOUR, value: text('bound') }
    const key = immutableKey(rec.value)
    const othersToken = await other.token(node.contact, key)
    assert.equal(errorCode(await peer.put(node.contact, rec, { token: othersToken })), 'OHT_BAD_TOKEN', 'token issued to another peer')
    const wrongKeyToken = await peer.token(node.contact, immutableKey(text('something else')))
    assert.equal(errorCode(await peer.put(node.contact, rec, { token: wrongKeyToken })), 'OHT_BAD_TOKEN', 'token issued for another key')
    assert.equal(errorCode(await peer.put(node.contact, rec, { token: await peer.token(node.contact, key) })), 'stored')
    await node.stop()
  })

  it('a token is HMAC-SHA256(secret, requester || key), whatever the input lengths', () => {
    const secret = new SeededRng('token-secret').bytes(32)
    const tokens = createWriteTokens(new FakeClock(), new SeededRng('token-secret'))
    const inputs = new SeededRng('token-inputs')
    for (const [a, b] of [[32, 32], [32, 32], [20, 32], [32, 0], [100, 7]]) {
      const requester = inputs.bytes(a)
      const key = inputs.bytes(b)
      const expected = createHmac('sha256', secret).update(requester).update(key).digest()
      assert.deepEqual([...tokens.issue(requester, key)], [...expected], `${a}+${b} bytes`)
      assert.equal(tokens.check(requester, key, expected), true)
    }
  })

  it('a token survives one secret rotation and expires after two', async () => {
    const { node, peer, clock } = await singleNode({ tokenRotateMs: 5 * MINUTE })
    const rec = (s: string) => ({ kind: 'immutable' as const, ttlMs: HOUR, value: text(s) })
    const t1 = await peer.token(node.contact, immutableKey(text('one')))
    const t2 = await peer.token(node.contact, immutableKey(text('two')))
    await clock.advance(5 * MINUTE)
    assert.equal(errorCode(await peer.put(node.contact, rec('one'), { token: t1 })), 'stored', 'previous secret still accepted')
    await clock.advance(5 * MINUTE)
    assert.equal(errorCode(await peer.put(node.contact, rec('two'), { token: t2 })), 'OHT_BAD_TOKEN', 'two rotations later')
    await node.stop()
  })

  it('createWriteTokens checks MACs of the right length only and destroy() zeroes secrets', () => {
    const clock = new FakeClock()
    const tokens = createWriteTokens(clock, new SeededRng('t'), 1000)
    const pk = new Uint8Array(32).fill(1); const key = new Uint8Array(32).fill(2)
    const t = tokens.issue(pk, key)
    assert.equal(t.byteLength, 32)
    assert.equal(tokens.check(pk, key, t), true)
    assert.equal(tokens.check(pk, key, t.subarray(0, 31)), false)
    tokens.destroy()
    assert.equal(tokens.check(pk, key, t), false)
  })
})
