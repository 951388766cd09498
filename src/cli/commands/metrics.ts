import type { Command } from '../command.ts'

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'print the daemon\'s Prometheus metrics',
  usage: ['metrics'],
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    ctx.io.stdout.write(await client.text('/metrics', { signal: ctx.io.signal }))
    return 0
  }
}
