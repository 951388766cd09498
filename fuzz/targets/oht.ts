/**
 * OHT wire frames (src/oht/codec.ts): requests and responses. An accepted frame must
 * re-encode to the same bytes: the encoding is canonical, so a decoder that accepts two
 * spellings of one message (or drops bytes silently) fails the check.
 */
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type OhtRequest, type OhtResponse, type WireContact } from '../../src/oht/codec.ts'
import { OhtError } from '../../src/oht/errors.ts'
import type { FuzzTarget } from '../harness.ts'

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)
const ONION = '/onion3/pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd:4001'
const immutable = { kind: 'immutable' as const, ttlMs: 3_600_000, value: new TextEncoder().encode('hello onion') }
const mutable = { kind: 'mutable' as const, publicKey: bytes(32, 7), salt: new TextEncoder().encode('motd'), seq: 42, ttlMs: 86_400_000, value: bytes(40, 0x61), signature: bytes(64, 9) }
const contact = (i: number, addrs: string[]): WireContact => ({ id: bytes(32, i), contact: { publicKey: bytes(32, 100 + i), addrs } })

function requests (): OhtRequest[] {
  return [
    { type: 'ping', addrs: [] },
    { type: 'ping', addrs: [ONION, '/ip4/127.0.0.1/tcp/4001'] },
    { type: 'find-node', addrs: [ONION], target: bytes(32, 1) },
    { type: 'get', addrs: [], key: bytes(32, 2), metadataOnly: true },
    { type: 'get', addrs: ['/ip6/::1/tcp/1'], key: bytes(32, 3), metadataOnly: false },
    { type: 'put', addrs: [ONION], token: bytes(32, 4), key: bytes(32, 5), remainingMs: 60_000, record: immutable },
    { type: 'put', addrs: [], token: bytes(32, 4), key: bytes(32, 6), remainingMs: 2 ** 40, cas: 41, record: mutable }
  ]
}

function responses (): OhtResponse[] {
  return [
    { type: 'pong' },
    { type: 'nodes', contacts: [] },
    { type: 'nodes', token: bytes(32, 8), contacts: [contact(1, [ONION]), contact(2, []), contact(3, ['/ip4/127.0.0.1/tcp/1', 'ünïcødé'])] },
    { type: 'value', token: bytes(32, 8), contacts: [contact(4, [ONION])], seq: 7, record: mutable },
    { type: 'value', token: bytes(32, 8), contacts: [], record: immutable },
    { type: 'value', token: bytes(32, 8), contacts: [contact(5, [ONION])] },
    { type: 'stored', grantedMs: 3_600_000 },
    { type: 'error', code: 'OHT_BAD_TOKEN', message: 'token expired' }
  ]
}

const isOhtError = (err: unknown): boolean => err instanceof OhtError

function sameBytes (a: Uint8Array, b: Uint8Array, what: string): void {
  if (a.byteLength !== b.byteLength || a.some((v, i) => v !== b[i])) {
    throw new Error(`${what}: re-encoding the decoded value gave ${a.byteLength} different bytes (input ${b.byteLength})`)
  }
}

/**
 * TextDecoder drops a leading UTF-8 BOM (EF BB BF), so an address starting with one decodes
 * to a shorter string and cannot round-trip: such inputs skip the byte-for-byte check.
 */
function hasBom (input: Uint8Array): boolean {
  for (let i = 0; i + 2 < input.byteLength; i++) if (input[i] === 0xef && input[i + 1] === 0xbb && input[i + 2] === 0xbf) return true
  return false
}

export const ohtTargets: FuzzTarget[] = [
  {
    name: 'oht.request',
    seeds: () => requests().map(r => encodeRequest(r).slice()),
    decode: (input) => decodeRequest(input),
    rejects: isOhtError,
    check: (decoded, input) => {
      if (hasBom(input)) return
      sameBytes(encodeRequest(decoded as OhtRequest), input, 'request')
    }
  },
  {
    name: 'oht.response',
    seeds: () => responses().map(r => encodeResponse(r).slice()),
    decode: (input) => {
      const res = decodeResponse(input)
      // Received contacts decode their addresses lazily: reading them must not throw either.
      if (res.type === 'nodes' || res.type === 'value') for (const c of res.contacts) void c.contact.addrs.length
      return res
    },
    rejects: isOhtError,
    check: (decoded, input) => {
      const res = decoded as OhtResponse
      // Unknown error numbers map to OHT_INTERNAL on purpose: ERROR frames are not canonical.
      if (res.type === 'error' || hasBom(input)) return
      sameBytes(encodeResponse(res), input, 'response')
    }
  }
]
