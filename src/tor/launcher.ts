/**
 * Runs the system `tor` as a child process: a generated torrc (0600) in its own data
 * directory, `ControlPort 127.0.0.1:auto` + `ControlPortWriteToFile`, cookie authentication,
 * `__OwningControllerProcess <our pid>` and TAKEOWNERSHIP so the child dies with its owner,
 * bootstrap progress reported until 100 %, and a tor that makes no progress for a while
 * (default 30 s) given up with a TOR_BOOTSTRAP_STALLED that says why. A failed start kills the child by PID, waits for its
 * exit, removes the temp data dir it created and throws a TorError naming tor's last
 * warning.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, open, readFile, rm, writeFile, chmod, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Clock, AbortOptions } from '../core/index.ts'
import { AbortError, abortReason, errorMessage, logger, scopedSignal, systemClock, TimeoutError } from '../core/index.ts'
import { connectTorControl } from './control/index.ts'
import type { TorControl, TorControlInit } from './control/index.ts'
import { describeBootstrapStall } from './bootstrap-stall.ts'
import { TorError } from './errors.ts'

const log = logger('tor:launcher')

/** How long a stopping tor gets between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 3_000
const POLL_MS = 50
const BOOTSTRAP_POLL_MS = 200
/** tor's log lines kept for error messages (only [warn] and [err]). */
const MAX_PROBLEM_LINES = 20
const MAX_LOG_LINE = 1_000

export type TorrcValue = string | number | boolean | Array<string | number>
/** torrc options: one entry per option name; arrays repeat the option (e.g. several `HiddenServicePort`). */
export type Torrc = Record<string, TorrcValue | null | undefined>

export interface BootstrapProgress {
  percent: number
  tag: string
  summary: string
}

export interface LaunchTorInit extends AbortOptions {
  /** The tor binary. @default 'tor' (found on PATH) */
  torPath?: string
  /** Data directory (created 0700 if missing, kept on stop). @default a new temp dir, removed by stop() */
  dataDir?: string
  /** Extra torrc options. The control port, cookie and owner options are set by the launcher. @default {} */
  torrc?: Torrc
  /** SOCKS port: a number, 'auto' (tor picks one, read back over the control port) or false (none). @default 'auto' */
  socksPort?: number | 'auto' | false
  /** @default systemClock */
  clock?: Clock
  /** Called on each bootstrap progress change until 100. @default undefined */
  onProgress?: (progress: BootstrapProgress) => void
  /** Give up (TOR_BOOTSTRAP_FAILED) if tor has not bootstrapped by then. @default 120_000 */
  bootstrapTimeoutMs?: number
  /**
   * Give up (TOR_BOOTSTRAP_STALLED, with what tor is stuck on and the likely cause) when the
   * bootstrap percentage has not moved for this long; 0 waits up to bootstrapTimeoutMs.
   * @default 30_000
   */
  bootstrapStallMs?: number
  /** Wait for bootstrap to reach 100 % before resolving. @default true */
  waitForBootstrap?: boolean
  /** Give up (TOR_LAUNCH_FAILED) if tor has not opened its control port by then. @default 30_000 */
  startTimeoutMs?: number
  /**
   * Run tor detached from this process: no owner pid, no TAKEOWNERSHIP, output to
   * `<dataDir>/tor.log`, the child survives our exit. Used by `testnet up`. @default false
   */
  detached?: boolean
  /** Options for the control connection. @default {} */
  control?: TorControlInit
}

export interface TorProcess {
  readonly pid: number
  /** Authenticated control connection (owner of the process unless `detached`). */
  readonly control: TorControl
  readonly controlPort: number
  readonly socksPort?: number
  readonly dataDir: string
  readonly torrcPath: string
  readonly cookiePath: string
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>
  /** tor's most recent [warn]/[err] log lines. */
  problems(): string[]
  /** SIGTERM, then SIGKILL after a grace period; removes a temp data dir the launcher made. */
  stop(): Promise<void>
}

/** Options the launcher owns: a torrc that sets them is refused. */
const RESERVED = ['datadirectory', 'controlport', 'controlportwritetofile', 'cookieauthentication', 'cookieauthfile', '__owningcontrollerprocess', 'runasdaemon', 'socksport', 'pidfile']

/**
 * Renders torrc options, one `Key value` line each (arrays repeat the key). Throws
 * TOR_BAD_CONFIG on names or values that would break the file (newlines, spaces in names).
 */
export function renderTorrc (torrc: Torrc): string {
  const lines: string[] = []
  for (const [key, value] of Object.entries(torrc)) {
    if (value === null || value === undefined) continue
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new TorError('TOR_BAD_CONFIG', `invalid torrc option name ${JSON.stringify(key)}`)
    const values = Array.isArray(value) ? value : [value]
    for (const v of values) {
      const text = typeof v === 'boolean' ? (v ? '1' : '0') : String(v)
      if (/[\r\n\0]/.test(text)) throw new TorError('TOR_BAD_CONFIG', `torrc value for ${key} contains a line break`)
      lines.push(text === '' ? `${key} ""` : `${key} ${text}`)
    }
  }
  return lines.join('\n') + '\n'
}

/** Parses tor's `status/bootstrap-phase` / STATUS_CLIENT BOOTSTRAP text. */
export function parseBootstrapPhase (text: string): BootstrapProgress | undefined {
  const m = /PROGRESS=(\d+)/.exec(text)
  if (m === null) return undefined
  const tag = /TAG=(\S+)/.exec(text)?.[1] ?? ''
  const summary = /SUMMARY="((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? ''
  return { percent: Number(m[1]), tag, summary }
}

/**
 * Starts tor and resolves once its control port is authenticated (and, by default, bootstrap
 * has reached 100 %).
 *
 * @example
 * const tor = await launchTor({ torrc: net.clientTorrc(), onProgress: p => console.log(p.percent), signal })
 * try { ... tor.control, tor.socksPort ... } finally { await tor.stop() }
 */
export async function launchTor (init: LaunchTorInit = {}): Promise<TorProcess> {
  const clock = init.clock ?? systemClock
  const torPath = init.torPath ?? 'tor'
  const detached = init.detached === true
  if (init.signal?.aborted === true) throw abortReason(init.signal)
  const userTorrc = init.torrc ?? {}
  for (const key of Object.keys(userTorrc)) {
    if (RESERVED.includes(key.toLowerCase())) throw new TorError('TOR_BAD_CONFIG', `torrc option ${key} is set by the launcher; use LaunchTorInit instead`)
  }

  const createdDir = init.dataDir === undefined
  const dataDir = init.dataDir ?? await mkdtemp(join(tmpdir(), 'oht-tor-'))
  let child: ChildProcess | undefined
  let exited: Promise<number | string | null> | undefined
  let control: TorControl | undefined
  const problems = new ProblemLog()
  const logPath = join(dataDir, 'tor.log')

  const cleanup = async (): Promise<void> => {
    if (control !== undefined) await control.close().catch(() => {})
    if (child !== undefined && exited !== undefined) await killAndWait(child, exited, clock)
    if (createdDir) await rm(dataDir, { recursive: true, force: true }).catch(() => {})
  }

  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await chmod(dataDir, 0o700)
    const portFile = join(dataDir, 'control-port')
    const cookiePath = join(dataDir, 'control_auth_cookie')
    await rm(portFile, { force: true })
    const socks = init.socksPort ?? 'auto'
    const torrc: Torrc = {
      DataDirectory: dataDir,
      ControlPort: '127.0.0.1:auto',
      ControlPortWriteToFile: portFile,
      ControlPortFileGroupReadable: 0,
      CookieAuthentication: 1,
      CookieAuthFile: cookiePath,
      CookieAuthFileGroupReadable: 0,
      SocksPort: socks === false ? 0 : `127.0.0.1:${socks} ExtendedErrors`,
      __OwningControllerProcess: detached ? undefined : process.pid,
      ...userTorrc
    }
    const torrcPath = join(dataDir, 'torrc')
    await writeFile(torrcPath, renderTorrc(torrc), { mode: 0o600 })
    await chmod(torrcPath, 0o600)

    const started = await spawnTor(torPath, torrcPath, detached, logPath, problems)
    child = started.child
    exited = started.exited
    const pid = child.pid as number
    log(`started tor pid ${pid} in ${dataDir}`)

    const scoped = scopedSignal(clock, init.startTimeoutMs ?? 30_000, init.signal)
    let controlPort: number
    try {
      controlPort = await waitForPortFile(portFile, exited, scoped.signal, clock)
      control = await connectTorControl({ host: '127.0.0.1', port: controlPort }, { clock, ...init.control, signal: scoped.signal })
      await control.authenticate({ cookiePath, signal: scoped.signal })
      if (!detached) await control.takeOwnership({ signal: scoped.signal })
    } catch (err) {
      throw await startError(err, scoped.signal, exited, problems, detached, logPath, 'start')
    } finally {
      scoped.clear()
    }

    let socksPort: number | undefined
    if (socks !== false) socksPort = await readSocksPort(control, init.signal)

    if (init.waitForBootstrap !== false) {
      const boot = scopedSignal(clock, init.bootstrapTimeoutMs ?? 120_000, init.signal)
      try {
        const stallMs = init.bootstrapStallMs ?? 30_000
        const stall = stallMs > 0
          ? {
              ms: stallMs,
              error: async (phase: string, stalledMs: number): Promise<TorError> => new TorError('TOR_BOOTSTRAP_STALLED',
                describeBootstrapStall({ stalledMs, phase, torrc: userTorrc, problems: await problemsOf(problems, detached, logPath) }))
            }
          : undefined
        await waitForBootstrap(control, exited, clock, boot.signal, init.onProgress, stall)
      } catch (err) {
        throw await startError(err, boot.signal, exited, problems, detached, logPath, 'bootstrap')
      } finally {
        boot.clear()
      }
    }

    const ownedChild = child
    const ownedExited = exited
    const ownedControl = control
    let stopping: Promise<void> | undefined
    return {
      pid,
      control,
      controlPort,
      socksPort,
      dataDir,
      torrcPath,
      cookiePath,
      exited,
      problems: () => problems.lines(),
      stop: async () => {
        stopping ??= (async () => {
          await killAndWait(ownedChild, ownedExited, clock)
          await ownedControl.close().catch(() => {})
          if (createdDir) await rm(dataDir, { recursive: true, force: true })
        })()
        await stopping
      }
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

interface Spawned { child: ChildProcess, exited: Promise<number | string | null> }

async function spawnTor (torPath: string, torrcPath: string, detached: boolean, logPath: string, problems: ProblemLog): Promise<Spawned> {
  const args = ['-f', torrcPath, '--defaults-torrc', '/dev/null']
  let child: ChildProcess
  let spawned: Promise<void>
  if (detached) {
    const fh = await open(logPath, 'a', 0o600)
    try {
      child = spawn(torPath, args, { stdio: ['ignore', fh.fd, fh.fd], detached: true })
      spawned = spawnResult(child, torPath)
      // Handled below, after the file handle is closed; keeps it from counting as unhandled.
      spawned.catch(() => {})
    } finally {
      await fh.close()
    }
  } else {
    child = spawn(torPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    spawned = spawnResult(child, torPath)
    const onData = lineSplitter((line) => { problems.add(line) })
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
  }
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? signal) })
    child.once('error', () => { resolve(null) })
  })
  await spawned
  if (detached) child.unref()
  return { child, exited }
}

/** Must be called right after spawn(): 'spawn' and 'error' fire on the next tick. */
async function spawnResult (child: ChildProcess, torPath: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => { resolve() })
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new TorError('TOR_NOT_INSTALLED', `the tor binary "${torPath}" was not found: install it (Debian/Ubuntu: apt-get install -y tor) or pass torPath`, { cause: err }))
      } else {
        reject(new TorError('TOR_LAUNCH_FAILED', `could not start ${torPath}: ${err.message}`, { cause: err }))
      }
    })
  })
}

/** Keeps tor's recent [warn]/[err] lines (never more than MAX_PROBLEM_LINES). */
class ProblemLog {
  private readonly buf: string[] = []
  add (line: string): void {
    if (!/\[(warn|err)\]/.test(line)) return
    // Running as root is expected in containers; it hides the warning that matters.
    if (/running Tor as root|Tor as root/i.test(line)) return
    this.buf.push(line.slice(0, MAX_LOG_LINE).replace(/^.*?\[(warn|err)\] /, '[$1] '))
    if (this.buf.length > MAX_PROBLEM_LINES) this.buf.shift()
  }

  lines (): string[] { return [...this.buf] }
}

function lineSplitter (onLine: (line: string) => void): (chunk: Buffer) => void {
  let rest = ''
  return (chunk) => {
    rest += chunk.toString('utf8')
    if (rest.length > 64 * 1024) rest = rest.slice(-64 * 1024)
    const parts = rest.split('\n')
    rest = parts.pop() ?? ''
    for (const p of parts) if (p.trim() !== '') onLine(p.trimEnd())
  }
}

async function problemsOf (problems: ProblemLog, detached: boolean, logPath: string): Promise<string[]> {
  if (!detached) return problems.lines()
  const text = await readFile(logPath, 'utf8').catch(() => '')
  const p = new ProblemLog()
  for (const line of text.split('\n').slice(-500)) p.add(line)
  return p.lines()
}

/**
 * tor's last few warnings and its last error: the cause is usually a warning a line or two
 * before the generic "[err] Reading config failed" (e.g. "Could not bind to 127.0.0.1:9050").
 */
function summarize (lines: string[]): string {
  if (lines.length === 0) return 'tor logged no warning'
  const errs = lines.filter(l => l.startsWith('[err]'))
  const warns = lines.filter(l => l.startsWith('[warn]')).slice(-3)
  return [...warns, ...errs.slice(-1)].join(' / ')
}

async function startError (err: unknown, signal: AbortSignal, exited: Promise<number | string | null>, problems: ProblemLog, detached: boolean, logPath: string, phase: 'start' | 'bootstrap'): Promise<Error> {
  const exitCode = await Promise.race([exited, new Promise<'running'>((resolve) => { setImmediate(() => { resolve('running') }) })])
  const lines = await problemsOf(problems, detached, logPath)
  const tail = `tor said: ${summarize(lines)}`
  if (exitCode !== 'running') {
    return new TorError(phase === 'start' ? 'TOR_LAUNCH_FAILED' : 'TOR_BOOTSTRAP_FAILED', `tor exited (${String(exitCode)}) during ${phase === 'start' ? 'start-up' : 'bootstrap'}; ${tail} (fix the torrc option or free the port it names)`, { cause: err })
  }
  if (signal.aborted) {
    const reason = abortReason(signal)
    if (reason instanceof TimeoutError) {
      return phase === 'start'
        ? new TorError('TOR_LAUNCH_FAILED', `tor did not open its control port in time; ${tail}`, { cause: reason })
        : new TorError('TOR_BOOTSTRAP_FAILED', `tor did not finish bootstrapping in time (${errorMessage(err)}); ${tail}. Check that its DirAuthority/bridge settings point at a reachable network.`, { cause: reason })
    }
    return reason instanceof AbortError ? reason : new AbortError(undefined, { cause: reason })
  }
  if (err instanceof TorError) return err
  return new TorError(phase === 'start' ? 'TOR_LAUNCH_FAILED' : 'TOR_BOOTSTRAP_FAILED', `tor ${phase} failed: ${errorMessage(err)}; ${tail}`, { cause: err })
}

async function waitForPortFile (portFile: string, exited: Promise<unknown>, signal: AbortSignal, clock: Clock): Promise<number> {
  let done = false
  void exited.then(() => { done = true })
  for (;;) {
    if (signal.aborted) throw abortReason(signal)
    const text = await readFile(portFile, 'utf8').catch(() => '')
    const m = /PORT=127\.0\.0\.1:(\d+)/.exec(text)
    if (m !== null) return Number(m[1])
    if (done) throw new TorError('TOR_LAUNCH_FAILED', 'tor exited before opening its control port')
    await clock.sleep(POLL_MS, { signal }).catch(() => {})
  }
}

async function readSocksPort (control: TorControl, signal?: AbortSignal): Promise<number | undefined> {
  const text = await control.getInfoOne('net/listeners/socks', { signal })
  const m = /127\.0\.0\.1:(\d+)/.exec(text)
  return m === null ? undefined : Number(m[1])
}

interface StallCheck {
  ms: number
  error: (phase: string, stalledMs: number) => Promise<Error>
}

async function waitForBootstrap (control: TorControl, exited: Promise<unknown>, clock: Clock, signal: AbortSignal, onProgress?: (p: BootstrapProgress) => void, stall?: StallCheck): Promise<void> {
  let last = -1
  let lastMoved = clock.monotonic()
  let done = false
  void exited.then(() => { done = true })
  for (;;) {
    if (done) throw new TorError('TOR_BOOTSTRAP_FAILED', 'tor exited during bootstrap')
    const text = await control.getInfoOne('status/bootstrap-phase', { signal })
    const phase = parseBootstrapPhase(text)
    if (phase !== undefined && phase.percent !== last) {
      last = phase.percent
      lastMoved = clock.monotonic()
      log(`bootstrap ${phase.percent}% ${phase.tag}`)
      onProgress?.(phase)
    }
    if (phase?.percent === 100) return
    const still = clock.monotonic() - lastMoved
    if (stall !== undefined && still >= stall.ms) throw await stall.error(text, still)
    await clock.sleep(BOOTSTRAP_POLL_MS, { signal })
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. */
export async function killAndWait (child: ChildProcess, exited: Promise<unknown>, clock: Clock, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = clock.setTimeout(() => { child.kill('SIGKILL') }, graceMs)
  try {
    await exited
  } finally {
    timer.cancel()
  }
}

/** True while a process with this pid exists. */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Stops a tor we started earlier and no longer hold as a child (e.g. `testnet down`), by PID,
 * only if its command line still names `torrcPath` (guards against PID reuse).
 */
export async function stopTorByPid (pid: number, torrcPath: string, clock: Clock = systemClock, graceMs = STOP_GRACE_MS): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.split('\0').includes(torrcPath)) return false
  try { process.kill(pid, 'SIGTERM') } catch { return false }
  const deadline = clock.monotonic() + graceMs
  while (pidAlive(pid)) {
    if (clock.monotonic() > deadline) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
    await clock.sleep(POLL_MS)
  }
  return true
}
