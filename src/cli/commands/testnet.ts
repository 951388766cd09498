import type { Command } from '../command.ts'
import { CliError } from '../errors.ts'

const dirFlag = { name: 'dir', type: 'string' as const, valueName: '<dir>', description: 'the network\'s directory (up: default a new temp dir)' }

function forward (name: string, summary: string, usage: string, flags: Command['flags'], needsDir: boolean): Command {
  return {
    name,
    summary,
    usage: [usage],
    flags,
    positionals: [],
    async run (ctx) {
      const dir = ctx.flag('dir')
      if (needsDir && dir === undefined) throw new CliError('CLI_USAGE', `oht testnet ${name}: needs --dir <dir> (the directory "oht testnet up" printed)`)
      const argv = [name]
      for (const f of flags) {
        const v = ctx.args.flags[f.name]
        if (v !== undefined) argv.push(`--${f.name}`, String(v))
      }
      if (ctx.json) argv.push('--json')
      const { main } = await import('../../tor/testnet/cli.ts')
      return await main(argv, 'oht testnet', { stdout: ctx.io.stdout, stderr: ctx.io.stderr })
    }
  }
}

export const testnetCommand: Command = {
  name: 'testnet',
  summary: 'run a private Tor network on 127.0.0.1 (up | env | status | down)',
  usage: ['testnet up [--dir <dir>] [--clients <n>] [--relays <n>]', 'testnet env --dir <dir>', 'testnet status --dir <dir>', 'testnet down --dir <dir>'],
  details: `A private Tor network (3 directory authorities, relays, client tors) on loopback, for
development and tests: no machine here needs the public Tor network. "up" prints shell
exports (OHT_TESTNET_CLIENT<i>_CONTROL_PORT ...) to eval; point daemons at a client with
oht daemon --testnet <dir> [--testnet-client <i>]. "up" on the dir of a running network prints
its env again, on a stopped one starts it again. "status" exits 1 when a tor is down. "down"
stops exactly the tors it started.`,
  flags: [],
  positionals: [],
  subcommands: [
    forward('up', 'start a private Tor network (detached), print its env', 'testnet up [--dir <dir>] [--clients <n>] [--relays <n>]', [
      dirFlag,
      { name: 'clients', type: 'number', valueName: '<n>', description: 'client tors (default 2)' },
      { name: 'relays', type: 'number', valueName: '<n>', description: 'relays besides the authorities (default 2)' }
    ], false),
    forward('env', 'print the network\'s ports and cookie paths as shell exports', 'testnet env --dir <dir>', [dirFlag], true),
    forward('status', 'one line per tor: running or not (exit 1 unless all run)', 'testnet status --dir <dir>', [dirFlag], true),
    forward('down', 'stop the network\'s tors', 'testnet down --dir <dir>', [dirFlag], true)
  ]
}
