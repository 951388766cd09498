// Which code `oht` runs: the compiled dist/ or the TypeScript sources under tsx.
//
//  - An installed package has no src/: dist/, always.
//  - A checkout runs dist/ while it is fresh (no file or directory under src/ is newer than
//    dist/build-stamp.json, written by `npm run build`), else the sources: an edit after a
//    build never runs stale code, and tests that drive the CLI always run what is in src/.
//  - OHT_ENTRY=dist or OHT_ENTRY=src forces one (an error when it is not there).
// Plain JavaScript with no imports beyond node:fs and node:path: it runs before any loader.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/**
 * @typedef {object} EntryChoice
 * @property {'dist' | 'src'} mode
 * @property {string} file absolute path of the CLI module to import
 * @property {string} reason why this one, for OHT_ENTRY=explain and error messages
 * @property {string} [warning] something the user should fix (printed on stderr)
 */

/**
 * Newest mtime (ms) of `dir` and everything under it; 0 when it does not exist.
 * @param {string} dir
 * @returns {number}
 */
export function newestMtime (dir) {
  let newest = 0
  /** @type {string[]} */
  const stack = [dir]
  while (stack.length > 0) {
    const d = /** @type {string} */ (stack.pop())
    let entries
    try {
      newest = Math.max(newest, statSync(d).mtimeMs)
      entries = readdirSync(d, { withFileTypes: true })
    } catch { continue }
    for (const e of entries) {
      const p = join(d, e.name)
      if (e.isDirectory()) stack.push(p)
      else {
        try { newest = Math.max(newest, statSync(p).mtimeMs) } catch {}
      }
    }
  }
  return newest
}

/**
 * @param {string} path
 * @returns {number | undefined} mtime in ms, undefined when missing
 */
function mtime (path) {
  try { return statSync(path).mtimeMs } catch { return undefined }
}

/**
 * @param {{ root: string, env: Record<string, string | undefined>, tsxAvailable: () => boolean }} input
 * @returns {EntryChoice}
 */
export function chooseEntry ({ root, env, tsxAvailable }) {
  const distFile = join(root, 'dist', 'cli', 'main.js')
  const srcFile = join(root, 'src', 'cli', 'main.ts')
  const haveDist = mtime(distFile) !== undefined
  const haveSrc = mtime(srcFile) !== undefined
  /**
   * @param {string} reason
   * @param {string} [warning]
   * @returns {EntryChoice}
   */
  const dist = (reason, warning) => ({ mode: 'dist', file: distFile, reason, ...(warning !== undefined ? { warning } : {}) })
  /**
   * @param {string} reason
   * @returns {EntryChoice}
   */
  const src = (reason) => ({ mode: 'src', file: srcFile, reason })
  const forced = env.OHT_ENTRY
  if (forced === 'dist') {
    if (!haveDist) throw new Error(`OHT_ENTRY=dist but ${distFile} does not exist: run "npm run build"`)
    return dist('OHT_ENTRY=dist')
  }
  if (forced === 'src') {
    if (!haveSrc) throw new Error(`OHT_ENTRY=src but ${srcFile} does not exist (an installed package ships dist/ only)`)
    if (!tsxAvailable()) throw new Error('OHT_ENTRY=src needs tsx (a dev dependency): run "npm ci" in the checkout')
    return src('OHT_ENTRY=src')
  }
  if (forced !== undefined && forced !== '' && forced !== 'explain') throw new Error(`OHT_ENTRY must be "dist" or "src", got ${JSON.stringify(forced)}`)
  if (!haveSrc) {
    if (!haveDist) throw new Error(`neither ${distFile} nor ${srcFile} exists: reinstall the package`)
    return dist('installed package (no src/)')
  }
  const stamp = mtime(join(root, 'dist', 'build-stamp.json'))
  let stale = 'dist/ is not built'
  if (haveDist && stamp !== undefined) {
    const newest = newestMtime(join(root, 'src'))
    if (newest <= stamp) return dist('dist/ is newer than every file in src/')
    stale = 'src/ changed after the last build'
  }
  if (tsxAvailable()) return src(`${stale}: running the sources with tsx`)
  if (haveDist) return dist(`${stale}, and tsx is not installed`, `oht: ${stale}; running the older dist/ (run "npm run build")`)
  throw new Error(`${stale} and tsx is not installed: run "npm ci && npm run build" in ${root}`)
}
