import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { formatIpv6, isOnetAddress, parseIpv6, virtualAddressFromPublicKey } from '../../src/oni/virtual-address.ts'
import { isOniError } from '../../src/oni/errors.ts'

describe('oni virtual addresses', () => {
  it('puts fd6f then the first 112 bits of SHA-256(publicKey)', () => {
    const pk = new Uint8Array(32).map((_, i) => i * 7)
    const a = virtualAddressFromPublicKey(pk)
    const h = createHash('sha256').update(pk).digest()
    assert.equal(a[0], 0xfd)
    assert.equal(a[1], 0x6f)
    assert.deepEqual([...a.subarray(2)], [...h.subarray(0, 14)])
    assert.ok(isOnetAddress(a))
  })

  it('gives different keys different addresses', () => {
    const a = virtualAddressFromPublicKey(new Uint8Array(32).fill(1))
    const b = virtualAddressFromPublicKey(new Uint8Array(32).fill(2))
    assert.notDeepEqual(a, b)
  })

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => virtualAddressFromPublicKey(new Uint8Array(31)), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'))
  })

  it('formats RFC 5952 text and parses it back', () => {
    assert.equal(formatIpv6(parseIpv6('fd6f::53')), 'fd6f::53')
    assert.equal(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1')
    assert.equal(formatIpv6(parseIpv6('::1')), '::1')
    assert.equal(formatIpv6(parseIpv6('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8')
    assert.equal(formatIpv6(parseIpv6('1:0:3:4:5:6:7:8')), '1:0:3:4:5:6:7:8')
    const a = virtualAddressFromPublicKey(new Uint8Array(32).fill(9))
    assert.deepEqual(parseIpv6(formatIpv6(a)), a)
  })

  it('rejects malformed IPv6 text with a typed error', () => {
    for (const bad of ['', 'fd6f', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', 'x'.repeat(100)]) {
      assert.throws(() => parseIpv6(bad), (e) => isOniError(e, 'ONI_BAD_ARGUMENT'), bad)
    }
  })
})
