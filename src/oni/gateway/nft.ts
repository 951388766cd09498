/**
 * Runs `nft` (arguments as an array, never through a shell; rulesets on stdin) and reads the
 * gateway's counters back from `nft -j`. A missing binary and missing CAP_NET_ADMIN are their
 * own error codes, so the daemon can say exactly what the machine lacks.
 */
import { execFile } from 'node:child_process'
import type { AbortOptions } from '../../core/index.ts'
import { OniError } from '../errors.ts'

/** Runs `nft <args>` with `input` on stdin; resolves with stdout. */
export type NftRunner = (args: string[], input: string | undefined, options?: AbortOptions) => Promise<string>

/** Bounded: a table with 2 × 65,536 counted elements stays well below this. */
const NFT_OUTPUT_LIMIT = 32 * 1024 * 1024
const STDERR_SHOWN = 600

export function createNftRunner (nftPath = 'nft'): NftRunner {
  return async (args, input, options = {}) => await new Promise<string>((resolve, reject) => {
    const child = execFile(nftPath, args, { signal: options.signal, maxBuffer: NFT_OUTPUT_LIMIT, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err == null) { resolve(stdout); return }
      reject(classifyNftError(nftPath, args, err as NodeJS.ErrnoException, String(stderr ?? '')))
    })
    child.stdin?.on('error', () => {})
    child.stdin?.end(input)
  })
}

/** Maps a failed nft run to ONI_GATEWAY_NFT_MISSING, ONI_GATEWAY_PERMISSION or ONI_GATEWAY_RULES. */
export function classifyNftError (nftPath: string, args: string[], err: NodeJS.ErrnoException, stderr: string): OniError {
  if (err.code === 'ENOENT' || err.code === 'EACCES') {
    return new OniError('ONI_GATEWAY_NFT_MISSING', `the gateway needs nftables, and "${nftPath}" ${err.code === 'ENOENT' ? 'was not found' : 'cannot be run'}: install it (Debian: apt-get install -y nftables) or set gateway.nft_path`, { cause: err })
  }
  const detail = stderr.trim().replace(/\s+/g, ' ').slice(0, STDERR_SHOWN)
  if (/Operation not permitted|Permission denied|EPERM/i.test(stderr)) {
    return new OniError('ONI_GATEWAY_PERMISSION', 'applying firewall rules needs CAP_NET_ADMIN: run the daemon as root or give it the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN)', { cause: err })
  }
  return new OniError('ONI_GATEWAY_RULES', `nft ${args.join(' ')} failed: ${detail !== '' ? detail : err.message}`, { cause: err })
}

/** Applies a ruleset in one transaction (`nft -f -`): all of it or none of it. */
export async function applyRuleset (run: NftRunner, text: string, options: AbortOptions = {}): Promise<void> {
  await run(['-f', '-'], text, options)
}

export interface PacketCount { packets: number, bytes: number }

export interface FirewallCounters {
  /** False when the table is not in the kernel. */
  present: boolean
  droppedInput: PacketCount
  droppedForward: PacketCount
  /** Dropped packets by inside source address. */
  byAddress: Map<string, PacketCount>
}

function count (v: unknown): PacketCount | undefined {
  if (v === null || typeof v !== 'object') return undefined
  const o = v as Record<string, unknown>
  const packets = typeof o.packets === 'number' && Number.isFinite(o.packets) ? o.packets : 0
  const bytes = typeof o.bytes === 'number' && Number.isFinite(o.bytes) ? o.bytes : 0
  return { packets, bytes }
}

/**
 * Parses `nft -j list table inet <table>`: the named counters dropped_input / dropped_forward
 * and the elements of the vm_drops4 / vm_drops6 sets with their counters. Anything it does not
 * recognise is ignored (nft's JSON grows fields between versions).
 */
export function parseCounters (json: string): FirewallCounters {
  const out: FirewallCounters = { present: true, droppedInput: { packets: 0, bytes: 0 }, droppedForward: { packets: 0, bytes: 0 }, byAddress: new Map() }
  let doc: unknown
  try {
    doc = JSON.parse(json)
  } catch (err) {
    throw new OniError('ONI_GATEWAY_RULES', 'nft -j printed something that is not JSON', { cause: err })
  }
  const items = (doc as { nftables?: unknown })?.nftables
  if (!Array.isArray(items)) throw new OniError('ONI_GATEWAY_RULES', 'nft -j output has no "nftables" list')
  for (const item of items) {
    if (item === null || typeof item !== 'object') continue
    const counter = (item as { counter?: Record<string, unknown> }).counter
    if (counter !== undefined && counter !== null) {
      const c = count(counter)
      if (c !== undefined && counter.name === 'dropped_input') out.droppedInput = c
      if (c !== undefined && counter.name === 'dropped_forward') out.droppedForward = c
      continue
    }
    const s = (item as { set?: Record<string, unknown> }).set
    if (s === undefined || s === null || (s.name !== 'vm_drops4' && s.name !== 'vm_drops6') || !Array.isArray(s.elem)) continue
    for (const e of s.elem as unknown[]) {
      const elem = (e as { elem?: Record<string, unknown> } | null)?.elem
      if (elem === undefined || elem === null || typeof elem.val !== 'string') continue
      const c = count(elem.counter)
      if (c !== undefined) out.byAddress.set(elem.val, c)
    }
  }
  return out
}

/** The gateway table's counters; `present: false` when the table is not loaded. */
export async function readCounters (run: NftRunner, table: string, options: AbortOptions = {}): Promise<FirewallCounters> {
  try {
    return parseCounters(await run(['-j', 'list', 'table', 'inet', table], undefined, options))
  } catch (err) {
    if (err instanceof OniError && err.code === 'ONI_GATEWAY_RULES' && /No such file or directory/i.test(err.message)) {
      return { present: false, droppedInput: { packets: 0, bytes: 0 }, droppedForward: { packets: 0, bytes: 0 }, byAddress: new Map() }
    }
    throw err
  }
}
