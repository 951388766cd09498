import { errorMessage, isCodedError } from '../../core/index.ts'
import type { Command } from '../command.ts'
import { CliError, EXIT } from '../errors.ts'
import { packageVersion } from '../version.ts'

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run the OHT daemon in the foreground (JSON logs on stderr)',
  usage: [
    'daemon --testnet <dir> [--testnet-client <i>] [--bootstrap <multiaddr,...>]',
    'daemon [--transport tor|tcp|local] [--tor-control <host:port>] [--bootstrap <multiaddr,...>]'
  ],
  details: `Reads the config, starts (or attaches to) tor and waits for it to bootstrap, loads the
identity (run "oht init" first), starts the OHT node, serves the local API on
<state dir>/run/api.sock (0600) and republishes saved onion endpoints. SIGTERM or SIGINT stop
it cleanly: endpoints withdrawn (unless endpoints.keep_on_shutdown), store wiped, socket
removed, a launched tor stopped. SIGHUP re-reads the gateway blocklist. Flags override the
config file. See docs/daemon.md.

No public Tor network on this machine? Run a private one and attach to one of its client tors:
  eval "$(oht testnet up --dir ~/oht-net)"
  oht daemon --testnet ~/oht-net &             (client 0; a second daemon: --testnet-client 1)`,
  flags: [
    { name: 'transport', type: 'string', valueName: 'tor|tcp|local', description: 'override node.transport' },
    { name: 'testnet', type: 'string', valueName: '<dir>', description: 'attach to a client tor of the private network "oht testnet up --dir <dir>" runs' },
    { name: 'testnet-client', type: 'number', valueName: '<i>', description: 'which of its client tors (default 0)' },
    { name: 'tor-control', type: 'string', valueName: '<host:port>', description: 'attach to this tor control port (sets tor.mode = attach)' },
    { name: 'bootstrap', type: 'string', valueName: '<multiaddr,...>', description: 'override node.bootstrap (comma-separated)' },
    { name: 'log-level', type: 'string', valueName: 'debug|info|warn|error', description: 'override log.level' }
  ],
  positionals: [],
  async run (ctx) {
    const cfg = await ctx.config()
    const { parseControlAddress } = await import('../../daemon/config.ts')
    const transport = ctx.flag('transport')
    const testnet = ctx.flag('testnet')
    const clientFlag = ctx.args.flags['testnet-client']
    if (clientFlag !== undefined && testnet === undefined) throw new CliError('CLI_USAGE', 'oht daemon: --testnet-client goes with --testnet <dir>')
    if (testnet !== undefined) {
      if (ctx.flag('tor-control') !== undefined) throw new CliError('CLI_USAGE', 'oht daemon: give either --testnet or --tor-control, not both')
      if (transport !== undefined && transport !== 'tor') throw new CliError('CLI_USAGE', `oht daemon: --testnet runs over tor; it does not go with --transport ${transport}`)
      const client = await testnetClient(testnet, typeof clientFlag === 'number' ? clientFlag : 0)
      cfg.node.transport = 'tor'
      cfg.tor.mode = 'attach'
      cfg.tor.control = { host: '127.0.0.1', port: client.controlPort }
      cfg.tor.socksPort = client.socksPort
    }
    if (transport !== undefined) {
      if (!['tor', 'tcp', 'local'].includes(transport)) throw new CliError('CLI_BAD_ARGUMENT', `oht daemon: --transport must be tor, tcp or local, got ${JSON.stringify(transport)}`)
      cfg.node.transport = transport as 'tor' | 'tcp' | 'local'
      if (transport !== 'tor' && ctx.flag('tor-control') === undefined) cfg.tor.mode = 'none'
    }
    const control = ctx.flag('tor-control')
    if (control !== undefined) {
      const addr = parseControlAddress(control)
      if (addr === undefined) throw new CliError('CLI_BAD_ARGUMENT', `oht daemon: --tor-control must be "127.0.0.1:<port>" or "unix:/path", got ${JSON.stringify(control)}`)
      cfg.tor.mode = 'attach'
      cfg.tor.control = addr
    }
    if (cfg.node.transport === 'tor' && cfg.tor.mode === 'none') cfg.tor.mode = 'launch'
    const bootstrap = ctx.flag('bootstrap')
    if (bootstrap !== undefined) {
      const list = bootstrap.split(',').map(s => s.trim()).filter(s => s !== '')
      const bad = list.find(a => !a.startsWith('/'))
      if (bad !== undefined) throw new CliError('CLI_BAD_ARGUMENT', `oht daemon: --bootstrap: ${JSON.stringify(bad)} is not a multiaddr`)
      cfg.node.bootstrap = list
    }
    const level = ctx.flag('log-level')
    if (level !== undefined) {
      if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new CliError('CLI_BAD_ARGUMENT', `oht daemon: --log-level must be debug, info, warn or error, got ${JSON.stringify(level)}`)
      cfg.log.level = level as 'debug'
    }

    // Loaded here, not at the top: libp2p and the tor launcher are only needed by the daemon.
    const { createDaemon, createJsonLog, defaultNodeFactory } = await import('../../daemon/index.ts')
    const { launchTor } = await import('../../tor/launcher.ts')
    const { attachTor } = await import('../../tor/attach.ts')
    const io = ctx.io
    const log = createJsonLog((line) => { io.stderr.write(line + '\n') }, io.clock, cfg.log.level)
    const daemon = createDaemon({ config: cfg, stateDir: ctx.paths().stateDir, version: packageVersion() }, {
      clock: io.clock,
      log,
      createNode: defaultNodeFactory,
      launchTor: async (init) => await launchTor(init),
      attachTor: async (target, opts) => await attachTor(target, opts)
    })
    try {
      await daemon.start({ signal: io.signal })
    } catch (err) {
      if (io.signal.aborted) return EXIT.INTERRUPTED
      const code = isCodedError(err) ? err.code : ''
      const exit = code === 'DAEMON_TOR' || code.startsWith('TOR_') ? EXIT.TOR : code === 'DAEMON_CONFIG' ? EXIT.CONFIG : EXIT.FAILURE
      throw new CliError('CLI_FAILED', `oht daemon: ${errorMessage(err)}`, { cause: err, exitCode: exit })
    }
    // SIGHUP re-reads what can be re-read (the gateway blocklist) instead of ending the daemon.
    const onHangup = (): void => {
      log.info('SIGHUP: reloading')
      if (cfg.gateway.enabled) void daemon.reloadGateway().catch((err: unknown) => { log.warn('reload failed', { err: errorMessage(err) }) })
    }
    process.on('SIGHUP', onHangup)
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) { resolve(); return }
      io.signal.addEventListener('abort', () => { resolve() }, { once: true })
    })
    process.off('SIGHUP', onHangup)
    await daemon.stop()
    return EXIT.OK
  }
}

/** The control and SOCKS ports of client `index` of the testnet in `dir`, checked to be running. */
async function testnetClient (dir: string, index: number): Promise<{ controlPort: number, socksPort: number }> {
  const { readTestnetState } = await import('../../tor/testnet/network.ts')
  const { pidAlive } = await import('../../tor/launcher.ts')
  let state
  try {
    state = await readTestnetState(dir)
  } catch (err) {
    throw new CliError('CLI_FAILED', `oht daemon: --testnet ${dir}: ${errorMessage(err).replace('"testnet up', '"oht testnet up')}`, { cause: err, exitCode: EXIT.TOR })
  }
  const clients = state.nodes.filter(n => n.role === 'client')
  const c = clients.find(n => n.name === `client${index}`)
  if (c === undefined || c.socksPort === undefined) {
    throw new CliError('CLI_BAD_ARGUMENT', `oht daemon: the testnet in ${dir} has ${clients.length} client tors (0-${clients.length - 1}); --testnet-client ${index} is not one of them`)
  }
  if (!pidAlive(c.pid)) {
    throw new CliError('CLI_FAILED', `oht daemon: the testnet in ${dir} is not running (its ${c.name} tor, pid ${c.pid}, has exited): start it again with oht testnet up --dir ${dir}`, { exitCode: EXIT.TOR })
  }
  return { controlPort: c.controlPort, socksPort: c.socksPort }
}
