/**
 * `oht name …`: GNS-style names in the OHT through the daemon (API /v1/names…, /v1/petnames),
 * and `oht name tor-plugin`, a name plugin for tor speaking proposal 279 on stdin/stdout.
 */
import { createInterface } from 'node:readline'
import type { Command, CommandContext } from '../command.ts'
import { CliError, EXIT } from '../errors.ts'
import { emit, withProgress } from '../io.ts'

const enc = (s: string): string => encodeURIComponent(s)

interface Resolved { name: string, target: { type: string, key?: string, address?: string }, zone: string, rotations: Array<{ from: string, to: string }>, onion?: string }

function describeTarget (t: Resolved['target']): string {
  if (t.type === 'app') return `doa:${t.key ?? ''}`
  if (t.type === 'onion') return `${t.address ?? ''}.onion`
  return `zone:${t.key ?? ''}`
}

const register: Command = {
  name: 'register',
  summary: 'register (or update) a name in your zone',
  usage: ['name register <label> <target>'],
  details: `<target> is an installed app's name, doa:<app key>, <address>.onion, or zone:<zone key> (a
delegation: <sub>.<label>.<petname> then resolves in that zone). The record is signed with a key
derived from your zone and the label, and encrypted with a key derived from the label: the nodes
that store it learn neither. Others reach it as <label>.<petname they gave your zone>; you reach it
as <label>.me. The daemon renews it before it runs out.
Examples:
  oht name register guestbook guestbook
  oht name register blog pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion`,
  flags: [],
  positionals: [{ name: 'label', description: 'the name in your zone' }, { name: 'target', description: 'what it names' }],
  async run (ctx) {
    const [label, target] = ctx.args.positionals
    const r = await withProgress(ctx.io, 'registering', (await ctx.client()).call<{ label: string, zone: string, seq: number, stored: number, target: Resolved['target'] }>('POST', '/v1/names', { label, target }, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => `${r.label}.me → ${describeTarget(r.target)} (stored on ${r.stored} node${r.stored === 1 ? '' : 's'}; others resolve it as ${r.label}.<their petname for zone ${r.zone.slice(0, 16)}…>)`)
    return 0
  }
}

const resolveCmd: Command = {
  name: 'resolve',
  summary: 'resolve <label>.<petname> (or <label>.<64-hex zone>)',
  usage: ['name resolve <name>'],
  details: `Resolves right to left: the last part is one of your petnames (oht name pet) or a zone key,
each label before it a record of that zone, checked and decrypted. Prints the target; for an app,
also the onion address of a host serving it (--json has everything). Exit 6 when the name is not
registered, revoked or expired.
Example:
  oht name resolve guestbook.alice`,
  flags: [],
  positionals: [{ name: 'name', description: 'label.petname' }],
  async run (ctx) {
    const name = ctx.args.positionals[0]
    const r = await withProgress(ctx.io, 'resolving', (await ctx.client()).call<Resolved>('GET', `/v1/names/resolve?name=${enc(name)}`, undefined, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => [
      `${name} → ${describeTarget(r.target)}${r.onion !== undefined && r.target.type === 'app' ? ` (hosted at http://${r.onion}.onion/)` : ''}`,
      ...r.rotations.map(x => `note: zone ${x.from.slice(0, 16)}… moved to ${x.to.slice(0, 16)}…: update your petname (oht name pet add <petname> ${x.to})`)
    ].join('\n'))
    return 0
  }
}

const revoke: Command = {
  name: 'revoke',
  summary: 'revoke a name of your zone, for good',
  usage: ['name revoke <label>'],
  details: 'A revocation is final: nobody, not even you, can register the label again in this zone.',
  flags: [],
  positionals: [{ name: 'label', description: 'the name to revoke' }],
  async run (ctx) {
    const label = ctx.args.positionals[0]
    const r = await (await ctx.client()).call<{ stored: number }>('DELETE', `/v1/names/${enc(label)}`, undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => `${label} is revoked (stored on ${r.stored} node${r.stored === 1 ? '' : 's'})`)
    return 0
  }
}

const rotate: Command = {
  name: 'rotate',
  summary: 'move your zone to a new key (names move with it; petnames follow)',
  usage: ['name rotate'],
  details: `Makes a new zone key (the next one your node's key derives), registers every name you own
in it, then signs with the old key a rotation naming the new one. Resolvers follow it, and a
user whose petname named your old zone has it moved to the new one at their next resolution.
Final for the old zone: do it when its key may have leaked.`,
  flags: [],
  positionals: [],
  async run (ctx) {
    const r = await withProgress(ctx.io, 'rotating', (await ctx.client()).call<{ from: string, to: string, names: number }>('POST', '/v1/names/rotate', {}, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => `zone ${r.from.slice(0, 16)}… → ${r.to}\n${r.names} name${r.names === 1 ? '' : 's'} moved; give the new key to people who do not resolve through the old one`)
    return 0
  }
}

const ls: Command = {
  name: 'ls',
  summary: 'list the names you registered',
  usage: ['name ls'],
  flags: [],
  positionals: [],
  async run (ctx) {
    const r = await (await ctx.client()).call<{ zone: string, names: Array<{ label: string, target: Resolved['target'], expires: number }> }>('GET', '/v1/names', undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => [`zone ${r.zone}`, ...(r.names.length === 0 ? ['(no names registered: oht name register <label> <target>)'] : r.names.map(n => `${n.label}  → ${describeTarget(n.target)}`))].join('\n'))
    return 0
  }
}

const zone: Command = {
  name: 'zone',
  summary: 'print your zone key (give it to others: oht name pet add <you> <zone key>)',
  usage: ['name zone'],
  flags: [],
  positionals: [],
  async run (ctx) {
    const r = await (await ctx.client()).call<{ zone: string }>('GET', '/v1/names', undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, { zone: r.zone }, () => r.zone)
    return 0
  }
}

const pet: Command = {
  name: 'pet',
  summary: 'your petnames for zones you trust: add, rm, ls',
  usage: ['name pet add <petname> <zone key>', 'name pet rm <petname>', 'name pet [ls]'],
  details: `A petname is your own short name for someone's zone: after "oht name pet add alice <key>",
guestbook.alice means the label guestbook in that zone. Nobody else sees your petnames.
Example:
  oht name pet add alice 3f2a…(64 hex digits, from "oht name zone" on alice's node)`,
  flags: [],
  positionals: [{ name: 'action', description: 'add | rm | ls', optional: true }],
  variadic: true,
  async run (ctx) {
    const [action, ...rest] = ctx.args.positionals
    const client = await ctx.client()
    if (action === undefined || action === 'ls') {
      const r = await client.call<{ petnames: Array<{ petname: string, zone: string }> }>('GET', '/v1/petnames', undefined, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => r.petnames.length === 0 ? '(no petnames)' : r.petnames.map(p => `${p.petname}  ${p.zone}`).join('\n'))
      return 0
    }
    if (action === 'add') {
      if (rest.length !== 2) throw new CliError('CLI_USAGE', 'oht name pet add: needs <petname> <zone key>')
      const r = await client.call('POST', '/v1/petnames', { petname: rest[0], zone: rest[1] }, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => `${rest[0]} → zone ${rest[1].slice(0, 16)}…`)
      return 0
    }
    if (action === 'rm') {
      if (rest.length !== 1) throw new CliError('CLI_USAGE', 'oht name pet rm: needs <petname>')
      const r = await client.call('DELETE', `/v1/petnames/${enc(rest[0])}`, undefined, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => `removed ${rest[0]}`)
      return 0
    }
    throw new CliError('CLI_USAGE', `oht name pet: unknown action ${JSON.stringify(action)}: use add, rm or ls`)
  }
}

const torPlugin: Command = {
  name: 'tor-plugin',
  summary: 'a tor name plugin (proposal 279) resolving <name>.doa through the daemon',
  usage: ['name tor-plugin'],
  details: `Speaks Tor's proposal-279 naming API on stdin/stdout: "INIT 1 0", then answers
"RESOLVE <id> <name>" with "RESOLVED <id> <status> <onion address>" (status 0 found, 1 failed,
2 not our TLD, 3 not registered, 4 timed out) and "CANCEL <id>" with "CANCELED <id>". It reads
TOR_NS_PROTO_VERSION (must include 1) and TOR_NS_PLUGIN_OPTIONS ("tld=doa;timeout=30"). A name
chess.alice.doa is resolved as chess.alice; an app resolves to the onion address of one of its
hosts. In a torrc (for a tor with the naming API):
  OnionNamePlugin 0 .doa /usr/bin/oht name tor-plugin
It exits when stdin closes.`,
  flags: [],
  positionals: [],
  async run (ctx) {
    const { createNamingPlugin, parsePluginOptions, supportsVersion } = await import('../../doa/tor-naming.ts')
    const write = (line: string): void => { ctx.io.stdout.write(line + '\n') }
    const version = ctx.io.env.TOR_NS_PROTO_VERSION
    // Run by hand (no tor), the variable is absent: speak version 1 then.
    if (version !== undefined && !supportsVersion(version)) {
      write(`INIT 1 1 "this plugin speaks version 1; tor offered ${version.replace(/"/g, '')}"`)
      return EXIT.FAILURE
    }
    const opts = parsePluginOptions(ctx.io.env.TOR_NS_PLUGIN_OPTIONS)
    const timeout = opts.timeout !== undefined ? Number(opts.timeout) : undefined
    if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0)) {
      write('INIT 1 1 "TOR_NS_PLUGIN_OPTIONS: timeout must be a positive number of seconds"')
      return EXIT.FAILURE
    }
    const plugin = createNamingPlugin({ ...(opts.tld !== undefined ? { tld: opts.tld } : {}), ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}) }, {
      clock: ctx.io.clock,
      write,
      resolve: async (name, o) => {
        const r = await (await ctx.client()).call<Resolved>('GET', `/v1/names/resolve?name=${enc(name)}`, undefined, o)
        if (r.onion === undefined) throw new CliError('CLI_NOT_FOUND', `${name} resolves to ${describeTarget(r.target)}, which has no onion address`)
        return r.onion
      }
    })
    plugin.init()
    const input = ctx.io.stdin ?? process.stdin
    const lines = createInterface({ input: input as NodeJS.ReadableStream, crlfDelay: Infinity, terminal: false })
    const onAbort = (): void => { lines.close() }
    ctx.io.signal.addEventListener('abort', onAbort, { once: true })
    try {
      for await (const line of lines) plugin.onLine(line)
      // stdin closed: let answers in flight go out, for a moment, then stop.
      for (let i = 0; i < 100 && plugin.pending > 0; i++) await ctx.io.clock.sleep(50)
    } finally {
      ctx.io.signal.removeEventListener('abort', onAbort)
      plugin.close()
    }
    return EXIT.OK
  }
}

export const nameCommand: Command = {
  name: 'name',
  summary: 'names in the OHT (GNS-style): register, resolve, revoke, rotate, petnames, a tor name plugin',
  usage: ['name <register|resolve|revoke|rotate|ls|zone|pet|tor-plugin> …'],
  details: 'See docs/doa.md (Names) for the records, the keys and what holders can see.',
  flags: [],
  positionals: [],
  subcommands: [register, resolveCmd, revoke, rotate, ls, zone, pet, torPlugin]
}

export type { CommandContext }
