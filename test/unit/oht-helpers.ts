/**
 * Test helpers for the OHT engine: a tiny in-memory DhtNet (a bus of handlers keyed by address,
 * zero latency unless asked, peers that can be made silent) and `testnet({ size })`, which
 * starts and bootstraps `size` nodes on a FakeClock.
 */
import { FakeClock, SeededRng, raceSignal, withTimeout, type AbortOptions } from '../../src/core/index.ts'
import { identityFromSeed, type Identity } from '../../src/crypto/index.ts'
import { createOhtNode, decodeResponse, encodeRequest, recordKey, type DhtNet, type DhtRequestHandler, type DhtRequestOptions, type OhtNode, type OhtNodeInit, type OhtRecord, type OhtRequest, type OhtResponse, type PeerContact } from '../../src/oht/index.ts'

export class MemoryBus {
  readonly handlers = new Map<string, { handler: DhtRequestHandler, contact: PeerContact }>()
  /** Addresses whose requests hang until the caller gives up (a dead or slow peer). */
  readonly silent = new Set<string>()
  /** Requests for which this returns true hang like `silent` (e.g. only PUTs to one peer). */
  hangIf?: (to: PeerContact, frame: Uint8Array) => boolean
  /** Requests delivered, by destination address. */
  readonly delivered = new Map<string, number>()
  requests = 0
  latencyMs = 0
  constructor (readonly clock: FakeClock) {}

  endpoint (self: PeerContact): DhtNet & { contact: PeerContact } {
    const bus = this // eslint-disable-line @typescript-eslint/no-this-alias
    const addr = self.addrs[0]
    const deliver = async (to: PeerContact, frame: Uint8Array, options: AbortOptions): Promise<Uint8Array> => {
      bus.requests++
      const target = to.addrs[0]
      const h = bus.handlers.get(target)
      if (h === undefined) throw new Error(`unreachable: ${target}`)
      bus.delivered.set(target, (bus.delivered.get(target) ?? 0) + 1)
      if (bus.silent.has(target) || bus.hangIf?.(to, frame) === true) return await raceSignal(new Promise<Uint8Array>(() => {}), options.signal)
      if (bus.latencyMs > 0) await bus.clock.sleep(bus.latencyMs, options)
      // Copy like a real transport would: no shared buffers between nodes.
      const res = await h.handler(self, frame.slice(), options)
      return res.slice()
    }
    return {
      contact: self,
      async request (to: PeerContact, frame: Uint8Array, options: DhtRequestOptions = {}): Promise<Uint8Array> {
        // The transport's side of the contract: the engine's timeout is enforced here.
        if (options.timeoutMs === undefined) return await deliver(to, frame, options)
        return await withTimeout(bus.clock, options.timeoutMs, async (signal) => await deliver(to, frame, { signal }), options.signal)
      },
      handle (handler: DhtRequestHandler): void {
        bus.handlers.set(addr, { handler, contact: self })
      }
    }
  }
}

export interface Testnet {
  clock: FakeClock
  bus: MemoryBus
  nodes: OhtNode[]
  identities: Identity[]
  /** Moves the clock in `stepMs` steps, letting background work finish between steps. */
  advance(ms: number, stepMs?: number): Promise<void>
  /** Adds and bootstraps one more node. */
  join(init?: Partial<OhtNodeInit>): Promise<OhtNode>
  stop(): Promise<void>
}

/** Lets zero-latency work run to completion (macrotask turns until nothing is pending). */
export async function settle (nodes: OhtNode[], maxTurns = 200): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    await new Promise<void>((resolve) => { setImmediate(resolve) })
    if (nodes.every(n => n.pendingWork === 0)) return
  }
}

export function makeIdentity (rng: SeededRng): Identity {
  return identityFromSeed(rng.bytes(32))
}

/** `size` started nodes; each bootstraps from the first (and the ones before it). */
export async function testnet (options: { size: number, seed?: string, init?: Partial<OhtNodeInit>, bootstrap?: boolean }): Promise<Testnet> {
  const clock = new FakeClock()
  const bus = new MemoryBus(clock)
  const rng = new SeededRng(options.seed ?? 'oht-test')
  const nodes: OhtNode[] = []
  const identities: Identity[] = []
  for (let i = 0; i < options.size; i++) {
    const identity = makeIdentity(rng)
    identities.push(identity)
    const addr = `mem:${i}`
    const net = bus.endpoint({ publicKey: identity.publicKey, addrs: [addr] })
    const node = createOhtNode({ addrs: [addr], ...options.init }, { identity, net, clock, rng: rng.fork(`node-${i}`) })
    await node.start()
    nodes.push(node)
  }
  if (options.bootstrap !== false) {
    for (let i = 1; i < nodes.length; i++) await nodes[i].bootstrap([nodes[0].contact])
    // A second round so the early nodes learn of the later ones.
    for (let i = 0; i < Math.min(nodes.length, 5); i++) await nodes[i].bootstrap([nodes[(i + 1) % nodes.length].contact])
  }
  let next = nodes.length
  return {
    clock,
    bus,
    nodes,
    identities,
    async advance (ms: number, stepMs = 1000) {
      for (let done = 0; done < ms; done += stepMs) {
        await clock.advance(Math.min(stepMs, ms - done))
        await settle(nodes)
      }
    },
    async join (init?: Partial<OhtNodeInit>) {
      const identity = makeIdentity(rng)
      identities.push(identity)
      const addr = `mem:${next}`
      const net = bus.endpoint({ publicKey: identity.publicKey, addrs: [addr] })
      const node = createOhtNode({ addrs: [addr], ...options.init, ...init }, { identity, net, clock, rng: rng.fork(`node-${next}`) })
      next++
      await node.start()
      nodes.push(node)
      await node.bootstrap([nodes[0].contact])
      return node
    },
    async stop () { for (const n of nodes) await n.stop() }
  }
}

/** A hand-driven peer that speaks raw frames to a node: for tests of the storing node's checks. */
export class RawPeer {
  readonly net: DhtNet & { contact: PeerContact }
  constructor (readonly bus: MemoryBus, readonly identity: Identity, addr: string) {
    this.net = bus.endpoint({ publicKey: identity.publicKey, addrs: [addr] })
  }

  async send (to: PeerContact, req: OhtRequest): Promise<OhtResponse> {
    return decodeResponse(await this.net.request(to, encodeRequest(req)), { maxValueBytes: 1 << 20 })
  }

  /** GET `key` from `to` and return the write token it hands us. */
  async token (to: PeerContact, key: Uint8Array): Promise<Uint8Array> {
    const res = await this.send(to, { type: 'get', addrs: this.net.contact.addrs, key, metadataOnly: true })
    if (res.type !== 'value') throw new Error(`expected a VALUE frame, got ${res.type}`)
    return res.token
  }

  /** GET then PUT; returns the response to the PUT. */
  async put (to: PeerContact, record: OhtRecord, options: { key?: Uint8Array, remainingMs?: number, cas?: number, token?: Uint8Array } = {}): Promise<OhtResponse> {
    const key = options.key ?? recordKey(record)
    const token = options.token ?? await this.token(to, key)
    const req: OhtRequest = { type: 'put', addrs: this.net.contact.addrs, token, key, remainingMs: options.remainingMs ?? record.ttlMs, record }
    if (options.cas !== undefined) req.cas = options.cas
    return await this.send(to, req)
  }
}

/** One started node plus raw peers, on a FakeClock, for storing-node tests. */
export async function singleNode (init: Partial<OhtNodeInit> = {}, seed = 'single'): Promise<{ clock: FakeClock, bus: MemoryBus, node: OhtNode, peer: RawPeer, other: RawPeer, rng: SeededRng }> {
  const clock = new FakeClock()
  const bus = new MemoryBus(clock)
  const rng = new SeededRng(seed)
  const identity = makeIdentity(rng)
  const node = createOhtNode({ addrs: ['mem:node'], ...init }, { identity, net: bus.endpoint({ publicKey: identity.publicKey, addrs: ['mem:node'] }), clock, rng: rng.fork('node') })
  await node.start()
  return { clock, bus, node, peer: new RawPeer(bus, makeIdentity(rng), 'mem:peer'), other: new RawPeer(bus, makeIdentity(rng), 'mem:other'), rng }
}

export function errorCode (res: OhtResponse): string {
  return res.type === 'error' ? res.code : res.type
}
