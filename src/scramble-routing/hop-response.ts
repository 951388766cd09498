/**
 * The answer to a hop request: how the sender learns whether its packet got through and, if
 * not, which hop gave up, without any relay learning more than "it failed" and without two
 * relays seeing the same bytes (which would let colluding relays link their packets).
 *
 *   0        1        2                                    34
 *   +--------+--------+------------------------------------+
 *   | ver=1  | kind   | report (kind 0 only): 32 bytes      |
 *   +--------+--------+------------------------------------+
 *   kind 0 report: the packet passed this hop; the report says how it ended
 *   kind 1 dropped: this hop refused the packet (malformed, bad MAC, replay, not a relay)
 *   kind 2 busy: this hop is over its rate for the sender (per-peer or in total)
 *
 * The report is onion-layered like Tor's backward cells. The hop where the packet's journey
 * ended (the terminal, or the relay whose next hop failed) writes
 *
 *   inner = code (1) | zero (15) | HMAC-SHA256(rk, "mac" | code)[0..16]
 *
 * and XORs it with its pad, HMAC-SHA256(rk, "pad") (rk: its hop's response key, kdf.ts). Every
 * relay on the way back XORs its own pad on top. The sender, who knows every rk, strips the
 * pads from the first hop on; after stripping hop j's pad, a valid inner for hop j names the
 * hop and the code. A relay can forge a report only in its own name.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { ScrambleError } from './errors.ts'

export const RESPONSE_VERSION = 1
export const REPORT_BYTES = 32
export const RESPONSE_BYTES = 2 + REPORT_BYTES

export const RESPONSE_KIND = { report: 0, dropped: 1, busy: 2 } as const
export type ResponseKind = keyof typeof RESPONSE_KIND

/** How a packet's journey ended, as the reporting hop saw it. */
export const REPORT_CODE = {
  /** The terminal hop took it (handed to its consumer, or matched its SURB). */
  delivered: 0,
  /** The reporting relay could not reach its next hop. */
  'next-hop-unreachable': 1,
  /** The next hop did not answer in time. */
  'next-hop-timeout': 2,
  /** The next hop refused the packet or answered garbage. */
  'next-hop-refused': 3,
  /** The next hop said it is over its rate. */
  'next-hop-busy': 4,
  /** The terminal hop's consumer refused the message. */
  rejected: 5,
  /** The terminal hop holds no keys for this SURB (expired, or used already). */
  'unknown-surb': 6
} as const
export type ReportCode = keyof typeof REPORT_CODE
const CODE_NAMES = Object.fromEntries(Object.entries(REPORT_CODE).map(([k, v]) => [v, k])) as Record<number, ReportCode>

export type HopResponse = { kind: 'report', report: Uint8Array } | { kind: 'dropped' } | { kind: 'busy' }

function pad (rk: Uint8Array): Buffer {
  return createHmac('sha256', rk).update('pad').digest()
}

function innerMac (rk: Uint8Array, code: number): Buffer {
  return createHmac('sha256', rk).update('mac').update(Uint8Array.of(code)).digest().subarray(0, 16)
}

/** A new report in this hop's name. */
export function createReport (rk: Uint8Array, code: ReportCode): Uint8Array {
  const n = REPORT_CODE[code]
  const out = new Uint8Array(REPORT_BYTES)
  out[0] = n
  out.set(innerMac(rk, n), 16)
  const p = pad(rk)
  for (let i = 0; i < REPORT_BYTES; i++) out[i] ^= p[i]
  return out
}

/** A downstream report with this hop's layer added. */
export function wrapReport (rk: Uint8Array, report: Uint8Array): Uint8Array {
  const p = pad(rk)
  const out = new Uint8Array(REPORT_BYTES)
  for (let i = 0; i < REPORT_BYTES; i++) out[i] = report[i] ^ p[i]
  return out
}

/**
 * Strips the layers with the sender's response keys (path order). Returns the reporting hop's
 * index and code, or undefined when no layer holds a valid report (someone changed it).
 */
export function readReport (responseKeys: Uint8Array[], report: Uint8Array): { hop: number, code: ReportCode } | undefined {
  if (report.byteLength !== REPORT_BYTES) return undefined
  const x = report.slice()
  for (let j = 0; j < responseKeys.length; j++) {
    const p = pad(responseKeys[j])
    for (let i = 0; i < REPORT_BYTES; i++) x[i] ^= p[i]
    const name = CODE_NAMES[x[0]]
    let zero = 0
    for (let i = 1; i < 16; i++) zero |= x[i]
    if (name !== undefined && zero === 0 && timingSafeEqual(innerMac(responseKeys[j], x[0]), x.subarray(16))) return { hop: j, code: name }
  }
  return undefined
}

export function encodeHopResponse (r: HopResponse): Uint8Array {
  if (r.kind !== 'report') return Uint8Array.of(RESPONSE_VERSION, RESPONSE_KIND[r.kind])
  if (r.report.byteLength !== REPORT_BYTES) throw new ScrambleError('SCRAMBLE_BAD_ARGUMENT', `a report has ${REPORT_BYTES} bytes`)
  const out = new Uint8Array(RESPONSE_BYTES)
  out[0] = RESPONSE_VERSION
  out[1] = RESPONSE_KIND.report
  out.set(r.report, 2)
  return out
}

/** Strict decoder: throws SCRAMBLE_BAD_ENCODING on anything but the three forms above. */
export function decodeHopResponse (bytes: Uint8Array): HopResponse {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 2 || bytes.byteLength > RESPONSE_BYTES) {
    throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `a hop response has 2 or ${RESPONSE_BYTES} bytes`)
  }
  if (bytes[0] !== RESPONSE_VERSION) throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `unknown hop response version ${bytes[0]}`)
  const kind = bytes[1]
  if (kind === RESPONSE_KIND.report && bytes.byteLength === RESPONSE_BYTES) return { kind: 'report', report: bytes.slice(2) }
  if (kind === RESPONSE_KIND.dropped && bytes.byteLength === 2) return { kind: 'dropped' }
  if (kind === RESPONSE_KIND.busy && bytes.byteLength === 2) return { kind: 'busy' }
  throw new ScrambleError('SCRAMBLE_BAD_ENCODING', `malformed hop response (kind ${kind}, ${bytes.byteLength} bytes)`)
}
