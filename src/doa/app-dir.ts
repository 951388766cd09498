/**
 * An app's source directory, as its author keeps it:
 *
 *   my-app/
 *     doa.json          { "name", "version", "description"?, "capabilities", "entry", "code"?, "assets"? }
 *     code/…            reducer and validator modules (the code bundle); "code" names another folder
 *     ui/…              static files of the web UI (the assets bundle); "assets" names another folder
 *
 * `doa.json` is the author's part of the manifest; publishing adds the author key, the release
 * number and the bundle references. Unknown fields are refused (a typo must not be ignored).
 *
 * @example
 * { "name": "guestbook", "version": "1.0.0", "description": "sign the guest book",
 *   "capabilities": ["api", "state:read", "state:write", "ui"],
 *   "entry": { "ui": "index.html", "reducer": "reducer.js", "validator": "validator.js" } }
 */
import { readFile, stat } from 'node:fs/promises'
import { join, resolve, relative, isAbsolute } from 'node:path'
import type { AbortOptions } from '../core/abort.ts'
import { readDirectoryFiles, type BundleFile, type BundleLimits } from './bundle.ts'
import { DoaError } from './errors.ts'
import { parseJson } from './json.ts'
import { CAPABILITIES, type AppManifest, type Capability } from './manifest.ts'

export const APP_FILE = 'doa.json'
const DEFAULT_CODE_DIR = 'code'
const DEFAULT_ASSETS_DIR = 'ui'

/** What doa.json says: the manifest fields its author chooses. */
export interface AppSpec {
  name: string
  version: string
  description?: string
  capabilities: Capability[]
  entry: AppManifest['entry']
}

export interface AppSource {
  spec: AppSpec
  /** Files of the code bundle, or null when the app has no code. */
  code: BundleFile[] | null
  /** Files of the assets bundle, or null when the app has no UI. */
  assets: BundleFile[] | null
}

function bad (message: string): never { throw new DoaError('DOA_BAD_MANIFEST', `${APP_FILE}: ${message}`) }

async function isDir (p: string): Promise<boolean> {
  try { return (await stat(p)).isDirectory() } catch { return false }
}

function subdir (root: string, value: unknown, field: string, fallback: string): string {
  if (value === undefined) return join(root, fallback)
  if (typeof value !== 'string' || value === '' || isAbsolute(value)) bad(`"${field}" must be a folder inside the app directory`)
  const p = resolve(root, value)
  const r = relative(root, p)
  if (r.startsWith('..') || isAbsolute(r)) bad(`"${field}" (${value}) is outside the app directory`)
  return p
}

/**
 * Reads an app directory: doa.json and the files of its code and assets folders (each read
 * with the bundle rules: safe paths, no links out of the folder, size limits). Throws
 * DOA_BAD_MANIFEST naming the field at fault, DOA_NOT_FOUND without doa.json.
 */
export async function readAppDirectory (dir: string, options: AbortOptions & { limits?: BundleLimits } = {}): Promise<AppSource> {
  const root = resolve(dir)
  let text: string
  try {
    text = await readFile(join(root, APP_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DoaError('DOA_NOT_FOUND', `${root} has no ${APP_FILE}: it is not a DOA app directory (see docs/first-onion-app.md)`, { cause: err })
    throw new DoaError('DOA_BAD_ARGUMENT', `cannot read ${join(root, APP_FILE)}: ${(err as Error).message}`, { cause: err })
  }
  let doc: Record<string, unknown>
  try {
    doc = parseJson(text, { maxLength: 64 * 1024 }) as Record<string, unknown>
  } catch (err) {
    throw new DoaError('DOA_BAD_MANIFEST', `${APP_FILE} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) bad('must be a JSON object')
  for (const k of Object.keys(doc)) {
    if (!['name', 'version', 'description', 'capabilities', 'entry', 'code', 'assets'].includes(k)) bad(`unknown field ${JSON.stringify(k)} (known: name, version, description, capabilities, entry, code, assets)`)
  }
  const caps = doc.capabilities ?? []
  if (!Array.isArray(caps) || caps.some(c => !(CAPABILITIES as readonly unknown[]).includes(c))) bad(`"capabilities" must be a list of: ${CAPABILITIES.join(', ')}`)
  const entry = (doc.entry ?? {}) as Record<string, unknown>
  if (typeof entry !== 'object' || Array.isArray(entry)) bad('"entry" must be an object { ui, reducer, validator }')
  const spec: AppSpec = {
    name: doc.name as string,
    version: doc.version as string,
    capabilities: [...new Set(caps as Capability[])].sort(),
    entry: { ui: (entry.ui ?? null) as string | null, reducer: (entry.reducer ?? null) as string | null, validator: (entry.validator ?? null) as string | null }
  }
  if (doc.description !== undefined) spec.description = doc.description as string
  const codeDir = subdir(root, doc.code, 'code', DEFAULT_CODE_DIR)
  const assetsDir = subdir(root, doc.assets, 'assets', DEFAULT_ASSETS_DIR)
  const wantsCode = spec.entry.reducer !== null || spec.entry.validator !== null
  const wantsAssets = spec.entry.ui !== null
  if (wantsCode && !await isDir(codeDir)) bad(`entry.reducer/validator need the code folder ${relative(root, codeDir)}/`)
  if (wantsAssets && !await isDir(assetsDir)) bad(`entry.ui needs the assets folder ${relative(root, assetsDir)}/`)
  const code = wantsCode ? await readDirectoryFiles(codeDir, options) : null
  const assets = wantsAssets ? await readDirectoryFiles(assetsDir, options) : null
  const has = (files: BundleFile[] | null, p: string | null): boolean => p === null || (files?.some(f => f.path === p) ?? false)
  if (!has(code, spec.entry.reducer)) bad(`entry.reducer ${JSON.stringify(spec.entry.reducer)} is not a file of ${relative(root, codeDir)}/`)
  if (!has(code, spec.entry.validator)) bad(`entry.validator ${JSON.stringify(spec.entry.validator)} is not a file of ${relative(root, codeDir)}/`)
  if (!has(assets, spec.entry.ui)) bad(`entry.ui ${JSON.stringify(spec.entry.ui)} is not a file of ${relative(root, assetsDir)}/`)
  if (code !== null && code.length === 0) bad(`the code folder ${relative(root, codeDir)}/ is empty`)
  if (assets !== null && assets.length === 0) bad(`the assets folder ${relative(root, assetsDir)}/ is empty`)
  return { spec, code, assets }
}
