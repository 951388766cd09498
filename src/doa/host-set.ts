/**
 * An app's host set: one `set` key per app (net-keys.ts `hostSetKey`) where every host writes
 * one value, signed by its node key (the OHT checks the signature: a host cannot write for
 * another), and renews it before its TTL ends; a host that stops hosting writes a signed delete.
 * The value is canonical JSON, at most 4 KiB:
 *
 *   { "v": 1, "app": <hex app key>, "release": <n>, "addrs": [<the host's PeerNet addresses>],
 *     "onion": <56-char address of its endpoint, when it serves HTTP>, "port": <its virtual port>,
 *     "serves": ["api" | "chunks" | "sync" | "ui"], "quota": { "bytes": n, "ops": n },
 *     "snapshot": { "ref": <BundleRef of the signed snapshot blob>, "stateHash": <hex>, "ops": n, "release": n } | null,
 *     "since": <ms the host started hosting> }
 *
 * What a host says is a claim: visitors verify whatever they fetch from it against the manifest
 * (and snapshots against the host key that signed them), so a lying entry wastes a visitor's
 * time but cannot make it accept a forged byte.
 */
import { toHex } from '../core/bytes.ts'
import { isValidOnionAddress } from '../crypto/index.ts'
import type { ValueRecord } from '../oht/index.ts'
import { checkBundleRef, type BundleRef } from './bundle.ts'
import { DoaError } from './errors.ts'
import { canonicalJson, fromUtf8, parseJson, utf8 } from './json.ts'

export const MAX_HOST_VALUE = 4096
export type HostService = 'api' | 'chunks' | 'sync' | 'ui'
const SERVICES: readonly HostService[] = ['api', 'chunks', 'sync', 'ui']

export interface HostSnapshotRef {
  ref: BundleRef
  stateHash: string
  ops: number
  release: number
}

export interface HostAnnouncement {
  v: 1
  app: string
  release: number
  addrs: string[]
  onion?: string
  port?: number
  serves: HostService[]
  quota: { bytes: number, ops: number }
  snapshot: HostSnapshotRef | null
  since: number
}

/** A verified entry of the host set: the announcement and the key that signed it. */
export interface HostEntry extends HostAnnouncement {
  /** Hex node key of the host (the writer of the value): its PeerNet identity. */
  host: string
  publicKey: Uint8Array
}

function bad (message: string): never { throw new DoaError('DOA_BAD_RECORD', `host announcement: ${message}`) }

const HEX32 = /^[0-9a-f]{64}$/
const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0

export function encodeHostAnnouncement (a: HostAnnouncement): Uint8Array {
  const bytes = utf8(canonicalJson(checkAnnouncement(a)))
  if (bytes.byteLength > MAX_HOST_VALUE) throw new DoaError('DOA_TOO_LARGE', `a host announcement is at most ${MAX_HOST_VALUE} bytes`)
  return bytes
}

function checkAnnouncement (x: unknown): HostAnnouncement {
  const a = x as Record<string, unknown>
  if (a === null || typeof a !== 'object' || Array.isArray(a)) bad('not an object')
  for (const k of Object.keys(a)) if (!['v', 'app', 'release', 'addrs', 'onion', 'port', 'serves', 'quota', 'snapshot', 'since'].includes(k)) bad(`unknown field ${k}`)
  if (a.v !== 1) bad('unsupported version')
  if (typeof a.app !== 'string' || !HEX32.test(a.app)) bad('app is not a 64-hex key')
  if (!count(a.release)) bad('release is not a count')
  if (!Array.isArray(a.addrs) || a.addrs.length > 8 || a.addrs.some(s => typeof s !== 'string' || s.length === 0 || s.length > 256)) bad('addrs must be at most 8 addresses')
  if (a.onion !== undefined && (typeof a.onion !== 'string' || !isValidOnionAddress(a.onion))) bad('onion is not a v3 onion address')
  if (a.port !== undefined && (!Number.isSafeInteger(a.port) || (a.port as number) < 1 || (a.port as number) > 65535)) bad('port is not a port')
  if (!Array.isArray(a.serves) || a.serves.some(s => !SERVICES.includes(s as HostService)) || new Set(a.serves).size !== a.serves.length) bad(`serves must list some of ${SERVICES.join(', ')}`)
  const q = a.quota as Record<string, unknown>
  if (q === null || typeof q !== 'object' || !count(q.bytes) || !count(q.ops) || Object.keys(q).length !== 2) bad('quota must be { bytes, ops }')
  let snapshot: HostSnapshotRef | null = null
  if (a.snapshot !== null) {
    const s = a.snapshot as Record<string, unknown>
    if (s === undefined || typeof s !== 'object' || Array.isArray(s) || Object.keys(s).length !== 4) bad('snapshot must be { ref, stateHash, ops, release } or null')
    try { checkBundleRef(s.ref as BundleRef) } catch (err) { throw new DoaError('DOA_BAD_RECORD', `host announcement: snapshot.ref: ${(err as Error).message}`, { cause: err }) }
    if (typeof s.stateHash !== 'string' || !HEX32.test(s.stateHash) || !count(s.ops) || !count(s.release)) bad('snapshot fields are malformed')
    const ref = s.ref as BundleRef
    snapshot = { ref: { root: ref.root, index: ref.index, size: ref.size, chunks: ref.chunks, chunkBytes: ref.chunkBytes }, stateHash: s.stateHash, ops: s.ops as number, release: s.release as number }
  }
  if (!count(a.since)) bad('since is not a time')
  const out: HostAnnouncement = {
    v: 1,
    app: a.app,
    release: a.release as number,
    addrs: [...a.addrs as string[]],
    serves: [...a.serves as HostService[]].sort(),
    quota: { bytes: q.bytes as number, ops: q.ops as number },
    snapshot,
    since: a.since as number
  }
  if (a.onion !== undefined) out.onion = a.onion as string
  if (a.port !== undefined) out.port = a.port as number
  return out
}

/**
 * Reads one value of an app's host set (already signature-checked by the OHT). Returns
 * undefined for a value that is not a valid announcement for `appKey`: one bad entry never
 * hides the good ones.
 */
export function openHostValue (appKey: Uint8Array, record: ValueRecord): HostEntry | undefined {
  if (record.deleted || record.value.byteLength > MAX_HOST_VALUE) return undefined
  try {
    const a = checkAnnouncement(parseJson(fromUtf8(record.value), { maxLength: MAX_HOST_VALUE }))
    if (a.app !== toHex(appKey)) return undefined
    return { ...a, host: toHex(record.writer), publicKey: record.writer.slice() }
  } catch {
    return undefined
  }
}
