/**
 * Network namespaces for ONI tests and benchmarks: each has a unique name per test run, loopback up, and is
 * deleted by `delete()` (also killing every process the test started inside it).
 *
 * @example
 * const ns = await createNetns('a')
 * try { await ns.exec('ping', ['-6', '-c', '1', 'fd6f::1']) } finally { await ns.delete() }
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'

export interface ExecResult { code: number | null, stdout: string, stderr: string }

export interface Netns {
  readonly name: string
  /** Runs `cmd args` inside the namespace; resolves even on a non-zero exit. */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number, input?: Uint8Array | string }): Promise<ExecResult>
  /** Starts a long-running process inside the namespace; `delete()` kills it if still alive. */
  spawn(cmd: string, args: string[]): ChildProcess
  delete(): Promise<void>
}

function run (cmd: string, args: string[], timeoutMs = 30_000, input?: Uint8Array | string): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err == null ? 0 : (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null)
      resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() })
    })
    if (input !== undefined) child.stdin?.end(input)
    else child.stdin?.end()
  })
}

/** True when this process may create namespaces and TUN devices (root with iproute2). */
export async function canUseNetns (): Promise<boolean> {
  if (process.getuid?.() !== 0) return false
  const r = await run('ip', ['netns', 'list'])
  return r.code === 0
}

export interface NetnsOptions {
  /** Contents of the namespace's own /etc/resolv.conf (`ip netns exec` bind-mounts /etc/netns/NAME/). */
  resolvConf?: string
}

export async function createNetns (label: string, opts: NetnsOptions = {}): Promise<Netns> {
  const name = `oni-${label}-${process.pid}-${randomBytes(3).toString('hex')}`
  const add = await run('ip', ['netns', 'add', name])
  if (add.code !== 0) throw new Error(`ip netns add ${name} failed: ${add.stderr.trim()}`)
  const children = new Set<ChildProcess>()
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  const etc = `/etc/netns/${name}`
  if (opts.resolvConf !== undefined) {
    await mkdir(etc, { recursive: true })
    await writeFile(`${etc}/resolv.conf`, opts.resolvConf)
  }
  return {
    name,
    exec: async (cmd, args, opts = {}) => await run('ip', ['netns', 'exec', name, cmd, ...args], opts.timeoutMs, opts.input),
    spawn: (cmd, args) => {
      const child = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      children.add(child)
      child.once('exit', () => { children.delete(child) })
      return child
    },
    delete: async () => {
      for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) {
          const exited = new Promise<void>((resolve) => { c.once('exit', () => { resolve() }) })
          c.kill('SIGKILL')
          await exited
        }
      }
      // Anything else still running in the namespace was started by this test: end it by PID.
      const pids = await run('ip', ['netns', 'pids', name])
      for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(p), 'SIGKILL') } catch { /* already gone */ }
      }
      await run('ip', ['netns', 'delete', name])
      if (opts.resolvConf !== undefined) await rm(etc, { recursive: true, force: true })
    }
  }
}
