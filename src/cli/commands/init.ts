import { stat } from 'node:fs/promises'
import { readFile } from 'node:fs/promises'
import { errorMessage, toHex } from '../../core/index.ts'
import { deriveChildSeed, generateIdentity, identityFromSeed, normaliseKeyPath, readKeyFile, sha256, writeKeyFile, type Identity } from '../../crypto/index.ts'
import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

export const initCommand: Command = {
  name: 'init',
  summary: 'create the node identity (state dir, 0600 key file)',
  usage: ['init [--force] [--passphrase-file <file>] [--from-master <file> --name <path>]'],
  details: `Creates the state dir (0700) and the identity key file (0600) the daemon uses; prints
the node's onion address. With --from-master and --name the identity is derived from a master
key file and a key-tree name (e.g. universe.router.multiverse), so the same master and name
always give the same address. Refuses to replace an existing identity unless --force.`,
  flags: [
    { name: 'force', type: 'boolean', description: 'replace an existing identity (its onion address is lost)' },
    { name: 'passphrase-file', type: 'string', valueName: '<file>', description: 'seal the key file with the passphrase in this file (and read a sealed master with it)' },
    { name: 'from-master', type: 'string', valueName: '<file>', description: 'derive the identity from this master key file' },
    { name: 'name', type: 'string', valueName: '<path>', description: 'key-tree name used with --from-master' }
  ],
  positionals: [],
  async run (ctx) {
    const master = ctx.flag('from-master')
    const name = ctx.flag('name')
    if ((master === undefined) !== (name === undefined)) throw new CliError('CLI_USAGE', 'oht init: --from-master and --name go together')
    if (name !== undefined) {
      try { normaliseKeyPath(name) } catch (err) { throw new CliError('CLI_BAD_ARGUMENT', `oht init: --name: ${errorMessage(err)}`) }
    }
    const passFile = ctx.flag('passphrase-file')
    let passphrase: string | undefined
    if (passFile !== undefined) {
      try { passphrase = (await readFile(passFile, 'utf8')).replace(/\r?\n$/, '') } catch (err) {
        throw new CliError('CLI_BAD_ARGUMENT', `oht init: cannot read --passphrase-file ${passFile}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`)
      }
      if (passphrase === '') throw new CliError('CLI_BAD_ARGUMENT', `oht init: the passphrase file ${passFile} is empty`)
    }
    const cfg = await ctx.config()
    const keyFile = cfg.identity.keyFile
    const exists = await stat(keyFile).then(() => true, () => false)
    if (exists && ctx.args.flags.force !== true) {
      throw new CliError('CLI_FAILED', `an identity already exists at ${keyFile}; nothing changed (use --force to replace it and lose its onion address)`)
    }
    let identity: Identity
    if (master !== undefined && name !== undefined) {
      let m: Identity
      try { m = await readKeyFile(master, passphrase !== undefined ? { passphrase } : {}) } catch (err) {
        throw new CliError('CLI_BAD_ARGUMENT', `oht init: cannot use --from-master ${master}: ${errorMessage(err)}`)
      }
      const seed = deriveChildSeed(m.seed, name)
      try { identity = identityFromSeed(seed) } finally { seed.fill(0); m.destroy() }
    } else {
      identity = generateIdentity()
    }
    try {
      await writeKeyFile(keyFile, identity, passphrase !== undefined ? { passphrase } : {})
      const out = { onion: identity.onion, address: `${identity.onion}.onion`, publicKey: toHex(identity.publicKey), nodeId: toHex(sha256(identity.publicKey)), keyFile }
      emit(ctx.io, ctx.json, out, () => `${out.address}\n(identity written to ${keyFile})`)
      return 0
    } finally {
      identity.destroy()
    }
  }
}
