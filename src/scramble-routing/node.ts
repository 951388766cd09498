/**
 * A scramble node: the relay (when it opted in), the endpoint that receives scrambled messages
 * and SURB replies, and the client that sends them, over one PeerNet protocol, `/scramble/hop/1`.
 *
 * One hop request carries one packet (PACKET_BYTES) and is answered with a hop response
 * (hop-response.ts) once the rest of the path answered: a relay forwards with `request` and
 * waits, so the sender learns, with every relay's layer on top, where its packet's journey
 * ended. Relays add no mixing delay: this is low-latency onion routing inside Tor, not a
 * mixnet; a global observer of timing is out of scope, as it is for Tor.
 *
 * The handler never throws: malformed, replayed, rate-limited or unforwardable packets are
 * answered with `dropped`/`busy` or a report and counted in `stats`.
 */
import type { AbortOptions, Clock, Logger, Rng, TimerHandle } from '../core/index.ts'
import { bytesEqual, cryptoRng, isCodedError, logger, scopedSignal, toHex } from '../core/index.ts'
import { createRateLimiter, type PeerContact, type PeerNet, type RateLimiter } from '../oht/index.ts'
import { usableKey, signRelayDescriptor, type RelayDescriptor } from './descriptor.ts'
import type { RelayDirectory } from './directory.ts'
import { isScrambleError, ScrambleError } from './errors.ts'
import { MAX_RELAYS, PACKET_BYTES, SURB_ID_BYTES } from './geometry.ts'
import {
  createReport, decodeHopResponse, encodeHopResponse, readReport, wrapReport, type HopResponse, type ReportCode
} from './hop-response.ts'
import { EPOCH_MS_DEFAULT, EpochKeyRing, OVERLAP_MS_DEFAULT, type EpochKey, type KeyRingInit } from './key-ring.ts'
import { FailedRelays, selectPath } from './path.ts'
import { decodeInner, encodeInner } from './payload.ts'
import { createPacket, createSurb, decryptSurbReply, packetFromSurb, SURB_BYTES, unwrapPacket, type SphinxHop, type SurbToken, type Unwrapped } from './sphinx.ts'
import { createScrambleStats, type ScrambleStats } from './stats.ts'

export const HOP_PROTOCOL = '/scramble/hop/1'

/** Plain configuration of a scramble node; every field has a default. */
export interface ScrambleNodeInit {
  /** Addresses published in our descriptor, where relays reach us. @default [] */
  addrs?: string[]
  /** Opt in to forwarding packets for others (and be listed as a relay). @default false */
  relay?: boolean
  /** Packets per second this node takes in all (advertised, and enforced). @default 500 */
  capacity?: number
  /** Per-peer token bucket on the hop protocol. @default { ratePerSecond: 100, burst: 200 } */
  perPeer?: { ratePerSecond?: number, burst?: number }
  /**
   * Key epochs and replay filters. A filter's capacity defaults to `capacity` packets/s over
   * the key's life (epoch + overlap), at most 10,000,000.
   * @default { epochMs: 3600000, overlapMs: 900000 }
   */
  keys?: KeyRingInit
  /** How long a relay waits for the rest of the path. @default 30000 */
  forwardTimeoutMs?: number
  /** How long a send waits for one attempt's answer. @default 60000 */
  sendTimeoutMs?: number
  /** Paths tried per send (each with a fresh packet). @default 3 */
  maxAttempts?: number
  /** A relay that failed is left out of new paths this long. @default 600000 */
  avoidFailedForMs?: number
  /** Node-id prefix bits two hops of a path may not share. @default 8 */
  prefixBits?: number
  /** Refuse paths that cannot be diverse (instead of marking them). @default false */
  strictDiversity?: boolean
  /** Hint naming the tor client this node sits behind (published; diversity). @default empty */
  torClient?: Uint8Array
  /** Packets being forwarded or delivered at once; more are answered `busy`. @default 1024 */
  maxInFlight?: number
  /** SURBs waiting for their reply at once. @default 1024 */
  maxPendingReplies?: number
  /** How long a SURB waits for its reply (capped by its key's life). @default 300000 */
  replyTimeoutMs?: number
}

/** What a scramble node is given to work with. */
export interface ScrambleNodeComponents {
  /** The node's Ed25519 identity (the one PeerNet authenticates). */
  identity: { publicKey: Uint8Array, sign(message: Uint8Array): Uint8Array }
  peers: PeerNet
  directory: RelayDirectory
  clock: Clock
  /** Path choices and jitter (seeded in the simulator). */
  rng: Rng
  /** Key material: ephemeral scalars, epoch keys, SURB ids. @default cryptoRng */
  keyRng?: Rng
  /** A node's contact from its identity. @default its descriptor's addresses, from `directory` */
  resolve?: (identity: Uint8Array, options?: AbortOptions) => Promise<PeerContact | undefined>
  log?: Logger
}

export interface SendOptions extends AbortOptions {
  /** The recipient: its contact (its descriptor is fetched) or its descriptor. */
  recipient: PeerContact | RelayDescriptor
  /** Extra relays, 0..3. */
  hops: number
  /** Attach a SURB so the recipient can answer once. @default false */
  reply?: boolean
  /** Relays on the SURB's path. @default hops */
  replyHops?: number
}

export interface SendResult {
  /** Attempts made (1 = the first path worked). */
  attempts: number
  /** Relay identities of the path that worked, in order. */
  path: Uint8Array[]
  /** False when the relays known could not give a diverse path. */
  diverse: boolean
  /** With `reply`: the recipient's answer through the SURB. Rejects SCRAMBLE_REPLY_TIMEOUT. */
  reply?: Promise<Uint8Array>
}

/** A message that arrived for this node. */
export interface InboundMessage {
  message: Uint8Array
  /** True when the sender attached a SURB. */
  canReply: boolean
  /** Answers once through the sender's SURB; SCRAMBLE_SURB_USED on a second call. */
  reply(message: Uint8Array, options?: AbortOptions): Promise<void>
}

export type MessageHandler = (msg: InboundMessage, options: AbortOptions) => void | Promise<void>

export interface ScrambleNode {
  readonly identity: Uint8Array
  /** Installs the hop handler, makes the epoch keys and publishes our descriptor. */
  start(options?: AbortOptions): Promise<void>
  /** Removes the handler, cancels timers, fails waiting replies, destroys every key. */
  stop(): Promise<void>
  /** Sends `message` to `recipient` through `hops` relays, retrying on fresh paths. */
  send(message: Uint8Array, options: SendOptions): Promise<SendResult>
  /** Installs the consumer of messages for this node (one; the last call wins). */
  onMessage(handler: MessageHandler): void
  /** Signs and publishes our descriptor now (start() and every epoch do it). */
  publishDescriptor(options?: AbortOptions): Promise<RelayDescriptor>
  /** The descriptor we publish now (unsigned view). */
  descriptor(): RelayDescriptor
  readonly stats: ScrambleStats
}

interface PendingReply {
  token: SurbToken
  resolve: (m: Uint8Array) => void
  reject: (err: Error) => void
  timer: TimerHandle
}

const DROPPED: HopResponse = { kind: 'dropped' }
const BUSY: HopResponse = { kind: 'busy' }

export class ScrambleNodeImpl implements ScrambleNode {
  readonly identity: Uint8Array
  readonly stats = createScrambleStats()
  private readonly peers: PeerNet
  private readonly directory: RelayDirectory
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly keyRng: Rng
  private readonly log: Logger
  private readonly ring: EpochKeyRing
  private readonly perPeer: RateLimiter
  private readonly total: RateLimiter
  private readonly failed: FailedRelays
  private readonly pending = new Map<string, PendingReply>()
  private readonly contacts = new Map<string, { contact: PeerContact, until: number }>()
  private handler: MessageHandler | undefined
  private started = false
  private inFlight = 0
  private publishTimer: TimerHandle | undefined
  private lastSeq = 0
  private readonly stopController = new AbortController()
  private readonly cfg: Required<Omit<ScrambleNodeInit, 'keys' | 'perPeer' | 'torClient'>> & { torClient: Uint8Array }

  constructor (init: ScrambleNodeInit, private readonly components: ScrambleNodeComponents) {
    this.identity = components.identity.publicKey
    this.peers = components.peers
    this.directory = components.directory
    this.clock = components.clock
    this.rng = components.rng
    this.keyRng = components.keyRng ?? cryptoRng
    this.log = components.log ?? logger('scramble:node')
    this.cfg = {
      addrs: init.addrs ?? [],
      relay: init.relay ?? false,
      capacity: init.capacity ?? 500,
      forwardTimeoutMs: init.forwardTimeoutMs ?? 30_000,
      sendTimeoutMs: init.sendTimeoutMs ?? 60_000,
      maxAttempts: init.maxAttempts ?? 3,
      avoidFailedForMs: init.avoidFailedForMs ?? 600_000,
      prefixBits: init.prefixBits ?? 8,
      strictDiversity: init.strictDiversity ?? false,
      torClient: init.torClient ?? new Uint8Array(0),
      maxInFlight: init.maxInFlight ?? 1024,
      maxPendingReplies: init.maxPendingReplies ?? 1024,
      replyTimeoutMs: init.replyTimeoutMs ?? 300_000
    }
    if (!Number.isInteger(this.cfg.maxAttempts) || this.cfg.maxAttempts < 1) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'maxAttempts must be a positive integer')
    if (!Number.isInteger(this.cfg.capacity) || this.cfg.capacity < 1) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'capacity must be a positive integer (packets per second)')
    // A key's replay filter holds what the node may take while the key lives (its epoch and
    // the overlap) at its advertised capacity, unless told otherwise.
    const epochMs = init.keys?.epochMs ?? EPOCH_MS_DEFAULT
    const overlapMs = init.keys?.overlapMs ?? OVERLAP_MS_DEFAULT
    const replayCapacity = init.keys?.replay?.capacity ?? Math.min(10_000_000, Math.ceil(this.cfg.capacity * (epochMs + overlapMs) / 1000))
    this.ring = new EpochKeyRing(this.clock, this.keyRng, { ...init.keys, replay: { ...init.keys?.replay, capacity: replayCapacity } })
    this.perPeer = createRateLimiter(this.clock, { ratePerSecond: init.perPeer?.ratePerSecond ?? 100, burst: init.perPeer?.burst ?? 200 })
    this.total = createRateLimiter(this.clock, { ratePerSecond: this.cfg.capacity, burst: this.cfg.capacity * 2, maxPeers: 1 })
    this.failed = new FailedRelays(this.clock, this.cfg.avoidFailedForMs)
  }

  onMessage (handler: MessageHandler): void { this.handler = handler }

  async start (options: AbortOptions = {}): Promise<void> {
    if (this.started) return
    this.ring.refresh()
    this.peers.handle(HOP_PROTOCOL, async (from, body, opts) => await this.handle(from, body, opts), {
      maxMessageBytes: PACKET_BYTES,
      // Our own token buckets decide; the transport's concurrency cap only bounds a flood.
      maxInboundPerPeer: 256,
      inboundTimeoutMs: this.cfg.forwardTimeoutMs + 5_000
    })
    this.started = true
    try {
      await this.publishDescriptor(options)
    } catch (err) {
      this.log.warn('descriptor not published: %s', err instanceof Error ? err.message : String(err))
    }
    this.schedulePublish()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopController.abort()
    this.publishTimer?.cancel()
    this.peers.unhandle(HOP_PROTOCOL)
    for (const p of this.pending.values()) {
      p.timer.cancel()
      for (const s of p.token.secrets) s.fill(0)
      p.reject(new ScrambleError('SCRAMBLE_NOT_STARTED', 'the scramble node stopped before the reply came'))
    }
    this.pending.clear()
    this.ring.destroy()
  }

  descriptor (): RelayDescriptor {
    const now = this.clock.now()
    const epochMs = this.ring.epochMs
    const keys = this.ring.published(now)
    const e = this.ring.epochAt(now)
    return {
      identity: this.identity,
      relay: this.cfg.relay,
      capacity: this.cfg.capacity,
      epochMs,
      validFrom: now,
      // Through the end of the next epoch: its key is in the descriptor too.
      validUntil: (e + 2) * epochMs,
      keys,
      torClient: this.cfg.torClient,
      addrs: this.cfg.addrs
    }
  }

  async publishDescriptor (options: AbortOptions = {}): Promise<RelayDescriptor> {
    this.requireStarted()
    const d = this.descriptor()
    const seq = Math.max(this.lastSeq + 1, d.validFrom)
    this.lastSeq = seq
    await this.directory.publish(signRelayDescriptor(this.components.identity, d, seq), options)
    return { ...d, seq }
  }

  private schedulePublish (): void {
    if (!this.started) return
    const now = this.clock.now()
    const next = (this.ring.epochAt(now) + 1) * this.ring.epochMs
    // A little after the boundary, spread so relays do not all publish in the same second.
    const jitter = this.rng.int(Math.min(60_000, Math.floor(this.ring.overlapMs / 2)) + 1)
    this.publishTimer = this.clock.setTimeout(() => {
      this.publishDescriptor({ signal: this.stopController.signal })
        .catch((err: unknown) => { if (this.started) this.log.warn('descriptor republish failed: %s', err instanceof Error ? err.message : String(err)) })
        .finally(() => { this.schedulePublish() })
    }, next - now + jitter)
    this.publishTimer.unref()
  }

  private requireStarted (): void {
    if (!this.started) throw new ScrambleError('SCRAMBLE_NOT_STARTED', 'the scramble node is not started: call start() first')
  }

  // ------------------------------------------------------------------ relay / endpoint side

  private async handle (from: PeerContact, body: Uint8Array, options: AbortOptions): Promise<Uint8Array> {
    this.stats.packetsIn++
    if (!this.perPeer.take(toHex(from.publicKey)) || !this.total.take(0)) {
      this.stats.dropped.rateLimited++
      return encodeHopResponse(BUSY)
    }
    if (this.inFlight >= this.cfg.maxInFlight) {
      this.stats.dropped.overloaded++
      return encodeHopResponse(BUSY)
    }
    this.inFlight++
    try {
      return encodeHopResponse(await this.process(body, options))
    } catch (err) {
      // process() answers every expected failure itself; this is the last guard of "never throws".
      this.log.error('hop handler failed: %s', err instanceof Error ? err.message : String(err))
      return encodeHopResponse(DROPPED)
    } finally {
      this.inFlight--
    }
  }

  private async process (body: Uint8Array, options: AbortOptions): Promise<HopResponse> {
    let keys: EpochKey[]
    try { keys = this.ring.accepting() } catch { return DROPPED }
    let u: Unwrapped
    try {
      u = unwrapPacket(body, keys.map(k => k.privateKey), (i, tag) => {
        const verdict = keys[i].filter.checkAndAdd(tag)
        if (verdict === 'replay') throw new ScrambleError('SCRAMBLE_REPLAY', 'packet seen before')
        if (verdict === 'full') throw new ScrambleError('SCRAMBLE_REPLAY_FILTER_FULL', 'replay filter full')
      })
    } catch (err) {
      this.countDrop(err)
      return DROPPED
    }
    try {
      if (u.type === 'forward') return await this.forward(u, options)
      if (u.type === 'deliver') return await this.deliver(u, options)
      return this.surbReply(u)
    } finally {
      u.responseKey.fill(0)
    }
  }

  private countDrop (err: unknown): void {
    const d = this.stats.dropped
    const code = isScrambleError(err) ? err.code : undefined
    if (code === 'SCRAMBLE_BAD_MAC') d.badMac++
    else if (code === 'SCRAMBLE_BAD_POINT') d.badPoint++
    else if (code === 'SCRAMBLE_REPLAY') d.replay++
    else if (code === 'SCRAMBLE_REPLAY_FILTER_FULL') d.replayFilterFull++
    else if (code === 'SCRAMBLE_BAD_COMMAND') d.badCommand++
    else if (code === 'SCRAMBLE_BAD_PAYLOAD') d.badPayload++
    else d.malformed++
    if (code === undefined) this.log.warn('unexpected unwrap failure: %s', err instanceof Error ? err.message : String(err))
  }

  private async forward (u: Extract<Unwrapped, { type: 'forward' }>, options: AbortOptions): Promise<HopResponse> {
    if (!this.cfg.relay) { this.stats.dropped.notRelay++; return DROPPED }
    if (bytesEqual(u.nextHop, this.identity)) { this.stats.dropped.badCommand++; return DROPPED }
    const rk = u.responseKey
    const fail = (code: ReportCode): HopResponse => ({ kind: 'report', report: createReport(rk, code) })
    let contact: PeerContact | undefined
    try { contact = await this.contactOf(u.nextHop, options) } catch { contact = undefined }
    if (contact === undefined) { this.stats.forwardFailures.unreachable++; return fail('next-hop-unreachable') }
    let answer: Uint8Array
    try {
      answer = await this.peers.request(contact, HOP_PROTOCOL, u.packet, { signal: options.signal, timeoutMs: this.cfg.forwardTimeoutMs })
    } catch (err) {
      // Our upstream gave up (its signal aborted ours): nobody reads this answer.
      if (options.signal?.aborted === true) return fail('next-hop-timeout')
      if (isCodedError(err, 'CORE_TIMEOUT')) { this.stats.forwardFailures.timeout++; return fail('next-hop-timeout') }
      if (isCodedError(err, 'OHT_RATE_LIMITED')) { this.stats.forwardFailures.busy++; return fail('next-hop-busy') }
      this.stats.forwardFailures.unreachable++
      return fail('next-hop-unreachable')
    }
    this.stats.forwarded++
    let r: HopResponse
    try { r = decodeHopResponse(answer) } catch { this.stats.forwardFailures.refused++; return fail('next-hop-refused') }
    if (r.kind === 'report') return { kind: 'report', report: wrapReport(rk, r.report) }
    if (r.kind === 'busy') { this.stats.forwardFailures.busy++; return fail('next-hop-busy') }
    this.stats.forwardFailures.refused++
    return fail('next-hop-refused')
  }

  private async deliver (u: Extract<Unwrapped, { type: 'deliver' }>, options: AbortOptions): Promise<HopResponse> {
    const report = (code: ReportCode): HopResponse => ({ kind: 'report', report: createReport(u.responseKey, code) })
    let inner
    try { inner = decodeInner(u.body) } catch { this.stats.rejected++; return report('rejected') }
    const handler = this.handler
    if (handler === undefined) { this.stats.rejected++; return report('rejected') }
    const surb = inner.surb
    let used = false
    const msg: InboundMessage = {
      message: inner.message,
      canReply: surb !== undefined,
      reply: async (message, opts = {}) => {
        if (surb === undefined) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'the sender attached no SURB: this message cannot be answered')
        if (used) throw new ScrambleError('SCRAMBLE_SURB_USED', 'this message was answered already: a SURB is single-use')
        used = true
        await this.sendReply(surb, message, opts)
      }
    }
    try {
      await handler(msg, { signal: options.signal })
    } catch (err) {
      this.stats.rejected++
      this.log('consumer refused a message: %s', err instanceof Error ? err.message : String(err))
      return report('rejected')
    }
    this.stats.delivered++
    return report('delivered')
  }

  private surbReply (u: Extract<Unwrapped, { type: 'surb-reply' }>): HopResponse {
    const report = (code: ReportCode): HopResponse => ({ kind: 'report', report: createReport(u.responseKey, code) })
    const id = toHex(u.surbId)
    const p = this.pending.get(id)
    if (p === undefined) { this.stats.unknownSurb++; return report('unknown-surb') }
    this.pending.delete(id)
    p.timer.cancel()
    try {
      const inner = decodeInner(decryptSurbReply(p.token, u.payload))
      this.stats.repliesReceived++
      p.resolve(inner.message)
      return report('delivered')
    } catch (err) {
      this.stats.dropped.badPayload++
      p.reject(new ScrambleError('SCRAMBLE_BAD_PAYLOAD', 'the reply was changed on its way back', { cause: err }))
      return report('rejected')
    }
  }

  private async contactOf (identity: Uint8Array, options: AbortOptions = {}): Promise<PeerContact | undefined> {
    const id = toHex(identity)
    const now = this.clock.now()
    const hit = this.contacts.get(id)
    if (hit !== undefined && hit.until > now) return hit.contact
    let contact: PeerContact | undefined
    if (this.components.resolve !== undefined) {
      contact = await this.components.resolve(identity, options)
    } else {
      const d = await this.directory.get(identity, options)
      contact = d === undefined || d.addrs.length === 0 ? undefined : { publicKey: d.identity, addrs: d.addrs }
    }
    if (contact !== undefined) {
      if (this.contacts.size >= 4096) this.contacts.delete(this.contacts.keys().next().value as string)
      this.contacts.set(id, { contact, until: now + 600_000 })
    }
    return contact
  }

  private async sendReply (surb: Uint8Array, message: Uint8Array, options: AbortOptions): Promise<void> {
    this.requireStarted()
    const { packet, firstHop } = packetFromSurb(surb, encodeInner({ message }))
    const contact = await this.contactOf(firstHop, options)
    if (contact === undefined) throw new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the first hop of the SURB cannot be found in the directory')
    let answer: Uint8Array
    try {
      answer = await this.peers.request(contact, HOP_PROTOCOL, packet, { signal: options.signal, timeoutMs: this.cfg.sendTimeoutMs })
    } catch (err) {
      if (isCodedError(err, 'CORE_ABORTED')) throw err
      throw new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the reply could not be handed to the SURB\'s first hop', { cause: err })
    }
    const r = decodeHopResponse(answer)
    // The report is for the SURB's maker; we cannot read it, only see the first hop took it.
    if (r.kind !== 'report') throw new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `the SURB's first hop answered ${r.kind} (a SURB is single-use: it cannot be tried again)`)
    this.stats.sent.repliesSent++
  }

  // ------------------------------------------------------------------ client side

  async send (message: Uint8Array, options: SendOptions): Promise<SendResult> {
    this.requireStarted()
    const hops = options.hops
    const replyHops = options.replyHops ?? hops
    for (const [name, v] of [['hops', hops], ['replyHops', replyHops]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_RELAYS) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `${name} must be 0 to ${MAX_RELAYS}, got ${String(v)}`)
    }
    if (!(message instanceof Uint8Array)) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', 'message must be a Uint8Array')
    // Size check before any network work: the same error whatever the path.
    encodeInner({ message, ...(options.reply === true ? { surb: new Uint8Array(SURB_BYTES) } : {}) })
    this.stats.sent.messages++
    const recipient = await this.recipientDescriptor(options.recipient, options)
    const given = options.recipient
    const recipientContact: PeerContact = !('keys' in given) && given.addrs.length > 0 ? given : { publicKey: recipient.identity, addrs: recipient.addrs }
    let lastError: unknown
    for (let attempt = 1; attempt <= this.cfg.maxAttempts; attempt++) {
      this.stats.sent.attempts++
      const now = this.clock.now()
      const relays = hops + (options.reply === true ? replyHops : 0) > 0 ? await this.directory.list(options) : []
      const pathReq = {
        relays,
        endpoints: [this.identity, recipient.identity],
        endpointTorClients: [this.cfg.torClient, recipient.torClient],
        avoid: this.failed.current(),
        now,
        rng: this.rng,
        prefixBits: this.cfg.prefixBits,
        strict: this.cfg.strictDiversity
      }
      const forward = selectPath({ ...pathReq, hops })
      const rkey = usableKey(recipient, now)
      if (rkey === undefined) throw new ScrambleError('SCRAMBLE_NO_RECIPIENT_KEY', 'the recipient\'s descriptor has no key for the current epoch: it has not republished')
      const sphinxPath: SphinxHop[] = [
        ...forward.relays.map(d => ({ nodeId: d.identity, publicKey: (usableKey(d, now) as { publicKey: Uint8Array }).publicKey })),
        { nodeId: recipient.identity, publicKey: rkey.publicKey }
      ]
      let surbId: string | undefined
      let reply: Promise<Uint8Array> | undefined
      let surb: Uint8Array | undefined
      if (options.reply === true) {
        const made = this.makeSurb({ ...pathReq, hops: replyHops })
        surbId = made.id
        reply = made.reply
        surb = made.surb
        if (!made.diverse) this.stats.sent.nonDiversePaths++
      }
      if (!forward.diverse) this.stats.sent.nonDiversePaths++
      const built = createPacket(sphinxPath, encodeInner({ message, ...(surb !== undefined ? { surb } : {}) }), this.keyRng)
      const first = forward.relays.length > 0 ? { publicKey: forward.relays[0].identity, addrs: forward.relays[0].addrs } : recipientContact
      let outcome: Awaited<ReturnType<ScrambleNodeImpl['attempt']>>
      try {
        outcome = await this.attempt(first, built.packet, built.responseKeys, sphinxPath, options)
      } catch (err) {
        // Aborted by the caller: the SURB of this attempt will never be answered.
        if (surbId !== undefined) this.dropPending(surbId, err)
        throw err
      } finally {
        for (const k of built.responseKeys) k.fill(0)
      }
      if (outcome.ok) {
        this.stats.sent.delivered++
        return { attempts: attempt, path: forward.relays.map(d => d.identity), diverse: forward.diverse, ...(reply !== undefined ? { reply } : {}) }
      }
      if (surbId !== undefined) this.dropPending(surbId, outcome.error)
      lastError = outcome.error
      if (outcome.final) break
    }
    this.stats.sent.failed++
    if (isScrambleError(lastError) && lastError.code !== 'SCRAMBLE_DELIVERY_FAILED') throw lastError
    throw new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `the message was not delivered after ${this.cfg.maxAttempts} attempt(s): ${lastError instanceof Error ? lastError.message : String(lastError)}`, { cause: lastError })
  }

  private async recipientDescriptor (r: PeerContact | RelayDescriptor, options: AbortOptions): Promise<RelayDescriptor> {
    if ('keys' in r) return r
    const d = await this.directory.get(r.publicKey, options)
    if (d === undefined) throw new ScrambleError('SCRAMBLE_NO_RECIPIENT_KEY', 'the recipient has published no scramble descriptor: it cannot receive scrambled messages yet')
    return d
  }

  private makeSurb (req: Parameters<typeof selectPath>[0]): { id: string, surb: Uint8Array, reply: Promise<Uint8Array>, diverse: boolean } {
    if (this.pending.size >= this.cfg.maxPendingReplies) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `${this.pending.size} replies are already awaited: wait for them or raise maxPendingReplies`)
    const back = selectPath(req)
    const own = this.ring.key(this.ring.epochAt(req.now))
    if (own === undefined) throw new ScrambleError('SCRAMBLE_NOT_STARTED', 'no key for the current epoch')
    const hops: SphinxHop[] = [
      ...back.relays.map(d => ({ nodeId: d.identity, publicKey: (usableKey(d, req.now) as { publicKey: Uint8Array }).publicKey })),
      { nodeId: this.identity, publicKey: own.publicKey }
    ]
    const idBytes = this.keyRng.bytes(SURB_ID_BYTES)
    const { surb, token } = createSurb(hops, idBytes, this.keyRng)
    const id = toHex(idBytes)
    // The SURB dies with the key of its terminal hop: wait no longer than that key lives.
    const keyEnds = (own.epoch + 1) * this.ring.epochMs + this.ring.overlapMs
    const wait = Math.max(0, Math.min(this.cfg.replyTimeoutMs, keyEnds - req.now))
    let resolve!: (m: Uint8Array) => void
    let reject!: (e: Error) => void
    const reply = new Promise<Uint8Array>((res, rej) => { resolve = res; reject = rej })
    // A caller that never awaits the reply must not crash the process when it times out.
    reply.catch(() => {})
    const timer = this.clock.setTimeout(() => {
      this.dropPending(id, new ScrambleError('SCRAMBLE_REPLY_TIMEOUT', `no reply came through the SURB within ${Math.round(wait / 1000)} s`))
    }, wait)
    timer.unref()
    this.pending.set(id, { token, resolve, reject, timer })
    return { id, surb, reply, diverse: back.diverse }
  }

  private dropPending (id: string, err: unknown): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    p.timer.cancel()
    for (const s of p.token.secrets) s.fill(0)
    p.reject(isScrambleError(err) && err.code === 'SCRAMBLE_REPLY_TIMEOUT' ? err : new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the message carrying this SURB was not delivered', { cause: err }))
  }

  /** One attempt: send the packet to its first hop and read how it ended. */
  private async attempt (first: PeerContact, packet: Uint8Array, responseKeys: Uint8Array[], path: SphinxHop[], options: AbortOptions): Promise<{ ok: true } | { ok: false, final: boolean, error: Error }> {
    const terminal = path.length - 1
    const blame = (index: number, error: ScrambleError): { ok: false, final: boolean, error: Error } => {
      if (index >= terminal) {
        return { ok: false, final: true, error: new ScrambleError('SCRAMBLE_RECIPIENT_UNREACHABLE', `the recipient could not be reached: ${error.message}`, { cause: error }) }
      }
      this.failed.mark(path[index].nodeId)
      return { ok: false, final: false, error }
    }
    const scoped = scopedSignal(this.clock, undefined, options.signal, this.stopController.signal)
    let answer: Uint8Array
    try {
      answer = await this.peers.request(first, HOP_PROTOCOL, packet, { signal: scoped.signal, timeoutMs: this.cfg.sendTimeoutMs })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      return blame(0, new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `the first hop failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
    } finally {
      scoped.clear()
    }
    let r: HopResponse
    try { r = decodeHopResponse(answer) } catch (err) { return blame(0, new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the first hop answered garbage', { cause: err })) }
    if (r.kind !== 'report') return blame(0, new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `the first hop answered ${r.kind}`))
    const read = readReport(responseKeys, r.report)
    if (read === undefined) {
      // Some relay changed the report: we cannot tell which. Try a fresh path.
      return { ok: false, final: false, error: new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the hop report was unreadable (changed on the way back)') }
    }
    if (read.code === 'delivered' && read.hop === terminal) return { ok: true }
    if (read.code === 'rejected' && read.hop === terminal) {
      return { ok: false, final: true, error: new ScrambleError('SCRAMBLE_DELIVERY_FAILED', 'the recipient refused the message') }
    }
    if (read.hop < terminal && read.code.startsWith('next-hop-')) {
      return blame(read.hop + 1, new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `hop ${read.hop + 1} of the path failed (${read.code})`))
    }
    return { ok: false, final: false, error: new ScrambleError('SCRAMBLE_DELIVERY_FAILED', `hop ${read.hop} reported ${read.code}`) }
  }
}
