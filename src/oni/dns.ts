/**
 * A small DNS responder for `<name>.onet`, answered on the onet interface itself (UDP to
 * fd6f::53 port 53, intercepted from the TUN device: nothing listens on a host socket, and no
 * query ever leaves the machine). Only what glibc's stub resolver needs: one question, class
 * IN, AAAA answered from the resolver callback, A answered with no data, other zones REFUSED.
 *
 *   header  id:2 | QR OPCODE AA TC RD:1 | RA Z RCODE:1 | QDCOUNT:2 | ANCOUNT:2 | NSCOUNT:2 | ARCOUNT:2
 *   question  labels (len:1 + bytes)… 0 | QTYPE:2 | QCLASS:2
 *   answer  C0 0C (pointer to the question name) | TYPE:2 | CLASS:2 | TTL:4 | RDLENGTH:2 | RDATA
 */
import { OniError } from './errors.ts'

export const DNS_PORT = 53
export const QTYPE_A = 1
export const QTYPE_AAAA = 28
export const QTYPE_ANY = 255
export const QCLASS_IN = 1
export const RCODE_NOERROR = 0
export const RCODE_FORMERR = 1
export const RCODE_SERVFAIL = 2
export const RCODE_NXDOMAIN = 3
export const RCODE_NOTIMP = 4
export const RCODE_REFUSED = 5
/** Classic DNS over UDP: queries and answers fit 512 bytes. */
export const MAX_DNS_MESSAGE_BYTES = 512
const HEADER_BYTES = 12
const ANSWER_TTL_S = 60

export interface DnsQuery {
  id: number
  recursionDesired: boolean
  /** Lower case, no trailing dot. */
  name: string
  qtype: number
  qclass: number
  /** The question section as received (echoed in the answer). */
  question: Uint8Array
}

function malformed (message: string): OniError {
  return new OniError('ONI_DNS_MALFORMED', `malformed DNS query: ${message}`)
}

/** Parses a standard query with exactly one question. Throws ONI_DNS_MALFORMED. */
export function parseDnsQuery (msg: Uint8Array): DnsQuery {
  if (msg.byteLength < HEADER_BYTES) throw malformed('shorter than a header')
  if (msg.byteLength > MAX_DNS_MESSAGE_BYTES) throw malformed('longer than 512 bytes')
  if ((msg[2] & 0x80) !== 0) throw malformed('a response, not a query')
  if (((msg[2] >> 3) & 0x0f) !== 0) throw malformed('not a standard query')
  const qd = (msg[4] << 8) | msg[5]
  if (qd !== 1) throw malformed(`${qd} questions`)
  let off = HEADER_BYTES
  const labels: string[] = []
  let nameBytes = 0
  for (;;) {
    if (off >= msg.byteLength) throw malformed('name runs past the message')
    const len = msg[off]
    if (len === 0) { off++; break }
    if ((len & 0xc0) !== 0) throw malformed('compressed or extended label in the question')
    if (off + 1 + len > msg.byteLength) throw malformed('label runs past the message')
    nameBytes += len + 1
    if (nameBytes > 255) throw malformed('name longer than 255 bytes')
    labels.push(Buffer.from(msg.subarray(off + 1, off + 1 + len)).toString('latin1').toLowerCase())
    off += 1 + len
  }
  if (off + 4 > msg.byteLength) throw malformed('question type/class missing')
  const qtype = (msg[off] << 8) | msg[off + 1]
  const qclass = (msg[off + 2] << 8) | msg[off + 3]
  off += 4
  return {
    id: (msg[0] << 8) | msg[1],
    recursionDesired: (msg[2] & 0x01) !== 0,
    name: labels.join('.'),
    qtype,
    qclass,
    question: msg.slice(HEADER_BYTES, off)
  }
}

/** A response to `q` with `rcode` and AAAA answers (16-byte addresses). */
export function buildDnsResponse (q: DnsQuery, rcode: number, aaaa: Uint8Array[] = []): Uint8Array {
  const answerBytes = aaaa.length * (2 + 2 + 2 + 4 + 2 + 16)
  const out = new Uint8Array(HEADER_BYTES + q.question.byteLength + answerBytes)
  const v = new DataView(out.buffer)
  v.setUint16(0, q.id)
  out[2] = 0x80 | 0x04 | (q.recursionDesired ? 0x01 : 0) // QR, AA, RD echoed
  out[3] = rcode & 0x0f
  v.setUint16(4, 1)
  v.setUint16(6, aaaa.length)
  out.set(q.question, HEADER_BYTES)
  let off = HEADER_BYTES + q.question.byteLength
  for (const addr of aaaa) {
    v.setUint16(off, 0xc00c)
    v.setUint16(off + 2, QTYPE_AAAA)
    v.setUint16(off + 4, QCLASS_IN)
    v.setUint32(off + 6, ANSWER_TTL_S)
    v.setUint16(off + 10, 16)
    out.set(addr, off + 12)
    off += 28
  }
  return out
}

/** Resolves a `.onet` name (lower case, no trailing dot) to an onet address, or undefined. */
export type OnetNameResolver = (name: string) => Promise<Uint8Array | undefined>

/**
 * Answers one query message; undefined when the message deserves no answer at all (not even
 * a header to answer with).
 */
export async function answerDnsQuery (msg: Uint8Array, resolve: OnetNameResolver): Promise<Uint8Array | undefined> {
  let q: DnsQuery
  try {
    q = parseDnsQuery(msg)
  } catch {
    if (msg.byteLength < HEADER_BYTES || (msg[2] & 0x80) !== 0) return undefined
    const id = (msg[0] << 8) | msg[1]
    return buildDnsResponse({ id, recursionDesired: false, name: '', qtype: 0, qclass: 0, question: new Uint8Array(0) }, RCODE_FORMERR).map((b, i) => i === 5 ? 0 : b)
  }
  if (q.qclass !== QCLASS_IN) return buildDnsResponse(q, RCODE_REFUSED)
  if (q.name !== 'onet' && !q.name.endsWith('.onet')) return buildDnsResponse(q, RCODE_REFUSED)
  let addr: Uint8Array | undefined
  try {
    addr = await resolve(q.name)
  } catch {
    return buildDnsResponse(q, RCODE_SERVFAIL)
  }
  if (addr === undefined) return buildDnsResponse(q, RCODE_NXDOMAIN)
  if (q.qtype === QTYPE_AAAA || q.qtype === QTYPE_ANY) return buildDnsResponse(q, RCODE_NOERROR, [addr])
  return buildDnsResponse(q, RCODE_NOERROR)
}
