/** Test helpers for the wormhole layer: people with identities, cards, stores and a shared fake clock. */
import { FakeClock, SeededRng, type Rng } from '../../src/core/index.ts'
import { identityFromSeed } from '../../src/crypto/index.ts'
import {
  createContactCard, createMemorySessionStore, createWormholeCrypto, decodePrekeyBundle, wormholeIdentityFromSeed,
  type ContactCard, type ControlMessage, type MemorySessionStore, type SessionStore, type WormholeCrypto, type WormholeCryptoInit, type WormholeIdentity
} from '../../src/wormhole/index.ts'

export interface Person {
  name: string
  identity: WormholeIdentity
  card: ContactCard
  store: SessionStore
  wh: WormholeCrypto
  rng: Rng
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

export interface World {
  clock: FakeClock
  rng: SeededRng
  person(name: string, options?: { init?: WormholeCryptoInit, store?: SessionStore }): Promise<Person>
  /** A fresh instance over the same identity and store: what a restart gives. */
  restart(p: Person, init?: WormholeCryptoInit): Promise<Person>
  /** The verified bundle `p` publishes. */
  bundleOf(p: Person): ReturnType<typeof decodePrekeyBundle>
  /** Seals and delivers control messages (and what they cause) until none are left. */
  deliver(from: Person, sends: ControlMessage[], people: Person[]): Promise<void>
}

export function world (seed = 'wormhole-test'): World {
  const clock = new FakeClock()
  const rng = new SeededRng(seed)
  const w: World = {
    clock,
    rng,
    async person (name, options = {}) {
      const prng = rng.fork(name)
      const identity = wormholeIdentityFromSeed(prng.bytes(32))
      const node = identityFromSeed(prng.bytes(32))
      const card = createContactCard(identity, { node: node.onion, name }, clock)
      const store = options.store ?? createMemorySessionStore()
      const wh = await createWormholeCrypto(options.init ?? {}, { identity, card, store, clock, rng: prng })
      return { name, identity, card, store, wh, rng: prng }
    },
    async restart (p, init = {}) {
      await p.wh.close()
      const wh = await createWormholeCrypto(init, { identity: p.identity, card: p.card, store: p.store, clock, rng: p.rng })
      return { ...p, wh }
    },
    bundleOf (p) {
      return decodePrekeyBundle(p.wh.prekeyBundle().bytes, p.card.publicKey)
    },
    async deliver (from, sends, people) {
      const queue: Array<{ from: Person, send: ControlMessage }> = sends.map(send => ({ from, send }))
      while (queue.length > 0) {
        const { from: f, send } = queue.shift() as { from: Person, send: ControlMessage }
        const to = people.find(p => Buffer.compare(p.card.publicKey, send.to.publicKey) === 0)
        if (to === undefined) throw new Error('no such person')
        const has = (await f.wh.session(to.card.publicKey))?.states ?? 0
        const sealed = await f.wh.seal(send.to, { kind: send.kind, conversationId: send.conversationId, seq: 0, body: send.body }, has > 0 ? {} : { bundle: w.bundleOf(to) })
        const opened = await to.wh.open(sealed.envelope)
        if (opened.groupError !== undefined) throw opened.groupError
        for (const s of opened.sends) queue.push({ from: to, send: s })
      }
    }
  }
  return w
}

export type { MemorySessionStore }
