/**
 * Names over the OHT: registering, updating, revoking and resolving the GNS-style records of
 * name-records.ts. A zone's owner writes each label's record (signed by the label-derived key,
 * encrypted by the label); anyone who knows zone and label derives its key, fetches it, checks
 * it and decrypts it. Holders and hostile nodes can refuse to answer or answer with an older
 * record, but a record they make up does not verify, and the OHT's lookup returns the highest
 * valid seq any holder has, so an honest holder's newer record wins over a stale one.
 *
 * Lifetimes: a name record says until when it is valid (`expires`, default 30 days), and lives
 * in the OHT at most 7 days per put; its owner's node re-registers it before either runs out
 * (`renewDue` tells when). Revocations and rotations are final (see name-records.ts).
 *
 * @example
 * const names = createNameService({ dht, clock, rng })
 * await names.register(zone, 'chess', { type: 'app', key: appKeyHex })
 * const r = await names.resolve('chess.alice', { zoneOf: p => petnames.get(p) })   // r.target
 */
import type { AbortOptions } from '../core/abort.ts'
import type { Clock } from '../core/clock.ts'
import { isCodedError } from '../core/errors.ts'
import type { Rng } from '../core/rng.ts'
import { toHex } from '../core/bytes.ts'
import type { Identity } from '../crypto/index.ts'
import { DoaError } from './errors.ts'
import {
  createNameRecord, createRevocation, createRotation, MAX_UPDATE_SEQ, nameRecordKey, openNameRecord, resolveName,
  type NameData, type NameTarget, type Resolution
} from './name-records.ts'
import type { DoaDht } from './op-log.ts'
import { APEX_LABEL, normalizeLabel } from './zone-keys.ts'

const DAY = 24 * 3_600_000
/** How long a name record says it is valid unless told. */
export const NAME_VALIDITY_MS = 30 * DAY
/** Lifetime asked for name records in the OHT (mutable records live at most 7 days). */
export const NAME_TTL_MS = 7 * DAY

export interface NameServiceComponents {
  dht: DoaDht
  clock: Clock
  rng: Rng
}

export interface RegisterOptions extends AbortOptions {
  /** How long resolvers accept the record. @default NAME_VALIDITY_MS */
  validForMs?: number
  /** @default NAME_TTL_MS */
  ttlMs?: number
}

export interface Registration {
  zone: string
  label: string
  target: NameTarget
  seq: number
  expires: number
  /** Holders that stored it. */
  stored: number
}

export interface NameResolveOptions extends AbortOptions {
  /** Petname → zone key (the user's petnames). */
  zoneOf: (petname: string) => Uint8Array | undefined
  maxHops?: number
}

export interface NameService {
  /** Writes (or updates) `label` of `zone`; refused with DOA_NAME_REVOKED once revoked. */
  register(zone: Identity, label: string, target: NameTarget, options?: RegisterOptions): Promise<Registration>
  /** The record of `label` in `zone` as the OHT has it now (verified), or undefined. */
  lookup(zonePublicKey: Uint8Array, label: string, options?: AbortOptions): Promise<(NameData & { seq: number }) | undefined>
  /** Revokes `label` (or the whole zone with "@"): final. */
  revoke(zone: Identity, label: string, options?: AbortOptions): Promise<{ stored: number }>
  /** Moves the zone to `newZone`: resolvers follow, and tell users to move their petnames. */
  rotate(oldZone: Identity, newZonePublicKey: Uint8Array, options?: AbortOptions): Promise<{ stored: number }>
  /** Resolves `label.….petname` (see name-records.ts resolveName). */
  resolve(name: string, options: NameResolveOptions): Promise<Resolution>
}

export function createNameService (c: NameServiceComponents): NameService {
  const lookup = async (zonePublicKey: Uint8Array, label: string, options: AbortOptions = {}): Promise<(NameData & { seq: number }) | undefined> => {
    const got = await c.dht.get(nameRecordKey(zonePublicKey, label), options)
    return got === undefined ? undefined : openNameRecord(got.record, zonePublicKey, label)
  }
  const current = async (zonePublicKey: Uint8Array, label: string, options: AbortOptions): Promise<(NameData & { seq: number }) | undefined> => {
    try {
      return await lookup(zonePublicKey, label, options)
    } catch (err) {
      // A forged record under our label must not stop its owner from writing over it.
      if (isCodedError(err, 'CORE_ABORTED') || !(err instanceof DoaError)) throw err
      return undefined
    }
  }
  const stored = (n: number, what: string): number => {
    if (n === 0) throw new DoaError('DOA_NETWORK', `no OHT node stored the ${what}: is this node connected (oht status)?`)
    return n
  }
  return {
    lookup,
    async register (zone, label, target, options = {}) {
      const l = normalizeLabel(label)
      if (l === APEX_LABEL) throw new DoaError('DOA_BAD_NAME', '"@" is the zone itself: register a label, or use rotate/revoke for the zone')
      const cur = await current(zone.publicKey, l, options)
      if (cur?.revoked === true) throw new DoaError('DOA_NAME_REVOKED', `${JSON.stringify(l)} was revoked in this zone: revocation is final, choose another label`)
      // Seqs from the clock keep moving forward even when this node lost track of the last one.
      const seq = Math.max((cur?.seq ?? 0) + 1, Math.floor(c.clock.now()))
      if (seq > MAX_UPDATE_SEQ) throw new DoaError('DOA_BAD_NAME', 'this label has used up its update numbers')
      // Whole ms: virtual clocks tell fractions.
      const expires = Math.floor(c.clock.now() + (options.validForMs ?? NAME_VALIDITY_MS))
      const record = createNameRecord(zone, { label: l, seq, ttlMs: options.ttlMs ?? NAME_TTL_MS, data: { target, expires, revoked: false } }, c.rng)
      const r = await c.dht.put(record, options)
      return { zone: toHex(zone.publicKey), label: l, target, seq, expires, stored: stored(r.stored, `record of ${JSON.stringify(l)}`) }
    },
    async revoke (zone, label, options = {}) {
      const l = normalizeLabel(label)
      const r = await c.dht.put(createRevocation(zone, l, NAME_TTL_MS, c.rng), options)
      return { stored: stored(r.stored, `revocation of ${JSON.stringify(l)}`) }
    },
    async rotate (oldZone, newZonePublicKey, options = {}) {
      const r = await c.dht.put(createRotation(oldZone, newZonePublicKey, NAME_TTL_MS, c.rng), options)
      return { stored: stored(r.stored, 'zone rotation') }
    },
    async resolve (name, options) {
      return await resolveName(name, {
        zoneOf: options.zoneOf,
        now: c.clock.now(),
        source: { get: async (key, o) => (await c.dht.get(key, o))?.record },
        ...(options.maxHops !== undefined ? { maxHops: options.maxHops } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      })
    }
  }
}

/** When a registration should be renewed: at half of what is left of its validity or its OHT lifetime. */
export function renewDue (r: { expires: number, at: number }, ttlMs = NAME_TTL_MS): number {
  return Math.min(r.at + ttlMs / 2, r.at + (r.expires - r.at) / 2)
}
