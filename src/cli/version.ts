/**
 * The package's version, read from package.json (two levels up from both src/cli and
 * dist/cli), so `oht --version`, the daemon's /v1/status and the package never disagree.
 */
import { readFileSync } from 'node:fs'

let cached: string | undefined

export function packageVersion (): string {
  if (cached !== undefined) return cached
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0'
  } catch {
    cached = '0.0.0'
  }
  return cached
}
