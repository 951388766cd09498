/**
 * Canonical JSON: the one text every host produces for the same data, so that hashes and
 * signatures over app state, manifests and snapshots are stable. Keys are sorted by UTF-16
 * code units and numbers are written as ECMAScript writes them (the rules of RFC 8785, JCS);
 * no whitespace. Only JSON data is accepted: plain objects, arrays, strings, finite numbers,
 * booleans and null; anything else (undefined, functions, NaN, class instances, cycles) is a
 * DOA_BAD_JSON error rather than something silently dropped, because a value that changes
 * shape on its way through JSON would make two hosts disagree.
 */
import { DoaError } from './errors.ts'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface JsonLimits {
  /** Deepest nesting accepted. @default 64 */
  maxDepth?: number
  /** Largest text accepted or produced, in UTF-16 code units. @default 4194304 */
  maxLength?: number
}

export const JSON_MAX_DEPTH = 64
export const JSON_MAX_LENGTH = 4 * 1024 * 1024

function fail (message: string, cause?: unknown): never {
  throw new DoaError('DOA_BAD_JSON', message, { cause })
}

/** The canonical text of `value` (throws DOA_BAD_JSON for anything that is not JSON data). */
export function canonicalJson (value: unknown, limits: JsonLimits = {}): string {
  const maxDepth = limits.maxDepth ?? JSON_MAX_DEPTH
  const maxLength = limits.maxLength ?? JSON_MAX_LENGTH
  const parts: string[] = []
  let length = 0
  const push = (s: string): void => {
    length += s.length
    if (length > maxLength) fail(`JSON text is over the ${maxLength}-character limit`)
    parts.push(s)
  }
  const walk = (v: unknown, depth: number): void => {
    if (depth > maxDepth) fail(`JSON nesting is deeper than ${maxDepth} levels (or the value has a cycle)`)
    if (v === null) { push('null'); return }
    switch (typeof v) {
      case 'boolean': push(v ? 'true' : 'false'); return
      case 'string': push(JSON.stringify(v)); return
      case 'number':
        if (!Number.isFinite(v)) fail(`${String(v)} is not a JSON number`)
        push(JSON.stringify(v)); return
      case 'object': {
        if (Array.isArray(v)) {
          push('[')
          for (let i = 0; i < v.length; i++) {
            if (i > 0) push(',')
            if (!(i in v)) fail('sparse arrays are not JSON data')
            walk(v[i], depth + 1)
          }
          push(']')
          return
        }
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null) fail(`a ${(v as object).constructor?.name ?? 'non-plain'} object is not JSON data`)
        const keys = Object.keys(v).sort()
        push('{')
        keys.forEach((k, i) => {
          if (i > 0) push(',')
          push(JSON.stringify(k)); push(':')
          walk((v as Record<string, unknown>)[k], depth + 1)
        })
        push('}')
        return
      }
      default: fail(`a ${typeof v} is not JSON data`)
    }
  }
  walk(value, 0)
  return parts.join('')
}

/** Parses JSON text with size and depth limits; throws DOA_BAD_JSON. */
export function parseJson (text: string, limits: JsonLimits = {}): Json {
  const maxLength = limits.maxLength ?? JSON_MAX_LENGTH
  if (typeof text !== 'string') fail('JSON input is not a string')
  if (text.length > maxLength) fail(`JSON text of ${text.length} characters is over the ${maxLength}-character limit`)
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { fail(`malformed JSON: ${(err as Error).message}`, err) }
  checkDepth(v, limits.maxDepth ?? JSON_MAX_DEPTH)
  return v as Json
}

function checkDepth (v: unknown, maxDepth: number): void {
  // Iterative: a hostile document must not be able to overflow our own stack.
  const stack: Array<[unknown, number]> = [[v, 0]]
  while (stack.length > 0) {
    const [x, d] = stack.pop() as [unknown, number]
    if (x === null || typeof x !== 'object') continue
    if (d >= maxDepth) fail(`JSON nesting is deeper than ${maxDepth} levels`)
    for (const c of Array.isArray(x) ? x : Object.values(x)) if (c !== null && typeof c === 'object') stack.push([c, d + 1])
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function utf8 (s: string): Uint8Array { return encoder.encode(s) }

/** Strict UTF-8 decoding (invalid sequences are DOA_BAD_JSON, not replacement characters). */
export function fromUtf8 (b: Uint8Array): string {
  try { return decoder.decode(b) } catch (err) { fail('text is not valid UTF-8', err) }
}
