import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'
import { emit } from '../io.ts'

interface EndpointView { name: string, address: string, port: number, target: string, published: boolean, error?: string }

export const endpointsCommand: Command = {
  name: 'endpoints',
  summary: 'list, add or remove onion endpoints for local services',
  usage: ['endpoints', 'endpoints add <name> <port> <target>', 'endpoints rm <name>'],
  details: `An endpoint publishes a local service (target "127.0.0.1:<port>" or "unix:/path") at an
onion address derived from this node's identity and the endpoint name: the address survives
daemon and tor restarts. Example: oht endpoints add web 80 127.0.0.1:8080`,
  flags: [],
  positionals: [{ name: 'action', description: 'add | rm (none: list)', optional: true }],
  variadic: true,
  async run (ctx) {
    const [action, ...rest] = ctx.args.positionals
    const client = await ctx.client()
    const signal = ctx.io.signal
    if (action === undefined || action === 'ls' || action === 'list') {
      if (rest.length > 0) throw new CliError('CLI_USAGE', 'oht endpoints: list takes no arguments')
      const r = await client.call<{ endpoints: EndpointView[] }>('GET', '/v1/endpoints', undefined, { signal })
      emit(ctx.io, ctx.json, r, () => r.endpoints.length === 0 ? '(no endpoints)' : r.endpoints.map(e => `${e.name}  ${e.address}:${e.port} -> ${e.target}${e.published ? '' : ` (not published${e.error !== undefined ? ': ' + e.error : ''})`}`).join('\n'))
      return 0
    }
    if (action === 'add') {
      if (rest.length !== 3) throw new CliError('CLI_USAGE', 'oht endpoints add: needs <name> <port> <target> (see oht endpoints --help)')
      if (!/^\d{1,5}$/.test(rest[1])) throw new CliError('CLI_BAD_ARGUMENT', `oht endpoints add: port ${JSON.stringify(rest[1])} is not a port number`)
      const r = await client.call<EndpointView>('POST', '/v1/endpoints', { name: rest[0], port: Number(rest[1]), target: rest[2] }, { signal })
      emit(ctx.io, ctx.json, r, () => `${r.address}:${r.port}`)
      return 0
    }
    if (action === 'rm' || action === 'remove') {
      if (rest.length !== 1) throw new CliError('CLI_USAGE', 'oht endpoints rm: needs <name>')
      const r = await client.call('DELETE', `/v1/endpoints/${encodeURIComponent(rest[0])}`, undefined, { signal })
      emit(ctx.io, ctx.json, r, () => `removed ${rest[0]}`)
      return 0
    }
    throw new CliError('CLI_USAGE', `oht endpoints: unknown action ${JSON.stringify(action)}: use add, rm or nothing (list)`)
  }
}
