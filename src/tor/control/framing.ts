/**
 * Control-port reply framing: bytes in, whole replies out. Pure (no sockets), incremental,
 * bounded. Tor's control-spec grammar, as this decoder accepts it:
 *
 * ```
 *   Reply        = *(MidReplyLine / DataReplyLine) EndReplyLine
 *   MidReplyLine = StatusCode "-" ReplyText CRLF          e.g. 250-version=0.4.9.11
 *   DataReplyLine= StatusCode "+" ReplyText CRLF CmdData   e.g. 250+config-text=
 *   EndReplyLine = StatusCode SP ReplyText CRLF           e.g. 250 OK
 *   CmdData      = *DataLine "." CRLF                      a line "." ends the data;
 *                                                          a leading "." of a data line is
 *                                                          doubled on the wire ("dot-stuffed")
 *
 *   +-----+---+------------------------+----+
 *   | 250 | - | version=0.4.9.11       | \r\n |   StatusCode: 3 ASCII digits
 *   +-----+---+------------------------+----+   divider: "-" more, "+" data, " " end
 * ```
 *
 * Every line of one reply carries the same status; replies with status 6xx are asynchronous
 * events, all others answer commands in order. Lines must end in CRLF. A line longer than
 * `maxLineBytes` or a reply larger than `maxReplyBytes` is a protocol error before it is
 * buffered, so a hostile or broken peer cannot make us allocate without bound.
 */
import { TorError } from '../errors.ts'

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024
export const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
/** Upper bound on lines per reply, so a flood of empty lines is also bounded. */
export const DEFAULT_MAX_REPLY_LINES = 1_000_000

export type ReplyDivider = '-' | '+' | ' '

export interface ReplyLine {
  status: number
  divider: ReplyDivider
  /** The text after the divider, CRLF removed. */
  text: string
  /** For "+" lines: the data block, dot-unstuffed, lines joined with "\n", no final newline. */
  data?: string
}

export interface ControlReply {
  /** The status of the reply (every line has the same). */
  status: number
  lines: ReplyLine[]
}

export interface ReplyFramerInit {
  /** @default 65536 */
  maxLineBytes?: number
  /** @default 16777216 */
  maxReplyBytes?: number
  /** @default 1000000 */
  maxReplyLines?: number
}

const LF = 0x0a
const CR = 0x0d
const DOT = 0x2e
const NEWLINE = Buffer.from('\n')

function protocolError (message: string): TorError {
  return new TorError('TOR_CONTROL_PROTOCOL', `malformed control-port reply: ${message}`)
}

/** True for replies that are asynchronous events (650) rather than command answers. */
export function isEventReply (reply: ControlReply): boolean {
  return reply.status >= 600 && reply.status <= 699
}

/**
 * Incremental decoder. `push()` returns the replies completed by a chunk; after it has
 * thrown once, the stream is desynchronised and every later push throws the same error.
 *
 * @example
 * const framer = new ReplyFramer()
 * framer.push(Buffer.from('250-version=0.4.9.11\r\n250 OK\r\n'))
 * // [{ status: 250, lines: [{ text: 'version=0.4.9.11', ... }, { text: 'OK', ... }] }]
 */
export class ReplyFramer {
  private readonly maxLineBytes: number
  private readonly maxReplyBytes: number
  private readonly maxReplyLines: number
  /** Bytes of the line not yet terminated. Never longer than maxLineBytes + 1. */
  private partial: Uint8Array = new Uint8Array(0)
  private lines: ReplyLine[] = []
  private replyBytes = 0
  /** Data block so far: alternating "\n" and line views (the leading "\n" is dropped). */
  private data: Uint8Array[] | undefined
  private failed: TorError | undefined

  constructor (init: ReplyFramerInit = {}) {
    this.maxLineBytes = init.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
    this.maxReplyBytes = init.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES
    this.maxReplyLines = init.maxReplyLines ?? DEFAULT_MAX_REPLY_LINES
  }

  /** True when bytes of an unfinished reply are buffered (a close now would truncate it). */
  get midReply (): boolean {
    return this.partial.byteLength > 0 || this.lines.length > 0 || this.data !== undefined
  }

  /**
   * The error that broke the stream, once one did. Replies completed earlier in the same
   * chunk are still returned by that push(); the next push() throws this error.
   */
  get error (): TorError | undefined { return this.failed }

  push (chunk: Uint8Array): ControlReply[] {
    if (this.failed !== undefined) throw this.failed
    const out: ControlReply[] = []
    try {
      this.consume(chunk, out)
    } catch (err) {
      this.failed = err instanceof TorError ? err : new TorError('TOR_CONTROL_PROTOCOL', 'control-port decoder failed', { cause: err })
      this.partial = new Uint8Array(0)
      this.lines = []
      this.data = undefined
      if (out.length === 0) throw this.failed
    }
    return out
  }

  private consume (bytes: Uint8Array, out: ControlReply[]): void {
    // A Buffer view: its indexOf is a native memchr, Uint8Array's is not.
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    let start = 0
    while (start < chunk.byteLength) {
      const lf = chunk.indexOf(LF, start)
      if (lf === -1) {
        const rest = chunk.subarray(start)
        if (this.partial.byteLength + rest.byteLength > this.maxLineBytes + 1) {
          throw protocolError(`line longer than ${this.maxLineBytes} bytes`)
        }
        this.partial = join(this.partial, rest)
        break
      }
      let reply: ControlReply | undefined
      if (this.partial.byteLength === 0) {
        if (lf - start > this.maxLineBytes + 1) throw protocolError(`line longer than ${this.maxLineBytes} bytes`)
        if (lf === start || chunk[lf - 1] !== CR) throw protocolError('line not terminated by CRLF')
        reply = this.line(chunk, start, lf - 1)
      } else {
        const full = Buffer.concat([this.partial, chunk.subarray(start, lf)])
        this.partial = new Uint8Array(0)
        if (full.byteLength > this.maxLineBytes + 1) throw protocolError(`line longer than ${this.maxLineBytes} bytes`)
        if (full.byteLength === 0 || full[full.byteLength - 1] !== CR) throw protocolError('line not terminated by CRLF')
        reply = this.line(full, 0, full.byteLength - 1)
      }
      start = lf + 1
      if (reply !== undefined) out.push(reply)
    }
  }

  /** One line: `buf[start, end)` without its CRLF. */
  private line (buf: Buffer, start: number, end: number): ControlReply | undefined {
    this.replyBytes += end - start + 2
    if (this.replyBytes > this.maxReplyBytes) throw protocolError(`reply larger than ${this.maxReplyBytes} bytes`)
    if (this.data !== undefined) {
      if (this.data.length >= 2 * this.maxReplyLines) throw protocolError(`more than ${this.maxReplyLines} lines in one reply`)
      if (buf[start] === DOT) {
        if (end - start === 1) {
          this.lines[this.lines.length - 1].data = this.data.length === 0 ? '' : Buffer.concat(this.data).toString('utf8', 1)
          this.data = undefined
          return undefined
        }
        start++ // dot-stuffed: the first dot was added on the wire
      }
      // Views, not strings: one decode for the whole block when it ends.
      this.data.push(NEWLINE, buf.subarray(start, end))
      return undefined
    }
    if (this.lines.length >= this.maxReplyLines) throw protocolError(`more than ${this.maxReplyLines} lines in one reply`)
    const divider = end - start >= 4 ? DIVIDERS[buf[start + 3]] : undefined
    if (divider === undefined || !isDigit(buf[start]) || !isDigit(buf[start + 1]) || !isDigit(buf[start + 2])) {
      throw protocolError(`expected "NNN-", "NNN+" or "NNN " at the start of ${JSON.stringify(buf.toString('utf8', start, Math.min(end, start + 40)))}`)
    }
    const status = (buf[start] - 48) * 100 + (buf[start + 1] - 48) * 10 + (buf[start + 2] - 48)
    if (this.lines.length > 0 && this.lines[0].status !== status) {
      throw protocolError(`status changed from ${this.lines[0].status} to ${status} within one reply`)
    }
    const line: ReplyLine = { status, divider, text: buf.toString('utf8', start + 4, end) }
    this.lines.push(line)
    if (divider === '+') { this.data = []; return undefined }
    if (divider === '-') return undefined
    const reply: ControlReply = { status, lines: this.lines }
    this.lines = []
    this.replyBytes = 0
    return reply
  }
}

function isDigit (b: number | undefined): boolean {
  return b !== undefined && b >= 48 && b <= 57
}

const DIVIDERS: Record<number, ReplyDivider | undefined> = { 0x2d: '-', 0x2b: '+', 0x20: ' ' }

function join (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

/**
 * Decodes a complete byte string into replies; throws TOR_CONTROL_PROTOCOL when the bytes end
 * in the middle of a reply. For tests and transcripts.
 */
export function parseReplies (bytes: Uint8Array, init?: ReplyFramerInit): ControlReply[] {
  const framer = new ReplyFramer(init)
  const replies = framer.push(bytes)
  if (framer.error !== undefined) throw framer.error
  if (framer.midReply) throw protocolError('input ends in the middle of a reply')
  return replies
}

/** Text of the reply's last line (e.g. "OK"), for messages. */
export function replyMessage (reply: ControlReply): string {
  return reply.lines.map(l => l.text).filter(t => t !== '').join('; ')
}
