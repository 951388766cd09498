/**
 * One endpoint manager: ONI's. Daemons before it kept their own list in
 * `<state>/endpoints.json` ({ endpoints: [{ name, port, target }] }, keys derived from the node
 * identity at key-tree path `endpoint.<name>`). At the first start with ONI, that list is moved
 * into ONI's state (`<state>/oni/`) with the same keys, so every endpoint keeps its onion
 * address, and the old file is kept as `endpoints.json.migrated`. Running it twice imports
 * nothing twice; a malformed old file stops the daemon with an error naming it (nothing is
 * moved or dropped).
 */
import { readFile, rename, stat } from 'node:fs/promises'
import { errorMessage } from '../core/index.ts'
import { deriveChildSeed, identityFromSeed, type Identity } from '../crypto/index.ts'
import { importEndpoints, type ImportedEndpoint, type ImportResult } from '../oni/index.ts'
import { DaemonError } from './errors.ts'
import type { JsonLog } from './json-log.ts'
import { endpointsPath } from './paths.ts'

const OLD_NAME = /^[a-z0-9_-]{1,63}$/
const OLD_TARGET = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/
const MAX_OLD_BYTES = 256 * 1024
const MAX_OLD_ENDPOINTS = 256

interface OldEndpoint { name: string, port: number, target: string }

/** The old list, validated; undefined when there is none. */
async function readOld (file: string): Promise<OldEndpoint[] | undefined> {
  let text: string
  try {
    if ((await stat(file)).size > MAX_OLD_BYTES) throw new DaemonError('DAEMON_STATE', `${file} is too large to be an endpoint list: fix or move it`)
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof DaemonError) throw err
    throw new DaemonError('DAEMON_STATE', `cannot read ${file}: ${errorMessage(err)}`, { cause: err })
  }
  let raw: unknown
  try { raw = JSON.parse(text) } catch (err) { throw new DaemonError('DAEMON_STATE', `${file} is not valid JSON: fix it, or move it away to drop those endpoints`, { cause: err }) }
  const list = (raw as { endpoints?: unknown } | null)?.endpoints
  if (!Array.isArray(list) || list.length > MAX_OLD_ENDPOINTS) throw new DaemonError('DAEMON_STATE', `${file} has no "endpoints" list of at most ${MAX_OLD_ENDPOINTS}: fix it, or move it away to drop those endpoints`)
  return list.map((item, i) => {
    const e = item as Partial<OldEndpoint> | null
    const m = typeof e?.target === 'string' ? OLD_TARGET.exec(e.target) : null
    const unix = typeof e?.target === 'string' && e.target.startsWith('unix:/') && !/[\s"]/.test(e.target)
    if (e === null || typeof e.name !== 'string' || !OLD_NAME.test(e.name) || typeof e.port !== 'number' || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535 || (m === null && !unix)) {
      throw new DaemonError('DAEMON_STATE', `${file}: endpoint ${i} is malformed (a name, a port and a loopback or unix target): fix it, or move the file away to drop those endpoints`)
    }
    return { name: e.name, port: e.port, target: e.target as string }
  })
}

/**
 * Moves `<stateDir>/endpoints.json` into ONI's state in `oniDir`, keys derived from `owner`
 * as the old daemon did. Returns what was imported (undefined: nothing to migrate).
 */
export async function migrateDaemonEndpoints (stateDir: string, oniDir: string, owner: Identity, log: JsonLog): Promise<ImportResult | undefined> {
  const file = endpointsPath(stateDir)
  const old = await readOld(file)
  if (old === undefined) return undefined
  const entries: ImportedEndpoint[] = old.map(e => {
    const seed = deriveChildSeed(owner.seed, `endpoint.${e.name}`)
    try {
      // The old daemon handed tor the target itself; through ONI it is a counted forward route.
      return { name: e.name, identity: identityFromSeed(seed), routes: [{ virtualPort: e.port, target: e.target.replace(/^localhost:/, '127.0.0.1:') }] }
    } finally { seed.fill(0) }
  })
  let result: ImportResult
  try {
    result = await importEndpoints(oniDir, entries)
  } catch (err) {
    throw new DaemonError('DAEMON_STATE', `moving the endpoints of ${file} to ONI failed (nothing was lost: the file stays and the move is tried again at the next start): ${errorMessage(err)}`, { cause: err })
  } finally {
    for (const e of entries) e.identity.destroy()
  }
  let aside = `${file}.migrated`
  for (let i = 2; await stat(aside).then(() => true, () => false); i++) aside = `${file}.migrated-${i}`
  await rename(file, aside)
  for (const e of result.imported) {
    log.info('endpoint migrated to ONI', { name: e.name, ...(e.name !== e.requested ? { was: e.requested } : {}), address: e.address })
  }
  log.info('old endpoint list migrated', { from: file, keptAs: aside, imported: result.imported.length, present: result.present.length })
  return result
}
