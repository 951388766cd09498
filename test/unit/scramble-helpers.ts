/**
 * Test helpers for scramble routing: a small in-memory PeerNet (a map of handlers by address,
 * optional latency on a FakeClock, peers that can be taken down or made silent, and an
 * observer that sees every request as the receiving peer sees it), and `scrambleNet()`, which
 * starts relays and endpoints sharing one memory directory.
 */
import { FakeClock, SeededRng, raceSignal, toHex, withTimeout, type AbortOptions } from '../../src/core/index.ts'
import { identityFromSeed, type Identity } from '../../src/crypto/index.ts'
import { checkProtocolId, OhtError, OhtRemoteError, PEER_MESSAGE_MAX_DEFAULT, type PeerContact, type PeerNet, type PeerProtocolOptions, type PeerRequestHandler, type PeerRequestOptions, type PeerStream } from '../../src/oht/index.ts'
import { createMemoryRelayDirectory, createScrambleNode, type ScrambleNode, type ScrambleNodeInit } from '../../src/scramble-routing/index.ts'

export interface Observed { from: PeerContact, to: PeerContact, protocol: string, body: Uint8Array }

interface Installed { handler: PeerRequestHandler, options: PeerProtocolOptions }

export class MemoryPeerNetwork {
  readonly peers = new Map<string, { contact: PeerContact, handlers: Map<string, Installed> }>()
  /** Addresses that refuse connections (offline). */
  readonly down = new Set<string>()
  /** Addresses whose requests hang until the caller gives up. */
  readonly silent = new Set<string>()
  readonly observed: Observed[] = []
  observe = false
  latencyMs = 0
  requests = 0

  constructor (readonly clock: FakeClock) {}

  endpoint (self: PeerContact): PeerNet {
    const handlers = new Map<string, Installed>()
    this.peers.set(self.addrs[0], { contact: self, handlers })
    const net = this // eslint-disable-line @typescript-eslint/no-this-alias
    const deliver = async (to: PeerContact, protocol: string, body: Uint8Array, options: AbortOptions): Promise<Uint8Array> => {
      net.requests++
      const target = net.peers.get(to.addrs[0])
      if (target === undefined || net.down.has(to.addrs[0])) throw new OhtError('OHT_PEER_UNREACHABLE', `unreachable: ${to.addrs[0]}`)
      if (toHex(target.contact.publicKey) !== toHex(to.publicKey)) throw new OhtError('OHT_PEER_UNREACHABLE', 'another key answers at that address')
      const h = target.handlers.get(protocol)
      if (h === undefined) throw new OhtError('OHT_PROTOCOL_UNSUPPORTED', `no handler for ${protocol}`)
      if (body.byteLength > (h.options.maxMessageBytes ?? PEER_MESSAGE_MAX_DEFAULT)) throw new OhtError('OHT_MESSAGE_TOO_LARGE', 'message too large')
      if (net.silent.has(to.addrs[0])) return await raceSignal(new Promise<Uint8Array>(() => {}), options.signal)
      if (net.latencyMs > 0) await net.clock.sleep(net.latencyMs, options)
      if (net.observe) net.observed.push({ from: self, to: target.contact, protocol, body: body.slice() })
      try {
        // Copies both ways, as a real transport: no shared buffers between nodes.
        return (await h.handler(self, body.slice(), options)).slice()
      } catch (err) {
        const code = (err as { code?: unknown }).code
        throw typeof code === 'string' ? new OhtRemoteError(code, String((err as Error).message)) : new OhtRemoteError('OHT_PEER_FAILED', 'peer failed')
      }
    }
    return {
      async request (to: PeerContact, protocol: string, body: Uint8Array, options: PeerRequestOptions = {}): Promise<Uint8Array> {
        checkProtocolId(protocol)
        if (options.timeoutMs === undefined) return await deliver(to, protocol, body, options)
        return await withTimeout(net.clock, options.timeoutMs, async (signal) => await deliver(to, protocol, body, { signal }), options.signal)
      },
      async openStream (): Promise<PeerStream> { throw new OhtError('OHT_PROTOCOL_UNSUPPORTED', 'streams are not simulated here') },
      handle (protocol: string, handler: PeerRequestHandler, options: PeerProtocolOptions = {}): void {
        checkProtocolId(protocol)
        if (handlers.has(protocol)) throw new OhtError('OHT_BAD_ARGUMENT', `${protocol} is handled already`)
        handlers.set(protocol, { handler, options })
      },
      handleStream (): void { throw new OhtError('OHT_PROTOCOL_UNSUPPORTED', 'streams are not simulated here') },
      unhandle (protocol: string): void { handlers.delete(protocol) }
    }
  }
}

export interface ScrambleTestNode {
  identity: Identity
  contact: PeerContact
  node: ScrambleNode
  inbox: Uint8Array[]
}

export interface ScrambleNet {
  clock: FakeClock
  net: MemoryPeerNetwork
  directory: ReturnType<typeof createMemoryRelayDirectory>
  relays: ScrambleTestNode[]
  endpoints: ScrambleTestNode[]
  all: ScrambleTestNode[]
  add(relay: boolean, init?: ScrambleNodeInit): Promise<ScrambleTestNode>
  stop(): Promise<void>
}

/** `relays` relay nodes and `endpoints` endpoint-only nodes, started, sharing one directory. */
export async function scrambleNet (opts: { relays: number, endpoints: number, seed: string, init?: ScrambleNodeInit }): Promise<ScrambleNet> {
  const clock = new FakeClock()
  const net = new MemoryPeerNetwork(clock)
  const rng = new SeededRng(opts.seed)
  const directory = createMemoryRelayDirectory({ clock })
  const all: ScrambleTestNode[] = []
  let n = 0
  const add = async (relay: boolean, init: ScrambleNodeInit = {}): Promise<ScrambleTestNode> => {
    const identity = identityFromSeed(rng.bytes(32))
    const contact = { publicKey: identity.publicKey, addrs: [`mem:${n++}`] }
    const node = createScrambleNode({ addrs: contact.addrs, relay, ...opts.init, ...init }, {
      identity, peers: net.endpoint(contact), directory, clock, rng: rng.fork(`path-${n}`), keyRng: rng.fork(`keys-${n}`)
    })
    const inbox: Uint8Array[] = []
    node.onMessage(({ message }) => { inbox.push(message) })
    await node.start()
    const t = { identity, contact, node, inbox }
    all.push(t)
    return t
  }
  const relays: ScrambleTestNode[] = []
  for (let i = 0; i < opts.relays; i++) relays.push(await add(true))
  const endpoints: ScrambleTestNode[] = []
  for (let i = 0; i < opts.endpoints; i++) endpoints.push(await add(false))
  return {
    clock, net, directory, relays, endpoints, all, add,
    async stop () { for (const t of all) await t.node.stop() }
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)
