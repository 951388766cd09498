/**
 * DNS messages (RFC 1035 §4, EDNS(0) from RFC 6891) as far as the gateway's resolver needs them:
 * one-question queries from VMs, answers we make ourselves (A, AAAA, no data, error codes),
 * and checking tor's answers before they are relayed. Every read is bounds-checked; anything
 * malformed is ONI_DNS_MALFORMED, never a crash or an allocation sized by the input.
 *
 *   header    ID:16 | QR:1 OPCODE:4 AA:1 TC:1 RD:1 | RA:1 Z:3 RCODE:4 | QDCOUNT:16 | ANCOUNT:16 | NSCOUNT:16 | ARCOUNT:16
 *   question  QNAME (len:8 + bytes)… 0 | QTYPE:16 | QCLASS:16
 *   record    NAME (labels or C0|offset pointer) | TYPE:16 | CLASS:16 | TTL:32 | RDLENGTH:16 | RDATA
 *   OPT (EDNS) an additional record of TYPE 41 whose CLASS is the sender's UDP payload size
 */
import { OniError } from '../errors.ts'

export const TYPE_A = 1
export const TYPE_NS = 2
export const TYPE_CNAME = 5
export const TYPE_SOA = 6
export const TYPE_PTR = 12
export const TYPE_MX = 15
export const TYPE_TXT = 16
export const TYPE_AAAA = 28
export const TYPE_SRV = 33
export const TYPE_OPT = 41
export const TYPE_HTTPS = 65
export const TYPE_ANY = 255
export const CLASS_IN = 1

export const RCODE_NOERROR = 0
export const RCODE_FORMERR = 1
export const RCODE_SERVFAIL = 2
export const RCODE_NXDOMAIN = 3
export const RCODE_NOTIMP = 4
export const RCODE_REFUSED = 5

export const HEADER_BYTES = 12
/** UDP answers without EDNS are at most this long (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_BYTES = 512
/** The largest UDP answer we send even when the client offers more (the DNS flag day 2020 figure). */
export const MAX_UDP_ANSWER_BYTES = 1232
/** Largest message we accept or relay (queries from VMs, answers from tor, over UDP or TCP). */
export const MAX_MESSAGE_BYTES = 4096
const MAX_NAME_BYTES = 255
/** Records in one message we are willing to walk. */
const MAX_RECORDS = 128
const MAX_POINTER_JUMPS = 32

export interface DnsQuery {
  id: number
  recursionDesired: boolean
  /** Lower case, dotted, no trailing dot; '' for the root. Label bytes outside printable ASCII are kept as latin1. */
  name: string
  qtype: number
  qclass: number
  /** The question section exactly as received (name, type, class). */
  question: Uint8Array
  /** The UDP answer size the client accepts: 512, or its EDNS size clamped to [512, MAX_UDP_ANSWER_BYTES]. */
  udpSize: number
}

function malformed (what: string): OniError {
  return new OniError('ONI_DNS_MALFORMED', `malformed DNS message: ${what}`)
}

function u16 (msg: Uint8Array, off: number): number {
  if (off + 2 > msg.byteLength) throw malformed('runs past its end')
  return (msg[off] << 8) | msg[off + 1]
}

/**
 * Skips a (possibly compressed) name starting at `off`; returns the offset after it in the
 * message. Pointers must point backwards, so loops are impossible; jumps are also capped.
 */
function skipName (msg: Uint8Array, off: number): number {
  let pos = off
  let end = -1
  let jumps = 0
  let total = 0
  for (;;) {
    if (pos >= msg.byteLength) throw malformed('a name runs past the message')
    const len = msg[pos]
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.byteLength) throw malformed('a name pointer runs past the message')
      const target = ((len & 0x3f) << 8) | msg[pos + 1]
      if (target >= pos) throw malformed('a name pointer does not point backwards')
      if (end === -1) end = pos + 2
      if (++jumps > MAX_POINTER_JUMPS) throw malformed('too many name pointers')
      pos = target
      continue
    }
    if ((len & 0xc0) !== 0) throw malformed('an extended label type')
    if (len === 0) return end === -1 ? pos + 1 : end
    total += len + 1
    if (total > MAX_NAME_BYTES) throw malformed('a name longer than 255 bytes')
    pos += 1 + len
  }
}

/** Reads the uncompressed question name at HEADER_BYTES; returns it and the offset after it. */
function readQuestionName (msg: Uint8Array): { name: string, end: number } {
  let off = HEADER_BYTES
  const labels: string[] = []
  let total = 0
  for (;;) {
    if (off >= msg.byteLength) throw malformed('the question name runs past the message')
    const len = msg[off]
    if (len === 0) { off++; break }
    if ((len & 0xc0) !== 0) throw malformed('a compressed or extended label in the question')
    if (off + 1 + len > msg.byteLength) throw malformed('a label runs past the message')
    total += len + 1
    if (total > MAX_NAME_BYTES) throw malformed('a name longer than 255 bytes')
    labels.push(Buffer.from(msg.subarray(off + 1, off + 1 + len)).toString('latin1').toLowerCase())
    off += 1 + len
  }
  return { name: labels.join('.'), end: off }
}

/** Walks `n` resource records from `off`; returns the offset after them and the OPT UDP size if one was seen. */
function walkRecords (msg: Uint8Array, off: number, n: number): { end: number, optSize?: number } {
  let pos = off
  let optSize: number | undefined
  for (let i = 0; i < n; i++) {
    const nameAt = pos
    pos = skipName(msg, pos)
    if (pos + 10 > msg.byteLength) throw malformed('a record header runs past the message')
    const type = u16(msg, pos)
    const cls = u16(msg, pos + 2)
    const rdlen = u16(msg, pos + 8)
    pos += 10 + rdlen
    if (pos > msg.byteLength) throw malformed('record data runs past the message')
    if (type === TYPE_OPT && msg[nameAt] === 0) optSize = cls
  }
  return { end: pos, ...(optSize !== undefined ? { optSize } : {}) }
}

/**
 * Parses a query from a client: a standard query (opcode 0) with exactly one question; an
 * EDNS OPT record in the additional section raises the UDP answer size. Throws ONI_DNS_MALFORMED.
 */
export function parseQuery (msg: Uint8Array): DnsQuery {
  if (msg.byteLength < HEADER_BYTES) throw malformed('shorter than a header')
  if (msg.byteLength > MAX_MESSAGE_BYTES) throw malformed(`longer than ${MAX_MESSAGE_BYTES} bytes`)
  if ((msg[2] & 0x80) !== 0) throw malformed('a response, not a query')
  if (((msg[2] >> 3) & 0x0f) !== 0) throw malformed('not a standard query')
  const qd = u16(msg, 4)
  const an = u16(msg, 6)
  const ns = u16(msg, 8)
  const ar = u16(msg, 10)
  if (qd !== 1) throw malformed(`${qd} questions`)
  if (an + ns + ar > MAX_RECORDS) throw malformed('too many records')
  const { name, end } = readQuestionName(msg)
  if (end + 4 > msg.byteLength) throw malformed('question type/class missing')
  const qtype = u16(msg, end)
  const qclass = u16(msg, end + 2)
  const after = end + 4
  const { optSize } = walkRecords(msg, after, an + ns + ar)
  const udpSize = optSize === undefined ? CLASSIC_UDP_BYTES : Math.min(MAX_UDP_ANSWER_BYTES, Math.max(CLASSIC_UDP_BYTES, optSize))
  return {
    id: u16(msg, 0),
    recursionDesired: (msg[2] & 0x01) !== 0,
    name,
    qtype,
    qclass,
    question: msg.slice(HEADER_BYTES, after),
    udpSize
  }
}

/** The query we send upstream: a fresh id, RD set, the client's question and nothing else (no EDNS options of the client travel on). */
export function encodeQuery (id: number, question: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + question.byteLength)
  out[0] = (id >> 8) & 0xff
  out[1] = id & 0xff
  out[2] = 0x01
  out[5] = 1
  out.set(question, HEADER_BYTES)
  return out
}

export interface AnswerRecord { type: number, data: Uint8Array }

/** An answer we make ourselves (authoritative: AA set), with records owned by the question name. */
export function buildAnswer (q: Pick<DnsQuery, 'id' | 'recursionDesired' | 'question'>, rcode: number, records: AnswerRecord[] = [], ttlS = 60): Uint8Array {
  const size = HEADER_BYTES + q.question.byteLength + records.reduce((n, r) => n + 12 + r.data.byteLength, 0)
  const out = new Uint8Array(size)
  const v = new DataView(out.buffer)
  v.setUint16(0, q.id)
  out[2] = 0x80 | 0x04 | (q.recursionDesired ? 0x01 : 0)
  out[3] = 0x80 | (rcode & 0x0f)
  v.setUint16(4, q.question.byteLength > 0 ? 1 : 0)
  v.setUint16(6, records.length)
  out.set(q.question, HEADER_BYTES)
  let off = HEADER_BYTES + q.question.byteLength
  for (const r of records) {
    v.setUint16(off, 0xc000 | HEADER_BYTES)
    v.setUint16(off + 2, r.type)
    v.setUint16(off + 4, CLASS_IN)
    v.setUint32(off + 6, ttlS)
    v.setUint16(off + 10, r.data.byteLength)
    out.set(r.data, off + 12)
    off += 12 + r.data.byteLength
  }
  return out
}

/**
 * FORMERR for a message we could not parse, if it has at least a header we can answer to;
 * undefined otherwise (and for responses: answering those invites loops).
 */
export function formatError (msg: Uint8Array): Uint8Array | undefined {
  if (msg.byteLength < HEADER_BYTES || (msg[2] & 0x80) !== 0) return undefined
  return buildAnswer({ id: u16(msg, 0), recursionDesired: false, question: new Uint8Array(0) }, RCODE_FORMERR)
}

export interface ResponseInfo {
  id: number
  rcode: number
  truncated: boolean
  answers: number
}

/**
 * Checks an answer from upstream before it is relayed: a response (QR set), a standard query's,
 * the one question we asked (names compared case-insensitively), and every record inside the
 * message. Throws ONI_DNS_MALFORMED.
 */
export function checkResponse (msg: Uint8Array, question: Uint8Array): ResponseInfo {
  if (msg.byteLength < HEADER_BYTES) throw malformed('shorter than a header')
  if (msg.byteLength > MAX_MESSAGE_BYTES) throw malformed(`longer than ${MAX_MESSAGE_BYTES} bytes`)
  if ((msg[2] & 0x80) === 0) throw malformed('a query, not a response')
  if (((msg[2] >> 3) & 0x0f) !== 0) throw malformed('not a standard query\'s response')
  if (u16(msg, 4) !== 1) throw malformed('the answer does not carry exactly our one question')
  const an = u16(msg, 6)
  const ns = u16(msg, 8)
  const ar = u16(msg, 10)
  if (an + ns + ar > MAX_RECORDS) throw malformed('too many records')
  const qEnd = HEADER_BYTES + question.byteLength
  if (qEnd > msg.byteLength) throw malformed('the question runs past the message')
  const got = msg.subarray(HEADER_BYTES, qEnd)
  if (Buffer.from(got).toString('latin1').toLowerCase() !== Buffer.from(question).toString('latin1').toLowerCase()) {
    throw malformed('the answer is for another question')
  }
  walkRecords(msg, qEnd, an + ns + ar)
  return { id: u16(msg, 0), rcode: msg[3] & 0x0f, truncated: (msg[2] & 0x02) !== 0, answers: an }
}

/** A copy of `msg` carrying `id`. */
export function withId (msg: Uint8Array, id: number): Uint8Array {
  const out = msg.slice()
  out[0] = (id >> 8) & 0xff
  out[1] = id & 0xff
  return out
}

/**
 * An answer that fits `limit` bytes: unchanged when it does, else the header and question with
 * TC set and no records, which tells the client to ask again over TCP (RFC 1035 §4.2.1).
 */
export function fitAnswer (msg: Uint8Array, questionBytes: number, limit: number): Uint8Array {
  if (msg.byteLength <= limit) return msg
  const out = msg.slice(0, HEADER_BYTES + questionBytes)
  out[2] |= 0x02
  out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0
  return out
}

/** 4 bytes of an IPv4 address, 16 of an IPv6 address (parsed by node:net's rules elsewhere). */
export function addressRecord (bytes: Uint8Array): AnswerRecord {
  if (bytes.byteLength === 4) return { type: TYPE_A, data: bytes }
  if (bytes.byteLength === 16) return { type: TYPE_AAAA, data: bytes }
  throw new OniError('ONI_BAD_ARGUMENT', `an address is 4 or 16 bytes, got ${bytes.byteLength}`)
}
