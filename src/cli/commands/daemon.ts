import { errorMessage, isCodedError } from '../../core/index.ts'
import type { Command } from '../command.ts'
import { CliError, EXIT } from '../errors.ts'
import { parseControlAddress } from '../../daemon/config.ts'

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run the OHT daemon in the foreground (JSON logs on stderr)',
  usage: ['daemon [--transport tor|tcp|local] [--tor-control <host:port>] [--bootstrap <multiaddr,...>]'],
  details: `Reads the config, starts (or attaches to) tor and waits for it to bootstrap, loads the
identity (run "oht init" first), starts the OHT node, serves the local API on
<state dir>/run/api.sock (0600) and republishes saved onion endpoints. SIGTERM or SIGINT stop
it cleanly: endpoints withdrawn (unless endpoints.keep_on_shutdown), store wiped, socket
removed, a launched tor stopped. SIGHUP re-reads the gateway blocklist. Flags override the
config file. See docs/daemon.md.`,
  flags: [
    { name: 'transport', type: 'string', valueName: 'tor|tcp|local', description: 'override node.transport' },
    { name: 'tor-control', type: 'string', valueName: '<host:port>', description: 'attach to this tor control port (sets tor.mode = attach)' },
    { name: 'bootstrap', type: 'string', valueName: '<multiaddr,...>', description: 'override node.bootstrap (comma-separated)' },
    { name: 'log-level', type: 'string', valueName: 'debug|info|warn|error', description: 'override log.level' }
  ],
  positionals: [],
  async run (ctx) {
    const cfg = await ctx.config()
    const transport = ctx.flag('transport')
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
    const daemon = createDaemon({ config: cfg, stateDir: ctx.paths().stateDir, version: '0.1.0' }, {
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
