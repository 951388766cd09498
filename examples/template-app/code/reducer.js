// The state of the guest book, folded from every signed op in one order on every host.
// Reducers are pure: no clock, no randomness, no I/O. Return new objects; never change `state`.
import { MAX_ENTRIES } from './limits.js'

export function init () {
  return { entries: [], signatures: 0 }
}

export function reduce (state, body, ctx) {
  if (body.type !== 'sign') return state
  const entry = { by: ctx.author, name: body.name, message: body.message, at: ctx.time }
  const entries = [...state.entries, entry].slice(-MAX_ENTRIES)
  return { entries, signatures: state.signatures + 1 }
}
