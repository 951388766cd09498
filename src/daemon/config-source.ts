/**
 * Where things are in a config file's text, so every config error can say `file:line:column`:
 * syntax errors (from the parsers) and the setting a validation error names (found here by
 * its path, e.g. ['tor', 'mode'], after the file parsed).
 *
 * TOML: a line scanner that follows `[table]` / `[[array]]` headers and `key =` lines
 * (dotted and quoted keys too); JSON: jsonc-parser's syntax tree with offsets. Locating is
 * best effort: a setting it cannot find gets no position, and the message still names it.
 */
import { createRequire } from 'node:module'
import type * as Jsonc from 'jsonc-parser'

type JsoncApi = typeof Jsonc
let jsoncApi: JsoncApi | undefined

/**
 * jsonc-parser, loaded the first time a JSON config is read: TOML configs (the default) and
 * commands without a config never pay for it. Its package is CommonJS, so require() is sync.
 */
function jsonc (): JsoncApi {
  jsoncApi ??= createRequire(import.meta.url)('jsonc-parser') as JsoncApi
  return jsoncApi
}

export interface SourcePosition {
  /** 1-based. */
  line: number
  /** 1-based, in characters. */
  column: number
}

/** Path of a setting: table names and keys, list indexes as numbers. */
export type SettingPath = ReadonlyArray<string | number>

export type Locator = (path: SettingPath) => SourcePosition | undefined

/** 1-based line and column of a character offset. */
export function positionOf (text: string, offset: number): SourcePosition {
  let line = 1
  let lineStart = 0
  const end = Math.min(Math.max(offset, 0), text.length)
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 0x0a) { line++; lineStart = i + 1 }
  }
  return { line, column: end - lineStart + 1 }
}

/** The first JSON syntax error, strict (no comments, no trailing commas), or undefined. */
export function jsonSyntaxError (text: string): { position: SourcePosition, message: string } | undefined {
  const { parseTree, printParseErrorCode } = jsonc()
  const errors: Jsonc.ParseError[] = []
  parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  if (first === undefined) return undefined
  return { position: positionOf(text, first.offset), message: describeJsonError(printParseErrorCode(first.error)) }
}

function describeJsonError (code: string): string {
  // PropertyNameExpected -> "property name expected"
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()
}

/** Finds settings in JSON text by path. */
export function jsonLocator (text: string): Locator {
  const { findNodeAtLocation, parseTree } = jsonc()
  const root = parseTree(text, [], { disallowComments: true, allowTrailingComma: false })
  return (path) => {
    if (root === undefined) return undefined
    // The deepest node of the path that exists: a list index may point past the end.
    for (let n = path.length; n > 0; n--) {
      const node = findNodeAtLocation(root, [...path.slice(0, n)])
      if (node === undefined) continue
      // A property's value: point at its key, where the setting's name is written.
      const at = node.parent?.type === 'property' ? node.parent.offset : node.offset
      return positionOf(text, at)
    }
    return undefined
  }
}

/** Splits a TOML key (`a.b`, `"a.b".c`, `'x'`) into its parts; undefined if it is not one. */
function tomlKeyParts (key: string): string[] | undefined {
  const parts: string[] = []
  let i = 0
  const s = key.trim()
  while (i < s.length) {
    while (s[i] === ' ' || s[i] === '\t') i++
    let part = ''
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i]
      const end = s.indexOf(q, i + 1)
      if (end === -1) return undefined
      part = s.slice(i + 1, end)
      i = end + 1
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(s.slice(i))
      if (m === null) return undefined
      part = m[0]
      i += part.length
    }
    parts.push(part)
    while (s[i] === ' ' || s[i] === '\t') i++
    if (i < s.length) {
      if (s[i] !== '.') return undefined
      i++
    }
  }
  return parts.length > 0 ? parts : undefined
}

interface TomlEntry { path: string[], position: SourcePosition }

/** Finds settings in TOML text by path (headers and keys, not keys inside inline tables). */
export function tomlLocator (text: string): Locator {
  const entries: TomlEntry[] = []
  let table: string[] = []
  let multiline: string | undefined
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]
    if (multiline !== undefined) {
      if (line.includes(multiline)) multiline = undefined
      continue
    }
    const header = /^(\s*)\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(line)
    if (header !== null) {
      const parts = tomlKeyParts(header[2])
      if (parts !== undefined) {
        table = parts
        entries.push({ path: parts, position: { line: n + 1, column: header[1].length + 1 } })
      }
      continue
    }
    const kv = /^(\s*)((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=(.*)$/.exec(line)
    if (kv === null) continue
    const parts = tomlKeyParts(kv[2])
    if (parts !== undefined) entries.push({ path: [...table, ...parts], position: { line: n + 1, column: kv[1].length + 1 } })
    // A value that opens a multi-line string hides the lines up to its end.
    const value = kv[3]
    for (const q of ['"""', "'''"]) {
      const at = value.indexOf(q)
      if (at !== -1 && value.indexOf(q, at + 3) === -1) { multiline = q; break }
    }
  }
  return (path) => {
    const want = path.filter((p): p is string => typeof p === 'string')
    for (let n = want.length; n > 0; n--) {
      const hit = entries.find(e => e.path.length === n && e.path.every((p, i) => p === want[i]))
      if (hit !== undefined) return hit.position
    }
    return undefined
  }
}
