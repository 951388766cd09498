/**
 * Where the wormhole layer keeps its secret state (sessions, prekeys, groups): a small
 * key-value interface, so tests and the simulator use memory and real nodes use files
 * (file-store.ts). Contract: `put` resolves only once the value is durable (the session manager
 * writes the advanced ratchet before it hands out a ciphertext, so a crash never reuses a key);
 * values are copied in and out.
 */
import type { AbortOptions } from '../core/abort.ts'
import { throwIfAborted } from '../core/abort.ts'
import { wormholeError } from './errors.ts'

export interface SessionStore {
  get(name: string, options?: AbortOptions): Promise<Uint8Array | undefined>
  /** Durable when it resolves. */
  put(name: string, value: Uint8Array, options?: AbortOptions): Promise<void>
  delete(name: string, options?: AbortOptions): Promise<void>
  /** Names starting with `prefix`, sorted. */
  list(prefix: string, options?: AbortOptions): Promise<string[]>
  /** Wipes what the store holds in memory. */
  close(): Promise<void>
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,199}$/

/** Names are file-name safe: lower-case letters, digits, '.', '_' and '-', up to 200. */
export function checkStoreName (name: string): void {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw wormholeError('WORMHOLE_BAD_ARGUMENT', `bad state name ${JSON.stringify(name)}: use [a-z0-9._-], at most 200 characters`)
  }
}

export interface MemorySessionStore extends SessionStore {
  /** Completed puts, for tests. */
  readonly writes: number
}

/** A store in memory (tests, the simulator). Overwritten and deleted values are wiped. */
export function createMemorySessionStore (): MemorySessionStore {
  const map = new Map<string, Uint8Array>()
  let writes = 0
  return {
    get writes () { return writes },
    async get (name, options) {
      throwIfAborted(options?.signal)
      checkStoreName(name)
      const v = map.get(name)
      return v === undefined ? undefined : Uint8Array.from(v)
    },
    async put (name, value, options) {
      throwIfAborted(options?.signal)
      checkStoreName(name)
      map.get(name)?.fill(0)
      map.set(name, Uint8Array.from(value))
      writes++
    },
    async delete (name, options) {
      throwIfAborted(options?.signal)
      checkStoreName(name)
      map.get(name)?.fill(0)
      map.delete(name)
    },
    async list (prefix, options) {
      throwIfAborted(options?.signal)
      return [...map.keys()].filter(k => k.startsWith(prefix)).sort()
    },
    async close () {
      for (const v of map.values()) v.fill(0)
      map.clear()
    }
  }
}
