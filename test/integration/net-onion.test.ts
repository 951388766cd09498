/**
 * libp2p and the OHT over real onion services on a private Tor network (one network for the
 * file, 4 tor clients). First the shared transport behaviour suite for onion3, then 8 OHT
 * nodes in onion-only mode (two per tor client, isolated by SOCKS username), each reachable
 * only at its own onion service: records go round through onion addresses only, and no socket
 * leaves this process except to tor.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, Socket, type Server } from 'node:net'
import { onionAddressFromPublicKey } from '../../src/crypto/index.ts'
import {
  createNetNode, createOverlayNode, libp2pKeyFromSeed, listTransports, parseOnion3Multiaddr, torConnector, torPublisher,
  type OverlayNode
} from '../../src/net/index.ts'
import type { TorControl } from '../../src/tor/index.ts'
import { createNode } from '../../src/index.ts'
import { transportSuite } from '../helpers/net-transport-suite.ts'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'

let tn: Testnet
const controls: TorControl[] = []

before(async () => { tn = await testnet({ clients: 4 }) })
after(async () => {
  await Promise.allSettled(controls.map(async c => { await c.close() }))
  await tn?.stop()
})

async function control (client: number): Promise<TorControl> {
  const c = await tn.clients[client].control()
  controls.push(c)
  return c
}

transportSuite('onion3 (private Tor network)', async () => ({
  protocol: 'onion3',
  listener: async () => {
    const seed = new Uint8Array(randomBytes(32))
    return await createNetNode({
      seed,
      onionOnly: true,
      onion: { connect: torConnector({ socksPort: tn.clients[0].socksPort }), publish: torPublisher({ control: await control(0), seed }) }
    })
  },
  dialer: async () => await createNetNode({ seed: new Uint8Array(randomBytes(32)), onionOnly: true, onion: { connect: torConnector({ socksPort: tn.clients[1].socksPort }) } }),
  close: async () => {}
}), { timeoutMs: 60_000 })

describe('OHT over onion services only: 8 nodes on 4 tor clients', { timeout: 400_000 }, () => {
  const nodes: OverlayNode[] = []
  let liar: OverlayNode | undefined
  let dummy: Server
  let dummyAccepted = 0
  let dummyPort = 0
  const dialTargets: string[] = []
  // Every outbound TCP connection of this process goes through Socket.prototype.connect
  // (net.connect, the SOCKS client, libp2p's TCP transport): record each target.
  const socketTargets: Array<{ host: string, port: number }> = []
  const realConnect = Socket.prototype.connect
  function recordingConnect (this: Socket, ...args: unknown[]): Socket {
    // net.connect() passes its normalized [options, callback] array as the first argument
    const [a, b] = (Array.isArray(args[0]) ? args[0] : args) as [unknown, unknown]
    if (typeof a === 'object' && a !== null && 'port' in a) {
      const o = a as { port: number | string, host?: string }
      socketTargets.push({ host: o.host ?? 'localhost', port: Number(o.port) })
    } else if (typeof a === 'number' || (typeof a === 'string' && /^\d+$/.test(a))) {
      socketTargets.push({ host: typeof b === 'string' ? b : 'localhost', port: Number(a) })
    } else {
      socketTargets.push({ host: String(a), port: -1 })
    }
    return (realConnect as (...a: unknown[]) => Socket).apply(this, args)
  }

  async function onionNode (i: number, bootstrap: string[], seed = new Uint8Array(randomBytes(32))): Promise<OverlayNode> {
    const client = i % 4
    return await createOverlayNode({
      seed,
      onionOnly: true,
      onion: {
        connect: torConnector({ socksPort: tn.clients[client].socksPort }),
        publish: torPublisher({ control: await control(client), seed }),
        onDial: (t) => { dialTargets.push(`${t.address}.onion:${t.port}`) }
      },
      bootstrap,
      oht: { requestTimeout: { initialMs: 20_000, minMs: 2_000, maxMs: 45_000 } }
    })
  }

  before(async () => {
    dummy = createServer((s) => { dummyAccepted++; s.destroy() })
    await new Promise<void>((resolve) => { dummy.listen(0, '127.0.0.1', resolve) })
    dummyPort = (dummy.address() as { port: number }).port
    Socket.prototype.connect = recordingConnect as typeof Socket.prototype.connect
    nodes.push(await onionNode(0, []))
    const boot = nodes[0].multiaddrs
    // allSettled: a node that came up must be stopped even if a sibling failed
    const settled = await Promise.allSettled([1, 2, 3, 4, 5, 6, 7].map(async i => await onionNode(i, boot)))
    for (const r of settled) if (r.status === 'fulfilled') nodes.push(r.value)
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    // A dual-stack peer that also announces a plain TCP address (a dummy listener): onion-only
    // nodes learn it through the DHT and must never connect to it.
    const seed = new Uint8Array(randomBytes(32))
    const own = onionAddressFromPublicKey(libp2pKeyFromSeed(seed).publicKey.raw)
    liar = await createOverlayNode({
      seed,
      tcp: false,
      onion: { connect: torConnector({ socksPort: tn.clients[3].socksPort }), publish: torPublisher({ control: await control(3), seed }) },
      announce: [`/onion3/${own}:4001`, `/ip4/127.0.0.1/tcp/${dummyPort}`],
      bootstrap: boot
    })
  })

  after(async () => {
    Socket.prototype.connect = realConnect
    await Promise.allSettled([...nodes, ...(liar !== undefined ? [liar] : [])].map(async n => { await n.stop() }))
    await new Promise<void>((resolve) => { dummy?.close(() => { resolve() }) ?? resolve() })
  })

  it('each node has only the onion3 transport and announces only its own onion address', () => {
    assert.equal(nodes.length, 8)
    for (const n of nodes) {
      assert.deepEqual(listTransports(n.libp2p), ['@oht/onion3'])
      assert.ok(n.multiaddrs.length > 0)
      for (const a of n.multiaddrs) {
        const parsed = parseOnion3Multiaddr(a)
        assert.deepEqual(parsed.publicKey, n.contact.publicKey, 'the onion address is the node key')
      }
      assert.ok(n.contact.addrs.every(a => a.startsWith('/onion3/')))
    }
    for (const n of nodes.slice(1)) assert.equal(n.joined.via, 'bootstrap')
  })

  it('puts and gets an immutable record across nodes through onion addresses only', async () => {
    const value = new Uint8Array(randomBytes(1500))
    const put = await nodes[2].oht.putImmutable(value)
    assert.ok(put.stored >= 5, `stored at ${put.stored} of ${put.attempted}`)
    for (const i of [0, 5, 7]) {
      const got = await nodes[i].oht.get(put.key)
      assert.ok(got, `node ${i} found it`)
      assert.deepEqual(got.value, value)
    }
  })

  it('puts and gets a mutable record and its update', async () => {
    const salt = new TextEncoder().encode('status')
    const v1 = await nodes[4].oht.putMutable({ salt, value: new TextEncoder().encode('one') })
    assert.ok(v1.stored >= 5)
    const v2 = await nodes[4].oht.putMutable({ salt, value: new TextEncoder().encode('two') })
    for (const i of [1, 6]) {
      const got = await nodes[i].oht.get(v2.key)
      assert.equal(new TextDecoder().decode(got?.value), 'two')
      assert.equal(got?.seq, v2.seq)
    }
  })

  it('reuses connections: most requests travel on an open connection, not a new rendezvous', () => {
    let dials = 0; let reused = 0
    for (const n of nodes) { dials += n.net.stats.dials; reused += n.net.stats.reusedConnections }
    assert.ok(reused > dials, `${reused} reused vs ${dials} dials`)
  })

  it('the SDK\'s createNode attaches to a running tor and joins over onion services', async () => {
    const c = tn.clients[1]
    const sdk = await createNode({
      transport: 'tor',
      tor: { attach: { controlPort: c.controlPort, cookiePath: c.cookiePath } },
      bootstrap: nodes[0].multiaddrs
    })
    try {
      assert.ok(sdk.onion !== undefined && sdk.multiaddrs.every(a => a.startsWith(`/onion3/${sdk.onion}:`)))
      const put = await sdk.put(new TextEncoder().encode('from the sdk'))
      assert.ok(put.stored >= 5)
      assert.equal(new TextDecoder().decode((await nodes[3].oht.get(put.key))?.value), 'from the sdk')
    } finally {
      await sdk.stop()
    }
  })

  it('no socket ever left except to tor: SOCKS and control ports only, the announced TCP address untouched', () => {
    const learned = nodes.some(n => n.oht.routingTable.contacts().some(e => e.contact.addrs.includes(`/ip4/127.0.0.1/tcp/${dummyPort}`)))
    assert.ok(learned, 'the dummy TCP address did reach the onion-only nodes')
    assert.equal(dummyAccepted, 0, 'nobody connected to the announced TCP address')
    const torPorts = new Set(tn.clients.flatMap(c => [c.socksPort, c.controlPort]))
    const stray = socketTargets.filter(t => t.host !== '127.0.0.1' || !torPorts.has(t.port))
    assert.deepEqual(stray, [], 'every socket went to a tor client on 127.0.0.1')
    const socks = new Set(tn.clients.map(c => c.socksPort))
    const viaSocks = socketTargets.filter(t => socks.has(t.port)).length
    assert.ok(viaSocks >= 8, `dials went through SOCKS (${viaSocks} of ${socketTargets.length} sockets)`)
    assert.ok(dialTargets.length > 0 && dialTargets.every(t => /^[a-z2-7]{56}\.onion:\d+$/.test(t)), 'every dial named an onion service')
  })
})
