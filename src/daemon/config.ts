/**
 * The daemon's configuration: TOML (`oht.toml`) or JSON (`oht.json`), validated field by field.
 * Unknown fields are errors (a typo must not silently fall back to a default) and every error
 * names the file and the field: `oht.toml: tor.mode must be one of "launch", "attach", "none"`.
 *
 * ```toml
 * [identity]
 * key_file = "identity.key"        # relative paths are relative to the state dir
 * # master_key_file = "/etc/multiverse/master.key"   # derive instead: key tree + name
 * # name = "universe.router.multiverse"
 * # passphrase_file = "/etc/multiverse/passphrase"  # for sealed key files
 *
 * [tor]
 * mode = "launch"                  # launch our own tor | attach to a running one | none
 * # control = "127.0.0.1:9051"     # attach: "host:port" (loopback only) or "unix:/run/tor/control"
 * # control_password_file = "/etc/tor/control.pass"
 * # control_cookie_file = "/run/tor/control.authcookie"   # attach: tor's CookieAuthFile (needed for COOKIE-only tors)
 * # allow_null_auth = false        # attach: accept a tor with no control authentication
 * # socks_port = 9050              # attach: default asks tor (GETINFO net/listeners/socks)
 * # tor_path = "tor"
 * # bootstrap_timeout_ms = 120000
 * # bootstrap_stall_ms = 30000    # launch: give up after this long without bootstrap progress
 * # [tor.torrc]                    # launch: extra torrc options
 * # TestingTorNetwork = 1
 *
 * [node]
 * transport = "tor"                # tor | tcp (loopback/LAN, no anonymity) | local (no network)
 * onion_port = 4001                # virtual port of the node's own onion service
 * # listen = ["/ip4/127.0.0.1/tcp/0"]   # tcp
 * # bootstrap = ["/onion3/<56 chars>:4001/p2p/<peer id>"]
 * # max_value_bytes = 65536
 *
 * [api]
 * # socket = "/run/oht/api.sock"   # default <state dir>/run/api.sock
 * # token_file = "/var/lib/oht/api.token"
 *
 * [endpoints]
 * keep_on_shutdown = false         # true: onion endpoints stay published (detached) after exit
 *
 * [log]
 * level = "info"                   # debug | info | warn | error
 *
 * [oni]                            # the onion network interface (needs node.transport = "tor")
 * enabled = false                  # true: also run ONI's SOCKS5 egress (endpoints are ONI's always)
 * socks_port = 0                   # SOCKS5 egress on 127.0.0.1:<port>; 0 = no SOCKS listener
 * probe_interval_ms = 60000        # how often published ONI endpoints are checked
 *
 * [doa]                            # decentralized onion apps (oht app …, oht name …)
 * enabled = true
 * host_max_bytes = 67108864        # default hosting quota per app: bundles and snapshots kept
 * host_max_ops = 100000            # default hosting quota per app: ops kept
 * http_port = 80                   # virtual port of hosted apps' onion endpoints
 *
 * [gateway]                        # router-VM gateway mode: torify the VMs behind an interface
 * enabled = false                  # see gateway-config.ts and docs/daemon.md for every field
 * # interface = "br-vms"
 * ```
 */
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, extname, isAbsolute, join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { jsonLocator, jsonSyntaxError, tomlLocator, type Locator, type SettingPath } from './config-source.ts'
import { DaemonError } from './errors.ts'
import { GATEWAY_OWNED_TORRC, parseGatewaySection, type GatewayConfig } from './gateway-config.ts'
import { defaultSocketPath, defaultTokenPath, identityPath } from './paths.ts'

export type TorMode = 'launch' | 'attach' | 'none'
export type Transport = 'tor' | 'tcp' | 'local'
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type ControlAddress = { host: string, port: number } | { path: string }

export interface DaemonConfig {
  identity: {
    /** @default '<state dir>/identity.key' */
    keyFile: string
    /** Derive the identity from this master key file and `name` instead. @default undefined */
    masterKeyFile?: string
    /** Key-tree path used with masterKeyFile. @default undefined */
    name?: string
    /** File holding the passphrase of sealed key files. @default undefined */
    passphraseFile?: string
  }
  tor: {
    /** @default 'launch' (transport tor) */
    mode: TorMode
    /** attach: where tor's control port is. @default undefined */
    control?: ControlAddress
    /** @default undefined (cookie or no auth) */
    controlPasswordFile?: string
    /** attach: tor's control cookie file, trusted for COOKIE auth. @default undefined (SAFECOOKIE only) */
    controlCookieFile?: string
    /** attach: accept NULL auth (a tor any local process may control). @default false */
    allowNullAuth?: boolean
    /** attach: tor's SOCKS port. @default asked from tor */
    socksPort?: number
    /** @default 'tor' */
    torPath: string
    /** @default 120_000 */
    bootstrapTimeoutMs: number
    /** launch: give up when bootstrap makes no progress for this long (0: never). @default 30_000 */
    bootstrapStallMs: number
    /** launch: extra torrc options. @default {} */
    torrc: Record<string, string | number | boolean | Array<string | number>>
    /** How often to retry a lost tor. @default 2_000 */
    reconnectIntervalMs: number
  }
  node: {
    /** @default 'tor' */
    transport: Transport
    /** @default 4001 */
    onionPort: number
    /** tcp: listen multiaddrs. @default ['/ip4/127.0.0.1/tcp/0'] */
    listen: string[]
    /** Peers to bootstrap from (multiaddrs). @default [] */
    bootstrap: string[]
    /** @default 65_536 */
    maxValueBytes: number
  }
  api: {
    /** @default '<state dir>/run/api.sock' */
    socket: string
    /** @default '<state dir>/api.token' */
    tokenFile: string
  }
  endpoints: {
    /** Keep onion endpoints published after the daemon exits. @default false */
    keepOnShutdown: boolean
  }
  log: {
    /** @default 'info' */
    level: LogLevel
  }
  oni: {
    /** Also run ONI's SOCKS egress (ONI's endpoint manager runs whenever the node is on tor). @default false */
    enabled: boolean
    /** SOCKS5 egress port on 127.0.0.1; 0 = no SOCKS listener. @default 0 */
    socksPort: number
    /** Interval of endpoint reachability probes. @default 60_000 */
    probeIntervalMs: number
  }
  /** Router-VM gateway mode (gateway-config.ts). @default disabled */
  gateway: GatewayConfig
  doa: {
    /** Run the DOA service (apps and names). @default true */
    enabled: boolean
    /** Default hosting quota per app, bytes of bundles and snapshots. @default 67108864 */
    hostMaxBytes: number
    /** Default hosting quota per app, ops kept. @default 100000 */
    hostMaxOps: number
    /** Virtual port of hosted apps' onion endpoints. @default 80 */
    httpPort: number
  }
}

const MAX_CONFIG_BYTES = 1024 * 1024

type Raw = Record<string, unknown>

/** `tor.torrc.Foo` or `listen[2]` as a path: ['tor', 'torrc', 'Foo'], ['listen', 2]. */
function fieldPath (field: string): Array<string | number> {
  const out: Array<string | number> = []
  for (const part of field.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part)
    if (m === null) { out.push(part); continue }
    if (m[1] !== '') out.push(m[1])
    for (const i of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(i[1]))
  }
  return out
}

/** `file:line:column` when the setting can be found in the text, else `file`. */
function where (source: string, locate: Locator | undefined, path: SettingPath): string {
  const at = locate?.(path)
  return at === undefined ? source : `${source}:${at.line}:${at.column}`
}

class Fields {
  readonly used = new Set<string>()
  constructor (readonly source: string, readonly section: string, readonly raw: Raw, readonly locate?: Locator) {}

  fail (field: string, what: string): never {
    const path = [...(this.section === '' ? [] : [this.section]), ...fieldPath(field)]
    throw new DaemonError('DAEMON_CONFIG', `${where(this.source, this.locate, path)}: ${this.section === '' ? '' : this.section + '.'}${field} ${what}`)
  }

  private get (field: string): unknown {
    this.used.add(field)
    return this.raw[field]
  }

  string (field: string): string | undefined {
    const v = this.get(field)
    if (v === undefined) return undefined
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${describe(v)}`)
    if (v.includes('\0')) this.fail(field, 'must not contain NUL bytes')
    return v === '' ? undefined : v
  }

  oneOf<T extends string> (field: string, allowed: readonly T[]): T | undefined {
    const v = this.string(field)
    if (v === undefined) return undefined
    if (!(allowed as readonly string[]).includes(v)) this.fail(field, `must be one of ${allowed.map(a => `"${a}"`).join(', ')}, got "${v}"`)
    return v as T
  }

  int (field: string, min: number, max: number): number | undefined {
    const v = this.get(field)
    if (v === undefined) return undefined
    const n = typeof v === 'bigint' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isInteger(n)) this.fail(field, `must be a whole number, got ${describe(v)}`)
    if (n < min || n > max) this.fail(field, `must be between ${min} and ${max}, got ${n}`)
    return n
  }

  bool (field: string): boolean | undefined {
    const v = this.get(field)
    if (v === undefined) return undefined
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${describe(v)}`)
    return v
  }

  strings (field: string): string[] | undefined {
    const v = this.get(field)
    if (v === undefined) return undefined
    if (!Array.isArray(v) || v.some(x => typeof x !== 'string' || x === '')) this.fail(field, 'must be a list of non-empty strings')
    return v as string[]
  }

  table (field: string): Raw | undefined {
    const v = this.get(field)
    if (v === undefined) return undefined
    if (!isTable(v)) this.fail(field, `must be a table, got ${describe(v)}`)
    return v
  }

  /** Rejects fields nobody read: typos must not pass silently. */
  finish (): void {
    for (const key of Object.keys(this.raw)) {
      if (!this.used.has(key)) this.fail(key, 'is not a known setting (see docs/daemon.md)')
    }
  }
}

function isTable (v: unknown): v is Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a table'
  return `${typeof v} ${JSON.stringify(v)}`
}

function section (source: string, raw: Raw, name: string, locate?: Locator): Fields {
  const v = raw[name]
  if (v !== undefined && !isTable(v)) throw new DaemonError('DAEMON_CONFIG', `${where(source, locate, [name])}: [${name}] must be a table, got ${describe(v)}`)
  return new Fields(source, name, v ?? {}, locate)
}

function under (stateDir: string, p: string): string {
  return isAbsolute(p) ? p : join(stateDir, p)
}

/** Parses `host:port` (loopback only) or `unix:/path`. */
export function parseControlAddress (text: string): ControlAddress | undefined {
  if (text.startsWith('unix:')) {
    const path = text.slice(5)
    return isAbsolute(path) ? { path } : undefined
  }
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[2])
  if (port < 1 || port > 65535) return undefined
  return { host: m[1] === '[::1]' ? '::1' : m[1], port }
}

/**
 * Validates a parsed config object. `source` names the file in messages; relative paths resolve
 * against `stateDir`; `locate` (from the file's text) adds line and column. Throws DaemonError
 * DAEMON_CONFIG naming the bad field.
 */
export function validateConfig (raw: unknown, source: string, stateDir: string, locate?: Locator): DaemonConfig {
  if (!isTable(raw)) throw new DaemonError('DAEMON_CONFIG', `${source}: the top level must be a table/object`)
  const top = new Fields(source, '', raw, locate)
  for (const name of ['identity', 'tor', 'node', 'api', 'endpoints', 'log', 'oni', 'gateway', 'doa']) top.table(name)
  top.finish()

  const id = section(source, raw, 'identity', locate)
  const keyFile = id.string('key_file')
  const masterKeyFile = id.string('master_key_file')
  const name = id.string('name')
  const passphraseFile = id.string('passphrase_file')
  id.finish()
  if ((masterKeyFile === undefined) !== (name === undefined)) {
    id.fail(masterKeyFile === undefined ? 'master_key_file' : 'name', 'must be set too: deriving an identity needs both master_key_file and name')
  }
  if (name !== undefined && !/^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/i.test(name)) id.fail('name', `must be a dotted key-tree path such as "universe.router.multiverse", got "${name}"`)

  const node = section(source, raw, 'node', locate)
  const transport = node.oneOf('transport', ['tor', 'tcp', 'local'] as const) ?? 'tor'
  const onionPort = node.int('onion_port', 1, 65535) ?? 4001
  const listen = node.strings('listen') ?? ['/ip4/127.0.0.1/tcp/0']
  const bootstrap = node.strings('bootstrap') ?? []
  const maxValueBytes = node.int('max_value_bytes', 1, 1024 * 1024) ?? 65_536
  node.finish()
  for (const [i, a] of listen.entries()) if (!a.startsWith('/')) node.fail(`listen[${i}]`, `must be a multiaddr such as /ip4/127.0.0.1/tcp/0, got "${a}"`)
  for (const [i, a] of bootstrap.entries()) if (!a.startsWith('/')) node.fail(`bootstrap[${i}]`, `must be a multiaddr such as /onion3/<address>:4001/p2p/<peer id>, got "${a}"`)

  const tor = section(source, raw, 'tor', locate)
  const mode = tor.oneOf('mode', ['launch', 'attach', 'none'] as const) ?? (transport === 'tor' ? 'launch' : 'none')
  const controlText = tor.string('control')
  const control = controlText === undefined ? undefined : parseControlAddress(controlText)
  if (controlText !== undefined && control === undefined) tor.fail('control', `must be "127.0.0.1:<port>" (loopback only) or "unix:/absolute/path", got "${controlText}"`)
  const controlPasswordFile = tor.string('control_password_file')
  const controlCookieFile = tor.string('control_cookie_file')
  const allowNullAuth = tor.bool('allow_null_auth') ?? false
  const socksPort = tor.int('socks_port', 1, 65535)
  const torPath = tor.string('tor_path') ?? 'tor'
  const bootstrapTimeoutMs = tor.int('bootstrap_timeout_ms', 1000, 3_600_000) ?? 120_000
  const bootstrapStallMs = tor.int('bootstrap_stall_ms', 0, 3_600_000) ?? 30_000
  const reconnectIntervalMs = tor.int('reconnect_interval_ms', 100, 600_000) ?? 2_000
  const torrcRaw = tor.table('torrc') ?? {}
  tor.finish()
  const torrc: DaemonConfig['tor']['torrc'] = {}
  for (const [k, v] of Object.entries(torrcRaw)) {
    const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) ||
      (Array.isArray(v) && v.every(x => typeof x === 'string' || typeof x === 'number'))
    if (!ok || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) tor.fail(`torrc.${k}`, 'must be a torrc option name with a string, number, boolean or list value')
    torrc[k] = v as string
  }
  if (mode === 'attach' && control === undefined) tor.fail('control', 'must be set when tor.mode is "attach" (e.g. "127.0.0.1:9051")')
  if (transport === 'tor' && mode === 'none') tor.fail('mode', 'cannot be "none" with node.transport = "tor": use "launch" or "attach"')

  const api = section(source, raw, 'api', locate)
  const socket = api.string('socket')
  const tokenFile = api.string('token_file')
  api.finish()
  if (socket !== undefined && Buffer.byteLength(under(stateDir, socket)) > 100) api.fail('socket', 'is too long for a unix socket path (at most 100 bytes)')

  const endpoints = section(source, raw, 'endpoints', locate)
  const keepOnShutdown = endpoints.bool('keep_on_shutdown') ?? false
  endpoints.finish()

  const log = section(source, raw, 'log', locate)
  const level = log.oneOf('level', ['debug', 'info', 'warn', 'error'] as const) ?? 'info'
  log.finish()

  const oni = section(source, raw, 'oni', locate)
  const oniEnabled = oni.bool('enabled') ?? false
  const oniSocksPort = oni.int('socks_port', 0, 65535) ?? 0
  const probeIntervalMs = oni.int('probe_interval_ms', 1000, 3_600_000) ?? 60_000
  oni.finish()
  if (oniEnabled && transport !== 'tor') oni.fail('enabled', `needs node.transport = "tor" (got "${transport}"): ONI publishes onion endpoints through tor`)

  const doaSection = section(source, raw, 'doa', locate)
  const doaEnabled = doaSection.bool('enabled') ?? true
  const hostMaxBytes = doaSection.int('host_max_bytes', 1024, 16 * 1024 * 1024 * 1024) ?? 64 * 1024 * 1024
  const hostMaxOps = doaSection.int('host_max_ops', 1, 100_000_000) ?? 100_000
  const httpPort = doaSection.int('http_port', 1, 65535) ?? 80
  doaSection.finish()

  const gateway = parseGatewaySection(source, raw.gateway, stateDir)
  if (gateway.enabled && transport !== 'tor') throw new DaemonError('DAEMON_CONFIG', `${source}: gateway.enabled needs node.transport = "tor" (got "${transport}"): the gateway sends the VMs' traffic through the daemon's tor`)
  const owned = Object.keys(torrc).find(k => GATEWAY_OWNED_TORRC.includes(k.toLowerCase()))
  if (gateway.enabled && owned !== undefined) throw new DaemonError('DAEMON_CONFIG', `${source}: tor.torrc.${owned} is set by the gateway when gateway.enabled = true: remove it from [tor.torrc]`)

  return {
    identity: {
      keyFile: keyFile !== undefined ? under(stateDir, keyFile) : identityPath(stateDir),
      ...(masterKeyFile !== undefined ? { masterKeyFile: under(stateDir, masterKeyFile) } : {}),
      ...(name !== undefined ? { name: name.toLowerCase() } : {}),
      ...(passphraseFile !== undefined ? { passphraseFile: under(stateDir, passphraseFile) } : {})
    },
    tor: {
      mode,
      ...(control !== undefined ? { control } : {}),
      ...(controlPasswordFile !== undefined ? { controlPasswordFile: under(stateDir, controlPasswordFile) } : {}),
      ...(controlCookieFile !== undefined ? { controlCookieFile: under(stateDir, controlCookieFile) } : {}),
      ...(allowNullAuth ? { allowNullAuth } : {}),
      ...(socksPort !== undefined ? { socksPort } : {}),
      torPath,
      bootstrapTimeoutMs,
      bootstrapStallMs,
      torrc,
      reconnectIntervalMs
    },
    node: { transport, onionPort, listen, bootstrap, maxValueBytes },
    api: {
      socket: socket !== undefined ? under(stateDir, socket) : defaultSocketPath(stateDir),
      tokenFile: tokenFile !== undefined ? under(stateDir, tokenFile) : defaultTokenPath(stateDir)
    },
    endpoints: { keepOnShutdown },
    log: { level },
    oni: { enabled: oniEnabled, socksPort: oniSocksPort, probeIntervalMs },
    gateway,
    doa: { enabled: doaEnabled, hostMaxBytes, hostMaxOps, httpPort }
  }
}

/** The formats a config file may have, by extension. */
export const CONFIG_EXTENSIONS = ['.toml', '.json'] as const

function configFormat (file: string): 'toml' | 'json' {
  const ext = extname(file).toLowerCase()
  if (ext === '.toml') return 'toml'
  if (ext === '.json') return 'json'
  throw new DaemonError('DAEMON_CONFIG', `config file ${file}: the name must end in .toml or .json (the extension says which format it is)${ext === '' ? '' : `, not ${ext}`}`)
}

/**
 * Parses config text; `file`'s extension decides the format (.toml or .json, nothing else).
 * Errors say `file:line:column: what is wrong`.
 */
export function parseConfigText (text: string, file: string, stateDir: string): DaemonConfig {
  const format = configFormat(file)
  let raw: unknown
  if (format === 'json') {
    const syntax = jsonSyntaxError(text)
    try {
      raw = JSON.parse(text)
    } catch (err) {
      const detail = syntax !== undefined ? `${syntax.position.line}:${syntax.position.column}: not valid JSON: ${syntax.message}` : ` not valid JSON: ${errorText(err)}`
      throw new DaemonError('DAEMON_CONFIG', `${file}:${detail}`, { cause: err })
    }
    return validateConfig(raw, file, stateDir, jsonLocator(text))
  }
  try {
    raw = parseToml(text)
  } catch (err) {
    const e = err as { line?: unknown, column?: unknown }
    const at = typeof e.line === 'number' && typeof e.column === 'number' ? `${e.line}:${e.column}:` : ''
    // smol-toml's first line is the reason; the rest is a drawing of the spot.
    const detail = errorText(err).replace(/^Invalid TOML document: /, '')
    throw new DaemonError('DAEMON_CONFIG', `${file}:${at} not valid TOML: ${detail}`, { cause: err })
  }
  return validateConfig(raw, file, stateDir, tomlLocator(text))
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err)
}

/**
 * Loads the config: `file` undefined gives the defaults. A missing file named explicitly is
 * DAEMON_CONFIG_MISSING; a missing default file is fine.
 */
export async function loadConfig (file: string | undefined, stateDir: string, explicit = false): Promise<DaemonConfig> {
  if (file === undefined) return validateConfig({}, 'defaults', stateDir)
  configFormat(file)
  let size: number
  try {
    size = (await stat(file)).size
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return validateConfig({}, 'defaults', stateDir)
    throw new DaemonError('DAEMON_CONFIG_MISSING', `config file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): create it or run oht init`, { cause: err })
  }
  if (size > MAX_CONFIG_BYTES) throw new DaemonError('DAEMON_CONFIG', `config file ${file} is ${size} bytes; a config is at most ${MAX_CONFIG_BYTES}`)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new DaemonError('DAEMON_CONFIG', `config file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })
  }
  return parseConfigText(text, file, stateDir)
}

/**
 * The config `oht init` writes when there is none: every setting at its default, commented
 * out, with what it does. It parses to exactly the defaults (a unit test holds it to that).
 */
export const DEFAULT_CONFIG_TOML = `# OHT daemon configuration (written by "oht init"). Every setting is optional; the values
# shown are the defaults. Unknown settings are errors, so a typo cannot pass silently.
# Relative paths are relative to the state dir (--state-dir, $OHT_STATE_DIR, else
# ~/.local/share/multiverse/oht). Guide: docs/daemon.md in the oht package.

[identity]
# key_file = "identity.key"                          # 0600; made by oht init
# Derive the identity instead: the same master key and name always give the same onion address.
# master_key_file = "/etc/multiverse/master.key"
# name = "universe.router.multiverse"
# passphrase_file = "/etc/multiverse/passphrase"     # for passphrase-sealed key files

[tor]
# mode = "launch"              # launch our own tor | attach to a running one | none (needs transport tcp/local)
# control = "127.0.0.1:9051"   # attach: "127.0.0.1:<port>" or "unix:/run/tor/control"
# control_password_file = "/etc/tor/control.pass"   # else cookie authentication
# socks_port = 9050            # attach: default asks tor
# tor_path = "tor"
# bootstrap_timeout_ms = 120000
# bootstrap_stall_ms = 30000   # launch: give up after this long without bootstrap progress (0: never)
# reconnect_interval_ms = 2000
# [tor.torrc]                  # launch: extra torrc options, e.g. bridges:
# UseBridges = 1
# Bridge = ["obfs4 192.0.2.1:443 <fingerprint> cert=… iat-mode=0"]
# No public Tor network on this machine? Run a private one and attach to it:
#   oht testnet up --dir ~/oht-net && oht daemon --testnet ~/oht-net

[node]
# transport = "tor"            # tor | tcp (loopback/LAN, no anonymity) | local (no network)
# onion_port = 4001            # virtual port of the node's own onion service
# listen = ["/ip4/127.0.0.1/tcp/0"]                  # tcp only
# bootstrap = []               # e.g. ["/onion3/<56 characters>:4001/p2p/12D3Koo…"]
# max_value_bytes = 65536

[api]
# socket = "run/api.sock"      # HTTP + JSON on a 0600 unix socket
# token_file = "api.token"     # 0600 bearer token, made at first start

[endpoints]
# keep_on_shutdown = false     # true: onion endpoints stay published after the daemon exits

[log]
# level = "info"               # debug | info | warn | error

[oni]                          # the onion network interface (node.transport = "tor" only)
# enabled = false
# socks_port = 0               # SOCKS5 egress on 127.0.0.1:<port>; 0: none
# probe_interval_ms = 60000    # how often published ONI endpoints are checked
`

/**
 * Writes DEFAULT_CONFIG_TOML to `file` (0600, its directory made 0700) unless a file is
 * already there. Resolves true when it wrote one.
 */
export async function writeDefaultConfig (file: string): Promise<boolean> {
  configFormat(file)
  if (extname(file).toLowerCase() !== '.toml') throw new DaemonError('DAEMON_CONFIG', `config file ${file}: oht init writes a TOML config; name it .toml or create the JSON file yourself`)
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  let fh
  try {
    fh = await open(file, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new DaemonError('DAEMON_CONFIG', `cannot write config file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`, { cause: err })
  }
  try {
    await fh.writeFile(DEFAULT_CONFIG_TOML)
  } finally {
    await fh.close()
  }
  return true
}
