/**
 * The API bearer token: 32 random bytes (hex) in a 0600 file in the state dir. Only processes
 * that can read that file (the daemon's user, root) can use the API; the socket itself is 0600
 * as a second fence. The file appears whole or not at all (written aside, fsynced, then
 * linked into place), so a crash mid-write never leaves an empty token behind.
 */
import { timingSafeEqual } from 'node:crypto'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { cryptoRng, toHex, writeFileAtomic } from '../core/index.ts'
import { DaemonError } from './errors.ts'

const TOKEN_RE = /^[0-9a-f]{64}$/

/** Reads the token; throws DAEMON_STATE with what to do if the file is missing, open to others or malformed. */
export async function readToken (path: string): Promise<string> {
  let st
  try {
    st = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES') throw new DaemonError('DAEMON_STATE', `cannot read the API token ${path}: permission denied; run as the daemon's user`, { cause: err })
    throw new DaemonError('DAEMON_STATE', `no API token at ${path}: is the daemon running with this state dir? start it with oht daemon`, { cause: err })
  }
  if ((st.mode & 0o077) !== 0) throw new DaemonError('DAEMON_STATE', `API token ${path} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${path}`)
  if (st.size > 1024) throw new DaemonError('DAEMON_STATE', `API token ${path} is not a token file (${st.size} bytes)`)
  let text: string
  try {
    text = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    throw new DaemonError('DAEMON_STATE', `cannot read the API token ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): run as the daemon's user`, { cause: err })
  }
  if (!TOKEN_RE.test(text)) throw new DaemonError('DAEMON_STATE', `API token ${path} is malformed: delete it and restart the daemon`)
  return text
}

/**
 * Reads the token, creating it (0600, in a 0700 dir) when missing. Two processes creating it
 * at once agree: the second finds the first one's file and reads it.
 */
export async function ensureToken (path: string): Promise<string> {
  try {
    await stat(path)
    return await readToken(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const token = toHex(cryptoRng.bytes(32))
  try {
    await writeFileAtomic(path, token + '\n', { mode: 0o600, replace: false })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await readToken(path)
    throw err
  }
  return token
}

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export function tokenMatches (header: string | undefined, token: string): boolean {
  if (header === undefined) return false
  const m = /^Bearer ([0-9a-f]{64})$/.exec(header.trim())
  if (m === null) return false
  return timingSafeEqual(Buffer.from(m[1]), Buffer.from(token))
}
