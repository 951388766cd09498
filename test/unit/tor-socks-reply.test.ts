import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeSocksReply } from '../../src/tor/socks.ts'
import { TorError } from '../../src/tor/errors.ts'

describe('tor SOCKS client: CONNECT reply decoder', () => {
  it('asks for exactly the bytes still missing, then gives the code and the length', () => {
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0)), { need: 2 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0, 0, 1)), { need: 6 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0, 0, 1, 0, 0, 0, 0, 0, 0)), { rep: 0, bytes: 10 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0xf0, 0, 4)), { need: 18 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0, 0, 3)), { need: 1 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0, 0, 3, 3)), { need: 5 })
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0, 0, 3, 3, 0x61, 0x62, 0x63, 0, 80)), { rep: 0, bytes: 10 })
  })

  it('a failure reply with an unknown address type ends after 4 bytes; on success it is TOR_SOCKS, as is a wrong version', () => {
    assert.deepEqual(decodeSocksReply(Uint8Array.of(5, 0xf2, 0, 0)), { rep: 0xf2, bytes: 4 })
    assert.throws(() => decodeSocksReply(Uint8Array.of(5, 0, 0, 9)), (e: unknown) => e instanceof TorError && e.code === 'TOR_SOCKS')
    assert.throws(() => decodeSocksReply(Uint8Array.of(4, 0x5a, 0, 0)), (e: unknown) => e instanceof TorError && e.code === 'TOR_SOCKS')
  })
})
