/**
 * Group state: members (at most 100), the admin who changes them, an epoch that goes up with
 * every change, the epoch's secret (group envelopes and group mailboxes), our own sender-key
 * chain and the other members' chains.
 *
 * A group update travels from the admin to each member over the pairwise sessions (message kind
 * "group-update"), version 1:
 * ```
 *  | ver=1 | group id [16] | epoch u32 | admin [32] | secret [32] | nameLen u8 | name (<= 64) |
 *  | nMembers u8 (1..100) | (cardLen u16 | card) * nMembers |
 * ```
 * Rules, applied by every member: only the admin's updates count, and only with a higher epoch.
 * Members that left lose everything of the group; everyone makes a new sender-key chain and
 * sends it to the remaining members only (their old chains are dropped, so a removed member
 * reads nothing after its removal, even from members who have not rotated yet: their messages
 * of the new epoch are sealed with a secret it never got). Added members get the current chains.
 * The previous epochs' secrets are kept (3) for group envelopes still in flight.
 *
 * Envelope secret of an epoch = HKDF-SHA256(ikm = secret, salt = "oht/wormhole/group-envelope/v1",
 * info = group id || u32 epoch); mailbox secret: mailbox.ts (groupMailbox).
 */
import { concatBytes, toHex } from '../core/bytes.ts'
import { decodeCardBytes, MAX_CARD_BYTES, MAX_NAME_BYTES, type ContactCard } from './contact-card.ts'
import { wormholeError } from './errors.ts'
import { hkdf } from './primitives.ts'
import { SenderKeyChain, GROUP_ID_BYTES, type SenderKeyLimits } from './sender-keys.ts'
import { checkSize, label, Reader, Writer } from './wire.ts'

export const MAX_GROUP_MEMBERS = 100
export const GROUP_UPDATE_VERSION = 1
export const MAX_GROUP_UPDATE_BYTES = 1 + 16 + 4 + 32 + 32 + 1 + MAX_NAME_BYTES + 1 + MAX_GROUP_MEMBERS * (2 + MAX_CARD_BYTES)
const ENVELOPE_SALT = label('oht/wormhole/group-envelope/v1')
const STATE_VERSION = 1
const PREVIOUS_EPOCHS = 3
const CHAINS_PER_MEMBER = 2

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

export interface GroupUpdate {
  groupId: Uint8Array
  epoch: number
  admin: Uint8Array
  secret: Uint8Array
  name: string
  members: ContactCard[]
}

export function encodeGroupUpdate (u: GroupUpdate): Uint8Array {
  const name = utf8.encode(u.name)
  if (name.byteLength > MAX_NAME_BYTES) throw wormholeError('WORMHOLE_BAD_ARGUMENT', `a group name has at most ${MAX_NAME_BYTES} bytes`)
  if (u.members.length < 1 || u.members.length > MAX_GROUP_MEMBERS) throw wormholeError('WORMHOLE_GROUP_FULL', `a group has 1..${MAX_GROUP_MEMBERS} members`)
  const w = new Writer(4096).u8(GROUP_UPDATE_VERSION).bytes(u.groupId).u32(u.epoch).bytes(u.admin).bytes(u.secret).u8(name.byteLength).bytes(name).u8(u.members.length)
  for (const m of u.members) w.u16(m.bytes.byteLength).bytes(m.bytes)
  return w.finish()
}

export function decodeGroupUpdate (bytes: Uint8Array): GroupUpdate {
  checkSize(bytes, MAX_GROUP_UPDATE_BYTES, 'group update')
  const r = new Reader(bytes, 'group update')
  const v = r.u8()
  if (v !== GROUP_UPDATE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `group update version ${v} is not supported`)
  const groupId = r.bytes(GROUP_ID_BYTES)
  const epoch = r.u32()
  const admin = r.bytes(32)
  const secret = r.bytes(32)
  const nameLen = r.u8()
  if (nameLen > MAX_NAME_BYTES) throw wormholeError('WORMHOLE_MALFORMED', 'group name too long')
  let name: string
  try { name = utf8Strict.decode(r.bytes(nameLen)) } catch (err) { throw wormholeError('WORMHOLE_MALFORMED', 'group name is not UTF-8', err) }
  const n = r.u8()
  if (n < 1 || n > MAX_GROUP_MEMBERS) throw wormholeError('WORMHOLE_MALFORMED', `group update lists ${n} members`)
  const members: ContactCard[] = []
  const seen = new Set<string>()
  for (let i = 0; i < n; i++) {
    const card = decodeCardBytes(r.lenBytes16(MAX_CARD_BYTES, 'member card'))
    const hex = toHex(card.publicKey)
    if (seen.has(hex)) throw wormholeError('WORMHOLE_MALFORMED', 'group update lists a member twice')
    seen.add(hex)
    members.push(card)
  }
  r.end()
  if (!seen.has(toHex(admin))) throw wormholeError('WORMHOLE_MALFORMED', 'group update: the admin is not a member')
  return { groupId, epoch, admin, secret, name, members }
}

/** The envelope secret of one group epoch. */
export function groupEnvelopeSecret (secret: Uint8Array, groupId: Uint8Array, epoch: number): Uint8Array {
  return hkdf(secret, ENVELOPE_SALT, concatBytes(groupId, new Writer(4).u32(epoch).finish()), 32)
}

/** One group as this member sees it. */
export class GroupState {
  groupId: Uint8Array
  name: string
  admin: Uint8Array
  epoch: number
  secret: Uint8Array
  members: ContactCard[]
  previous: Array<{ epoch: number, secret: Uint8Array }> = []
  own: SenderKeyChain
  /** Member key (hex) → chains, newest first. */
  chains = new Map<string, SenderKeyChain[]>()

  constructor (f: { groupId: Uint8Array, name: string, admin: Uint8Array, epoch: number, secret: Uint8Array, members: ContactCard[], own: SenderKeyChain }) {
    this.groupId = f.groupId
    this.name = f.name
    this.admin = f.admin
    this.epoch = f.epoch
    this.secret = f.secret
    this.members = f.members
    this.own = f.own
  }

  isMember (publicKey: Uint8Array): boolean {
    const hex = toHex(publicKey)
    return this.members.some(m => toHex(m.publicKey) === hex)
  }

  /** Epoch secrets to try on an incoming envelope: current first. */
  secrets (): Array<{ epoch: number, secret: Uint8Array }> {
    return [{ epoch: this.epoch, secret: this.secret }, ...this.previous]
  }

  /** Moves to a new epoch (the old secret joins `previous`). */
  advance (epoch: number, secret: Uint8Array): void {
    this.previous.unshift({ epoch: this.epoch, secret: this.secret })
    while (this.previous.length > PREVIOUS_EPOCHS) this.previous.pop()?.secret.fill(0)
    this.epoch = epoch
    this.secret = secret
  }

  addChain (member: Uint8Array, chain: SenderKeyChain): boolean {
    const hex = toHex(member)
    const list = this.chains.get(hex) ?? []
    if (list.some(c => c.chainId === chain.chainId)) { chain.destroy(); return false }
    list.unshift(chain)
    while (list.length > CHAINS_PER_MEMBER) list.pop()?.destroy()
    this.chains.set(hex, list)
    return true
  }

  chain (member: Uint8Array, chainId: number): SenderKeyChain | undefined {
    return this.chains.get(toHex(member))?.find(c => c.chainId === chainId)
  }

  /** Drops every chain of members no longer in the group. */
  dropChainsOfNonMembers (): void {
    for (const [hex, list] of this.chains) {
      if (!this.members.some(m => toHex(m.publicKey) === hex)) {
        for (const c of list) c.destroy()
        this.chains.delete(hex)
      }
    }
  }

  /** Drops the chains of every other member (they rotate after a removal). */
  dropAllChains (): void {
    for (const list of this.chains.values()) for (const c of list) c.destroy()
    this.chains.clear()
  }

  encode (): Uint8Array {
    const name = utf8.encode(this.name)
    const w = new Writer(8192).u8(STATE_VERSION).bytes(this.groupId).u8(name.byteLength).bytes(name).bytes(this.admin).u32(this.epoch).bytes(this.secret)
    w.u8(this.members.length)
    for (const m of this.members) w.u16(m.bytes.byteLength).bytes(m.bytes)
    w.u8(this.previous.length)
    for (const p of this.previous) w.u32(p.epoch).bytes(p.secret)
    const own = this.own.encode()
    w.u32(own.byteLength).bytes(own)
    own.fill(0)
    w.u8(this.chains.size)
    for (const [hex, list] of this.chains) {
      w.bytes(Buffer.from(hex, 'hex')).u8(list.length)
      for (const c of list) { const b = c.encode(); w.u32(b.byteLength).bytes(b); b.fill(0) }
    }
    return w.finish()
  }

  static decode (bytes: Uint8Array, limits: SenderKeyLimits = {}): GroupState {
    const r = new Reader(bytes, 'group state')
    const v = r.u8()
    if (v !== STATE_VERSION) throw wormholeError('WORMHOLE_BAD_VERSION', `group state version ${v} is not supported`)
    const groupId = r.bytes(GROUP_ID_BYTES)
    const name = utf8Strict.decode(r.bytes(r.u8()))
    const admin = r.bytes(32)
    const epoch = r.u32()
    const secret = r.bytes(32)
    const nMembers = r.u8()
    if (nMembers > MAX_GROUP_MEMBERS) throw wormholeError('WORMHOLE_MALFORMED', 'group state has too many members')
    const members: ContactCard[] = []
    for (let i = 0; i < nMembers; i++) members.push(decodeCardBytes(r.lenBytes16(MAX_CARD_BYTES, 'member card')))
    const nPrev = r.u8()
    const previous: Array<{ epoch: number, secret: Uint8Array }> = []
    for (let i = 0; i < nPrev; i++) previous.push({ epoch: r.u32(), secret: r.bytes(32) })
    const ownBytes = r.lenBytes32(1 << 20, 'own chain')
    const own = SenderKeyChain.decodeFrom(new Reader(ownBytes, 'own chain'), limits)
    ownBytes.fill(0)
    const g = new GroupState({ groupId, name, admin, epoch, secret, members, own })
    g.previous = previous
    const nChains = r.u8()
    for (let i = 0; i < nChains; i++) {
      const hex = toHex(r.bytes(32))
      const n = r.u8()
      if (n > CHAINS_PER_MEMBER) throw wormholeError('WORMHOLE_MALFORMED', 'group state has too many chains for a member')
      const list: SenderKeyChain[] = []
      for (let j = 0; j < n; j++) {
        const b = r.lenBytes32(1 << 20, 'member chain')
        list.push(SenderKeyChain.decodeFrom(new Reader(b, 'member chain'), limits))
        b.fill(0)
      }
      g.chains.set(hex, list)
    }
    r.end()
    return g
  }

  destroy (): void {
    this.secret.fill(0)
    for (const p of this.previous) p.secret.fill(0)
    this.own.destroy()
    this.dropAllChains()
  }
}
