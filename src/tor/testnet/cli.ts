/**
 * Shell entry for the private Tor network (later `oht testnet ...`):
 *
 *   node --import tsx src/tor/testnet/cli.ts up [--dir D] [--clients N] [--relays R] [--json]
 *       start a network detached from this terminal (no owner pid), print its env, exit;
 *       the tors' pids are recorded in D/state.json
 *   ... env --dir D [--json]   print SOCKS/control ports and cookie paths as shell env (or JSON)
 *   ... status --dir D         one line per tor: running or not
 *   ... down --dir D           stop exactly the tors recorded in D/state.json
 *
 * Exit status: 0 on success, 1 on a failure (the message says what to do), 2 on bad usage.
 */
import { parseArgs } from 'node:util'
import { errorMessage } from '../../core/index.ts'
import { pidAlive } from '../launcher.ts'
import { readTestnetState, startTestnet, stateEnv, stopTestnetDir } from './network.ts'
import type { TestnetState } from './network.ts'

const USAGE = `usage: testnet up [--dir D] [--clients N] [--relays R] [--json]
       testnet env --dir D [--json]
       testnet status --dir D
       testnet down --dir D`

function shellQuote (v: string): string {
  return /^[A-Za-z0-9_./:@%+=-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`
}

function printEnv (state: TestnetState, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(state, null, 2) + '\n')
    return
  }
  for (const [k, v] of Object.entries(stateEnv(state))) process.stdout.write(`export ${k}=${shellQuote(v)}\n`)
}

function count (v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new UsageError(`--${name} must be an integer 0-100`)
  return n
}

class UsageError extends Error {}

export async function main (argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      clients: { type: 'string' },
      relays: { type: 'string' },
      json: { type: 'boolean', default: false }
    }
  })
  const cmd = positionals[0]
  const dir = values.dir
  switch (cmd) {
    case 'up': {
      const net = await startTestnet({
        dir,
        clients: count(values.clients, 'clients', 2),
        relays: count(values.relays, 'relays', 2),
        detached: true,
        onProgress: (e) => { process.stderr.write(`testnet: ${e.message} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`) }
      })
      printEnv(net.toJSON(), values.json)
      process.stderr.write(`testnet: running in ${net.dir}; stop it with: testnet down --dir ${net.dir}\n`)
      return 0
    }
    case 'env':
    case 'status':
    case 'down': {
      if (dir === undefined) throw new UsageError(`${cmd} needs --dir D (the dir "up" printed)`)
      if (cmd === 'down') {
        const n = await stopTestnetDir(dir)
        process.stderr.write(`testnet: stopped ${n} tor processes\n`)
        return 0
      }
      const state = await readTestnetState(dir)
      if (cmd === 'env') printEnv(state, values.json)
      else for (const n of state.nodes) process.stdout.write(`${n.name.padEnd(8)} pid ${String(n.pid).padEnd(8)} ${pidAlive(n.pid) ? 'running' : 'not running'}\n`)
      return 0
    }
    default:
      throw new UsageError(cmd === undefined ? 'missing command' : `unknown command ${cmd}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`testnet: ${errorMessage(err)}\n${USAGE}\n`)
      process.exitCode = 2
    } else {
      process.stderr.write(`testnet: ${errorMessage(err)}\n`)
      process.exitCode = 1
    }
  })
}
