/**
 * The README's command blocks, read from the file itself: every fenced block under the sections
 * a person follows (## Quick start, ## Using it, and every ### under them, including sections
 * added later), with its line number, its section and, when the source says so, why it is not
 * run: an HTML comment `<!-- readme-test: skip (why) -->` on the lines just before the fence.
 *
 * Shell blocks (sh, bash, shell) and JavaScript module blocks (js, mjs) are runnable; others
 * (toml, text, ts …) are listed as not runnable. A marker without a reason, a marker with no
 * block after it, or a marker of another kind is an error: the file must say what it means.
 */

export const RUN_SECTIONS = ['Quick start', 'Using it']

export type BlockKind = 'shell' | 'module' | 'other'

export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  kind: BlockKind
  /** The ## section and the nearest heading under it. */
  section: string
  heading: string
  code: string
  /** Why it is not run, from its marker. */
  skip?: string
}

const SHELL = new Set(['sh', 'bash', 'shell'])
const MODULE = new Set(['js', 'mjs'])
const MARKER = /^\s*<!--\s*readme-test:(.*?)-->\s*$/

export class ReadmeError extends Error {}

/** Blocks under RUN_SECTIONS, in file order. Throws ReadmeError on a malformed marker. */
export function readmeBlocks (markdown: string, sections: readonly string[] = RUN_SECTIONS): ReadmeBlock[] {
  const lines = markdown.split('\n')
  const out: ReadmeBlock[] = []
  let section = ''
  let heading = ''
  let pending: { reason: string, line: number } | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const h = /^(#{2,6})\s+(.*?)\s*$/.exec(line)
    if (h !== null) {
      if (pending !== undefined) throw new ReadmeError(`README.md:${pending.line}: a readme-test marker with no code block after it`)
      if (h[1].length === 2) section = h[2]
      heading = h[2]
      continue
    }
    const m = MARKER.exec(line)
    if (m !== null) {
      const skip = /^\s*skip\s*\((.+)\)\s*$/.exec(m[1])
      if (skip === null) throw new ReadmeError(`README.md:${i + 1}: a readme-test marker must read "readme-test: skip (why)", got ${JSON.stringify(m[1].trim())}`)
      if (pending !== undefined) throw new ReadmeError(`README.md:${pending.line}: a readme-test marker with no code block after it`)
      pending = { reason: skip[1].trim(), line: i + 1 }
      continue
    }
    const fence = /^(`{3,}|~{3,})\s*([\w-]*)/.exec(line)
    if (fence !== null) {
      const close = fence[1]
      const body: string[] = []
      let j = i + 1
      while (j < lines.length && !lines[j].startsWith(close)) body.push(lines[j++])
      if (j >= lines.length) throw new ReadmeError(`README.md:${i + 1}: a code block that never closes`)
      const lang = fence[2].toLowerCase()
      if (sections.includes(section)) {
        out.push({
          line: i + 1,
          lang,
          kind: SHELL.has(lang) ? 'shell' : MODULE.has(lang) ? 'module' : 'other',
          section,
          heading,
          code: body.join('\n'),
          ...(pending !== undefined ? { skip: pending.reason } : {})
        })
      } else if (pending !== undefined) {
        throw new ReadmeError(`README.md:${pending.line}: a readme-test marker outside the sections the test runs (${sections.join(', ')})`)
      }
      pending = undefined
      i = j
      continue
    }
    if (pending !== undefined && line.trim() !== '') throw new ReadmeError(`README.md:${pending.line}: a readme-test marker must stand right before its code block`)
  }
  if (pending !== undefined) throw new ReadmeError(`README.md:${pending.line}: a readme-test marker with no code block after it`)
  return out
}

export interface ReadmeScript {
  script: string
  /** Script line → README line, for error messages. */
  lineMap: Map<number, number>
}

/**
 * One bash script running the runnable blocks in order: shell blocks as they are, module
 * blocks written to `$OHT_README_APP/block-<line>.mjs` and run there with plain `node`. Stops at
 * the first failing command and prints `readme-test: failed at script line N (exit C)` on stderr.
 */
export function readmeScript (blocks: readonly ReadmeBlock[]): ReadmeScript {
  const lines: string[] = [
    'set -eo pipefail',
    'trap \'echo "readme-test: failed at script line $LINENO (exit $?): $BASH_COMMAND" >&2\' ERR'
  ]
  const lineMap = new Map<number, number>()
  for (const b of blocks) {
    if (b.skip !== undefined || b.kind === 'other') continue
    lines.push(`echo "readme-test: block at README.md:${b.line} (${b.section} / ${b.heading})" >&2`)
    if (b.kind === 'shell') {
      b.code.split('\n').forEach((l, k) => {
        lines.push(l)
        lineMap.set(lines.length, b.line + 1 + k)
      })
    } else {
      const file = `block-${b.line}.mjs`
      lines.push(`cat > "$OHT_README_APP/${file}" <<'OHT_README_BLOCK_END'`, b.code, 'OHT_README_BLOCK_END')
      lines.push(`(cd "$OHT_README_APP" && node ${file})`)
      lineMap.set(lines.length, b.line)
    }
  }
  lines.push('echo "readme-test: every block ran" >&2')
  return { script: lines.join('\n') + '\n', lineMap }
}
