/**
 * Runs `oht daemon` and `oht` CLI commands as child processes, the way a person at a shell
 * would, for the demo and the benchmarks. Each daemon gets its own state dir; everything it
 * starts, stop() ends.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

export const ROOT = new URL('../..', import.meta.url).pathname
export const BIN = join(ROOT, 'bin', 'oht.js')

export interface CliResult { code: number | null, stdout: string, stdoutBytes: Buffer, stderr: string, ms: number }

/** The environment for a daemon/CLI pair: only the given state dir, no user config. */
export function ohtEnv (base: string, stateDir: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_') && !k.startsWith('XDG_')) env[k] = v
  return { ...env, HOME: base, XDG_CONFIG_HOME: join(base, 'config'), XDG_DATA_HOME: join(base, 'data'), OHT_STATE_DIR: stateDir }
}

/** Runs `oht <args>` and collects its output. */
export function oht (args: string[], env: Record<string, string>, options: { stdin?: Uint8Array, timeoutMs?: number } = {}): Promise<CliResult> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`oht ${args[0]} took longer than ${options.timeoutMs ?? 120_000} ms`)) }, options.timeoutMs ?? 120_000)
    child.on('error', (e) => { clearTimeout(timer); reject(e) })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out).toString(), stdoutBytes: Buffer.concat(out), stderr: Buffer.concat(err).toString(), ms: performance.now() - start })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(options.stdin)
  })
}

export interface DaemonHandle {
  readonly name: string
  readonly env: Record<string, string>
  readonly child: ChildProcess
  readonly logs: string[]
  readonly exited: Promise<number | null>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>
}

/**
 * Starts `oht daemon <args>` and resolves once it logs "ready" (rejects with its log if it
 * exits first or takes longer than `timeoutMs`). `onLog` sees each JSON log line.
 */
export async function startDaemon (name: string, env: Record<string, string>, args: string[], options: { timeoutMs?: number, onLog?: (entry: Record<string, unknown>) => void, prefix?: string[] } = {}): Promise<DaemonHandle> {
  // `prefix` runs the daemon under a command that execs it (e.g. setpriv dropping a capability).
  const argv = [...(options.prefix ?? []), process.execPath, BIN, 'daemon', ...args]
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'], detached: false })
  const logs: string[] = []
  const exited = new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code) }) })
  let buf = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${name}: not ready after ${options.timeoutMs ?? 120_000} ms\n${logs.slice(-20).join('\n')}`)) }, options.timeoutMs ?? 120_000)
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        logs.push(line)
        let entry: Record<string, unknown> | undefined
        try { entry = JSON.parse(line) as Record<string, unknown> } catch {}
        if (entry !== undefined) options.onLog?.(entry)
        if (entry?.msg === 'ready') { clearTimeout(timer); resolve() }
      }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`${name}: daemon exited (${code}) before it was ready\n${logs.slice(-20).join('\n')}`)) })
  })
  const handle: DaemonHandle = {
    name,
    env,
    child,
    logs,
    exited,
    async stop (graceMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
      try { return await exited } finally { clearTimeout(timer) }
    }
  }
  try {
    await ready
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    throw err
  }
  return handle
}
