/**
 * Where an app's shared records live in the OHT, besides its release record (manifest.ts) and
 * its content-addressed chunks (bundle.ts). Every key is SHA-256 over a domain tag, the app key
 * and what the record is about, so no two apps or purposes share a key:
 *
 *   host set     SHA-256("doa/hosts/v1\0" || app)                   `set` key: one value per host
 *   op heads     SHA-256("doa/heads/v1\0" || app)                   `set` key: one value per author (its latest op)
 *   op page      SHA-256("doa/ops/v1\0" || app || author || u32 p)  `set` key: ops (p·256, (p+1)·256] of one author
 *
 * Pages of 256 ops match the `set` kind's 256 values per writer (src/oht/kinds.ts): an author
 * is the only writer of its pages, so no page can overflow, and an app with many ops spreads
 * over many keys. The heads key holds one value per author, so up to the kind's 1,024 values
 * per key authors are listed there; an app with more authors finds the rest through its hosts
 * (their snapshots and anti-entropy), not through the heads key.
 */
import { concatBytes } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { utf8 } from './json.ts'

const HOSTS_TAG = utf8('doa/hosts/v1\0')
const HEADS_TAG = utf8('doa/heads/v1\0')
const OPS_TAG = utf8('doa/ops/v1\0')

/** Ops of one author per page key: the `set` kind's per-writer limit. */
export const OPS_PER_PAGE = 256

/** The set key where hosts of `appKey` announce themselves. */
export function hostSetKey (appKey: Uint8Array): Uint8Array {
  return sha256(HOSTS_TAG, appKey)
}

/** The set key holding each author's latest op of `appKey`. */
export function opHeadsKey (appKey: Uint8Array): Uint8Array {
  return sha256(HEADS_TAG, appKey)
}

/** The page (0-based) that holds op `seq` (1-based) of an author. */
export function pageOf (seq: number): number {
  return Math.floor((seq - 1) / OPS_PER_PAGE)
}

/** The set key of page `page` of `author`'s ops in `appKey`. */
export function opPageKey (appKey: Uint8Array, author: Uint8Array, page: number): Uint8Array {
  const p = new Uint8Array(4)
  new DataView(p.buffer).setUint32(0, page)
  return sha256(concatBytes(OPS_TAG, appKey, author, p))
}

/** The value id of op `seq` within its page: u64 big-endian. */
export function opValueId (seq: number): Uint8Array {
  const id = new Uint8Array(8)
  const dv = new DataView(id.buffer)
  dv.setUint32(0, Math.floor(seq / 2 ** 32)); dv.setUint32(4, seq >>> 0)
  return id
}

/** The value id of an author's head, and of a host's announcement. */
export const HEAD_VALUE_ID = utf8('head')
export const HOST_VALUE_ID = utf8('host')
