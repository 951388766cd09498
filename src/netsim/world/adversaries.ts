/**
 * Adversarial nodes of the world, as interceptors in front of a host's real OHT handler (so
 * they understand OHT frames, which is why they live in netsim/world and not in netsim):
 *
 * - dropper: accepts connections and never answers.
 * - wrong-closer: answers every lookup with the adversaries closest to the target (an eclipse
 *   attempt), never returns a value, and accepts PUTs without storing them.
 * - forger: answers GETs with a forged record: a higher seq with a bad signature when it
 *   holds the mutable record, a value that does not hash to the key otherwise.
 */
import { decodeRequest, decodeResponse, encodeResponse, type OhtRecord, type OhtResponse, type WireContact } from '../../oht/index.ts'
import { dropAllRequests, type Interceptor } from '../network.ts'
import type { WorldNode } from './world.ts'

export type AdversaryKind = 'dropper' | 'wrong-closer' | 'forger'

/** What the interceptors need of the world: its k, its counters, and the liars to name. */
export interface AdversaryWorld {
  readonly k: number
  /** What the adversaries did: lying NODES/VALUE answers, forged records served, PUTs swallowed. */
  readonly adversaryStats: { lies: number, forgeries: number, fakePuts: number }
  closestAdversaries(target: Uint8Array, n: number, self: WorldNode): WireContact[]
}

export function adversaryInterceptor (self: WorldNode, kind: AdversaryKind, world: AdversaryWorld): Interceptor {
  if (kind === 'dropper') return dropAllRequests
  if (kind === 'wrong-closer') {
    return async (ctx) => {
      const req = safeDecodeRequest(ctx.frame)
      const real = await ctx.forward()
      if (req === undefined) return real
      const res = safeDecodeResponse(real)
      if (res === undefined) return real
      if (req.type === 'put') { world.adversaryStats.fakePuts++; return encodeResponse({ type: 'stored', grantedMs: req.remainingMs }) }
      if (res.type !== 'nodes' && res.type !== 'value') return real
      const target = req.type === 'find-node' ? req.target : req.type === 'get' ? req.key : undefined
      if (target === undefined) return real
      const liars = world.closestAdversaries(target, world.k, self)
      world.adversaryStats.lies++
      const forged: OhtResponse = res.type === 'value'
        ? { type: 'value', token: res.token, contacts: liars }
        : { type: 'nodes', token: res.token, contacts: liars }
      return encodeResponse(forged)
    }
  }
  return async (ctx) => {
    const req = safeDecodeRequest(ctx.frame)
    const real = await ctx.forward()
    if (req?.type !== 'get') return real
    const res = safeDecodeResponse(real)
    if (res?.type !== 'value') return real
    const held = self.oht.store.get(req.key)?.record
    let record: OhtRecord
    if (held?.kind === 'mutable') {
      const value = held.value.slice()
      value[0] ^= 0xff
      record = { ...held, seq: held.seq + 1000, value, signature: held.signature.slice().fill(7) }
    } else {
      record = { kind: 'immutable', ttlMs: 3_600_000, value: self.host.rng.bytes(16) }
    }
    if (!req.metadataOnly) world.adversaryStats.forgeries++
    return encodeResponse({ type: 'value', token: res.token, contacts: res.contacts, seq: record.kind === 'mutable' ? record.seq : 0, record: req.metadataOnly ? undefined : record })
  }
}

function safeDecodeRequest (frame: Uint8Array): ReturnType<typeof decodeRequest> | undefined {
  try { return decodeRequest(frame) } catch { return undefined }
}

function safeDecodeResponse (frame: Uint8Array): OhtResponse | undefined {
  try { return decodeResponse(frame) } catch { return undefined }
}
