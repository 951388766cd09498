import { toHex } from '../../core/index.ts'
import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit, withProgress } from '../io.ts'

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch a value from the OHT by key',
  usage: ['get <key>', 'get --name <name> [--author <onion>]'],
  details: `<key> is the 64 hex characters "oht put" printed. --name looks up a mutable record by
name under an author's identity (default: this node): key = SHA-256(author public key || name).
The value goes to stdout as raw bytes (redirect it to a file); --json prints
{ key, kind, value (base64), seq, publicKey }. Exits 6 when no record is found.`,
  flags: [
    { name: 'name', type: 'string', valueName: '<name>', description: 'name of a mutable record' },
    { name: 'author', type: 'string', valueName: '<onion>', description: 'onion address of the record\'s writer (with --name)' }
  ],
  positionals: [{ name: 'key', description: '64 hex characters', optional: true }],
  async run (ctx) {
    const name = ctx.flag('name')
    const author = ctx.flag('author')
    const keyArg = ctx.args.positionals[0]
    if (author !== undefined && name === undefined) throw new CliError('CLI_USAGE', 'oht get: --author goes with --name')
    if ((keyArg === undefined) === (name === undefined)) throw new CliError('CLI_USAGE', 'oht get: give either <key> or --name (see oht get --help)')
    let key: string
    // Loaded here: the crypto layer is not needed for oht --help.
    const { parseOnionAddress, sha256 } = await import('../../crypto/index.ts')
    let authorKey: Uint8Array | undefined
    if (author !== undefined) {
      try { authorKey = parseOnionAddress(author).publicKey } catch (err) {
        throw new CliError('CLI_BAD_ARGUMENT', `oht get: --author ${JSON.stringify(author)} is not a valid onion address: ${(err as Error).message}`)
      }
    }
    if (keyArg !== undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(keyArg)) throw new CliError('CLI_BAD_ARGUMENT', `oht get: malformed key ${JSON.stringify(keyArg.length > 80 ? keyArg.slice(0, 80) + '…' : keyArg)}: a key is 64 hex characters, as printed by oht put`)
      key = keyArg.toLowerCase()
      const client = await ctx.client()
      return await fetch(ctx, client, key)
    }
    const salt = Buffer.from(name as string, 'utf8')
    if (salt.byteLength > 64) throw new CliError('CLI_BAD_ARGUMENT', `oht get: the record name is ${salt.byteLength} bytes; at most 64`)
    const client = await ctx.client()
    if (authorKey === undefined) {
      const id = await client.call<{ publicKey: string }>('GET', '/v1/identity', undefined, { signal: ctx.io.signal })
      authorKey = new Uint8Array(Buffer.from(id.publicKey, 'hex'))
    }
    key = toHex(sha256(authorKey, salt))
    return await fetch(ctx, client, key)
  }
}

async function fetch (ctx: Parameters<NonNullable<Command['run']>>[0], client: Awaited<ReturnType<typeof ctx.client>>, key: string): Promise<number> {
  const r = await withProgress(ctx.io, 'looking up', client.call<{ key: string, kind: string, value: string, seq?: number }>('GET', `/v1/records/${key}`, undefined, { signal: ctx.io.signal }))
  if (ctx.json) {
    emit(ctx.io, true, r, () => '')
    return 0
  }
  const bytes = Buffer.from(r.value, 'base64')
  ctx.io.stdout.write(bytes)
  if (ctx.io.stdout.isTTY === true && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) ctx.io.stdout.write('\n')
  return 0
}
