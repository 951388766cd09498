/**
 * Directory-authority keys for the private network. tor-gencert makes the RSA-3072 v3
 * identity key (~4 s of CPU each), so identity keys are cached between runs; the signing key
 * and certificate are made fresh every run because the certificate carries the DirPort and
 * tor uses that address (a stale one sends votes to a dead port).
 *
 * Cache layout (0700 dirs, 0600 files): <cacheDir>/auth<i>/{authority_identity_key,
 * secret_id_key, ed25519_master_id_secret_key, ed25519_master_id_public_key}.
 */
import { spawn } from 'node:child_process'
import { createHash, createPublicKey } from 'node:crypto'
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { AbortOptions } from '../../core/index.ts'
import { abortReason } from '../../core/index.ts'
import { TorError } from '../errors.ts'

/** Files that make an authority's identity; everything else is made per run. */
const IDENTITY_FILES = ['authority_identity_key', 'secret_id_key', 'ed25519_master_id_secret_key', 'ed25519_master_id_public_key']
const MAX_OUTPUT = 64 * 1024

export interface AuthorityKeyRequest {
  /** Index of the authority: keys of authority i are cached under auth<i>. */
  index: number
  nickname: string
  /** The authority's DataDirectory; keys go to `<dataDir>/keys`. */
  dataDir: string
  dirPort: number
}

export interface AuthorityIdentity {
  /** v3 identity fingerprint (the certificate's `fingerprint` line), 40 hex. */
  v3ident: string
  /** Relay identity fingerprint (SHA-1 of the RSA-1024 identity key), 40 hex. */
  fingerprint: string
  /** True when the identity came from the cache. */
  cached: boolean
}

export interface AuthorityKeyOptions extends AbortOptions {
  torPath: string
  gencertPath: string
  /** Cache directory, or false for none. */
  cacheDir: string | false
}

/** `$XDG_CACHE_HOME/oht/testnet-authority-keys`, else `~/.cache/oht/testnet-authority-keys`. */
export function defaultKeyCacheDir (): string {
  const base = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'oht', 'testnet-authority-keys')
}

/** Prepares keys for every authority in parallel. */
export async function prepareAuthorityKeys (requests: AuthorityKeyRequest[], opts: AuthorityKeyOptions): Promise<AuthorityIdentity[]> {
  return await Promise.all(requests.map(async r => await prepareOne(r, opts)))
}

async function prepareOne (req: AuthorityKeyRequest, opts: AuthorityKeyOptions): Promise<AuthorityIdentity> {
  const keysDir = join(req.dataDir, 'keys')
  await mkdir(keysDir, { recursive: true, mode: 0o700 })
  const cacheEntry = opts.cacheDir === false ? undefined : join(opts.cacheDir, `auth${req.index}`)
  const cached = cacheEntry !== undefined && await copyIdentity(cacheEntry, keysDir)
  const gencertArgs = [
    ...(cached ? [] : ['--create-identity-key']),
    '--passphrase-fd', '0',
    '-i', join(keysDir, 'authority_identity_key'),
    '-s', join(keysDir, 'authority_signing_key'),
    '-c', join(keysDir, 'authority_certificate'),
    '-m', '12',
    '-a', `127.0.0.1:${req.dirPort}`
  ]
  await run(opts.gencertPath, gencertArgs, '\n', opts.signal)
  if (!cached) {
    // Makes the relay identity keys (secret_id_key, ed25519 master keys) in <dataDir>/keys.
    await run(opts.torPath, ['--ignore-missing-torrc', '-f', '/dev/null', '--defaults-torrc', '/dev/null',
      '--DataDirectory', req.dataDir, '--ORPort', '1', '--Nickname', req.nickname, '--list-fingerprint', '--quiet'], '', opts.signal)
    if (cacheEntry !== undefined) await storeIdentity(keysDir, cacheEntry).catch(() => {})
  }
  const cert = await readFile(join(keysDir, 'authority_certificate'), 'utf8')
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1]
  if (v3ident === undefined) throw new TorError('TOR_TESTNET_KEYS', `tor-gencert wrote a certificate without a fingerprint in ${keysDir}`)
  const fingerprint = rsaFingerprint(await readFile(join(keysDir, 'secret_id_key'), 'utf8'))
  return { v3ident, fingerprint, cached }
}

/** Tor's relay fingerprint: SHA-1 of the DER (PKCS#1) RSA public key, upper-case hex. */
export function rsaFingerprint (privateKeyPem: string): string {
  const der = createPublicKey(privateKeyPem).export({ type: 'pkcs1', format: 'der' })
  return createHash('sha1').update(der).digest('hex').toUpperCase()
}

async function copyIdentity (from: string, to: string): Promise<boolean> {
  const present = await readdir(from).catch(() => [] as string[])
  if (!IDENTITY_FILES.every(f => present.includes(f))) return false
  for (const f of IDENTITY_FILES) {
    await copyFile(join(from, f), join(to, f))
    await chmod(join(to, f), 0o600)
  }
  return true
}

/** Writes the cache entry through a temp dir + rename, so concurrent runs never see half of one. */
async function storeIdentity (keysDir: string, cacheEntry: string): Promise<void> {
  const parent = join(cacheEntry, '..')
  await mkdir(parent, { recursive: true, mode: 0o700 })
  const tmp = await mkdtemp(join(parent, '.tmp-'))
  try {
    for (const f of IDENTITY_FILES) {
      await copyFile(join(keysDir, f), join(tmp, f))
      await chmod(join(tmp, f), 0o600)
    }
    await rename(tmp, cacheEntry)
  } catch {
    // Another run stored this authority first: keep theirs.
    await rm(tmp, { recursive: true, force: true })
  }
}

async function run (cmd: string, args: string[], stdin: string, signal?: AbortSignal): Promise<string> {
  if (signal?.aborted === true) throw abortReason(signal)
  return await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    const collect = (d: Buffer): void => { if (out.length < MAX_OUTPUT) out += d.toString('utf8') }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const onAbort = (): void => { child.kill('SIGKILL') }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.once('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort)
      reject(err.code === 'ENOENT'
        ? new TorError('TOR_NOT_INSTALLED', `${cmd} was not found: install tor (Debian/Ubuntu: apt-get install -y tor, which ships tor-gencert)`, { cause: err })
        : new TorError('TOR_TESTNET_KEYS', `could not run ${cmd}: ${err.message}`, { cause: err }))
    })
    child.once('close', (code) => {
      signal?.removeEventListener('abort', onAbort)
      if (signal?.aborted === true) { reject(abortReason(signal)); return }
      if (code === 0) resolve(out)
      else reject(new TorError('TOR_TESTNET_KEYS', `${cmd} failed (exit ${String(code)}): ${out.trim().split('\n').slice(-2).join(' / ')}`))
    })
    child.stdin.end(stdin)
  })
}
