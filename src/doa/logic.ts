/**
 * What the replay engine needs of an app's code: an initial state and a fold of operations
 * into state, each op checked by the validator first. The sandbox implements it for untrusted
 * code; `plainLogic` implements it for trusted code (tests, the benchmark's baseline, built-in
 * apps) with the same rules, so both give the same states.
 */
import { DoaError, type DoaErrorCode } from './errors.ts'
import { canonicalJson, parseJson, type Json } from './json.ts'

/** The context a reducer and validator see for one op (no wall clock: `time` is the author's claim). */
export interface OpContext {
  /** Hex op id (SHA-256 of the signed op). */
  id: string
  /** Hex author key. */
  author: string
  seq: number
  lamport: number
  /** Milliseconds since the epoch as the author's clock said; untrusted. */
  time: number
}

export interface OpInput { body: Json, ctx: OpContext }

export type OpOutcome = { ok: true } | { ok: false, code: DoaErrorCode, reason: string }

export interface ApplyResult { state: Json, outcomes: OpOutcome[] }

export interface AppLogic {
  init(): Json
  /** Folds `ops` into `state` in order; an op whose outcome is not ok leaves the state as it was. */
  applyMany(state: Json, ops: readonly OpInput[], options?: { validate?: boolean }): ApplyResult
}

export interface PlainLogicInit {
  init?: () => unknown
  reduce: (state: any, body: any, ctx: OpContext) => unknown
  validate?: (state: any, body: any, ctx: OpContext) => boolean | string
}

/** Trusted JavaScript as an AppLogic: state is copied through canonical JSON after each op. */
export function plainLogic (fns: PlainLogicInit): AppLogic {
  const copy = (v: unknown): Json => parseJson(canonicalJson(v))
  return {
    init: () => copy(fns.init?.() ?? null),
    applyMany (state, ops, options = {}) {
      let cur = copy(state)
      const outcomes: OpOutcome[] = []
      for (const op of ops) {
        try {
          if (options.validate !== false && fns.validate !== undefined) {
            const v = fns.validate(cur, op.body, op.ctx)
            if (v !== true) { outcomes.push({ ok: false, code: 'DOA_OP_REJECTED', reason: typeof v === 'string' ? v : 'refused by the app validator' }); continue }
          }
          const next = fns.reduce(copy(cur), op.body, op.ctx)
          cur = copy(next)
          outcomes.push({ ok: true })
        } catch (err) {
          outcomes.push({ ok: false, code: err instanceof DoaError ? err.code : 'DOA_SANDBOX_THREW', reason: (err as Error)?.message ?? String(err) })
        }
      }
      return { state: cur, outcomes }
    }
  }
}
