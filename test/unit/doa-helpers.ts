/**
 * Test helpers for the networked half of DOA: OHT nodes on the in-memory bus of oht-helpers
 * (fake clock, zero latency), each with a small in-memory PeerNet (request/response only, the
 * requester authenticated by the bus) and a DOA service in its own temporary directory.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isCodedError, SeededRng, toHex, type AbortOptions } from '../../src/core/index.ts'
import { identityFromSeed, type Identity } from '../../src/crypto/index.ts'
import { createDoa, createSandboxHost, type Doa, type DoaInit, type SandboxHost } from '../../src/doa/index.ts'
import { OhtError, OhtRemoteError, type OhtNode, type PeerContact, type PeerNet, type PeerRequestHandler } from '../../src/oht/index.ts'
import { testnet, type Testnet } from './oht-helpers.ts'

/** Request/response PeerNet between the nodes of one test, keyed by public key. */
export class MemoryPeers {
  readonly handlers = new Map<string, Map<string, PeerRequestHandler>>()
  readonly offline = new Set<string>()
  requests = 0

  net (self: PeerContact): PeerNet {
    const me = toHex(self.publicKey)
    const bus = this // eslint-disable-line @typescript-eslint/no-this-alias
    const mine = new Map<string, PeerRequestHandler>()
    this.handlers.set(me, mine)
    return {
      async request (to, protocol, body, options = {}) {
        bus.requests++
        const k = toHex(to.publicKey)
        if (bus.offline.has(k) || bus.offline.has(me)) throw new OhtError('OHT_PEER_UNREACHABLE', 'peer offline')
        const h = bus.handlers.get(k)?.get(protocol)
        if (h === undefined) throw new OhtError('OHT_PROTOCOL_UNSUPPORTED', `no handler for ${protocol}`)
        try {
          const out = await h(self, body.slice(), { ...(options.signal !== undefined ? { signal: options.signal } : {}) })
          return out.slice()
        } catch (err) {
          if (isCodedError(err)) throw new OhtRemoteError(err.code as never, err.message)
          throw new OhtRemoteError('OHT_PEER_FAILED' as never, 'the peer failed')
        }
      },
      async openStream () { throw new OhtError('OHT_PROTOCOL_UNSUPPORTED', 'streams are not simulated here') },
      handle (protocol, handler) {
        if (mine.has(protocol)) throw new OhtError('OHT_BAD_ARGUMENT', `${protocol} is already handled`)
        mine.set(protocol, handler)
      },
      handleStream () { throw new OhtError('OHT_BAD_ARGUMENT', 'streams are not simulated here') },
      unhandle (protocol) { mine.delete(protocol) }
    }
  }
}

export interface DoaTestnet {
  t: Testnet
  peers: MemoryPeers
  doas: Doa[]
  identities: Identity[]
  nodes: OhtNode[]
  sandbox: SandboxHost
  dirs: string[]
  /** Lets background work (republish, announce) finish. */
  settle(ms?: number): Promise<void>
  stop(): Promise<void>
}

export async function doaTestnet (options: { size: number, services?: number, seed?: string, init?: Partial<DoaInit> }): Promise<DoaTestnet> {
  const t = await testnet({ size: options.size, seed: options.seed ?? 'doa-net', init: { k: 8 } })
  const peers = new MemoryPeers()
  const sandbox = await createSandboxHost({}, { clock: t.clock })
  const rng = new SeededRng(`${options.seed ?? 'doa-net'}/doa`)
  const doas: Doa[] = []
  const dirs: string[] = []
  const identities: Identity[] = []
  const n = options.services ?? options.size
  for (let i = 0; i < n; i++) {
    const node = t.nodes[i]
    const dir = await mkdtemp(join(tmpdir(), 'oht-doa-'))
    dirs.push(dir)
    // The DOA service gets the node's own identity (the one the OHT knows it by).
    const identity = identityFromSeed(t.identities[i].seed.slice())
    identities.push(identity)
    const d = createDoa({ dir, session: { watch: false, syncIntervalMs: 0 }, ...options.init }, {
      dht: node, peers: peers.net(node.contact), identity, clock: t.clock, rng: rng.fork(`d${i}`), sandbox
    })
    await d.start()
    doas.push(d)
  }
  return {
    t, peers, doas, identities, nodes: t.nodes, sandbox, dirs,
    async settle (ms = 2_000) { await t.advance(ms, 100) },
    async stop () {
      for (const d of doas) await d.stop()
      sandbox.stop()
      await t.stop()
      for (const d of dirs) await rm(d, { recursive: true, force: true })
    }
  }
}

export async function withSignal<T> (fn: (o: AbortOptions) => Promise<T>): Promise<T> { return await fn({}) }
