/**
 * What a subcommand declares (flags, positionals, help) and what it gets when it runs.
 * The config loader (TOML parser) and the API client load on first use: `oht --help` and
 * commands that need neither start without them.
 */
import { errorMessage, isCodedError } from '../core/index.ts'
import type { DaemonConfig } from '../daemon/config.ts'
import { resolvePaths, type ResolvedPaths } from '../daemon/paths.ts'
import type { ApiClient } from './api-client.ts'
import type { FlagSpec, ParsedArgs, PositionalSpec } from './args.ts'
import { CliError, EXIT } from './errors.ts'
import type { CliIo } from './io.ts'

export interface Command {
  name: string
  summary: string
  /** Usage line(s) after `oht `. */
  usage: string[]
  /** Longer help: semantics, examples. */
  details?: string
  flags: FlagSpec[]
  positionals: PositionalSpec[]
  variadic?: boolean
  /** Subcommands (e.g. `testnet up`), dispatched before parsing. */
  subcommands?: Command[]
  run?(ctx: CommandContext): Promise<number>
}

export class CommandContext {
  private configCache: DaemonConfig | undefined
  constructor (readonly io: CliIo, readonly args: ParsedArgs, readonly name: string) {}

  get json (): boolean { return this.args.flags.json === true }

  flag (name: string): string | undefined {
    const v = this.args.flags[name]
    return typeof v === 'string' ? v : undefined
  }

  paths (): ResolvedPaths {
    return resolvePaths({ config: this.flag('config'), stateDir: this.flag('state-dir'), socket: this.flag('socket'), env: this.io.env })
  }

  /**
   * The validated config (defaults when there is no file); errors exit with EXIT.CONFIG.
   * `missingIsDefault`: a --config/$OHT_CONFIG file that does not exist yet reads as the
   * defaults instead of an error (oht init, which writes it).
   */
  async config (options: { missingIsDefault?: boolean } = {}): Promise<DaemonConfig> {
    if (this.configCache !== undefined) return this.configCache
    const p = this.paths()
    const { loadConfig } = await import('../daemon/config.ts')
    try {
      const cfg = await loadConfig(p.configFile, p.stateDir, p.configExplicit && options.missingIsDefault !== true)
      if (p.socketOverride !== undefined) cfg.api.socket = p.socketOverride
      if (this.io.env.OHT_TOKEN_FILE !== undefined && this.io.env.OHT_TOKEN_FILE !== '') cfg.api.tokenFile = this.io.env.OHT_TOKEN_FILE
      this.configCache = cfg
      return cfg
    } catch (err) {
      if (isCodedError(err) && err.code.startsWith('DAEMON_')) throw new CliError('CLI_FAILED', err.message, { cause: err, exitCode: EXIT.CONFIG })
      throw new CliError('CLI_FAILED', errorMessage(err), { cause: err, exitCode: EXIT.CONFIG })
    }
  }

  async client (): Promise<ApiClient> {
    const cfg = await this.config()
    const { connectApi } = await import('./api-client.ts')
    return await connectApi({ socketPath: cfg.api.socket, tokenPath: cfg.api.tokenFile })
  }
}
