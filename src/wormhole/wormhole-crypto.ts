/** The class behind createWormholeCrypto() (index.ts is the contract). */
import type { AbortOptions } from '../core/abort.ts'
import { throwIfAborted } from '../core/abort.ts'
import { bytesEqual, concatBytes, toHex, wipe } from '../core/bytes.ts'
import { DAY, type Clock } from '../core/clock.ts'
import { logger, type Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import type { MutableRecord } from '../oht/index.ts'
import { sameIdentity, type ContactCard } from './contact-card.ts'
import type { ControlMessage, GroupEvent, GroupInfo, OpenedGroupMessage, OpenedMessage, OutgoingMessage, SealedMessage, SealOptions, SessionInfo, WormholeCrypto, WormholeCryptoComponents, WormholeCryptoInit } from './index.ts'
import { openEnvelope, openGroupEnvelope, sealEnvelope, sealGroupEnvelope, MESSAGE_ID_BYTES, type SealedContent } from './envelope.ts'
import { WormholeError, wormholeError } from './errors.ts'
import { decodeGroupUpdate, encodeGroupUpdate, GroupState, groupEnvelopeSecret, MAX_GROUP_MEMBERS, type GroupUpdate } from './groups.ts'
import type { WormholeIdentity } from './identity.ts'
import { KeyedLock } from './lock.ts'
import { groupMailbox, introMailbox, introSlot, mailboxEpoch, mailboxRoot, mailboxSlot, pairwiseMailbox, type MailboxSlot } from './mailbox.ts'
import { decodeMessage, encodeMessage, CONVERSATION_ID_BYTES, type WormholeMessage } from './message.ts'
import { decodePrekeyBundle, prekeyBundleRecord, PrekeyStore, type PrekeyBundle, type PrekeyInit } from './prekeys.ts'
import { Ratchet, RATCHET_DEFAULTS, type RatchetLimits } from './ratchet.ts'
import { createReceipt, verifyReceipt, type Receipt } from './receipts.ts'
import { safetyNumber } from './safety-number.ts'
import { decodeDistribution, encodeDistribution, parseGroupMessage, SenderKeyChain, GROUP_ID_BYTES } from './sender-keys.ts'
import { decodeSessionRecord, destroyState, encodeSessionRecord, type SessionRecord, type SessionState } from './sessions.ts'
import type { SessionStore } from './session-store.ts'
import { decodePrekeyMessage, encodePrekeyMessage, x3dhInitiate, x3dhRespond } from './x3dh.ts'

const PREKEYS = 'prekeys'
const sessionName = (hex: string): string => `session.${hex}`
const groupName = (hex: string): string => `group.${hex}`
const MAX_PENDING_GROUPS = 16
/** Session records kept decoded in memory (the rest are read from the store when needed). */
const MAX_CACHED_RECORDS = 1024
const MAX_PENDING_PER_GROUP = MAX_GROUP_MEMBERS

function info (g: GroupState): GroupInfo {
  return { groupId: Uint8Array.from(g.groupId), name: g.name, admin: g.admin, epoch: g.epoch, members: [...g.members] }
}

export class WormholeCryptoImpl implements WormholeCrypto {
  readonly identity: WormholeIdentity
  readonly card: ContactCard
  private readonly store: SessionStore
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly limits: Required<RatchetLimits>
  private readonly maxStates: number
  private readonly epochMs: number
  private readonly prekeyInit: PrekeyInit
  private prekeys!: PrekeyStore
  private readonly records = new Map<string, SessionRecord>()
  /** Contacts with an operation under way: their cached record is not dropped meanwhile. */
  private readonly busy = new Set<string>()
  private readonly groupCache = new Map<string, GroupState>()
  /** Sender keys that arrived before their group's update: group hex → (member, distribution). */
  private readonly pendingKeys = new Map<string, Array<{ member: Uint8Array, bytes: Uint8Array }>>()
  private readonly lock = new KeyedLock()
  private readonly log: Logger
  private closed = false

  constructor (init: WormholeCryptoInit, c: WormholeCryptoComponents) {
    this.identity = c.identity
    this.card = c.card
    this.store = c.store
    this.clock = c.clock
    this.rng = c.rng
    this.limits = {
      maxSkip: init.maxSkip ?? RATCHET_DEFAULTS.maxSkip,
      maxSkippedKeys: init.maxSkippedKeys ?? RATCHET_DEFAULTS.maxSkippedKeys,
      maxPreviousChains: init.maxPreviousChains ?? RATCHET_DEFAULTS.maxPreviousChains
    }
    this.maxStates = init.maxSessionsPerContact ?? 4
    if (!Number.isInteger(this.maxStates) || this.maxStates < 1 || this.maxStates > 16) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'maxSessionsPerContact must be 1..16')
    this.epochMs = init.epochMs ?? DAY
    mailboxEpoch(0, this.epochMs)
    this.prekeyInit = init
    this.log = c.log ?? logger('wormhole:crypto')
    if (!sameIdentity(c.card, c.identity)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'the card given is not this identity\'s')
  }

  async start (options: AbortOptions): Promise<void> {
    const bytes = await this.store.get(PREKEYS, options)
    const now = this.clock.now()
    if (bytes === undefined) {
      this.prekeys = PrekeyStore.create(this.identity, this.prekeyInit, now, this.rng)
      await this.savePrekeys(options)
    } else {
      try {
        this.prekeys = PrekeyStore.decode(bytes, this.identity, this.prekeyInit, this.rng)
      } catch (err) {
        throw wormholeError('WORMHOLE_STORE_CORRUPT', `stored prekeys are unreadable: ${(err as Error).message}`, err)
      } finally {
        bytes.fill(0)
      }
    }
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw wormholeError('WORMHOLE_CLOSED', 'this wormhole instance is closed')
    throwIfAborted(options?.signal)
  }

  private async savePrekeys (options?: AbortOptions): Promise<void> {
    const bytes = this.prekeys.encode()
    try { await this.store.put(PREKEYS, bytes, options) } finally { bytes.fill(0) }
  }

  // ------------------------------------------------------------ prekeys

  prekeyBundle (): PrekeyBundle {
    this.check()
    return this.prekeys.bundle()
  }

  prekeyRecord (options: { ttlMs: number, seq?: number }): MutableRecord {
    return prekeyBundleRecord(this.identity, this.prekeyBundle(), options)
  }

  async maintainPrekeys (options: AbortOptions = {}): Promise<{ changed: boolean, bundle: PrekeyBundle }> {
    this.check(options)
    return await this.lock.run(PREKEYS, async () => {
      const changed = this.prekeys.maintain(this.clock.now())
      if (changed) {
        await this.guardPrekeys(async () => { await this.savePrekeys(options) })
        this.log('prekeys changed: signed prekey %d, %d one-time prekeys listed', this.prekeys.bundle().signedPrekey.id, this.prekeys.bundle().oneTimePrekeys.length)
      }
      return { changed, bundle: this.prekeys.bundle() }
    })
  }

  /** Runs a prekey change; on failure the persisted prekeys are reloaded (memory never runs ahead of disk). */
  private async guardPrekeys<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      const bytes = await this.store.get(PREKEYS).catch(() => undefined)
      if (bytes !== undefined) {
        this.prekeys.destroy()
        this.prekeys = PrekeyStore.decode(bytes, this.identity, this.prekeyInit, this.rng)
        bytes.fill(0)
      }
      throw err
    }
  }

  // ------------------------------------------------------------ sessions

  private async record (hex: string, options?: AbortOptions): Promise<SessionRecord> {
    const cached = this.records.get(hex)
    if (cached !== undefined) {
      // Most recently used last, so the cache drops the least recently used first.
      this.records.delete(hex)
      this.records.set(hex, cached)
      return cached
    }
    const bytes = await this.store.get(sessionName(hex), options)
    // An unknown sender's empty record is not cached: envelopes naming made-up senders must not
    // fill memory. It joins the cache when it is first saved.
    if (bytes === undefined) return { states: [] }
    let rec: SessionRecord
    try {
      rec = decodeSessionRecord(bytes, this.rng, this.limits)
    } catch (err) {
      throw wormholeError('WORMHOLE_STORE_CORRUPT', `stored sessions with ${hex.slice(0, 16)}… are unreadable: ${(err as Error).message}`, err)
    } finally {
      bytes.fill(0)
    }
    this.cache(hex, rec)
    return rec
  }

  /** Caches a record, dropping (and wiping) the least recently used ones not in use beyond the bound. */
  private cache (hex: string, rec: SessionRecord): void {
    this.records.set(hex, rec)
    if (this.records.size <= MAX_CACHED_RECORDS) return
    for (const [k, r] of this.records) {
      if (this.records.size <= MAX_CACHED_RECORDS) break
      if (this.busy.has(k)) continue
      this.records.delete(k)
      for (const st of r.states) destroyState(st)
    }
  }

  private async saveRecord (hex: string, rec: SessionRecord, options?: AbortOptions): Promise<void> {
    const bytes = encodeSessionRecord(rec)
    try { await this.store.put(sessionName(hex), bytes, options) } finally { bytes.fill(0) }
    if (this.records.get(hex) !== rec) this.cache(hex, rec)
  }

  private evict (hex: string): void {
    const rec = this.records.get(hex)
    if (rec === undefined) return
    this.records.delete(hex)
    for (const s of rec.states) destroyState(s)
  }

  /**
   * Runs `fn` on `peer`'s record under its lock. `fn` calls `touch()` before it changes the
   * record; if it throws after that, the cached record is dropped (wiped) so memory never runs
   * ahead of what was persisted, and the next call reloads it. A refused message changes nothing
   * and costs no reload.
   */
  private async withRecord<T> (peer: Uint8Array, options: AbortOptions | undefined, fn: (rec: SessionRecord, hex: string, touch: () => void) => Promise<T>): Promise<T> {
    this.check(options)
    if (!(peer instanceof Uint8Array) || peer.byteLength !== 32) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'a contact is named by its 32-byte identity key')
    const hex = toHex(peer)
    return await this.lock.run(hex, async () => {
      this.busy.add(hex)
      let touched = false
      let rec: SessionRecord | undefined
      try {
        rec = await this.record(hex, options)
        return await fn(rec, hex, () => { touched = true })
      } catch (err) {
        if (touched && rec !== undefined) {
          if (this.records.get(hex) === rec) this.evict(hex)
          else for (const st of rec.states) destroyState(st)
        }
        throw err
      } finally {
        this.busy.delete(hex)
      }
    })
  }

  private front (rec: SessionRecord, s: SessionState): void {
    const i = rec.states.indexOf(s)
    if (i > 0) { rec.states.splice(i, 1); rec.states.unshift(s) }
    while (rec.states.length > this.maxStates) {
      const old = rec.states.pop()
      if (old !== undefined) destroyState(old)
    }
  }

  private adFor (s: SessionState, messageId: Uint8Array): Uint8Array {
    return concatBytes(s.ad, messageId)
  }

  private messageId (given: Uint8Array | undefined): Uint8Array {
    if (given === undefined) return this.rng.bytes(MESSAGE_ID_BYTES)
    if (!(given instanceof Uint8Array) || given.byteLength !== MESSAGE_ID_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `a message id has ${MESSAGE_ID_BYTES} bytes`)
    return Uint8Array.from(given)
  }

  async seal (to: ContactCard, message: OutgoingMessage, options: SealOptions = {}): Promise<SealedMessage> {
    if (bytesEqual(to.publicKey, this.identity.publicKey)) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'cannot open a session with ourselves')
    const messageId = this.messageId(message.messageId)
    const plaintext = encodeMessage({ kind: message.kind ?? 'message', conversationId: message.conversationId, seq: message.seq, sentAt: this.clock.now(), body: message.body })
    try {
      return await this.withRecord(to.publicKey, options, async (rec, hex, touch) => {
        if (rec.card !== undefined && !sameIdentity(rec.card, to)) throw wormholeError('WORMHOLE_IDENTITY_MISMATCH', 'this card\'s keys differ from the ones we hold for this contact')
        const now = this.clock.now()
        touch()
        let state = rec.states.find(s => s.ratchet.canSend)
        if (state === undefined) {
          if (options.bundle === undefined) throw wormholeError('WORMHOLE_NO_SESSION', 'no session with this contact yet: fetch their prekey bundle and pass it as `bundle`')
          // Verified again against this very card: a bundle is only as good as its signer.
          const bundle = decodePrekeyBundle(options.bundle.bytes, to.publicKey)
          const x = x3dhInitiate(this.identity, to, bundle, this.rng)
          try {
            state = {
              ratchet: Ratchet.initAlice(x.sharedKey, x.signedPrekey, this.rng, this.limits),
              ad: x.associatedData,
              peer: { publicKey: Uint8Array.from(to.publicKey), dhPublicKey: Uint8Array.from(to.dhPublicKey) },
              root: mailboxRoot(x.sharedKey),
              initiator: true,
              baseKey: x.ephemeralPublicKey,
              pending: { signedPrekeyId: x.signedPrekeyId, ...(x.oneTimePrekeyId === undefined ? {} : { oneTimePrekeyId: x.oneTimePrekeyId }) },
              createdAt: now,
              usedAt: now
            }
          } finally {
            x.sharedKey.fill(0)
          }
          rec.states.unshift(state)
        }
        if (rec.card === undefined || to.issuedAt > rec.card.issuedAt) rec.card = to
        const ratchetMessage = state.ratchet.encrypt(plaintext, this.adFor(state, messageId))
        const pending = state.pending
        const payload = pending === undefined
          ? ratchetMessage
          : encodePrekeyMessage({ card: this.card, ephemeralPublicKey: state.baseKey, signedPrekeyId: pending.signedPrekeyId, ...(pending.oneTimePrekeyId === undefined ? {} : { oneTimePrekeyId: pending.oneTimePrekeyId }), message: ratchetMessage })
        const envelope = sealEnvelope(to.dhPublicKey, { type: pending === undefined ? 'ratchet' : 'prekey', sender: this.identity.publicKey, messageId, payload }, this.rng)
        state.usedAt = now
        this.front(rec, state)
        // The advanced chain is durable before the ciphertext exists for anyone else.
        await this.saveRecord(hex, rec, options)
        return { envelope, messageId, firstContact: pending !== undefined }
      })
    } finally {
      plaintext.fill(0)
    }
  }

  async open (envelope: Uint8Array, options: AbortOptions = {}): Promise<OpenedMessage> {
    this.check(options)
    const content = openEnvelope(envelope, this.identity)
    if (content.type === 'group') throw wormholeError('WORMHOLE_MALFORMED', 'a group envelope: open it with openGroup()')
    if (bytesEqual(content.sender, this.identity.publicKey)) throw wormholeError('WORMHOLE_NO_SESSION', 'an envelope claiming to come from ourselves')
    const sender = content.sender
    const { messageId } = content
    const opened = await this.withRecord(sender, options, async (rec, hex, touch) => {
      const now = this.clock.now()
      let plaintext: Uint8Array
      let newSession = false
      if (content.type === 'prekey') {
        const pm = decodePrekeyMessage(content.payload)
        if (!bytesEqual(pm.card.publicKey, sender)) throw wormholeError('WORMHOLE_IDENTITY_MISMATCH', 'the card inside a first message is not its sender\'s')
        if (rec.card !== undefined && !sameIdentity(rec.card, pm.card)) throw wormholeError('WORMHOLE_IDENTITY_MISMATCH', 'the sender\'s keys differ from the ones we hold for this contact')
        const existing = rec.states.find(s => !s.initiator && bytesEqual(s.baseKey, pm.ephemeralPublicKey))
        if (existing !== undefined) {
          // A repeat of a first message (the sender had no reply yet): same session.
          plaintext = existing.ratchet.decrypt(pm.message, this.adFor(existing, messageId))
          touch()
          existing.usedAt = now
          this.front(rec, existing)
          await this.saveRecord(hex, rec, options)
        } else {
          plaintext = await this.lock.run(PREKEYS, async () => {
            const pk = this.prekeys
            if (pk.seen(pm.signedPrekeyId, pm.ephemeralPublicKey)) throw wormholeError('WORMHOLE_REPLAY', 'this first message was already received')
            const spk = pk.signedPrekey(pm.signedPrekeyId)
            if (spk === undefined) throw wormholeError('WORMHOLE_UNKNOWN_PREKEY', `signed prekey ${pm.signedPrekeyId} is no longer held (rotated out): the sender must fetch our new bundle`)
            if (!pk.accepts(pm.signedPrekeyId)) throw wormholeError('WORMHOLE_UNKNOWN_PREKEY', `signed prekey ${pm.signedPrekeyId} took all the first messages it can: the sender must fetch our new bundle`)
            const opk = pm.oneTimePrekeyId === undefined ? undefined : pk.oneTimePrekey(pm.oneTimePrekeyId)
            if (pm.oneTimePrekeyId !== undefined && opk === undefined) throw wormholeError('WORMHOLE_UNKNOWN_PREKEY', `one-time prekey ${pm.oneTimePrekeyId} is used up: the sender must fetch our new bundle`)
            const x = x3dhRespond(this.identity, { signedPrekey: spk, ...(opk === undefined ? {} : { oneTimePrekey: opk }) }, pm.card, pm.ephemeralPublicKey)
            const ratchet = Ratchet.initBob(x.sharedKey, spk, this.rng, this.limits)
            const root = mailboxRoot(x.sharedKey)
            x.sharedKey.fill(0)
            let pt: Uint8Array
            try {
              pt = ratchet.decrypt(pm.message, concatBytes(x.associatedData, messageId))
            } catch (err) {
              ratchet.destroy()
              root.fill(0)
              throw err
            }
            touch()
            const state: SessionState = {
              ratchet,
              ad: x.associatedData,
              peer: { publicKey: Uint8Array.from(pm.card.publicKey), dhPublicKey: Uint8Array.from(pm.card.dhPublicKey) },
              root,
              initiator: false,
              baseKey: pm.ephemeralPublicKey,
              createdAt: now,
              usedAt: now
            }
            rec.states.unshift(state)
            this.front(rec, state)
            if (rec.card === undefined || pm.card.issuedAt > rec.card.issuedAt) rec.card = pm.card
            // Session first: if we crash before the prekey write, a replay finds the session.
            await this.saveRecord(hex, rec, options)
            await this.guardPrekeys(async () => {
              pk.accepted(pm.signedPrekeyId, pm.ephemeralPublicKey, pm.oneTimePrekeyId, now)
              await this.savePrekeys(options)
            })
            return pt
          })
          newSession = true
          this.log('new session from %s (signed prekey %d, one-time prekey %s)', hex.slice(0, 16), pm.signedPrekeyId, pm.oneTimePrekeyId ?? 'none')
        }
      } else {
        if (rec.states.length === 0) throw wormholeError('WORMHOLE_NO_SESSION', 'no session with this sender: their first message has not arrived (or was lost)')
        let found: SessionState | undefined
        let pt: Uint8Array | undefined
        let best: unknown
        const rank = (e: unknown): number => {
          const code = (e as { code?: string })?.code
          return code === 'WORMHOLE_REPLAY' ? 3 : code === 'WORMHOLE_TOO_MANY_SKIPPED' ? 2 : code === 'WORMHOLE_DECRYPT_FAILED' ? 1 : 0
        }
        for (const s of rec.states) {
          try {
            pt = s.ratchet.decrypt(content.payload, this.adFor(s, messageId))
            found = s
            break
          } catch (err) {
            if (best === undefined || rank(err) > rank(best)) best = err
          }
        }
        if (found === undefined || pt === undefined) throw best
        touch()
        found.pending = undefined // the peer answered: our messages no longer need the X3DH header
        found.usedAt = now
        this.front(rec, found)
        await this.saveRecord(hex, rec, options)
        plaintext = pt
      }
      return { plaintext, newSession, card: rec.card }
    })
    let message: WormholeMessage
    try { message = decodeMessage(opened.plaintext) } finally { opened.plaintext.fill(0) }
    const result: OpenedMessage = { sender, ...(opened.card === undefined ? {} : { card: opened.card }), messageId, message, newSession: opened.newSession, sends: [] }
    if (message.kind === 'group-update' || message.kind === 'sender-key') {
      try {
        const { event, sends } = message.kind === 'group-update'
          ? await this.applyGroupUpdate(sender, message.body, options)
          : await this.applySenderKey(sender, message.body, options)
        result.group = event
        result.sends = sends
      } catch (err) {
        if (!(err instanceof WormholeError)) throw err
        result.groupError = err
      }
    }
    return result
  }

  async session (peer: Uint8Array, options?: AbortOptions): Promise<SessionInfo | undefined> {
    return await this.withRecord(peer, options, async rec => {
      if (rec.states.length === 0 && rec.card === undefined) return undefined
      const sender = rec.states.find(s => s.ratchet.canSend)
      return { states: rec.states.length, pending: sender?.pending !== undefined, ...(rec.card === undefined ? {} : { card: rec.card }) }
    })
  }

  async contacts (options?: AbortOptions): Promise<ContactCard[]> {
    this.check(options)
    const out: ContactCard[] = []
    for (const name of await this.store.list('session.', options)) {
      const info = await this.session(Uint8Array.from(Buffer.from(name.slice('session.'.length), 'hex')), options)
      if (info?.card !== undefined) out.push(info.card)
    }
    return out
  }

  async forget (peer: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.withRecord(peer, options, async (_rec, hex) => {
      await this.store.delete(sessionName(hex), options)
      this.evict(hex)
    })
  }

  safetyNumber (peer: Pick<ContactCard, 'publicKey' | 'dhPublicKey'>): string {
    return safetyNumber(this.identity, peer)
  }

  receipt (sender: Uint8Array, messageId: Uint8Array): Receipt {
    this.check()
    return createReceipt(this.identity, sender, messageId, this.clock.now())
  }

  verifyReceipt (bytes: Uint8Array, recipient: Uint8Array): Receipt {
    return verifyReceipt(bytes, recipient, this.identity.publicKey)
  }

  // ------------------------------------------------------------ mailboxes

  epoch (now?: number): number {
    return mailboxEpoch(now ?? this.clock.now(), this.epochMs)
  }

  async outgoingSlot (peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot> {
    return await this.withRecord(peer, options, async rec => {
      const s = rec.states.find(x => x.ratchet.canSend)
      if (s === undefined) throw wormholeError('WORMHOLE_NO_SESSION', 'no session with this contact')
      if (s.pending !== undefined) {
        if (rec.card === undefined) throw wormholeError('WORMHOLE_NO_SESSION', 'no card for this contact')
        const dir = introMailbox(rec.card.introSecret, rec.card.publicKey)
        try { return introSlot(dir, s.root, epoch, index) } finally { dir.fill(0) }
      }
      const dir = pairwiseMailbox(s.root, this.identity.publicKey, peer)
      try { return mailboxSlot(dir, epoch, index) } finally { dir.fill(0) }
    })
  }

  async incomingSlots (peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot[]> {
    return await this.withRecord(peer, options, async rec => rec.states.map(s => {
      const dir = pairwiseMailbox(s.root, peer, this.identity.publicKey)
      try { return mailboxSlot(dir, epoch, index) } finally { dir.fill(0) }
    }))
  }

  introSlotKey (epoch: number, index: number): Uint8Array {
    const dir = introMailbox(this.identity.introSecret, this.identity.publicKey)
    const slot = mailboxSlot(dir, epoch, index)
    dir.fill(0)
    slot.destroy()
    return slot.key
  }

  async introSlotFrom (peer: Uint8Array, epoch: number, index: number, options?: AbortOptions): Promise<MailboxSlot | undefined> {
    return await this.withRecord(peer, options, async rec => {
      const s = rec.states.find(x => !x.initiator)
      if (s === undefined) return undefined
      const dir = introMailbox(this.identity.introSecret, this.identity.publicKey)
      try { return introSlot(dir, s.root, epoch, index) } finally { dir.fill(0) }
    })
  }

  // ------------------------------------------------------------ groups

  private async loadGroup (hex: string, options?: AbortOptions): Promise<GroupState | undefined> {
    const cached = this.groupCache.get(hex)
    if (cached !== undefined) return cached
    const bytes = await this.store.get(groupName(hex), options)
    if (bytes === undefined) return undefined
    let g: GroupState
    try {
      g = GroupState.decode(bytes, this.limits)
    } catch (err) {
      throw wormholeError('WORMHOLE_STORE_CORRUPT', `stored group ${hex} is unreadable: ${(err as Error).message}`, err)
    } finally {
      bytes.fill(0)
    }
    this.groupCache.set(hex, g)
    return g
  }

  private async saveGroup (g: GroupState, options?: AbortOptions): Promise<void> {
    const bytes = g.encode()
    try { await this.store.put(groupName(toHex(g.groupId)), bytes, options) } finally { bytes.fill(0) }
  }

  /** Like withRecord, for a group: `touch()` before a change; a failure after it drops the cached state. */
  private async withGroup<T> (groupId: Uint8Array, options: AbortOptions | undefined, fn: (g: GroupState | undefined, hex: string, touch: () => void) => Promise<T>): Promise<T> {
    this.check(options)
    if (!(groupId instanceof Uint8Array) || groupId.byteLength !== GROUP_ID_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `a group id has ${GROUP_ID_BYTES} bytes`)
    const hex = toHex(groupId)
    return await this.lock.run(`g:${hex}`, async () => {
      const g = await this.loadGroup(hex, options)
      let touched = false
      try {
        return await fn(g, hex, () => { touched = true })
      } catch (err) {
        const cached = this.groupCache.get(hex)
        if (touched && cached !== undefined) { this.groupCache.delete(hex); cached.destroy() }
        throw err
      }
    })
  }

  private requireGroup (g: GroupState | undefined): GroupState {
    if (g === undefined) throw wormholeError('WORMHOLE_UNKNOWN_GROUP', 'no such group here')
    return g
  }

  private requireAdmin (g: GroupState): void {
    if (!bytesEqual(g.admin, this.identity.publicKey)) throw wormholeError('WORMHOLE_NOT_ADMIN', 'only the group\'s admin changes its members')
  }

  private updateSends (g: GroupState, to: ContactCard[]): ControlMessage[] {
    const body = encodeGroupUpdate({ groupId: g.groupId, epoch: g.epoch, admin: g.admin, secret: g.secret, name: g.name, members: g.members })
    return to.map(m => ({ to: m, kind: 'group-update' as const, conversationId: g.groupId, body }))
  }

  private keySends (g: GroupState, to: ContactCard[]): ControlMessage[] {
    const d = g.own.distribution(g.groupId)
    const body = encodeDistribution(d)
    d.chainKey.fill(0)
    return to.map(m => ({ to: m, kind: 'sender-key' as const, conversationId: g.groupId, body }))
  }

  private others (g: GroupState): ContactCard[] {
    return g.members.filter(m => !bytesEqual(m.publicKey, this.identity.publicKey))
  }

  private uniqueCards (cards: ContactCard[]): ContactCard[] {
    const seen = new Set<string>([toHex(this.identity.publicKey)])
    const out: ContactCard[] = []
    for (const c of cards) {
      const hex = toHex(c.publicKey)
      if (!seen.has(hex)) { seen.add(hex); out.push(c) }
    }
    return out
  }

  async createGroup (options: { name: string, members: ContactCard[] }, abort?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }> {
    const members = [this.card, ...this.uniqueCards(options.members)]
    if (members.length > MAX_GROUP_MEMBERS) throw wormholeError('WORMHOLE_GROUP_FULL', `a group has at most ${MAX_GROUP_MEMBERS} members, ourselves included`)
    const groupId = this.rng.bytes(GROUP_ID_BYTES)
    return await this.withGroup(groupId, abort, async (_found, _hex, touch) => {
      touch()
      const g = new GroupState({ groupId, name: options.name, admin: Uint8Array.from(this.identity.publicKey), epoch: 1, secret: this.rng.bytes(32), members, own: SenderKeyChain.create(this.rng, this.limits) })
      encodeGroupUpdate({ groupId, epoch: 1, admin: g.admin, secret: g.secret, name: g.name, members }) // validates name and size now
      this.groupCache.set(toHex(groupId), g)
      await this.saveGroup(g, abort)
      const others = this.others(g)
      return { group: info(g), sends: [...this.updateSends(g, others), ...this.keySends(g, others)] }
    })
  }

  async addGroupMembers (groupId: Uint8Array, members: ContactCard[], options?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }> {
    return await this.withGroup(groupId, options, async (found, _hex, touch) => {
      const g = this.requireGroup(found)
      this.requireAdmin(g)
      const added = this.uniqueCards(members).filter(c => !g.isMember(c.publicKey))
      if (g.members.length + added.length > MAX_GROUP_MEMBERS) throw wormholeError('WORMHOLE_GROUP_FULL', `a group has at most ${MAX_GROUP_MEMBERS} members`)
      touch()
      g.members = [...g.members, ...added]
      // A new secret: newcomers cannot open the envelopes sealed before they joined.
      g.advance(g.epoch + 1, this.rng.bytes(32))
      await this.saveGroup(g, options)
      return { group: info(g), sends: [...this.updateSends(g, this.others(g)), ...this.keySends(g, added)] }
    })
  }

  async removeGroupMembers (groupId: Uint8Array, members: Uint8Array[], options?: AbortOptions): Promise<{ group: GroupInfo, sends: ControlMessage[] }> {
    return await this.withGroup(groupId, options, async (found, _hex, touch) => {
      const g = this.requireGroup(found)
      this.requireAdmin(g)
      const gone = new Set(members.map(toHex))
      if (gone.has(toHex(this.identity.publicKey))) throw wormholeError('WORMHOLE_BAD_ARGUMENT', 'the admin cannot remove itself')
      touch()
      g.members = g.members.filter(m => !gone.has(toHex(m.publicKey)))
      g.advance(g.epoch + 1, this.rng.bytes(32))
      g.dropChainsOfNonMembers()
      g.own.destroy()
      g.own = SenderKeyChain.create(this.rng, this.limits)
      await this.saveGroup(g, options)
      const others = this.others(g)
      return { group: info(g), sends: [...this.updateSends(g, others), ...this.keySends(g, others)] }
    })
  }

  private async applyGroupUpdate (sender: Uint8Array, body: Uint8Array, options?: AbortOptions): Promise<{ event: GroupEvent, sends: ControlMessage[] }> {
    const u = decodeGroupUpdate(body)
    let adopted = false
    try {
      return await this.applyDecodedUpdate(sender, u, options, () => { adopted = true })
    } finally {
      if (!adopted) u.secret.fill(0)
    }
  }

  private async applyDecodedUpdate (sender: Uint8Array, u: GroupUpdate, options: AbortOptions | undefined, adopt: () => void): Promise<{ event: GroupEvent, sends: ControlMessage[] }> {
    return await this.withGroup(u.groupId, options, async (g, hex, touch) => {
      if (!bytesEqual(sender, u.admin)) throw wormholeError('WORMHOLE_NOT_ADMIN', 'a group update not sent by the admin it names')
      const meIn = u.members.some(m => bytesEqual(m.publicKey, this.identity.publicKey))
      if (g === undefined) {
        if (!meIn) throw wormholeError('WORMHOLE_NOT_MEMBER', 'a group update for a group we are not in')
        touch()
        adopt()
        const ng = new GroupState({ groupId: u.groupId, name: u.name, admin: u.admin, epoch: u.epoch, secret: u.secret, members: u.members, own: SenderKeyChain.create(this.rng, this.limits) })
        this.groupCache.set(hex, ng)
        for (const p of this.pendingKeys.get(hex) ?? []) {
          if (ng.isMember(p.member)) ng.addChain(p.member, SenderKeyChain.fromDistribution(decodeDistribution(p.bytes), this.limits))
          p.bytes.fill(0)
        }
        this.pendingKeys.delete(hex)
        await this.saveGroup(ng, options)
        return { event: { type: 'joined', groupId: ng.groupId, epoch: ng.epoch }, sends: this.keySends(ng, this.others(ng)) }
      }
      if (!bytesEqual(sender, g.admin) || !bytesEqual(u.admin, g.admin)) throw wormholeError('WORMHOLE_NOT_ADMIN', 'a group update from someone not its admin')
      if (u.epoch <= g.epoch) throw wormholeError('WORMHOLE_STALE_EPOCH', `group update of epoch ${u.epoch}, we are at ${g.epoch}`)
      touch()
      if (!meIn) {
        await this.store.delete(groupName(hex), options)
        this.groupCache.delete(hex)
        g.destroy()
        return { event: { type: 'removed', groupId: u.groupId }, sends: [] }
      }
      const before = new Set(g.members.map(m => toHex(m.publicKey)))
      const after = new Set(u.members.map(m => toHex(m.publicKey)))
      const removed = [...before].some(h => !after.has(h))
      const added = u.members.filter(m => !before.has(toHex(m.publicKey)))
      g.members = u.members
      g.name = u.name
      adopt()
      g.advance(u.epoch, u.secret)
      g.dropChainsOfNonMembers()
      let sends: ControlMessage[] = []
      if (removed) {
        // Someone left: a new chain, for the remaining members only.
        g.own.destroy()
        g.own = SenderKeyChain.create(this.rng, this.limits)
        sends = this.keySends(g, this.others(g))
      } else if (added.length > 0) {
        sends = this.keySends(g, added.filter(m => !bytesEqual(m.publicKey, this.identity.publicKey)))
      }
      await this.saveGroup(g, options)
      return { event: { type: 'updated', groupId: g.groupId, epoch: g.epoch }, sends }
    })
  }

  private async applySenderKey (sender: Uint8Array, body: Uint8Array, options?: AbortOptions): Promise<{ event: GroupEvent, sends: ControlMessage[] }> {
    const d = decodeDistribution(body)
    try {
      return await this.withGroup(d.groupId, options, async (g, hex, touch) => {
        if (g === undefined) {
          // The admin's update may still be on its way: keep the key (bounded, in memory).
          let list = this.pendingKeys.get(hex)
          if (list === undefined) {
            if (this.pendingKeys.size >= MAX_PENDING_GROUPS) throw wormholeError('WORMHOLE_UNKNOWN_GROUP', 'a sender key for an unknown group (too many pending)')
            list = []
            this.pendingKeys.set(hex, list)
          }
          if (list.length >= MAX_PENDING_PER_GROUP) throw wormholeError('WORMHOLE_UNKNOWN_GROUP', 'too many sender keys pending for an unknown group')
          list.push({ member: Uint8Array.from(sender), bytes: Uint8Array.from(body) })
          return { event: { type: 'sender-key-pending', groupId: d.groupId, member: sender }, sends: [] }
        }
        if (!g.isMember(sender)) throw wormholeError('WORMHOLE_NOT_MEMBER', 'a sender key from someone not in the group')
        touch()
        g.addChain(sender, SenderKeyChain.fromDistribution(d, this.limits))
        await this.saveGroup(g, options)
        return { event: { type: 'sender-key', groupId: d.groupId, member: sender }, sends: [] }
      })
    } finally {
      d.chainKey.fill(0)
    }
  }

  async group (groupId: Uint8Array, options?: AbortOptions): Promise<GroupInfo | undefined> {
    return await this.withGroup(groupId, options, async g => g === undefined ? undefined : info(g))
  }

  async groups (options?: AbortOptions): Promise<GroupInfo[]> {
    this.check(options)
    const out: GroupInfo[] = []
    for (const name of await this.store.list('group.', options)) {
      const g = await this.group(Uint8Array.from(Buffer.from(name.slice('group.'.length), 'hex')), options)
      if (g !== undefined) out.push(g)
    }
    return out
  }

  async sealGroup (groupId: Uint8Array, message: Omit<OutgoingMessage, 'conversationId'>, options?: AbortOptions): Promise<{ envelope: Uint8Array, messageId: Uint8Array, epoch: number }> {
    const messageId = this.messageId(message.messageId)
    const plaintext = encodeMessage({ kind: message.kind ?? 'message', conversationId: groupId.subarray(0, CONVERSATION_ID_BYTES), seq: message.seq, sentAt: this.clock.now(), body: message.body })
    try {
      return await this.withGroup(groupId, options, async (found, _hex, touch) => {
        const g = this.requireGroup(found)
        touch()
        const payload = g.own.encrypt({ groupId: g.groupId, epoch: g.epoch }, this.identity.publicKey, messageId, plaintext)
        const secret = groupEnvelopeSecret(g.secret, g.groupId, g.epoch)
        try {
          const envelope = sealGroupEnvelope(secret, { type: 'group', sender: this.identity.publicKey, messageId, payload }, this.rng)
          await this.saveGroup(g, options)
          return { envelope, messageId, epoch: g.epoch }
        } finally {
          secret.fill(0)
        }
      })
    } finally {
      plaintext.fill(0)
    }
  }

  async openGroup (groupId: Uint8Array, envelope: Uint8Array, options?: AbortOptions): Promise<OpenedGroupMessage> {
    const opened = await this.withGroup(groupId, options, async (found, _hex, touch) => {
      const g = this.requireGroup(found)
      let content: SealedContent | undefined
      let lastErr: unknown
      for (const { epoch, secret } of g.secrets()) {
        const key = groupEnvelopeSecret(secret, g.groupId, epoch)
        try {
          content = openGroupEnvelope(envelope, key)
          break
        } catch (err) {
          lastErr = err
          if ((err as { code?: string }).code !== 'WORMHOLE_DECRYPT_FAILED') throw err
        } finally {
          key.fill(0)
        }
      }
      if (content === undefined) throw lastErr
      if (content.type !== 'group') throw wormholeError('WORMHOLE_MALFORMED', 'a pairwise message inside a group envelope')
      if (bytesEqual(content.sender, this.identity.publicKey)) throw wormholeError('WORMHOLE_REPLAY', 'our own group message')
      if (!g.isMember(content.sender)) throw wormholeError('WORMHOLE_NOT_MEMBER', 'a group message from someone not (or no longer) in the group')
      const h = parseGroupMessage(content.payload)
      if (!bytesEqual(h.groupId, g.groupId)) throw wormholeError('WORMHOLE_MALFORMED', 'a group message of another group')
      const chain = g.chain(content.sender, h.chainId)
      if (chain === undefined) throw wormholeError('WORMHOLE_NO_SENDER_KEY', 'no sender key for this member yet (their distribution may still be on its way)')
      const plaintext = chain.decrypt(content.payload, content.sender, content.messageId)
      touch()
      await this.saveGroup(g, options)
      const card = g.members.find(m => bytesEqual(m.publicKey, content.sender))
      return { plaintext, sender: content.sender, messageId: content.messageId, epoch: h.epoch, card }
    })
    let message: WormholeMessage
    try { message = decodeMessage(opened.plaintext) } finally { opened.plaintext.fill(0) }
    return { groupId: Uint8Array.from(groupId), sender: opened.sender, ...(opened.card === undefined ? {} : { card: opened.card }), messageId: opened.messageId, message, epoch: opened.epoch }
  }

  async groupSlot (groupId: Uint8Array, epoch: number, index: number, options: AbortOptions & { groupEpoch?: number } = {}): Promise<MailboxSlot> {
    return await this.withGroup(groupId, options, async (found) => {
      const g = this.requireGroup(found)
      const ge = options.groupEpoch ?? g.epoch
      const held = g.secrets().find(x => x.epoch === ge)
      if (held === undefined) throw wormholeError('WORMHOLE_STALE_EPOCH', `group epoch ${ge} is not held any more (current ${g.epoch})`)
      const dir = groupMailbox(held.secret, g.groupId, ge)
      try { return mailboxSlot(dir, epoch, index) } finally { dir.fill(0) }
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const hex of [...this.records.keys()]) this.evict(hex)
    for (const g of this.groupCache.values()) g.destroy()
    this.groupCache.clear()
    for (const list of this.pendingKeys.values()) for (const p of list) wipe(p.bytes)
    this.pendingKeys.clear()
    this.prekeys?.destroy()
  }
}

