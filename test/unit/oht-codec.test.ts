import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCodedError, SeededRng } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import { ContactArena, samePublicKey, wirePublicKey, wireRoutable } from '../../src/oht/codec.ts'
import { createRoutingTable, decodeRequest, decodeResponse, encodeRequest, encodeResponse, OhtError, signMutable, type OhtRequest, type OhtResponse } from '../../src/oht/index.ts'

const rng = new SeededRng('codec')
const signer = identityFromSeed(rng.bytes(32))
const mutable = signMutable(signer, { salt: new Uint8Array([1, 2, 3]), seq: 2 ** 40 + 7, ttlMs: 3_600_000, value: rng.bytes(300) })
const immutable = { kind: 'immutable' as const, ttlMs: 60_000, value: rng.bytes(1000) }
const wc = (n: number) => Array.from({ length: n }, (_, i) => ({ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs: [`/onion3/${'a'.repeat(56)}:${i}`, 'mem:é'] } }))

const requests: OhtRequest[] = [
  { type: 'ping', addrs: ['mem:1'] },
  { type: 'ping', addrs: [] },
  { type: 'find-node', addrs: ['mem:1', 'mem:2'], target: rng.bytes(32) },
  { type: 'get', addrs: [], key: rng.bytes(32), metadataOnly: true },
  { type: 'get', addrs: ['x'], key: rng.bytes(32), metadataOnly: false },
  { type: 'put', addrs: ['x'], token: rng.bytes(32), key: rng.bytes(32), remainingMs: 5000, record: immutable },
  { type: 'put', addrs: ['x'], token: rng.bytes(32), key: rng.bytes(32), remainingMs: 2 ** 53 - 1, cas: 41, record: mutable }
]
const responses: OhtResponse[] = [
  { type: 'pong' },
  { type: 'nodes', token: rng.bytes(32), contacts: wc(20) },
  { type: 'nodes', contacts: [] },
  { type: 'value', token: rng.bytes(32), contacts: wc(3) },
  { type: 'value', token: rng.bytes(32), contacts: wc(2), seq: 9 },
  { type: 'value', token: rng.bytes(32), contacts: wc(1), seq: 9, record: mutable },
  { type: 'value', token: rng.bytes(32), contacts: [], seq: 0, record: immutable },
  { type: 'stored', grantedMs: 123_456 },
  { type: 'error', code: 'OHT_SEQ_STALE', message: 'seq 3 is not above 4' }
]

/** Node's deepEqual on objects with Uint8Array views: compare plainly. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (_k, v) => v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))

function assertTypedDecodeError (fn: () => unknown): void {
  try { fn() } catch (err) {
    assert.ok(err instanceof OhtError, `not an OhtError: ${String(err)}`)
    assert.ok(isCodedError(err, 'OHT_BAD_FRAME') || isCodedError(err, 'OHT_VALUE_TOO_LARGE'), `unexpected code ${(err as OhtError).code}`)
    return
  }
  assert.fail('decoder accepted a malformed frame')
}

describe('OHT wire codec', () => {
  it('round-trips every request type', () => {
    for (const r of requests) assert.deepEqual(plain(decodeRequest(encodeRequest(r))), plain(r))
  })

  it('round-trips every response type', () => {
    for (const r of responses) assert.deepEqual(plain(decodeResponse(encodeResponse(r))), plain(r))
  })

  it('rejects every truncation of every frame with OHT_BAD_FRAME', () => {
    for (const r of requests) {
      const f = encodeRequest(r)
      for (let n = 0; n < f.byteLength; n++) assertTypedDecodeError(() => decodeRequest(f.subarray(0, n)))
    }
    for (const r of responses) {
      const f = encodeResponse(r)
      for (let n = 0; n < f.byteLength; n++) assertTypedDecodeError(() => decodeResponse(f.subarray(0, n)))
    }
  })

  it('rejects trailing bytes, unknown versions, unknown types and unknown flags', () => {
    const f = encodeRequest(requests[2])
    assertTypedDecodeError(() => decodeRequest(Uint8Array.of(...f, 0)))
    assertTypedDecodeError(() => decodeRequest(Uint8Array.of(2, ...f.subarray(1))))
    assertTypedDecodeError(() => decodeRequest(Uint8Array.of(1, 0x42, 0)))
    assertTypedDecodeError(() => decodeResponse(Uint8Array.of(1, 0x01)))
    const g = encodeRequest(requests[3]); g[g.byteLength - 1] = 0x80
    assertTypedDecodeError(() => decodeRequest(g))
  })

  it('enforces the value size limit and the whole-frame limit', () => {
    const big = { type: 'put' as const, addrs: [], token: rng.bytes(32), key: rng.bytes(32), remainingMs: 1, record: { kind: 'immutable' as const, ttlMs: 1, value: new Uint8Array(2000) } }
    const f = encodeRequest(big)
    assert.throws(() => decodeRequest(f, { maxValueBytes: 1999 }), (e) => isCodedError(e, 'OHT_VALUE_TOO_LARGE'))
    assert.equal(decodeRequest(f, { maxValueBytes: 2000 }).type, 'put')
    assert.throws(() => decodeRequest(new Uint8Array(1_000_000), { maxValueBytes: 1000 }), (e) => isCodedError(e, 'OHT_BAD_FRAME'))
  })

  it('rejects lying length fields without allocating them', () => {
    // GET with an address count of 200 (> 8) and a PUT whose value length claims 4 GiB.
    assertTypedDecodeError(() => decodeRequest(Uint8Array.of(1, 0x03, 200)))
    const f = encodeRequest(requests[5])
    const lenAt = f.byteLength - 1000 - 4
    f[lenAt] = 0xff; f[lenAt + 1] = 0xff; f[lenAt + 2] = 0xff; f[lenAt + 3] = 0xff
    assertTypedDecodeError(() => decodeRequest(f))
    // u64 above 2^53.
    const s = encodeResponse({ type: 'stored', grantedMs: 1 }); s[2] = 0xff
    assertTypedDecodeError(() => decodeResponse(s))
    // Contact count above the limit.
    const n = encodeResponse({ type: 'nodes', token: rng.bytes(32), contacts: [] }); n[n.byteLength - 1] = 200
    assertTypedDecodeError(() => decodeResponse(n))
  })

  it('rejects invalid UTF-8 in addresses, in requests and in contacts', () => {
    const f = encodeRequest({ type: 'ping', addrs: ['ab'] })
    f[f.byteLength - 1] = 0xff
    assertTypedDecodeError(() => decodeRequest(f))
    const n = encodeResponse({ type: 'nodes', contacts: [{ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs: ['ok', 'xy'] } }] })
    n[n.byteLength - 1] = 0xc3 // a lone UTF-8 lead byte
    assertTypedDecodeError(() => decodeResponse(n))
  })

  it('round-trips long (>= 128 bytes) and non-ASCII contact addresses', () => {
    const addrs = ['/dns4/' + 'x'.repeat(200) + '/tcp/1', 'onion:ü', 'a']
    const contacts = [{ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs } }]
    const res = decodeResponse(encodeResponse({ type: 'nodes', contacts }))
    assert.ok(res.type === 'nodes')
    assert.deepEqual(res.contacts[0].contact.addrs, addrs)
  })

  it('encodes each contact with its own key when contacts share an address (cached blocks never mix keys)', () => {
    const addr = 'sim:shared-address'
    const keys = [rng.bytes(32), rng.bytes(32), rng.bytes(32)]
    const ids = keys.map(() => rng.bytes(32))
    // Fresh contact objects each time, as routing tables make them; the first key again last.
    const contacts = [0, 1, 2, 0].map(i => ({ id: ids[i], contact: { publicKey: keys[i].slice(), addrs: [addr] } }))
    for (let round = 0; round < 2; round++) {
      const res = decodeResponse(encodeResponse({ type: 'nodes', contacts }))
      assert.ok(res.type === 'nodes')
      assert.deepEqual(res.contacts.map(c => [...c.contact.publicKey]), [0, 1, 2, 0].map(i => [...keys[i]]))
      assert.deepEqual(res.contacts.map(c => c.contact.addrs), [[addr], [addr], [addr], [addr]])
    }
  })

  it('answers with a routing-table entry\'s new addresses once they change (the entry\'s cached wire form is dropped)', () => {
    const self = rng.bytes(32)
    const table = createRoutingTable(self)
    const id = rng.bytes(32)
    const publicKey = rng.bytes(32)
    table.add(id, { publicKey, addrs: ['sim:before'] }, 1)
    const answer = (): string[][] => {
      const res = decodeResponse(encodeResponse({ type: 'nodes', contacts: table.closest(id, 1) }))
      assert.ok(res.type === 'nodes')
      return res.contacts.map(c => c.contact.addrs)
    }
    assert.deepEqual(answer(), [['sim:before']])
    assert.ok(table.get(id)?.block !== undefined, 'the entry keeps its wire form')
    table.add(id, { publicKey, addrs: ['sim:after', 'sim:second'] }, 2)
    assert.deepEqual(answer(), [['sim:after', 'sim:second']])
  })

  it('reads a received contact\'s key and routability in place, the same as from the built contact', () => {
    const [k1, k2] = [rng.bytes(32), rng.bytes(32)]
    const sent = [
      { id: rng.bytes(32), contact: { publicKey: k1, addrs: ['sim:a'] } },
      { id: rng.bytes(32), contact: { publicKey: k2, addrs: [] } },
      { id: rng.bytes(32), contact: { publicKey: k1.slice(), addrs: ['sim:b', 'sim:c'] } }
    ]
    const res = decodeResponse(encodeResponse({ type: 'nodes', contacts: sent }))
    assert.ok(res.type === 'nodes')
    const [a, b, c] = res.contacts
    assert.deepEqual([wireRoutable(a), wireRoutable(b), wireRoutable(c)], [true, false, true])
    assert.deepEqual([...wirePublicKey(b)], [...k2])
    assert.equal(samePublicKey(a, c), true)
    assert.equal(samePublicKey(a, b), false)
    assert.equal(samePublicKey(a, sent[0]), true, 'received against a plain contact')
    assert.equal(samePublicKey(sent[1], b), true)
    assert.equal(samePublicKey(sent[0], b), false)
    void c.contact // built: the answers stay the same
    assert.equal(samePublicKey(c, a), true)
    assert.equal(wireRoutable(c), true)
  })

  it('a contact detached into an arena reads the same and no longer depends on the answer\'s frame', () => {
    const sent = Array.from({ length: 20 }, (_, i) => ({ id: rng.bytes(32), contact: { publicKey: rng.bytes(32), addrs: i % 5 === 0 ? [] : i % 2 === 0 ? ['sim:' + String(i)] : ['/dns4/' + 'y'.repeat(i * 10) + '/tcp/1', 'onion:ü'] } }))
    const frame = encodeResponse({ type: 'nodes', contacts: sent })
    const res = decodeResponse(frame)
    assert.ok(res.type === 'nodes')
    const arena = new ContactArena(256) // small chunks: contacts cross chunk boundaries
    const kept = res.contacts.map(w => arena.detach(w))
    frame.fill(0xee) // the frame's memory is reused for something else
    kept.forEach((w, i) => {
      assert.deepEqual([...w.id], [...sent[i].id])
      assert.deepEqual([...w.contact.publicKey], [...sent[i].contact.publicKey])
      assert.deepEqual(w.contact.addrs, sent[i].contact.addrs)
      assert.equal(wireRoutable(w), sent[i].contact.addrs.length > 0)
      assert.equal(samePublicKey(w, sent[i]), true)
      assert.notEqual(w.id.buffer, frame.buffer)
    })
    assert.equal(arena.detach(sent[3]), sent[3], 'a contact that is not a frame view is kept as it is')
  })

  it('throws only typed errors on 20,000 random and mutated frames', () => {
    const r = new SeededRng('fuzz')
    const seeds = [...requests.map(q => encodeRequest(q)), ...responses.map(q => encodeResponse(q))]
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      let f: Uint8Array
      if (i % 2 === 0) {
        f = r.bytes(r.int(200))
        if (f.byteLength > 0 && r.int(2) === 0) f[0] = 1
      } else {
        f = seeds[r.int(seeds.length)].slice()
        for (let m = 1 + r.int(4); m > 0; m--) f[r.int(f.byteLength)] = r.int(256)
      }
      for (const decode of [decodeRequest, decodeResponse]) {
        try { decode(f); accepted++ } catch (err) {
          if (!(err instanceof OhtError)) throw new Error(`untyped error on frame ${Buffer.from(f).toString('hex')}`, { cause: err })
        }
      }
    }
    assert.ok(accepted > 0, 'mutations of valid frames sometimes stay valid')
  })

  it('refuses to encode out-of-range fields', () => {
    assert.throws(() => encodeRequest({ type: 'find-node', addrs: [], target: new Uint8Array(31) }), (e) => isCodedError(e, 'OHT_BAD_ARGUMENT'))
    assert.throws(() => encodeRequest({ type: 'ping', addrs: Array(9).fill('a') }), (e) => isCodedError(e, 'OHT_BAD_ARGUMENT'))
    assert.throws(() => encodeResponse({ type: 'stored', grantedMs: -1 }), (e) => isCodedError(e, 'OHT_BAD_ARGUMENT'))
  })
})
