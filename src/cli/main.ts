/**
 * `oht`: the command line of the OHT stack. `runCli()` is what bin/oht.js calls; `main()` runs
 * one command against injected IO so tests can drive it in process.
 *
 * @example
 * // oht init && oht daemon &        (a node with its own tor)
 * // oht put "hello"                  → 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
 * // oht get 2cf24dba…                → hello
 */
import { errorMessage, systemClock } from '../core/index.ts'
import { formatFlags, GLOBAL_FLAGS, parseArgs } from './args.ts'
import { CommandContext, type Command } from './command.ts'
import { daemonCommand } from './commands/daemon.ts'
import { endpointsCommand } from './commands/endpoints.ts'
import { gatewayCommand } from './commands/gateway.ts'
import { getCommand } from './commands/get.ts'
import { idCommand } from './commands/id.ts'
import { initCommand } from './commands/init.ts'
import { metricsCommand } from './commands/metrics.ts'
import { oniCommand } from './commands/oni.ts'
import { peersCommand } from './commands/peers.ts'
import { putCommand } from './commands/put.ts'
import { statusCommand } from './commands/status.ts'
import { testnetCommand } from './commands/testnet.ts'
import { CliError, EXIT } from './errors.ts'
import { readAll, type CliIo } from './io.ts'

export const COMMANDS: Command[] = [initCommand, idCommand, daemonCommand, statusCommand, peersCommand, putCommand, getCommand, endpointsCommand, oniCommand, gatewayCommand, metricsCommand, testnetCommand]

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    the operation failed (network, tor or daemon-side error)
  2    bad usage: unknown flag, missing or malformed argument, oversized value (nothing changed)
  3    configuration file missing, unreadable or invalid (the message names the field)
  4    no daemon answers on the API socket (start one with: oht daemon)
  5    permission denied: socket or token not accessible, or token refused
  6    oht get: no record under that key
  7    tor is missing or did not bootstrap (install it: apt-get install -y tor)
  130  interrupted (SIGINT/SIGTERM)`

function topHelp (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length))
  return `oht: the onion hash table of Multiverse OS

Usage: oht <command> [flags]

Commands:
${COMMANDS.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Flags every command takes:
${formatFlags(GLOBAL_FLAGS)}

Environment: OHT_CONFIG, OHT_STATE_DIR, OHT_SOCKET, OHT_TOKEN_FILE, XDG_CONFIG_HOME, XDG_DATA_HOME.
Run "oht <command> --help" for a command's own flags.

${EXIT_CODES_HELP}
`
}

function commandHelp (path: string, cmd: Command): string {
  const parts = [`${path}: ${cmd.summary}`, '', 'Usage:', ...cmd.usage.map(u => `  oht ${u}`)]
  if (cmd.subcommands !== undefined) {
    const width = Math.max(...cmd.subcommands.map(c => c.name.length))
    parts.push('', 'Subcommands:', ...cmd.subcommands.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`))
  }
  if (cmd.details !== undefined) parts.push('', cmd.details)
  if (cmd.flags.length > 0) parts.push('', 'Flags:', formatFlags(cmd.flags))
  parts.push('', 'Flags every command takes:', formatFlags(GLOBAL_FLAGS), '', EXIT_CODES_HELP, '')
  return parts.join('\n')
}

/** Runs one `oht` invocation; returns its exit code. Never throws. */
export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  let label = 'oht'
  try {
    const first = argv[0]
    if (first === undefined) { io.stderr.write(topHelp()); return EXIT.USAGE }
    if (first === '--help' || first === '-h' || first === 'help') { io.stdout.write(topHelp()); return EXIT.OK }
    if (first.startsWith('-')) throw new CliError('CLI_USAGE', `oht: a command comes first, got ${JSON.stringify(first)} (see oht --help)`)
    let cmd = COMMANDS.find(c => c.name === first)
    if (cmd === undefined) throw new CliError('CLI_UNKNOWN_COMMAND', `oht: unknown command ${JSON.stringify(first)} (see oht --help)`)
    let rest = argv.slice(1)
    let path = `oht ${cmd.name}`
    label = path
    if (cmd.subcommands !== undefined) {
      const sub = rest[0]
      if (sub === undefined || sub === '--help' || sub === '-h') {
        if (sub === undefined) { io.stderr.write(commandHelp(path, cmd)); return EXIT.USAGE }
        io.stdout.write(commandHelp(path, cmd))
        return EXIT.OK
      }
      const found = cmd.subcommands.find(c => c.name === sub)
      if (found === undefined) throw new CliError('CLI_UNKNOWN_COMMAND', `${path}: unknown subcommand ${JSON.stringify(sub)} (see ${path} --help)`)
      cmd = found
      rest = rest.slice(1)
      path = `${path} ${cmd.name}`
      label = path
    }
    const args = parseArgs(path.slice(4), rest, cmd.flags, cmd.positionals, { variadic: cmd.variadic === true })
    if (args.flags.help === true) { io.stdout.write(commandHelp(path, cmd)); return EXIT.OK }
    if (cmd.run === undefined) throw new CliError('CLI_USAGE', `${path}: needs a subcommand (see ${path} --help)`)
    return await cmd.run(new CommandContext(io, args, path))
  } catch (err) {
    if (io.signal.aborted && !(err instanceof CliError && err.exitCode !== EXIT.FAILURE)) {
      io.stderr.write(`${label}: interrupted\n`)
      return EXIT.INTERRUPTED
    }
    const message = errorMessage(err).split('\n')[0]
    io.stderr.write(`${message.startsWith('oht') ? message : `${label}: ${message}`}\n`)
    if (err instanceof CliError) return err.exitCode
    return EXIT.FAILURE
  }
}

/** The process entry: real stdio, env and signals; exits with main()'s code. */
export async function runCli (argv: readonly string[]): Promise<never> {
  const controller = new AbortController()
  let signals = 0
  const onSignal = (): void => {
    signals++
    if (signals > 1) process.exit(EXIT.INTERRUPTED)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const io: CliIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: async (max) => await readAll(process.stdin, max),
    env: process.env,
    clock: systemClock,
    signal: controller.signal
  }
  const code = await main(argv, io)
  process.exit(code)
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await runCli(process.argv.slice(2))
}
