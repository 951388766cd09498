/**
 * The SDK node's seams for upper layers (wormhole, DOA, scramble routing, apps): an `OhtNode`
 * and a `PeerNet` that stay the same objects for the node's whole life, although the engine
 * and the libp2p node underneath are rebuilt when tor restarts (and are an engine with no
 * network in `local` mode). Handlers installed on the PeerNet are installed again on every
 * rebuilt node; a watch that ends because its engine was rebuilt is taken up again on the new
 * one (its catch-up lookup delivers what it may have missed meanwhile).
 */
import { NetError } from '../net/index.ts'
import {
  checkProtocolId, OhtError,
  type GetResult, type GetValuesOptions, type LookupEvent, type LookupOptions, type OhtNode, type OhtRecord, type PeerContact,
  type PeerNet, type PeerProtocolOptions, type PeerRequestHandler, type PeerRequestOptions, type PeerStream, type PeerStreamHandler,
  type PutMutableOptions, type PutResult, type PutValueOptions, type ValuesResult, type WatchEvent, type WatchOptions
} from '../oht/index.ts'
import type { AbortOptions } from '../core/index.ts'

type Installed = { kind: 'request', handler: PeerRequestHandler, options?: PeerProtocolOptions } | { kind: 'stream', handler: PeerStreamHandler, options?: PeerProtocolOptions }

/** A PeerNet that forwards to the current one and re-installs its handlers on a new one. */
export class StablePeerNet implements PeerNet {
  private current: PeerNet | undefined
  private readonly installed = new Map<string, Installed>()

  /** The node's PeerNet changed (built, rebuilt after a tor restart, or gone: undefined). */
  attach (net: PeerNet | undefined): void {
    this.current = net
    if (net === undefined) return
    for (const [protocol, h] of this.installed) {
      if (h.kind === 'request') net.handle(protocol, h.handler, h.options)
      else net.handleStream(protocol, h.handler, h.options)
    }
  }

  private net (): PeerNet {
    if (this.current === undefined) throw new OhtError('OHT_PEER_UNREACHABLE', 'this node has no network now (transport "local", stopped, or being rebuilt after a tor restart)')
    return this.current
  }

  async request (to: PeerContact, protocol: string, body: Uint8Array, options?: PeerRequestOptions): Promise<Uint8Array> {
    return await this.net().request(to, protocol, body, options)
  }

  async openStream (to: PeerContact, protocol: string, options?: AbortOptions): Promise<PeerStream> {
    return await this.net().openStream(to, protocol, options)
  }

  handle (protocol: string, handler: PeerRequestHandler, options?: PeerProtocolOptions): void {
    this.install(protocol, { kind: 'request', handler, ...(options !== undefined ? { options } : {}) })
    this.current?.handle(protocol, handler, options)
  }

  handleStream (protocol: string, handler: PeerStreamHandler, options?: PeerProtocolOptions): void {
    this.install(protocol, { kind: 'stream', handler, ...(options !== undefined ? { options } : {}) })
    this.current?.handleStream(protocol, handler, options)
  }

  private install (protocol: string, h: Installed): void {
    checkProtocolId(protocol)
    if (this.installed.has(protocol)) throw new OhtError('OHT_BAD_ARGUMENT', `protocol ${protocol} already has a handler`)
    this.installed.set(protocol, h)
  }

  unhandle (protocol: string): void {
    this.installed.delete(protocol)
    this.current?.unhandle(protocol)
  }
}

/**
 * An OhtNode facade over the node's current engine. `changed()` resolves when the engine is
 * replaced, so long-lived work (watches) can move to the new one.
 */
export class StableDht implements OhtNode {
  private waiters: Array<() => void> = []
  private stopped = false

  constructor (private readonly current: () => OhtNode | undefined) {}

  /** The engine was replaced (or the node stopped): wake whoever waits for it. */
  engineChanged (stopped = false): void {
    this.stopped ||= stopped
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private async changed (signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => { signal?.removeEventListener('abort', done); resolve() }
      this.waiters.push(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  private e (): OhtNode {
    const oht = this.current()
    if (oht === undefined) throw new NetError('NET_NOT_STARTED', 'the node is stopped (or being rebuilt after a tor restart): try again shortly')
    return oht
  }

  get id (): Uint8Array { return this.e().id }
  get contact (): PeerContact { return this.e().contact }
  get routingTable (): OhtNode['routingTable'] { return this.e().routingTable }
  get store (): OhtNode['store'] { return this.e().store }
  get stats (): OhtNode['stats'] { return this.e().stats }
  get pendingWork (): number { return this.current()?.pendingWork ?? 0 }
  async start (): Promise<void> { /* the SDK node starts and stops its engine */ }
  async stop (): Promise<void> { /* see start() */ }
  async bootstrap (contacts: PeerContact[], options?: AbortOptions): Promise<{ peers: number }> { return await this.e().bootstrap(contacts, options) }
  async putImmutable (value: Uint8Array, options?: { ttlMs?: number } & AbortOptions): Promise<PutResult> { return await this.e().putImmutable(value, options) }
  async putMutable (options: PutMutableOptions): Promise<PutResult> { return await this.e().putMutable(options) }
  async put (record: OhtRecord, options?: AbortOptions): Promise<PutResult> { return await this.e().put(record, options) }
  async get (key: Uint8Array, options?: AbortOptions): Promise<GetResult | undefined> { return await this.e().get(key, options) }
  async putValue (key: Uint8Array, options: PutValueOptions): Promise<PutResult> { return await this.e().putValue(key, options) }
  async deleteValue (key: Uint8Array, options: Omit<PutValueOptions, 'value' | 'deleted'>): Promise<PutResult> { return await this.e().deleteValue(key, options) }
  async getValues (key: Uint8Array, options?: GetValuesOptions): Promise<ValuesResult> { return await this.e().getValues(key, options) }
  lookup (target: Uint8Array, options?: LookupOptions): AsyncIterable<LookupEvent> { return this.e().lookup(target, options) }
  async findClosest (target: Uint8Array, options?: AbortOptions): Promise<PeerContact[]> { return await this.e().findClosest(target, options) }
  runMaintenance (): void { this.current()?.runMaintenance() }

  /** A watch that outlives engine rebuilds: when its engine goes, it resumes on the next one. */
  watch (key: Uint8Array, options: WatchOptions = {}): AsyncIterable<WatchEvent> {
    this.e() // fail at once on a stopped node, like the engine's own watch
    const self = this
    return {
      async * [Symbol.asyncIterator] () {
        while (!self.stopped && options.signal?.aborted !== true) {
          const oht = self.current()
          if (oht === undefined) { await self.changed(options.signal); continue }
          let failed: unknown
          try {
            for await (const e of oht.watch(key, options)) yield e
          } catch (err) { failed = err }
          const ended = self.stopped as boolean // set meanwhile by stop()
          if (ended || (options.signal?.aborted as boolean | undefined) === true) return
          if (self.current() === oht) {
            if (failed !== undefined) throw failed
            return
          }
        }
      }
    }
  }
}
