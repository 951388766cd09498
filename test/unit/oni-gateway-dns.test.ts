import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { buildAnswer, checkResponse, CLASSIC_UDP_BYTES, encodeQuery, fitAnswer, formatError, MAX_UDP_ANSWER_BYTES, parseQuery, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED, TYPE_A, TYPE_AAAA, TYPE_MX, TYPE_PTR, withId, addressRecord } from '../../src/oni/gateway/dns-wire.ts'
import { decide, isPrivateReverse, type Zones } from '../../src/oni/gateway/zones.ts'
import { EMPTY_BLOCKLIST, parseBlocklist } from '../../src/oni/gateway/blocklist.ts'
import { isOniError } from '../../src/oni/errors.ts'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const ONION = 'pzg6v235igvnd32bldoaoi2z32ua3b2quq7j7jiibsuoli5ueesvfwyd.onion'
// Recorded on this machine: `dig <onion> A` (EDNS: UDP size 1232 and a cookie), and tor 0.4.9's
// DNSPort answer to it with AutomapHostsOnResolve (a virtual address from 10.192.0.0/10).
const DIG_QUERY = hex('6dab0120000100000000000138707a6736763233356967766e643332626c646f616f69327a33327561336232717571376a376a69696273756f6c6935756565737666777964056f6e696f6e000001000100002904d000000000000c000a000822bd378363e6c319')
const TOR_ANSWER = hex('6dab8180000100010000000038707a6736763233356967766e643332626c646f616f69327a33327561336232717571376a376a69696273756f6c6935756565737666777964056f6e696f6e0000010001c00c000100010000003c00040aec7929')

function query (name: string, qtype: number, id = 0x1234, extra: number[] = []): Uint8Array {
  const labels = name === '' ? [] : name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
  return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, extra.length > 0 ? 1 : 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1, ...extra])
}

describe('gateway DNS wire format', () => {
  it('parses a real dig query, EDNS size included', () => {
    const q = parseQuery(DIG_QUERY)
    assert.equal(q.id, 0x6dab)
    assert.equal(q.name, ONION)
    assert.equal(q.qtype, TYPE_A)
    assert.equal(q.recursionDesired, true)
    assert.equal(q.udpSize, 1232)
    assert.equal(q.question.byteLength, 1 + 56 + 1 + 5 + 1 + 4)
  })

  it('sends upstream only the question, under a new id, and checks tor\'s recorded answer against it', () => {
    const q = parseQuery(DIG_QUERY)
    const up = encodeQuery(0x0102, q.question)
    assert.equal(up.byteLength, 12 + q.question.byteLength, 'no EDNS option of the VM travels on')
    assert.deepEqual([...up.subarray(0, 12)], [1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    const info = checkResponse(TOR_ANSWER, q.question)
    assert.deepEqual(info, { id: 0x6dab, rcode: RCODE_NOERROR, truncated: false, answers: 1 })
    const relayed = withId(TOR_ANSWER, 0xbeef)
    assert.equal((relayed[0] << 8) | relayed[1], 0xbeef)
    assert.deepEqual([...relayed.subarray(relayed.length - 4)], [10, 236, 121, 41])
    assert.equal((TOR_ANSWER[0] << 8) | TOR_ANSWER[1], 0x6dab, 'withId copies')
  })

  it('rejects an answer to another question, a query posing as an answer, and broken records', () => {
    const q = parseQuery(DIG_QUERY)
    const other = parseQuery(query('example.com', TYPE_A))
    assert.throws(() => checkResponse(TOR_ANSWER, other.question), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    assert.throws(() => checkResponse(DIG_QUERY, q.question), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    assert.throws(() => checkResponse(TOR_ANSWER.slice(0, TOR_ANSWER.length - 2), q.question), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    const forward = TOR_ANSWER.slice()
    forward[forward.length - 16] = 0xc0; forward[forward.length - 15] = 0xff // pointer forwards
    assert.throws(() => checkResponse(forward, q.question), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    const many = TOR_ANSWER.slice(); many[6] = 0xff
    assert.throws(() => checkResponse(many, q.question), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    // Names compare case-insensitively (tor may echo 0x20-randomised case).
    const upper = TOR_ANSWER.slice(); upper[13] = 'P'.charCodeAt(0)
    assert.equal(checkResponse(upper, q.question).answers, 1)
  })

  it('refuses malformed queries with ONI_DNS_MALFORMED and answers what has a header with FORMERR', () => {
    const bad: Uint8Array[] = [
      new Uint8Array(5),
      query('a.b', TYPE_A).map((b, i) => i === 5 ? 2 : b), // two questions
      query('a.b', TYPE_A).map((b, i) => i === 2 ? 0x81 : b), // a response
      query('a.b', TYPE_A).map((b, i) => i === 2 ? 0x11 : b), // opcode 2
      query('a.b', TYPE_A).map((b, i) => i === 12 ? 0xc0 : b), // compressed question
      query('a.b', TYPE_A).slice(0, 17), // type/class missing
      Uint8Array.from([...query('a.b', TYPE_A).slice(0, 11), 1, ...query('a.b', TYPE_A).slice(12), 0, 0, 41]), // truncated OPT
      new Uint8Array(4097)
    ]
    const long = Array.from({ length: 5 }, () => 'x'.repeat(63)).join('.')
    bad.push(query(long, TYPE_A))
    for (const m of bad) assert.throws(() => parseQuery(m), (e) => isOniError(e, 'ONI_DNS_MALFORMED'))
    const fe = formatError(bad[1])
    assert.equal(fe?.[3] !== undefined ? fe[3] & 0x0f : -1, RCODE_FORMERR)
    assert.equal(formatError(new Uint8Array(5)), undefined)
    assert.equal(formatError(bad[2]), undefined, 'never answer a response')
  })

  it('never throws anything but its own error on random input', () => {
    for (let i = 0; i < 3000; i++) {
      const m = randomBytes(1 + (i % 300))
      if (i % 3 === 0) { m[2] = 0x01; m[4] = 0; m[5] = 1 }
      try { parseQuery(m) } catch (e) { assert.ok(isOniError(e, 'ONI_DNS_MALFORMED'), String(e)) }
      try { checkResponse(m, DIG_QUERY.subarray(12, 12 + 67)) } catch (e) { assert.ok(isOniError(e, 'ONI_DNS_MALFORMED'), String(e)) }
    }
  })

  it('builds authoritative answers with A and AAAA records pointing at the question', () => {
    const q = parseQuery(query('files.vm', TYPE_A, 0x4242))
    const a = buildAnswer(q, RCODE_NOERROR, [addressRecord(Uint8Array.of(10, 152, 152, 21))], 30)
    assert.equal((a[0] << 8) | a[1], 0x4242)
    assert.equal(a[2], 0x85) // QR AA RD
    assert.equal(a[3], 0x80) // RA, NOERROR
    assert.deepEqual([...a.subarray(4, 12)], [0, 1, 0, 1, 0, 0, 0, 0])
    assert.deepEqual([...a.subarray(a.length - 16)], [0xc0, 12, 0, TYPE_A, 0, 1, 0, 0, 0, 30, 0, 4, 10, 152, 152, 21])
    assert.equal(checkResponse(a, q.question).answers, 1, 'our own answers pass our own checks')
  })

  it('truncates an answer that does not fit the client\'s UDP size and sets TC', () => {
    const q = parseQuery(query('big.vm', TYPE_A))
    const records = Array.from({ length: 40 }, (_, i) => addressRecord(Uint8Array.of(10, 0, 0, i)))
    const a = buildAnswer(q, RCODE_NOERROR, records)
    assert.ok(a.byteLength > CLASSIC_UDP_BYTES)
    const t = fitAnswer(a, q.question.byteLength, q.udpSize)
    assert.equal(t.byteLength, 12 + q.question.byteLength)
    assert.equal(t[2] & 0x02, 0x02)
    assert.deepEqual([...t.subarray(6, 12)], [0, 0, 0, 0, 0, 0])
    assert.equal(fitAnswer(a, q.question.byteLength, MAX_UDP_ANSWER_BYTES), a)
  })
})

const zones = (over: Partial<Zones> = {}): Zones => ({
  blocklist: parseBlocklist('0.0.0.0 ads.example.com\n'),
  hosts: new Map([['files.vm', [Uint8Array.of(10, 152, 152, 21)]]]),
  ipv6: false,
  ...over
})

describe('gateway resolver zones', () => {
  it('answers VM names, localhost and blocklisted names here; forwards A and PTR of the rest', () => {
    const z = zones()
    assert.deepEqual(decide('files.vm', TYPE_A, 1, z), { kind: 'local', rcode: RCODE_NOERROR, addresses: [Uint8Array.of(10, 152, 152, 21)], reason: 'hosts' })
    assert.deepEqual(decide('files.vm', TYPE_AAAA, 1, z), { kind: 'local', rcode: RCODE_NOERROR, addresses: [], reason: 'hosts' })
    assert.equal(decide('localhost', TYPE_A, 1, z).kind, 'local')
    assert.deepEqual(decide('x.ads.example.com', TYPE_A, 1, z), { kind: 'blocked', addresses: [new Uint8Array(4)] })
    assert.deepEqual(decide('ads.example.com', TYPE_AAAA, 1, z), { kind: 'blocked', addresses: [new Uint8Array(16)] })
    assert.equal(decide('example.com', TYPE_A, 1, z).kind, 'forward')
    assert.equal(decide('4.3.2.1.in-addr.arpa', TYPE_PTR, 1, z).kind, 'forward')
    assert.equal(decide('peer.onet', TYPE_AAAA, 1, z).kind, 'onet')
  })

  it('never sends local-only names, private reverse names, bad onions or unsupported types to tor', () => {
    const z = zones()
    for (const name of ['printer.local', 'nas.home.arpa', 'db.internal', 'x.invalid', '11.152.152.10.in-addr.arpa', '1.0.168.192.in-addr.arpa', '5.0.16.172.in-addr.arpa', '1.0.0.127.in-addr.arpa', 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.0.0.d.f.ip6.arpa', 'tooshort.onion', 'x.onion']) {
      const d = decide(name, name.endsWith('arpa') ? TYPE_PTR : TYPE_A, 1, z)
      assert.deepEqual(d, { kind: 'local', rcode: RCODE_NXDOMAIN, addresses: [], reason: 'reserved' }, name)
    }
    assert.equal(decide('example.com', TYPE_MX, 1, z).kind, 'local')
    assert.equal((decide('example.com', TYPE_MX, 1, z) as { rcode: number }).rcode, RCODE_NOTIMP)
    assert.equal((decide('example.com', TYPE_A, 3, z) as { rcode: number }).rcode, RCODE_REFUSED, 'class CH')
    assert.equal((decide('', TYPE_A, 1, z) as { rcode: number }).rcode, RCODE_REFUSED, 'the root')
    assert.equal(isPrivateReverse('8.8.8.8.in-addr.arpa'), false)
    assert.equal(isPrivateReverse('1.32.172.in-addr.arpa'), false)
  })

  it('forwards .onion A queries; AAAA only when IPv6 is torified', () => {
    assert.equal(decide(ONION, TYPE_A, 1, zones()).kind, 'forward')
    assert.equal(decide(`www.${ONION}`, TYPE_A, 1, zones()).kind, 'forward')
    assert.deepEqual(decide(ONION, TYPE_AAAA, 1, zones()), { kind: 'local', rcode: RCODE_NOERROR, addresses: [], reason: 'nodata' })
    assert.equal(decide(ONION, TYPE_AAAA, 1, zones({ ipv6: true })).kind, 'forward')
    assert.equal(decide('example.com', TYPE_AAAA, 1, zones()).kind, 'local')
    assert.equal(decide('example.com', TYPE_AAAA, 1, zones({ ipv6: true })).kind, 'forward')
  })

  it('lets a configured VM name win over the blocklist', () => {
    const z = zones({ blocklist: parseBlocklist('files.vm\n') })
    assert.equal(decide('files.vm', TYPE_A, 1, z).kind, 'local')
    assert.equal(decide('files.vm', TYPE_A, 1, zones({ hosts: new Map() , blocklist: parseBlocklist('files.vm\n') })).kind, 'blocked')
  })
})

describe('gateway blocklist (hosts format)', () => {
  it('reads hosts lines, plain names and comments, and skips the machine\'s own entries', () => {
    const b = parseBlocklist([
      '# StevenBlack-style header',
      '127.0.0.1 localhost',
      '::1 localhost ip6-localhost ip6-loopback',
      '0.0.0.0 0.0.0.0',
      '255.255.255.255 broadcasthost',
      '0.0.0.0 Ads.Example.com. tracker.example.net   # two names',
      'malware.example.org',
      '0.0.0.0 bad_name!',
      'two words here',
      ''
    ].join('\n'))
    assert.equal(b.size, 3)
    assert.equal(b.skipped, 2)
    assert.equal(b.blocks('ads.example.com'), true)
    assert.equal(b.blocks('deep.sub.ads.example.com'), true)
    assert.equal(b.blocks('example.com'), false)
    assert.equal(b.blocks('notads.example.com'), false)
    assert.equal(b.blocks('malware.example.org'), true)
    assert.equal(b.blocks('localhost'), false)
    assert.equal(EMPTY_BLOCKLIST.blocks('anything'), false)
  })

  it('refuses a list longer than its limit', () => {
    const text = Array.from({ length: 11 }, (_, i) => `0.0.0.0 n${i}.example`).join('\n')
    assert.throws(() => parseBlocklist(text, 10), (e) => isOniError(e, 'ONI_GATEWAY_BLOCKLIST'))
    assert.equal(parseBlocklist(text, 11).size, 11)
  })
})
