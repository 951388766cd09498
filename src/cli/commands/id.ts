import { errorMessage, toHex } from '../../core/index.ts'
import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

export const idCommand: Command = {
  name: 'id',
  summary: 'print this node\'s onion address and keys (no daemon needed)',
  usage: ['id'],
  details: 'Reads the identity the daemon would use (key file, or master key + name from the config) and prints its onion address; --json adds the public key and DHT node id.',
  flags: [],
  positionals: [],
  async run (ctx) {
    const cfg = await ctx.config()
    // Loaded here: the key-file code (scrypt, ciphers) is not needed for oht --help.
    const [{ sha256 }, { DaemonError }, { loadIdentity }] = await Promise.all([import('../../crypto/index.ts'), import('../../daemon/errors.ts'), import('../../daemon/identity-source.ts')])
    let identity
    try {
      identity = await loadIdentity(cfg.identity)
    } catch (err) {
      if (err instanceof DaemonError) throw new CliError('CLI_FAILED', err.message, { cause: err })
      throw new CliError('CLI_FAILED', errorMessage(err), { cause: err })
    }
    try {
      const out = { onion: identity.onion, address: `${identity.onion}.onion`, publicKey: toHex(identity.publicKey), nodeId: toHex(sha256(identity.publicKey)) }
      emit(ctx.io, ctx.json, out, () => out.address)
      return 0
    } finally {
      identity.destroy()
    }
  }
}
