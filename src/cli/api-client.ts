/**
 * Client of the daemon's local API (HTTP + JSON over its unix socket, bearer token from the
 * 0600 token file). Every failure becomes a CliError whose message says what to do.
 */
import { request } from 'node:http'
import { stat } from 'node:fs/promises'
import type { AbortOptions } from '../core/index.ts'
import { errorMessage, isCodedError } from '../core/index.ts'
import { readToken } from '../daemon/token.ts'
import { CliError } from './errors.ts'

export const MAX_RESPONSE_BYTES = 1024 * 1024

export interface ApiClientInit {
  socketPath: string
  tokenPath: string
}

export interface ApiClient {
  readonly socketPath: string
  call<T = unknown>(method: string, path: string, body?: unknown, options?: AbortOptions): Promise<T>
  text(path: string, options?: AbortOptions): Promise<string>
}

function unavailable (socketPath: string, cause?: unknown): CliError {
  return new CliError('CLI_DAEMON_UNAVAILABLE', `no daemon answers on ${socketPath}: start one with "oht daemon" (or point --state-dir/--socket at a running one)`, { cause })
}

/** Checks the socket and reads the token; no request is sent yet. */
export async function connectApi (init: ApiClientInit): Promise<ApiClient> {
  try {
    const st = await stat(init.socketPath)
    if (!st.isSocket()) throw new CliError('CLI_DAEMON_UNAVAILABLE', `${init.socketPath} is not a socket: point --socket at the daemon's API socket`)
  } catch (err) {
    if (err instanceof CliError) throw err
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw new CliError('CLI_PERMISSION', `permission denied on ${init.socketPath}: run as the daemon's user`, { cause: err })
    throw unavailable(init.socketPath, err)
  }
  let token: string
  try {
    token = await readToken(init.tokenPath)
  } catch (err) {
    throw new CliError('CLI_PERMISSION', errorMessage(err), { cause: err })
  }
  // The token goes only to a socket of the daemon's user (who owns the token file) or root:
  // a socket someone else put at that path would otherwise collect it.
  const [sockOwner, tokenOwner] = await Promise.all([stat(init.socketPath).then(s => s.uid, () => -1), stat(init.tokenPath).then(s => s.uid, () => -1)])
  if (sockOwner !== tokenOwner && sockOwner !== 0) {
    throw new CliError('CLI_PERMISSION', `${init.socketPath} belongs to uid ${sockOwner}, but the API token to uid ${tokenOwner}: not sending the token to a socket of another user`)
  }
  const raw = async (method: string, path: string, body: unknown, options: AbortOptions): Promise<{ status: number, text: string }> => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return await new Promise((resolve, reject) => {
      const req = request({
        socketPath: init.socketPath,
        path,
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(payload.byteLength) } : {})
        },
        ...(options.signal !== undefined ? { signal: options.signal } : {})
      }, (res) => {
        const chunks: Buffer[] = []
        let total = 0
        res.on('data', (c: Buffer) => {
          total += c.byteLength
          if (total > MAX_RESPONSE_BYTES) { req.destroy(new CliError('CLI_API', `the daemon's answer exceeds ${MAX_RESPONSE_BYTES} bytes`)); return }
          chunks.push(c)
        })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof CliError) { reject(err); return }
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') reject(unavailable(init.socketPath, err))
        else if (err.code === 'EACCES') reject(new CliError('CLI_PERMISSION', `permission denied on ${init.socketPath}: run as the daemon's user`, { cause: err }))
        else if (err.name === 'AbortError' || isCodedError(err, 'CORE_ABORTED')) reject(new CliError('CLI_FAILED', 'interrupted', { cause: err, exitCode: 130 }))
        else reject(new CliError('CLI_API', `talking to the daemon failed: ${err.message}`, { cause: err }))
      })
      req.end(payload)
    })
  }
  const check = (status: number, text: string): void => {
    if (status >= 200 && status < 300) return
    let code = ''
    let message = text.slice(0, 500)
    try {
      const e = (JSON.parse(text) as { error?: { code?: string, message?: string } }).error
      code = e?.code ?? ''
      message = e?.message ?? message
    } catch {}
    if (status === 401) throw new CliError('CLI_UNAUTHORIZED', `the daemon refused our token (${init.tokenPath}): the token file belongs to another daemon or state dir`)
    if (status === 404 && (code === 'DAEMON_NOT_FOUND' || code.startsWith('DOA_'))) throw new CliError('CLI_NOT_FOUND', message)
    if (status === 409 && code === 'DAEMON_CAS_MISMATCH') throw new CliError('CLI_CAS_MISMATCH', `${message} (nothing was written)`)
    if (status === 400 || status === 413) throw new CliError(status === 413 ? 'CLI_VALUE_TOO_LARGE' : 'CLI_BAD_ARGUMENT', message)
    // DOA's refusals (a forged app, a quota, the OHT out of reach) say themselves what happened.
    if (code.startsWith('DOA_')) throw new CliError('CLI_API', `${message} (${code})`)
    throw new CliError('CLI_API', `the daemon answered ${status}${code !== '' ? ` ${code}` : ''}: ${message}`)
  }
  return {
    socketPath: init.socketPath,
    async call<T>(method: string, path: string, body?: unknown, options: AbortOptions = {}): Promise<T> {
      const r = await raw(method, path, body, options)
      check(r.status, r.text)
      try { return JSON.parse(r.text) as T } catch (err) { throw new CliError('CLI_API', 'the daemon sent malformed JSON', { cause: err }) }
    },
    async text (path: string, options: AbortOptions = {}): Promise<string> {
      const r = await raw('GET', path, undefined, options)
      check(r.status, r.text)
      return r.text
    }
  }
}
