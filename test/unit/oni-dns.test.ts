import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { answerDnsQuery, parseDnsQuery, QTYPE_A, QTYPE_AAAA, RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED } from '../../src/oni/dns.ts'
import { parseIpv6 } from '../../src/oni/virtual-address.ts'
import { isOniError } from '../../src/oni/errors.ts'

function query (name: string, qtype: number, id = 0x1234): Uint8Array {
  const labels = name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
  return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1])
}

const ADDR = parseIpv6('fd6f:1234::9')
const resolver = async (name: string): Promise<Uint8Array | undefined> => name === 'peer.onet' ? ADDR : undefined

describe('oni .onet DNS responder', () => {
  it('answers AAAA for a known .onet name with the address', async () => {
    const r = await answerDnsQuery(query('Peer.ONET', QTYPE_AAAA), resolver)
    assert.ok(r)
    assert.equal((r[0] << 8) | r[1], 0x1234)
    assert.equal(r[2] & 0x80, 0x80)
    assert.equal(r[3] & 0x0f, RCODE_NOERROR)
    assert.equal((r[6] << 8) | r[7], 1)
    assert.deepEqual([...r.subarray(r.length - 16)], [...ADDR])
  })

  it('answers A with no data, unknown names with NXDOMAIN, other zones with REFUSED', async () => {
    const a = await answerDnsQuery(query('peer.onet', QTYPE_A), resolver)
    assert.equal(a?.[3], RCODE_NOERROR)
    assert.equal(a?.[7], 0)
    assert.equal((await answerDnsQuery(query('nobody.onet', QTYPE_AAAA), resolver))?.[3], RCODE_NXDOMAIN)
    assert.equal((await answerDnsQuery(query('example.com', QTYPE_AAAA), resolver))?.[3], RCODE_REFUSED)
  })

  it('answers malformed queries with FORMERR and ignores responses', async () => {
    const q = query('peer.onet', QTYPE_AAAA)
    q[12] = 0xc0
    assert.equal(((await answerDnsQuery(q, resolver))?.[3] ?? 0) & 0x0f, RCODE_FORMERR)
    const resp = query('peer.onet', QTYPE_AAAA); resp[2] |= 0x80
    assert.equal(await answerDnsQuery(resp, resolver), undefined)
    assert.throws(() => parseDnsQuery(new Uint8Array(600)), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    assert.throws(() => parseDnsQuery(query('peer.onet', QTYPE_AAAA).subarray(0, 20)), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
  })
})
