/**
 * Where the daemon and the CLI find their files. Precedence: flag, then environment
 * (OHT_CONFIG, OHT_STATE_DIR, OHT_SOCKET), then the config file (for the socket/token), then the
 * XDG defaults: config in `$XDG_CONFIG_HOME/multiverse/oht.{toml,json}` (~/.config),
 * state in `$XDG_DATA_HOME/multiverse/oht` (~/.local/share).
 *
 * State dir layout (0700):
 *   identity.key      node identity (0600, see src/crypto key-file)
 *   api.token         bearer token of the local API (0600)
 *   run/api.sock      the API socket (0600, in a 0700 dir)
 *   own-records.json  the node's own records and mutable seqs (0600; sealed with the identity passphrase if set)
 *   routing-table.json  peers tried first after a restart
 *   oni/              ONI: endpoints.json (endpoints to restore), keys/ (0600 endpoint keys)
 *   endpoints.json.migrated  the pre-ONI endpoint list, kept after its move into oni/
 *   tor/              data dir of a tor the daemon launches
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

export interface PathInputs {
  config?: string
  stateDir?: string
  socket?: string
  env: Record<string, string | undefined>
}

export interface ResolvedPaths {
  /** The config file to read, if any. */
  configFile?: string
  /** True when the user named the file (flag or OHT_CONFIG): then it must exist. */
  configExplicit: boolean
  stateDir: string
  /** Socket from a flag or OHT_SOCKET; otherwise the config or the default decides. */
  socketOverride?: string
}

function nonEmpty (v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v
}

function home (env: Record<string, string | undefined>): string {
  return nonEmpty(env.HOME) ?? homedir()
}

export function defaultConfigDir (env: Record<string, string | undefined>): string {
  const xdg = nonEmpty(env.XDG_CONFIG_HOME)
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(home(env), '.config'), 'multiverse')
}

export function defaultStateDir (env: Record<string, string | undefined>): string {
  const xdg = nonEmpty(env.XDG_DATA_HOME)
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(home(env), '.local', 'share'), 'multiverse', 'oht')
}

export function resolvePaths (inputs: PathInputs): ResolvedPaths {
  const { env } = inputs
  const explicitConfig = nonEmpty(inputs.config) ?? nonEmpty(env.OHT_CONFIG)
  let configFile: string | undefined
  if (explicitConfig !== undefined) {
    configFile = resolve(explicitConfig)
  } else {
    const dir = defaultConfigDir(env)
    configFile = ['oht.toml', 'oht.json'].map(n => join(dir, n)).find(p => existsSync(p))
  }
  const stateDir = resolve(nonEmpty(inputs.stateDir) ?? nonEmpty(env.OHT_STATE_DIR) ?? defaultStateDir(env))
  const socket = nonEmpty(inputs.socket) ?? nonEmpty(env.OHT_SOCKET)
  return {
    ...(configFile !== undefined ? { configFile } : {}),
    configExplicit: explicitConfig !== undefined,
    stateDir,
    ...(socket !== undefined ? { socketOverride: resolve(socket) } : {})
  }
}

export function identityPath (stateDir: string): string { return join(stateDir, 'identity.key') }
export function defaultSocketPath (stateDir: string): string { return join(stateDir, 'run', 'api.sock') }
export function defaultTokenPath (stateDir: string): string { return join(stateDir, 'api.token') }
export function endpointsPath (stateDir: string): string { return join(stateDir, 'endpoints.json') }
export function torDataDir (stateDir: string): string { return join(stateDir, 'tor') }
