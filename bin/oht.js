#!/usr/bin/env node
// The `oht` command. Runs the compiled dist/ (an installed package, or a checkout whose
// dist/ is fresh) or the TypeScript sources under tsx (a checkout edited since its last
// build); bin/entry.js decides, OHT_ENTRY=dist|src forces, OHT_ENTRY=explain prints why.
import module from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chooseEntry } from './entry.js'

// Node 22.1+ keeps compiled code between runs (NODE_DISABLE_COMPILE_CACHE=1 turns it off):
// a large part of a short command's start-up. Node 20 has no such cache.
/** @type {{ enableCompileCache?: () => unknown }} */ (module).enableCompileCache?.()

const root = fileURLToPath(new URL('..', import.meta.url))
const tsxAvailable = () => {
  try { import.meta.resolve('tsx/esm/api'); return true } catch { return false }
}

let entry
try {
  entry = chooseEntry({ root, env: process.env, tsxAvailable })
} catch (err) {
  process.stderr.write(`oht: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}
if (entry.warning !== undefined) process.stderr.write(entry.warning + '\n')
if (process.env.OHT_ENTRY === 'explain') process.stderr.write(`oht: running ${entry.mode} (${entry.reason}): ${entry.file}\n`)
if (entry.mode === 'src') {
  const { register } = await import('tsx/esm/api')
  register()
}
/** @type {{ runCli: (argv: readonly string[]) => Promise<never> }} */
const cli = await import(pathToFileURL(entry.file).href)
await cli.runCli(process.argv.slice(2))
