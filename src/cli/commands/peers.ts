import type { Command } from '../command.ts'
import { emit } from '../io.ts'

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the peers in the node\'s routing table',
  usage: ['peers'],
  flags: [],
  positionals: [],
  async run (ctx) {
    const client = await ctx.client()
    const r = await client.call<{ peers: Array<{ onion: string, publicKey: string, addrs: string[] }> }>('GET', '/v1/peers', undefined, { signal: ctx.io.signal })
    emit(ctx.io, ctx.json, r, () => r.peers.length === 0 ? '(no peers yet)' : r.peers.map(p => `${p.onion}.onion  ${p.addrs.join(' ')}`).join('\n'))
    return 0
  }
}
