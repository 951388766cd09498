/**
 * Quoting for the control protocol: QuotedString on the way out, unescaping and keyword
 * arguments on the way in, and the argument checks that keep a caller's value from injecting
 * a second command (CR/LF) into the stream.
 *
 * ```
 *   QuotedString = DQUOTE *qcontent DQUOTE      qcontent: any char but \ and ", or \ char
 *   KeywordArgs  = *(SP (Keyword "=" (QuotedString / Word) / Word))
 * ```
 * Tor escapes reply values with \n \r \t \" \\ and three-digit octal (\ooo) for other bytes.
 */
import { TorError } from '../errors.ts'

/** Throws TOR_BAD_ARGUMENT when `value` could break out of its command line. */
export function assertSafeArgument (what: string, value: string): void {
  if (/[\r\n\0]/.test(value)) {
    throw new TorError('TOR_BAD_ARGUMENT', `${what} contains a line break or NUL, which the control protocol cannot carry; remove it`)
  }
}

/** Throws TOR_BAD_ARGUMENT unless `value` is a bare word (no space, quote or control char). */
export function assertWord (what: string, value: string, pattern = /^[\x21-\x7e]+$/): void {
  assertSafeArgument(what, value)
  if (!pattern.test(value) || value.includes('"')) {
    throw new TorError('TOR_BAD_ARGUMENT', `${what} ${JSON.stringify(value.slice(0, 60))} is not a valid control-protocol word`)
  }
}

/** Wraps `value` in double quotes, escaping backslash and quote. Rejects CR/LF/NUL. */
export function quoteString (value: string): string {
  assertSafeArgument('quoted value', value)
  return '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"'
}

/** Leaves simple words bare and quotes anything else (empty, spaces, quotes, non-ASCII). */
export function quoteIfNeeded (value: string): string {
  assertSafeArgument('value', value)
  return /^[A-Za-z0-9_.:/,@+\-*$~[\]]+$/.test(value) ? value : quoteString(value)
}

function protocolError (message: string): TorError {
  return new TorError('TOR_CONTROL_PROTOCOL', `malformed control-port reply: ${message}`)
}

/**
 * Reads a QuotedString starting at `text[start]` (which must be `"`). Returns the unescaped
 * value and the index just past the closing quote.
 */
export function readQuoted (text: string, start: number): { value: string, end: number } {
  if (text[start] !== '"') throw protocolError('expected a quoted string')
  let out = ''
  // Octal escapes are bytes: a run of them may spell one multi-byte UTF-8 character.
  let bytes: number[] = []
  const flush = (): void => {
    if (bytes.length > 0) { out += Buffer.from(bytes).toString('utf8'); bytes = [] }
  }
  let i = start + 1
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { flush(); return { value: out, end: i + 1 } }
    if (c === 0x5c) {
      const n = text[i + 1]
      if (n === undefined) break
      if (n >= '0' && n <= '7') {
        const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4))?.[0] ?? n
        const v = parseInt(oct, 8)
        if (v > 255) throw protocolError('octal escape above \\377')
        bytes.push(v)
        i += 1 + oct.length
        continue
      }
      flush()
      out += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : n
      i += 2
      continue
    }
    let j = i + 1
    while (j < text.length) {
      const d = text.charCodeAt(j)
      if (d === 0x22 || d === 0x5c) break
      j++
    }
    flush()
    out += text.slice(i, j)
    i = j
  }
  throw protocolError('unterminated quoted string')
}

/** Unquotes `value` when it is a QuotedString, returns it unchanged otherwise. */
export function unquote (value: string): string {
  if (!value.startsWith('"')) return value
  const { value: v, end } = readQuoted(value, 0)
  if (end !== value.length) throw protocolError('text after a quoted string')
  return v
}

export interface ReplyToken {
  /** Set for `KEY=VALUE` tokens. */
  key?: string
  /** Unquoted value (or the positional word). */
  value: string
}

/**
 * Splits reply text into positional words and KEY=VALUE pairs (values unquoted).
 * A word counts as KEY=VALUE only when KEY matches /^[A-Za-z0-9_]+$/, so positional values
 * such as `$FP=nick` stay positional.
 *
 * @example
 * tokenize('NOTICE BOOTSTRAP PROGRESS=100 SUMMARY="Done"')
 * // [{value:'NOTICE'}, {value:'BOOTSTRAP'}, {key:'PROGRESS', value:'100'}, {key:'SUMMARY', value:'Done'}]
 */
export function tokenize (text: string): ReplyToken[] {
  const out: ReplyToken[] = []
  let i = 0
  while (i < text.length) {
    if (text[i] === ' ') { i++; continue }
    if (text[i] === '"') {
      const q = readQuoted(text, i)
      out.push({ value: q.value })
      i = q.end
      continue
    }
    let j = i
    while (j < text.length && text[j] !== ' ' && text[j] !== '=') j++
    const word = text.slice(i, j)
    if (text[j] === '=' && /^[A-Za-z0-9_]+$/.test(word)) {
      if (text[j + 1] === '"') {
        const q = readQuoted(text, j + 1)
        out.push({ key: word, value: q.value })
        i = q.end
      } else {
        let k = j + 1
        while (k < text.length && text[k] !== ' ') k++
        out.push({ key: word, value: text.slice(j + 1, k) })
        i = k
      }
      continue
    }
    let k = j
    while (k < text.length && text[k] !== ' ') k++
    out.push({ value: text.slice(i, k) })
    i = k
  }
  return out
}

/** Positional words and keyword arguments of a reply line, keywords upper-cased as sent. */
export function splitArgs (text: string): { positional: string[], keywords: Record<string, string> } {
  const positional: string[] = []
  const keywords: Record<string, string> = Object.create(null)
  for (const t of tokenize(text)) {
    if (t.key === undefined) positional.push(t.value)
    else keywords[t.key] = t.value
  }
  return { positional, keywords }
}
