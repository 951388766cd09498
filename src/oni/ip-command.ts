/**
 * Configures network interfaces with iproute2 (`ip`). Arguments go to execFile as an array,
 * never through a shell.
 */
import { execFile } from 'node:child_process'
import type { AbortOptions } from '../core/index.ts'
import { OniError } from './errors.ts'

const IP_OUTPUT_LIMIT = 1024 * 1024

/** Runs `ip <args>` and resolves with its stdout; ONI_COMMAND_FAILED with ip's stderr otherwise. */
export async function runIp (args: string[], options: AbortOptions = {}): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    execFile('ip', args, { signal: options.signal, maxBuffer: IP_OUTPUT_LIMIT, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err != null) {
        const detail = (stderr ?? '').trim() || err.message
        reject(new OniError('ONI_COMMAND_FAILED', `ip ${args.join(' ')} failed: ${detail}`, { cause: err }))
        return
      }
      resolve(stdout)
    })
  })
}

export interface InterfaceConfig extends AbortOptions {
  /** Interface name (as created, before any move). */
  name: string
  /** Move the interface into this network namespace first. @default undefined (stay) */
  netns?: string
  /** Addresses in CIDR form, e.g. `fd6f:…/128`. Added with `nodad`: a TUN link has no neighbours. */
  addresses?: string[]
  /** Prefixes routed onto the interface, e.g. `fd6f::/16`. */
  routes?: string[]
  /** @default undefined (leave the kernel's) */
  mtu?: number
}

/** Moves (optionally), sets MTU, brings up, adds addresses and routes. */
export async function configureInterface (cfg: InterfaceConfig): Promise<void> {
  const opts = { signal: cfg.signal }
  const ns = cfg.netns !== undefined ? ['-n', cfg.netns] : []
  if (cfg.netns !== undefined) await runIp(['link', 'set', 'dev', cfg.name, 'netns', cfg.netns], opts)
  if (cfg.mtu !== undefined) await runIp([...ns, 'link', 'set', 'dev', cfg.name, 'mtu', String(cfg.mtu)], opts)
  await runIp([...ns, 'link', 'set', 'dev', cfg.name, 'up'], opts)
  for (const a of cfg.addresses ?? []) await runIp([...ns, '-6', 'addr', 'add', a, 'dev', cfg.name, 'nodad'], opts)
  for (const r of cfg.routes ?? []) await runIp([...ns, '-6', 'route', 'replace', r, 'dev', cfg.name], opts)
}
