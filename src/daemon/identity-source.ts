/**
 * Loads the daemon's identity: from its key file, or derived from a master key file and a
 * key-tree name (so a VM's onion address is reproducible from the master key and its name).
 */
import { readFile } from 'node:fs/promises'
import { errorMessage, isCodedError } from '../core/index.ts'
import { deriveChildSeed, identityFromSeed, readKeyFile, type Identity } from '../crypto/index.ts'
import type { DaemonConfig } from './config.ts'
import { DaemonError } from './errors.ts'

/** The passphrase in `file` (its trailing newline dropped), or undefined without a file. */
export async function readPassphrase (file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined
  try {
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
  } catch (err) {
    throw new DaemonError('DAEMON_IDENTITY', `cannot read the passphrase file ${file}: ${errorMessage(err)}`, { cause: err })
  }
}

export async function loadIdentity (config: DaemonConfig['identity']): Promise<Identity> {
  const pass = await readPassphrase(config.passphraseFile)
  const opts = pass !== undefined ? { passphrase: pass } : {}
  if (config.masterKeyFile !== undefined && config.name !== undefined) {
    let master: Identity
    try {
      master = await readKeyFile(config.masterKeyFile, opts)
    } catch (err) {
      throw new DaemonError('DAEMON_IDENTITY', `cannot load the master key: ${errorMessage(err)}`, { cause: err })
    }
    const seed = deriveChildSeed(master.seed, config.name)
    try { return identityFromSeed(seed) } finally { seed.fill(0); master.destroy() }
  }
  try {
    return await readKeyFile(config.keyFile, opts)
  } catch (err) {
    if (isCodedError(err, 'CRYPTO_KEY_FILE_MISSING')) {
      throw new DaemonError('DAEMON_IDENTITY', `no identity at ${config.keyFile}: create one with oht init`, { cause: err })
    }
    throw new DaemonError('DAEMON_IDENTITY', `cannot load the identity: ${errorMessage(err)}`, { cause: err })
  }
}
