/**
 * The asking side of the app protocol (app-wire.ts): what a visitor, an installer or another
 * host asks one host over PeerNet, and chunk providers for fetchBundleFrom (the OHT itself, and
 * a host). Whatever comes back is checked by the caller: manifests here against the app key,
 * chunks by hash in chunk-fetch.ts, ops by their signatures in the replica.
 */
import type { AbortOptions } from '../core/abort.ts'
import { toHex } from '../core/bytes.ts'
import type { PeerContact, PeerNet, PeerRequestOptions } from '../oht/index.ts'
import { APP_MESSAGE_MAX, APP_PROTOCOL, decodeAppResponse, encodeAppRequest, type AppRequest, type AppResponse, type HttpResponse } from './app-wire.ts'
import type { ChunkProvider } from './chunk-fetch.ts'
import { DoaError } from './errors.ts'
import { openManifest, type SignedManifest } from './manifest.ts'
import type { DoaDht } from './op-log.ts'

/** A host's answer to a request was an error of its own. */
function refused (res: Exclude<AppResponse, { status: 'ok' }>, host: string): DoaError {
  const code = res.status === 'not-hosted' ? 'DOA_NOT_HOSTED' : res.status === 'refused' ? 'DOA_QUOTA' : res.status === 'not-found' ? 'DOA_NOT_FOUND' : 'DOA_BAD_MESSAGE'
  return new DoaError(code, `host ${host}: ${res.message}`)
}

export interface HostClientOptions {
  /** Deadline of one request. @default 60000 (onion round trips are seconds) */
  timeoutMs?: number
}

export interface HostClient {
  readonly contact: PeerContact
  readonly name: string
  /** The host's manifest of `appKey` (current, or `release`), verified against the app key; undefined if it has none. */
  manifest(appKey: Uint8Array, release: number | undefined, options?: AbortOptions): Promise<SignedManifest | undefined>
  /** Raw bytes the host keeps under `key` for `appKey` (the caller checks the hash). */
  chunk(appKey: Uint8Array, key: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined>
  /** Ops the host has beyond `vector` (unverified bytes: feed them to a replica). */
  sync(appKey: Uint8Array, vector: Record<string, number>, options?: AbortOptions & { maxBytes?: number }): Promise<{ ops: Uint8Array[], more: boolean }>
  /** The app's HTTP face at this host (assets and API), over PeerNet instead of an onion endpoint. */
  http(appKey: Uint8Array, method: 'GET' | 'POST', path: string, body?: Uint8Array, options?: AbortOptions): Promise<HttpResponse>
}

export function createHostClient (peers: PeerNet, contact: PeerContact, init: HostClientOptions = {}): HostClient {
  const name = `host ${toHex(contact.publicKey).slice(0, 12)}…`
  const ask = async (req: AppRequest, options: AbortOptions): Promise<AppResponse> => {
    const opts: PeerRequestOptions = {
      timeoutMs: init.timeoutMs ?? 60_000,
      // Answers (a 60 KiB chunk, a sync round, an HTTP body) may be larger than PeerNet's default.
      maxMessageBytes: APP_MESSAGE_MAX + 64,
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    }
    const bytes = await peers.request(contact, APP_PROTOCOL, encodeAppRequest(req), opts)
    return decodeAppResponse(req.type, bytes)
  }
  return {
    contact,
    name,
    async manifest (appKey, release, options = {}) {
      const res = await ask({ type: 'manifest', app: appKey, ...(release !== undefined ? { release } : {}) }, options)
      if (res.status === 'not-found') return undefined
      if (res.status !== 'ok') throw refused(res, name)
      if (res.type !== 'manifest') throw new DoaError('DOA_BAD_MESSAGE', `${name} answered a manifest request with ${res.type}`)
      const signed = openManifest(res.bytes, appKey)
      if (release !== undefined && signed.manifest.release !== release) throw new DoaError('DOA_BAD_MANIFEST', `${name} sent release ${signed.manifest.release} when asked for ${release}`)
      return signed
    },
    async chunk (appKey, key, options = {}) {
      const res = await ask({ type: 'chunk', app: appKey, key }, options)
      if (res.status === 'not-found') return undefined
      if (res.status !== 'ok') throw refused(res, name)
      if (res.type !== 'chunk') throw new DoaError('DOA_BAD_MESSAGE', `${name} answered a chunk request with ${res.type}`)
      return res.bytes
    },
    async sync (appKey, vector, options = {}) {
      const res = await ask({ type: 'sync', app: appKey, vector, maxBytes: options.maxBytes ?? APP_MESSAGE_MAX - 1024 }, options)
      if (res.status !== 'ok') throw refused(res, name)
      if (res.type !== 'sync') throw new DoaError('DOA_BAD_MESSAGE', `${name} answered a sync request with ${res.type}`)
      return { ops: res.ops, more: res.more }
    },
    async http (appKey, method, path, body = new Uint8Array(0), options = {}) {
      const res = await ask({ type: 'http', app: appKey, method, path, body }, options)
      if (res.status !== 'ok') throw refused(res, name)
      if (res.type !== 'http') throw new DoaError('DOA_BAD_MESSAGE', `${name} answered an HTTP request with ${res.type}`)
      return res.response
    }
  }
}

/** Chunks from the OHT: each one a lookup for its immutable record (the engine checks its hash). */
export function ohtChunkProvider (dht: DoaDht, concurrency = 4): ChunkProvider {
  return {
    name: 'oht',
    concurrency,
    async get (key, options) {
      const r = await dht.get(key, options)
      return r?.record.kind === 'immutable' ? r.value : undefined
    }
  }
}

/** Chunks from one host of the app, over PeerNet. */
export function hostChunkProvider (client: HostClient, appKey: Uint8Array, concurrency = 4): ChunkProvider {
  return {
    name: client.name,
    concurrency,
    async get (key, options) { return await client.chunk(appKey, key, options) }
  }
}
