/**
 * Shell entry for the private Tor network (later `oht testnet ...`):
 *
 *   node --import tsx src/tor/testnet/cli.ts up [--dir D] [--clients N] [--relays R] [--json]
 *       start a network detached from this terminal (no owner pid), print its env, exit;
 *       the tors' pids are recorded in D/state.json. On the dir of a network that is
 *       running: prints its env again. On the dir of a stopped (or half-stopped) one: starts
 *       it again there (new ports: eval the env again).
 *   ... env --dir D [--json]   print SOCKS/control ports and cookie paths as shell env (or JSON)
 *   ... status --dir D [--json] one line per tor: running or not; exit 1 unless all run
 *   ... down --dir D           stop exactly the tors recorded in D/state.json
 *
 * Exit status: 0 on success, 1 on a failure or (status) a tor that is down (the message says
 * what to do), 2 on bad usage.
 */
import { parseArgs } from 'node:util'
import { errorMessage } from '../../core/index.ts'
import { pidAlive } from '../launcher.ts'
import { clearTestnetDir, readTestnetState, startTestnet, stateEnv, stopTestnetDir } from './network.ts'
import type { TestnetState } from './network.ts'

const USAGE = `usage: testnet up [--dir D] [--clients N] [--relays R] [--json]
       testnet env --dir D [--json]
       testnet status --dir D [--json]
       testnet down --dir D`

function shellQuote (v: string): string {
  return /^[A-Za-z0-9_./:@%+=-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`
}

/** Where the entry writes: results to stdout, progress and problems to stderr. */
export interface TestnetCliIo {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

function printEnv (io: TestnetCliIo, state: TestnetState, json: boolean): void {
  if (json) {
    io.stdout.write(JSON.stringify(state, null, 2) + '\n')
    return
  }
  for (const [k, v] of Object.entries(stateEnv(state))) io.stdout.write(`export ${k}=${shellQuote(v)}\n`)
}

function count (v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new UsageError(`--${name} must be an integer 0-100`)
  return n
}

class UsageError extends Error {}

/**
 * Runs one command; `prog` is how the user called this entry (`oht testnet` from the oht CLI),
 * used in the commands the messages suggest.
 */
export async function main (argv: string[], prog = 'testnet', io: TestnetCliIo = process): Promise<number> {
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
      const existing = dir === undefined ? undefined : await readTestnetState(dir).catch(() => undefined)
      if (existing !== undefined) {
        const down = existing.nodes.filter(n => !pidAlive(n.pid))
        if (down.length === 0 && existing.nodes.length > 0) {
          printEnv(io, existing, values.json)
          io.stderr.write(`testnet: already running in ${existing.dir}; stop it with: ${prog} down --dir ${existing.dir}\n`)
          return 0
        }
        const stopped = await clearTestnetDir(existing.dir)
        io.stderr.write(`testnet: ${down.length} of ${existing.nodes.length} tors in ${existing.dir} were down${stopped > 0 ? ` (stopped the other ${stopped})` : ''}; starting the network again\n`)
      }
      // Started again, a network keeps its shape unless the flags change it.
      const had = (role: string): number | undefined => existing?.nodes.filter(n => n.role === role).length
      const net = await startTestnet({
        dir,
        clients: count(values.clients, 'clients', had('client') ?? 2),
        relays: count(values.relays, 'relays', had('relay') ?? 2),
        detached: true,
        onProgress: (e) => { io.stderr.write(`testnet: ${e.message} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`) }
      })
      printEnv(io, net.toJSON(), values.json)
      io.stderr.write(`testnet: running in ${net.dir}; stop it with: ${prog} down --dir ${net.dir}\n`)
      return 0
    }
    case 'env':
    case 'status':
    case 'down': {
      if (dir === undefined) throw new UsageError(`${cmd} needs --dir D (the dir "${prog} up" printed)`)
      if (cmd === 'down') {
        const n = await stopTestnetDir(dir)
        io.stderr.write(`testnet: stopped ${n} tor processes\n`)
        return 0
      }
      const state = await readTestnetState(dir)
      if (cmd === 'env') { printEnv(io, state, values.json); return 0 }
      const nodes = state.nodes.map(n => ({ name: n.name, role: n.role, pid: n.pid, running: pidAlive(n.pid) }))
      if (values.json) io.stdout.write(JSON.stringify({ dir: state.dir, running: nodes.every(n => n.running), nodes }, null, 2) + '\n')
      else for (const n of nodes) io.stdout.write(`${n.name.padEnd(8)} pid ${String(n.pid).padEnd(8)} ${n.running ? 'running' : 'not running'}\n`)
      const down = nodes.filter(n => !n.running)
      if (down.length === 0) return 0
      io.stderr.write(`testnet: ${down.length} of ${nodes.length} tors are not running (${down.map(n => n.name).join(', ')}): start the network again with: ${prog} up --dir ${state.dir}\n`)
      return 1
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
