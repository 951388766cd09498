import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'
import { formatOniTable, type OniEndpointView } from './oni.ts'

interface EndpointStatusView extends OniEndpointView { key: string, keyPath?: string }

const PORT = /^\d{1,5}$/

export const endpointsCommand: Command = {
  name: 'endpoints',
  summary: 'list, add or remove onion endpoints for local services (ONI\'s endpoint manager)',
  usage: [
    'endpoints [ls]',
    'endpoints add <name> <port> <target> [<port> <target>]… [--key-path <path> | --key-file <file>]',
    'endpoints rm <name>'
  ],
  details: `An endpoint publishes local services at an onion address: each <port> <target> pair routes
that port of the address to a target "127.0.0.1:<port>" (any 127/8 address, localhost, [::1]) or
"unix:/path". Connections and bytes are counted per route. The key, and so the address:
  (default)            a new key, kept 0600 in the daemon's state dir (<state>/oni/keys)
  --key-path <path>    a key-tree child of this node's identity, e.g. web.blog: the same address
                       whenever the same path is used with the same identity
  --key-file <file>    an existing key file (e.g. from "oht init"), copied into the state dir
Endpoints survive daemon and tor restarts at the same address. They are ONI's endpoints: "oht oni
ls" lists exactly these. "ls" (the default) prints one line per route: name, address, port, target,
state (ready, publishing, unreachable, down), open and total connections, failures, bytes in, out.
Examples:
  oht endpoints add web 80 127.0.0.1:8080
  oht endpoints add site 80 127.0.0.1:8080 443 127.0.0.1:8443 --key-path site
  oht endpoints rm web`,
  flags: [
    { name: 'key-path', type: 'string', valueName: '<path>', description: 'add: derive the key from this node\'s identity at this key-tree path' },
    { name: 'key-file', type: 'string', valueName: '<file>', description: 'add: use the key in this key file (absolute path the daemon can read)' }
  ],
  positionals: [{ name: 'action', description: 'ls | add | rm (none: ls)', optional: true }],
  variadic: true,
  async run (ctx) {
    const [action, ...rest] = ctx.args.positionals
    const keyPath = ctx.flag('key-path')
    const keyFile = ctx.flag('key-file')
    if (action !== 'add' && (keyPath !== undefined || keyFile !== undefined)) throw new CliError('CLI_USAGE', 'oht endpoints: --key-path and --key-file apply to add')
    const signal = ctx.io.signal
    if (action === undefined || action === 'ls' || action === 'list') {
      if (rest.length > 0) throw new CliError('CLI_USAGE', 'oht endpoints: ls takes no arguments')
      const r = await (await ctx.client()).call<{ endpoints: EndpointStatusView[] }>('GET', '/v1/endpoints', undefined, { signal })
      emit(ctx.io, ctx.json, r, () => r.endpoints.length === 0 ? '(no endpoints)' : formatOniTable({ enabled: true, endpoints: r.endpoints }))
      return 0
    }
    if (action === 'add') {
      if (rest.length < 3 || rest.length % 2 === 0) throw new CliError('CLI_USAGE', 'oht endpoints add: needs <name> and one or more <port> <target> pairs (see oht endpoints --help)')
      if (keyPath !== undefined && keyFile !== undefined) throw new CliError('CLI_USAGE', 'oht endpoints add: give --key-path or --key-file, not both')
      if (keyFile !== undefined && !keyFile.startsWith('/')) throw new CliError('CLI_BAD_ARGUMENT', `oht endpoints add: --key-file needs an absolute path (the daemon reads it), got ${JSON.stringify(keyFile)}`)
      const [name, ...pairs] = rest
      const routes: Array<{ virtualPort: number, target: string }> = []
      for (let i = 0; i < pairs.length; i += 2) {
        if (!PORT.test(pairs[i])) throw new CliError('CLI_BAD_ARGUMENT', `oht endpoints add: port ${JSON.stringify(pairs[i])} is not a port number`)
        routes.push({ virtualPort: Number(pairs[i]), target: pairs[i + 1] })
      }
      const key = keyPath !== undefined ? { type: 'derived', path: keyPath } : keyFile !== undefined ? { type: 'file', path: keyFile } : undefined
      const r = await (await ctx.client()).call<EndpointStatusView>('POST', '/v1/endpoints', { name, routes, ...(key !== undefined ? { key } : {}) }, { signal })
      emit(ctx.io, ctx.json, r, () => r.routes.map(x => `${r.address}:${x.virtualPort}`).join('\n'))
      return 0
    }
    if (action === 'rm' || action === 'remove') {
      if (rest.length !== 1) throw new CliError('CLI_USAGE', 'oht endpoints rm: needs <name>')
      const r = await (await ctx.client()).call('DELETE', `/v1/endpoints/${encodeURIComponent(rest[0])}`, undefined, { signal })
      emit(ctx.io, ctx.json, r, () => `removed ${rest[0]}`)
      return 0
    }
    throw new CliError('CLI_USAGE', `oht endpoints: unknown action ${JSON.stringify(action)}: use ls, add or rm`)
  }
}
