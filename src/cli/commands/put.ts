import type { Command } from '../command.ts'
import { parseDuration } from '../args.ts'
import { CliError } from '../errors.ts'
import { emit, withProgress } from '../io.ts'
import { describePut } from '../../sdk/put-summary.ts'

const MAX_SALT_BYTES = 64

/** POST /v1/records's answer. */
interface PutAnswer { key: string, kind: string, stored: number, wanted: number, storedHere: boolean, onlyHere: boolean, attempted: number, summary?: string, seq?: number }

export const putCommand: Command = {
  name: 'put',
  summary: 'store a value in the OHT; prints its key',
  usage: [
    'put <value|-> [--ttl <duration>]',
    'put <name> <value|-> [--ttl <duration>]',
    'put --mutable [--salt <name>] <value|-> [--ttl <duration>]',
    'put <name> <value|-> --cas <seq>'
  ],
  details: `Key/value semantics:
  oht put <value>            immutable record; key = SHA-256(value). Anyone can verify it.
  oht put <name> <value>     mutable record under YOUR identity: key = SHA-256(public key || name),
                             signed, with a sequence number that rises on every put, so a later
                             put under the same name replaces the earlier one.
  oht put --mutable [--salt <name>] <value>   the same, with the name as a flag (empty by default).
A value of "-" is read from stdin (bytes, up to the record size limit, 65536 by default). The key
is printed as 64 hex characters: give it to "oht get". --ttl asks peers to keep the record that
long (e.g. 90s, 10m, 2h, 7d; peers clamp it to their policy).

Mutable records and compare-and-swap: each put under a name prints (on stderr) the seq it wrote;
the first is 0. "--cas N" writes only if the record's current seq is exactly N, so two writers
cannot overwrite each other unknowingly:
  oht put motd "v1"              # seq 0
  oht put motd "v2" --cas 0      # seq 1
  oht put motd "v3" --cas 0      # exit 8: the current seq is 1, expected 0 (nothing was written)

The outcome says how many nodes hold the record out of the k asked for (20 by default), on
stderr when fewer than asked and always on a terminal:
  stored 20 of 20
  stored 7 of 20: fewer holders than asked (6 peers and this node)
  stored 1 of 20: only this node holds it        (no peer took it: "oht peers", bootstrap)
--json prints { key, kind, stored, wanted, storedHere, onlyHere, attempted, summary, seq? }.`,
  flags: [
    { name: 'ttl', type: 'string', valueName: '<duration>', description: 'how long peers keep the record (90s, 10m, 2h, 7d)' },
    { name: 'mutable', type: 'boolean', description: 'a signed record under this node\'s identity (see below)' },
    { name: 'salt', type: 'string', valueName: '<name>', description: 'name of a mutable record (UTF-8, at most 64 bytes)' },
    { name: 'cas', type: 'string', valueName: '<seq>', description: 'mutable records: write only if the current seq is <seq> (exit 8 if not)' }
  ],
  positionals: [{ name: 'value|name', description: 'the value, "-" for stdin, or a record name' }, { name: 'value', description: 'the value when a name is given', optional: true }],
  async run (ctx) {
    const pos = ctx.args.positionals
    const saltFlag = ctx.flag('salt')
    let mutable = ctx.args.flags.mutable === true
    if (saltFlag !== undefined && !mutable) throw new CliError('CLI_USAGE', 'oht put: --salt applies to mutable records: add --mutable')
    let name: string | undefined = saltFlag
    let valueArg = pos[0]
    if (pos.length === 2) {
      if (saltFlag !== undefined) throw new CliError('CLI_USAGE', 'oht put: give the record name either as <name> or as --salt, not both')
      name = pos[0]
      valueArg = pos[1]
      mutable = true
    }
    const salt = name === undefined ? undefined : Buffer.from(name, 'utf8')
    if (salt !== undefined && salt.byteLength > MAX_SALT_BYTES) throw new CliError('CLI_BAD_ARGUMENT', `oht put: the record name is ${salt.byteLength} bytes; at most ${MAX_SALT_BYTES}`)
    const casFlag = ctx.flag('cas')
    if (casFlag !== undefined && !mutable) throw new CliError('CLI_USAGE', 'oht put: --cas applies to mutable records: give a record name (oht put <name> <value> --cas N)')
    if (casFlag !== undefined && !/^\d{1,15}$/.test(casFlag)) throw new CliError('CLI_BAD_ARGUMENT', `oht put: --cas must be a seq (a whole number >= 0), got ${JSON.stringify(casFlag)}`)
    const cas = casFlag === undefined ? undefined : Number(casFlag)
    const ttl = ctx.flag('ttl')
    const ttlMs = ttl === undefined ? undefined : parseDuration(ttl, 'oht put: --ttl')
    const cfg = await ctx.config()
    const max = cfg.node.maxValueBytes
    const value = valueArg === '-' ? await ctx.io.readStdin(max) : new Uint8Array(Buffer.from(valueArg, 'utf8'))
    if (value.byteLength > max) throw new CliError('CLI_VALUE_TOO_LARGE', `oht put: the value is ${value.byteLength} bytes; a record holds at most ${max} bytes`)
    const client = await ctx.client()
    const body = {
      value: Buffer.from(value).toString('base64'),
      ...(mutable ? { mutable: true } : {}),
      ...(salt !== undefined && salt.byteLength > 0 ? { salt: salt.toString('base64') } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(cas !== undefined ? { cas } : {})
    }
    value.fill(0)
    const r = await withProgress(ctx.io, 'storing', client.call<PutAnswer>('POST', '/v1/records', body, { signal: ctx.io.signal }))
    const summary = describePut(r)
    if (r.stored === 0) {
      throw new CliError('CLI_FAILED', `${summary} (${r.attempted} tried): check "oht peers" and try again`)
    }
    emit(ctx.io, ctx.json, { ...r, summary }, () => r.key)
    if (!ctx.json && (r.stored < r.wanted || ctx.io.stderr.isTTY === true)) ctx.io.stderr.write(`${summary}${r.seq !== undefined ? `; seq ${r.seq}` : ''}\n`)
    return 0
  }
}
