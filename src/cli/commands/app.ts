/**
 * `oht app …`: decentralized onion apps through the daemon's DOA service (its API routes
 * /v1/apps…, src/daemon/doa-service.ts). Every subcommand has --json.
 */
import { cp, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command, CommandContext } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit, withProgress } from '../io.ts'

const CAPS = ['state:read', 'state:write', 'ui', 'api', 'net:peer', 'names:resolve', 'sandbox:log', 'sandbox:sha256', 'sandbox:ed25519']

interface AppInfo { appKey: string, name: string, version: string, current: number, pinned: boolean, releases: number[], grants: string[], hosted: boolean }
interface Source { name: string, served: number, forged: number, failed: number, dropped: boolean }
interface InstallView { appKey: string, name: string, version: string, release: number, cached: boolean, current: number, pinned: boolean, grants: string[], sources: Source[], bytes: number, available?: number }
interface HostView { app: string, name: string, release: number, onion?: string, port?: number, bytes: number, ops: number, announcedTo: number, snapshot: { ops: number } | null, lastError?: string }

const enc = (app: string): string => encodeURIComponent(app)

function one (ctx: CommandContext, what: string): string {
  const [app, ...rest] = ctx.args.positionals
  if (app === undefined) throw new CliError('CLI_USAGE', `${ctx.name}: needs <app> (${what})`)
  if (rest.length > 0) throw new CliError('CLI_USAGE', `${ctx.name}: unexpected argument ${JSON.stringify(rest[0])}`)
  return app
}

function sourcesLine (sources: Source[]): string {
  const used = sources.filter(s => s.served > 0 || s.forged > 0)
  if (used.length === 0) return ''
  return ' from ' + used.map(s => `${s.name} (${s.served} chunks${s.forged > 0 ? `, ${s.forged} forged ones refused` : ''})`).join(', ')
}

const APP_HELP = `<app> is an app key ("doa:" and 64 hex digits), the name of an installed app, or a
name such as guestbook.alice (a label in the zone you call "alice": see oht name --help).`

/** The template app, shipped with the package (examples/template-app), from src/ or dist/ alike. */
export const TEMPLATE_DIR = new URL('../../../examples/template-app/', import.meta.url).pathname

const create: Command = {
  name: 'new',
  summary: 'start an app from the template (a guest book: doa.json, code/, ui/)',
  usage: ['app new <dir> [--name <name>]'],
  details: `Copies the template app into <dir> (which must not exist, or be empty): doa.json (the
manifest fields you choose), code/ (reducer and validator, run in the sandbox) and ui/ (the web
UI). --name sets the app's name (lower-case letters, digits, inner hyphens). No daemon needed.
docs/first-onion-app.md walks through it. Example:
  oht app new ~/my-app --name my-app && oht app publish ~/my-app`,
  flags: [{ name: 'name', type: 'string', valueName: '<name>', description: 'the app\'s name in doa.json (default: guestbook)' }],
  positionals: [{ name: 'dir', description: 'where to create it' }],
  async run (ctx) {
    const dir = resolve(ctx.args.positionals[0])
    const name = ctx.flag('name')
    if (name !== undefined && !/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(name)) throw new CliError('CLI_BAD_ARGUMENT', `oht app new: --name ${JSON.stringify(name)} must be 1..64 lower-case letters, digits and inner hyphens`)
    const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw new CliError('CLI_BAD_ARGUMENT', `oht app new: cannot use ${dir}: ${err.message}`) })
    if (existing.length > 0) throw new CliError('CLI_BAD_ARGUMENT', `oht app new: ${dir} is not empty: give a new directory`)
    await cp(TEMPLATE_DIR, dir, { recursive: true, errorOnExist: true })
    if (name !== undefined) {
      const file = join(dir, 'doa.json')
      const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
      await writeFile(file, JSON.stringify({ ...doc, name }, null, 2) + '\n')
    }
    const files = ['doa.json', 'code/reducer.js', 'code/validator.js', 'code/limits.js', 'ui/index.html', 'ui/app.js', 'ui/style.css']
    emit(ctx.io, ctx.json, { dir, name: name ?? 'guestbook', files }, () => `created ${name ?? 'guestbook'} in ${dir}: ${files.join(', ')}\nnext: oht app publish ${dir}`)
    return 0
  }
}

const publish: Command = {
  name: 'publish',
  summary: 'publish the app in a directory (doa.json, code/, ui/) as its next release',
  usage: ['app publish <dir> [--release <n>]'],
  details: `Packs the directory's code and assets into bundles, stores every chunk in the OHT and
then the release record, signed with the app's key (derived from this node's identity and the
app's name, so every release of "guestbook" from this node has the same app key). Publishing
files that did not change writes no new release. The app is also installed here.
Example:
  oht app publish ./examples/template-app`,
  flags: [{ name: 'release', type: 'number', valueName: '<n>', description: 'release number (default: one above the published one)' }],
  positionals: [{ name: 'dir', description: 'the app directory' }],
  async run (ctx) {
    const dir = resolve(ctx.args.positionals[0])
    const release = ctx.args.flags.release as number | undefined
    const client = await ctx.client()
    const r = await withProgress(ctx.io, 'publishing', client.call<{ appKey: string, name: string, version: string, release: number, unchanged: boolean, records: number, minStored: number }>('POST', '/v1/apps/publish', { dir, ...(release !== undefined ? { release } : {}) }, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => r.unchanged
      ? `${r.name} ${r.version} is unchanged: release ${r.release} stays (${r.appKey})`
      : `published ${r.name} ${r.version} as release ${r.release}: ${r.appKey} (${r.records} chunks, each on ≥ ${r.minStored} node${r.minStored === 1 ? '' : 's'})`)
    return 0
  }
}

const install: Command = {
  name: 'install',
  summary: 'install an app by key or name: every chunk and signature verified',
  usage: ['app install <app> [--release <n>] [--pin] [--deny <capability,…>]'],
  details: `${APP_HELP}
The manifest must be signed by the app key and every chunk must hash to the manifest's Merkle
root; chunks come from the OHT and the app's hosts at once. An app already installed is not
changed: a newer release is offered (oht app update). --release installs that release (from
a host that keeps it) and --pin keeps it current. --deny refuses capabilities the app asks for
(${CAPS.join(', ')}).
Examples:
  oht app install guestbook.alice
  oht app install doa:3f2a… --deny state:write`,
  flags: [
    { name: 'release', type: 'number', valueName: '<n>', description: 'install this release' },
    { name: 'pin', type: 'boolean', description: 'keep this release current across updates' },
    { name: 'deny', type: 'string', valueName: '<caps>', description: 'comma-separated capabilities not to grant' }
  ],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'an app key or a name')
    const release = ctx.args.flags.release as number | undefined
    const denyText = ctx.flag('deny')
    const deny = denyText === undefined ? undefined : denyText.split(',').map(s => s.trim()).filter(s => s !== '')
    for (const c of deny ?? []) if (!CAPS.includes(c)) throw new CliError('CLI_BAD_ARGUMENT', `oht app install: unknown capability ${JSON.stringify(c)} (known: ${CAPS.join(', ')})`)
    const client = await ctx.client()
    const r = await withProgress(ctx.io, 'installing', client.call<InstallView>('POST', '/v1/apps/install', { app, ...(release !== undefined ? { release } : {}), ...(ctx.args.flags.pin === true ? { pin: true } : {}), ...(deny !== undefined ? { deny } : {}) }, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => {
      if (r.cached && r.sources.length === 0) return `${r.name} ${r.version} (release ${r.current}) is installed already${r.available !== undefined ? `; release ${r.available} is available: oht app update ${r.name}` : ''}`
      return `installed ${r.name} ${r.version} (release ${r.release}${r.pinned ? ', pinned' : ''}), ${r.bytes} bytes verified${sourcesLine(r.sources)}\n  ${r.appKey}\n  grants: ${r.grants.join(', ') || '(none)'}${r.available !== undefined ? `\n  release ${r.available} is available: oht app update ${r.name}` : ''}`
    })
    return 0
  }
}

const ls: Command = {
  name: 'ls',
  summary: 'list installed apps',
  usage: ['app ls'],
  details: 'One line per app: name, version, current release (pinned?), hosted here, app key.',
  flags: [],
  positionals: [],
  async run (ctx) {
    const r = await (await ctx.client()).call<{ apps: AppInfo[] }>('GET', '/v1/apps', undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => {
      if (r.apps.length === 0) return '(no apps installed: oht app install <app>)'
      const rows = r.apps.map(a => [a.name, a.version, `${a.current}${a.pinned ? ' (pinned)' : ''}`, a.hosted ? 'hosted' : '-', `doa:${a.appKey}`])
      const head = ['NAME', 'VERSION', 'RELEASE', 'HOSTING', 'APP']
      const w = head.map((h, i) => Math.max(h.length, ...rows.map(x => x[i].length)))
      return [head, ...rows].map(x => x.map((c, i) => i === x.length - 1 ? c : c.padEnd(w[i])).join('  ')).join('\n')
    })
    return 0
  }
}

const run: Command = {
  name: 'run',
  summary: 'open an installed app\'s UI locally (127.0.0.1, a session token), signing with your key',
  usage: ['app run <app> [--stop]'],
  details: `${APP_HELP}
Starts the app's UI on a loopback port of the daemon and prints its URL; the URL carries this
session's token (the page trades it for a cookie), and ops the page submits are signed with your
key for this app. --stop ends it.`,
  flags: [{ name: 'stop', type: 'boolean', description: 'stop the local UI' }],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app to run')
    const client = await ctx.client()
    if (ctx.args.flags.stop === true) {
      const r = await client.call('DELETE', `/v1/apps/${enc(app)}/run`, undefined, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => `stopped the UI of ${app}`)
      return 0
    }
    const r = await client.call<{ url: string, name: string }>('POST', `/v1/apps/${enc(app)}/run`, {}, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => r.url)
    return 0
  }
}

const host: Command = {
  name: 'host',
  summary: 'host an installed app: serve it at an onion endpoint and keep it alive in the OHT',
  usage: ['app host <app> [--max-bytes <n>] [--max-ops <n>]', 'app host <app> --off'],
  details: `${APP_HELP}
Serves the app's UI and API at an onion address of its own (an ONI endpoint; the same address
every time; its URL is what this prints), over PeerNet to other nodes, announces this node in the app's host set, re-stores
its release, chunks and recent ops in the OHT so it stays installable while its author is away,
and makes signed snapshots for late joiners. Quotas: --max-bytes (bundles and snapshots kept)
and --max-ops. --off stops hosting and withdraws the announcement.
Example:
  oht app host guestbook.alice`,
  flags: [
    { name: 'max-bytes', type: 'number', valueName: '<n>', description: 'hosting quota: bytes kept for the app' },
    { name: 'max-ops', type: 'number', valueName: '<n>', description: 'hosting quota: ops kept' },
    { name: 'off', type: 'boolean', description: 'stop hosting it' }
  ],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app to host')
    const client = await ctx.client()
    if (ctx.args.flags.off === true) {
      const r = await client.call('DELETE', `/v1/apps/${enc(app)}/host`, undefined, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => `no longer hosting ${app}`)
      return 0
    }
    const maxBytes = ctx.args.flags['max-bytes'] as number | undefined
    const maxOps = ctx.args.flags['max-ops'] as number | undefined
    const r = await withProgress(ctx.io, 'publishing the endpoint', client.call<HostView>('POST', `/v1/apps/${enc(app)}/host`, { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(maxOps !== undefined ? { maxOps } : {}) }, { signal: ctx.io.signal }))
    // The result is the URL (stdout, as oht put prints a key); what else happened goes to stderr.
    if (!ctx.json) ctx.io.stderr.write(`hosting ${r.name} release ${r.release}, announced in its host set on ${r.announcedTo} node${r.announcedTo === 1 ? '' : 's'}\n`)
    emit(ctx.io, ctx.json, r, () => r.onion !== undefined ? `http://${r.onion}.onion${r.port !== undefined && r.port !== 80 ? `:${r.port}` : ''}/` : '(no onion endpoint: the node does not run over tor; it serves the app over PeerNet only)')
    return 0
  }
}

const hosts: Command = {
  name: 'hosts',
  summary: 'list the hosts of an app (its host set in the OHT)',
  usage: ['app hosts <app>'],
  details: APP_HELP,
  flags: [],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app')
    const r = await (await ctx.client()).call<{ hosts: Array<{ host: string, release: number, onion?: string, serves: string[], snapshot: { ops: number } | null }> }>('GET', `/v1/apps/${enc(app)}/hosts`, undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => r.hosts.length === 0 ? '(no hosts)' : r.hosts.map(h => `${h.host.slice(0, 16)}…  release ${h.release}  ${h.onion !== undefined ? `http://${h.onion}.onion/` : '-'}  ${h.serves.join(',')}${h.snapshot !== null ? `  snapshot of ${h.snapshot.ops} ops` : ''}`).join('\n'))
    return 0
  }
}

const update: Command = {
  name: 'update',
  summary: 'install the newest release of an app and make it current',
  usage: ['app update <app>'],
  details: `${APP_HELP}
Updates are never applied by themselves: "oht app install" and "oht app ls" offer them, this
applies one. A pinned app is not updated (oht app pin <app> --off first); oht app rollback goes
back.`,
  flags: [],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app to update')
    const r = await withProgress(ctx.io, 'updating', (await ctx.client()).call<InstallView>('POST', `/v1/apps/${enc(app)}/update`, {}, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => `${r.name} is at release ${r.current} (${r.version})${r.cached ? '' : sourcesLine(r.sources)}`)
    return 0
  }
}

const rollback: Command = {
  name: 'rollback',
  summary: 'go back to the release used before the current one',
  usage: ['app rollback <app>'],
  details: APP_HELP,
  flags: [],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app to roll back')
    const r = await (await ctx.client()).call<{ release: number }>('POST', `/v1/apps/${enc(app)}/rollback`, {}, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => `${app} is back at release ${r.release}`)
    return 0
  }
}

const pin: Command = {
  name: 'pin',
  summary: 'keep an app at one release (updates are refused until unpinned)',
  usage: ['app pin <app> <release>', 'app pin <app> --off'],
  details: APP_HELP,
  flags: [{ name: 'off', type: 'boolean', description: 'unpin' }],
  positionals: [{ name: 'app', description: 'app key or name' }, { name: 'release', description: 'release number', optional: true }],
  async run (ctx) {
    const [app, rel] = ctx.args.positionals
    const client = await ctx.client()
    if (ctx.args.flags.off === true) {
      if (rel !== undefined) throw new CliError('CLI_USAGE', 'oht app pin: --off takes no release')
      const r = await client.call('DELETE', `/v1/apps/${enc(app)}/pin`, undefined, { signal: ctx.io.signal })
      emit(ctx.io, ctx.json, r, () => `${app} is no longer pinned`)
      return 0
    }
    if (rel === undefined || !/^\d+$/.test(rel)) throw new CliError('CLI_USAGE', 'oht app pin: needs <app> <release> (a whole number), or --off')
    const r = await client.call('POST', `/v1/apps/${enc(app)}/pin`, { release: Number(rel) }, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => `${app} is pinned to release ${rel}`)
    return 0
  }
}

const rm: Command = {
  name: 'rm',
  summary: 'remove an installed app (and stop hosting it)',
  usage: ['app rm <app>'],
  details: APP_HELP,
  flags: [],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app to remove')
    const r = await (await ctx.client()).call('DELETE', `/v1/apps/${enc(app)}`, undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => `removed ${app}`)
    return 0
  }
}

const state: Command = {
  name: 'state',
  summary: 'print an app\'s state (after a sync with the OHT and its hosts)',
  usage: ['app state <app> [--no-sync]'],
  details: `${APP_HELP}
Prints the state the app's reducer made of every op seen, as JSON, with its hash (the same hash
on every node that has the same ops).`,
  flags: [{ name: 'no-sync', type: 'boolean', description: 'do not sync first' }],
  positionals: [{ name: 'app', description: 'app key or name' }],
  async run (ctx) {
    const app = one(ctx, 'the app')
    const r = await withProgress(ctx.io, 'syncing', (await ctx.client()).call<{ stateHash: string, ops: number, state: unknown }>('GET', `/v1/apps/${enc(app)}/state${ctx.args.flags['no-sync'] === true ? '?sync=0' : ''}`, undefined, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => `${JSON.stringify(r.state, null, 2)}\n(${r.ops} ops, state ${r.stateHash.slice(0, 16)}…)`)
    return 0
  }
}

const op: Command = {
  name: 'op',
  summary: 'submit an op (JSON) to an app, signed with your key for it',
  usage: ['app op <app> <json>'],
  details: `${APP_HELP}
The app's validator checks the op here first; a refused op is not published (exit 1, with the
app's reason). Example:
  oht app op guestbook.alice '{"type":"sign","name":"ada","message":"hello"}'`,
  flags: [],
  positionals: [{ name: 'app', description: 'app key or name' }, { name: 'json', description: 'the op body' }],
  async run (ctx) {
    const [app, text] = ctx.args.positionals
    let body: unknown
    try { body = JSON.parse(text) } catch { throw new CliError('CLI_BAD_ARGUMENT', `oht app op: ${JSON.stringify(text.slice(0, 60))} is not JSON`) }
    const r = await withProgress(ctx.io, 'publishing', (await ctx.client()).call<{ id: string, seq: number, status: string, stored: number, error?: string }>('POST', `/v1/apps/${enc(app)}/ops`, { body }, { signal: ctx.io.signal }))
    emit(ctx.io, ctx.json, r, () => `op ${r.seq} ${r.status}${r.stored > 0 ? `, stored on ${r.stored} node${r.stored === 1 ? '' : 's'}` : `, kept here (${r.error ?? 'not published yet'}); it is retried at the next sync`}`)
    return 0
  }
}

export const appCommand: Command = {
  name: 'app',
  summary: 'decentralized onion apps: new, publish, install, run, host, update, roll back',
  usage: ['app <new|publish|install|ls|run|host|hosts|update|rollback|pin|rm|state|op> …'],
  details: 'See docs/first-onion-app.md for a walk-through, docs/doa.md for how it works.',
  flags: [],
  positionals: [],
  subcommands: [create, publish, install, ls, run, host, hosts, update, rollback, pin, rm, state, op]
}
