import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage, isCodedError, toHex } from '../../core/index.ts'
import type { Identity } from '../../crypto/index.ts'
import { defaultConfigDir } from '../../daemon/paths.ts'
import type { Command } from '../command.ts'
import { CliError, EXIT } from '../errors.ts'
import { emit } from '../io.ts'

export const initCommand: Command = {
  name: 'init',
  summary: 'create the node identity (state dir, 0600 key file)',
  usage: ['init [--force] [--passphrase-file <file>] [--from-master <file> --name <path>]'],
  details: `Creates the state dir (0700) and the identity key file (0600) the daemon uses; prints
the node's onion address. Where there is no config file yet (--config, $OHT_CONFIG, else
$XDG_CONFIG_HOME/multiverse/oht.toml), writes one with every setting commented out at its
default; an existing config is never touched. With --from-master and --name the identity is derived from a master
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
    // Loaded here: the key-file code (scrypt, ciphers) is not needed for oht --help.
    const { deriveChildSeed, generateIdentity, identityFromSeed, normaliseKeyPath, readKeyFile, sha256, writeKeyFile } = await import('../../crypto/index.ts')
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
    const paths = ctx.paths()
    const configFile = paths.configFile ?? join(defaultConfigDir(ctx.io.env), 'oht.toml')
    const exists = async (p: string): Promise<boolean> => await stat(p).then(() => true, () => false)
    // A config that is not there yet reads as the defaults, which is what gets written below.
    const cfg = await ctx.config({ missingIsDefault: true })
    const keyFile = cfg.identity.keyFile
    if (await exists(keyFile) && ctx.args.flags.force !== true) {
      throw new CliError('CLI_FAILED', `an identity already exists at ${keyFile}; nothing changed (use --force to replace it and lose its onion address)`)
    }
    let configWritten = false
    if (!await exists(configFile)) {
      const { writeDefaultConfig } = await import('../../daemon/config.ts')
      try {
        configWritten = await writeDefaultConfig(configFile)
      } catch (err) {
        throw new CliError('CLI_FAILED', isCodedError(err) ? err.message : errorMessage(err), { cause: err, exitCode: EXIT.CONFIG })
      }
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
      const out = { onion: identity.onion, address: `${identity.onion}.onion`, publicKey: toHex(identity.publicKey), nodeId: toHex(sha256(identity.publicKey)), keyFile, configFile, configWritten }
      emit(ctx.io, ctx.json, out, () => `${out.address}\n(identity written to ${keyFile}${configWritten ? `; default config written to ${configFile}` : ''})`)
      return 0
    } finally {
      identity.destroy()
    }
  }
}
