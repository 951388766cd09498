/**
 * The gateway resolver on real loopback sockets: VMs are client sockets bound to distinct
 * 127.0.0.x addresses, tor's DNSPort is a fake upstream that records what reaches it. Time is a
 * FakeClock, so timeouts are driven by the test, not by waiting.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { connect } from 'node:net'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import { parseBlocklist } from '../../src/oni/gateway/blocklist.ts'
import { buildAnswer, addressRecord, parseQuery, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA } from '../../src/oni/gateway/dns-wire.ts'
import { createResolver, type GatewayResolver } from '../../src/oni/gateway/resolver.ts'
import type { Zones } from '../../src/oni/gateway/zones.ts'

function query (name: string, qtype: number, id: number): Uint8Array {
  const labels = name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
  return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1])
}

interface Seen { from: string, id: number, name: string, bytes: number }

async function udp (address: string): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, address, resolve) })
  return s
}

async function ask (s: Socket, port: number, msg: Uint8Array): Promise<Buffer> {
  return await new Promise<Buffer>((resolve) => {
    s.once('message', (m) => { resolve(m) })
    s.send(msg, port, '127.0.0.1')
  })
}

async function until (cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise(resolve => setImmediate(resolve))
  assert.ok(cond(), 'condition not reached')
}

describe('gateway resolver', () => {
  const clock = new FakeClock()
  let upstream: Socket
  let resolver: GatewayResolver
  let port = 0
  const seen: Seen[] = []
  let answerUpstream = true
  let upstreamOn = true
  const onetAddr = new Uint8Array(16).fill(0x6f)
  let zones: Zones = { blocklist: parseBlocklist('0.0.0.0 ads.example.com\n'), hosts: new Map([['big.vm', Array.from({ length: 40 }, (_, i) => Uint8Array.of(10, 0, 0, i))]]), ipv6: false }

  before(async () => {
    upstream = await udp('127.0.0.1')
    upstream.on('message', (m, r) => {
      const q = parseQuery(m)
      seen.push({ from: r.address, id: q.id, name: q.name, bytes: m.byteLength })
      if (!answerUpstream) return
      upstream.send(buildAnswer(q, RCODE_NOERROR, [addressRecord(Uint8Array.of(10, 200, 0, 1))]), r.port, r.address)
    })
    const up = upstream.address()
    resolver = createResolver({ listen: [{ host: '127.0.0.1', port: 0 }], timeoutMs: 5_000 }, {
      clock,
      rng: new SeededRng('resolver-test'),
      zones: () => zones,
      upstream: () => upstreamOn ? { host: '127.0.0.1', port: up.port } : undefined,
      resolveOnet: async (name) => name === 'peer.onet' ? onetAddr : undefined
    })
    await resolver.start()
    port = resolver.ports[0]
  })

  after(async () => {
    await resolver.stop()
    upstream.close()
  })

  it('forwards an ordinary name to tor under a new id and relays the answer under the VM\'s id', async () => {
    const vm = await udp('127.0.0.21')
    const r = await ask(vm, port, query('example.com', TYPE_A, 0x1111))
    vm.close()
    assert.equal(r.readUInt16BE(0), 0x1111)
    assert.equal(r[3] & 0x0f, RCODE_NOERROR)
    assert.deepEqual([...r.subarray(r.length - 4)], [10, 200, 0, 1])
    const s = seen.find(x => x.name === 'example.com')
    assert.ok(s)
    assert.equal(s.bytes, 12 + 13 + 4, 'only the question went upstream')
  })

  it('gives each VM its own loopback source towards tor (per-VM isolation)', async () => {
    const a = await udp('127.0.0.31')
    const b = await udp('127.0.0.32')
    await ask(a, port, query('a.example', TYPE_A, 1))
    await ask(b, port, query('b.example', TYPE_A, 2))
    await ask(a, port, query('a2.example', TYPE_A, 3))
    a.close(); b.close()
    const src = (n: string): string | undefined => seen.find(x => x.name === n)?.from
    assert.match(src('a.example') ?? '', /^127\.83\.\d+\.\d+$/)
    assert.notEqual(src('a.example'), src('b.example'))
    assert.equal(src('a.example'), src('a2.example'))
    const status = resolver.clientStatus()
    assert.equal(status.find(c => c.address === '127.0.0.31')?.isolationAddress, src('a.example'))
  })

  it('answers blocklisted names itself: nothing reaches tor', async () => {
    const before = seen.length
    const vm = await udp('127.0.0.41')
    const r = await ask(vm, port, query('x.ads.example.com', TYPE_A, 0x2222))
    const r6 = await ask(vm, port, query('ads.example.com', TYPE_AAAA, 0x2223))
    vm.close()
    assert.deepEqual([...r.subarray(r.length - 4)], [0, 0, 0, 0])
    assert.deepEqual([...r6.subarray(r6.length - 16)], new Array(16).fill(0))
    assert.equal(seen.length, before)
    const c = resolver.clientStatus().find(x => x.address === '127.0.0.41')
    assert.equal(c?.blocked, 2)
    assert.equal(c?.forwarded, 0)
  })

  it('answers .onet names from the onet lookup, unknown ones NXDOMAIN, without tor', async () => {
    const before = seen.length
    const vm = await udp('127.0.0.42')
    const r = await ask(vm, port, query('peer.onet', TYPE_AAAA, 7))
    const nx = await ask(vm, port, query('nobody.onet', TYPE_AAAA, 8))
    vm.close()
    assert.deepEqual([...r.subarray(r.length - 16)], [...onetAddr])
    assert.equal(nx[3] & 0x0f, RCODE_NXDOMAIN)
    assert.equal(seen.length, before)
  })

  it('answers SERVFAIL at once while tor is away, and after the deadline when tor stays silent', async () => {
    const vm = await udp('127.0.0.51')
    upstreamOn = false
    const r = await ask(vm, port, query('away.example', TYPE_A, 9))
    upstreamOn = true
    assert.equal(r[3] & 0x0f, RCODE_SERVFAIL)
    answerUpstream = false
    const pending = ask(vm, port, query('silent.example', TYPE_A, 10))
    await until(() => seen.some(x => x.name === 'silent.example'))
    await clock.advance(5_000)
    const late = await pending
    answerUpstream = true
    vm.close()
    assert.equal(late[3] & 0x0f, RCODE_SERVFAIL)
    assert.equal(resolver.clientStatus().find(x => x.address === '127.0.0.51')?.failed, 2)
  })

  it('ignores answers that do not come from tor\'s port or do not match the question', async () => {
    answerUpstream = false
    const vm = await udp('127.0.0.52')
    const got: Buffer[] = []
    vm.on('message', (m) => got.push(m))
    vm.send(query('spoof.example', TYPE_A, 11), port, '127.0.0.1')
    await until(() => seen.some(x => x.name === 'spoof.example'))
    const s = seen.find(x => x.name === 'spoof.example') as Seen
    const iso = resolver.clientStatus().find(x => x.address === '127.0.0.52')?.isolationAddress as string
    const isoPort = await new Promise<number>((resolve) => {
      // Find the isolation socket's port: ask tor's side which port the query came from.
      upstream.once('message', (_m, r) => { resolve(r.port) })
      vm.send(query('spoof2.example', TYPE_A, 12), port, '127.0.0.1')
    })
    const attacker = await udp('127.0.0.1')
    const forged = buildAnswer(parseQuery(query('spoof.example', TYPE_A, s.id)), RCODE_NOERROR, [addressRecord(Uint8Array.of(6, 6, 6, 6))])
    attacker.send(forged, isoPort, iso)
    // From tor's port but for another question: dropped too.
    const wrong = buildAnswer(parseQuery(query('other.example', TYPE_A, s.id)), RCODE_NOERROR, [addressRecord(Uint8Array.of(6, 6, 6, 6))])
    upstream.send(wrong, isoPort, iso)
    for (let i = 0; i < 50; i++) await new Promise(resolve => setImmediate(resolve))
    assert.equal(got.length, 0, 'no forged answer was relayed')
    await clock.advance(5_000)
    await until(() => got.length === 2)
    assert.ok(got.every(m => (m[3] & 0x0f) === RCODE_SERVFAIL))
    attacker.close()
    vm.close()
    answerUpstream = true
  })

  it('truncates a large UDP answer (TC) and answers it whole over TCP', async () => {
    const vm = await udp('127.0.0.61')
    const r = await ask(vm, port, query('big.vm', TYPE_A, 13))
    vm.close()
    assert.equal(r[2] & 0x02, 0x02)
    assert.equal(r.readUInt16BE(6), 0)
    const tcp = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.61' }, () => {
        const q = query('big.vm', TYPE_A, 14)
        const frame = Buffer.alloc(2 + q.byteLength)
        frame.writeUInt16BE(q.byteLength)
        frame.set(q, 2)
        s.write(frame)
      })
      let buf = Buffer.alloc(0)
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d])
        if (buf.byteLength >= 2 && buf.byteLength >= 2 + buf.readUInt16BE(0)) { s.destroy(); resolve(buf.subarray(2)) }
      })
      s.on('error', reject)
    })
    assert.equal(tcp.readUInt16BE(0), 14)
    assert.equal(tcp.readUInt16BE(6), 40)
  })

  it('refuses a VM over its query rate, and counts it', async () => {
    const vm = await udp('127.0.0.71')
    let refused = 0
    for (let i = 0; i < 420; i++) {
      const r = await ask(vm, port, query('localhost', TYPE_A, i))
      if ((r[3] & 0x0f) === RCODE_REFUSED) refused++
    }
    vm.close()
    // The bucket holds 2 s of queries (400) and the fake clock does not move.
    assert.equal(refused, 20)
    assert.equal(resolver.clientStatus().find(x => x.address === '127.0.0.71')?.limited, 20)
  })

  it('reads a new blocklist as soon as the zones change', async () => {
    zones = { ...zones, blocklist: parseBlocklist('example.org\n') }
    const vm = await udp('127.0.0.81')
    const r = await ask(vm, port, query('www.example.org', TYPE_A, 15))
    vm.close()
    assert.deepEqual([...r.subarray(r.length - 4)], [0, 0, 0, 0])
  })
})
