/**
 * Inbound route forwarder: tor delivers an onion port's streams to a loopback listener here,
 * which connects each to the route's real target (a local or remote `host:port`, or a unix
 * socket) and pipes both ways, counting connections and bytes for the status table. Routes
 * that need no accounting can instead give tor the target directly (`Port=virt,target`).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { AbortOptions } from '../core/index.ts'
import { OniError } from './errors.ts'

export type RouteTarget = { host: string, port: number } | { path: string }

/** Parses `host:port`, `[v6]:port`, a bare port (127.0.0.1) or `unix:/path`. */
export function parseRouteTarget (text: string): RouteTarget {
  const bad = (): OniError => new OniError('ONI_ROUTE', `route target ${JSON.stringify(text.slice(0, 100))} must be host:port, [ipv6]:port, a port, or unix:/absolute/path`)
  if (text.startsWith('unix:')) {
    const path = text.slice(5)
    if (!path.startsWith('/') || path.length > 107 || /[\0\s"]/.test(path)) throw bad()
    return { path }
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text)
  if (m == null) throw bad()
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw bad()
  return { host: m[1] !== undefined && m[1] !== '' ? m[1] : (m[2] !== undefined && m[2] !== '' ? m[2] : '127.0.0.1'), port }
}

export function formatRouteTarget (t: RouteTarget): string {
  if ('path' in t) return `unix:${t.path}`
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`
}

export interface ForwarderStats { open: number, total: number, failed: number, bytesIn: number, bytesOut: number }

export interface Forwarder {
  /** The loopback port tor delivers to. */
  readonly port: number
  readonly target: RouteTarget
  readonly stats: Readonly<ForwarderStats>
  close(): Promise<void>
}

export interface ForwarderInit extends AbortOptions {
  target: RouteTarget
  /** Listen on this loopback port (to keep a detached service's target valid). @default 0 */
  port?: number
  /** Deadline for connecting to the target. @default 10_000 */
  connectTimeoutMs?: number
}

export async function startForwarder (init: ForwarderInit): Promise<Forwarder> {
  const stats: ForwarderStats = { open: 0, total: 0, failed: 0, bytesIn: 0, bytesOut: 0 }
  const sockets = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (inbound) => {
    stats.total++
    sockets.add(inbound)
    inbound.on('error', () => { inbound.destroy() })
    const outbound = 'path' in init.target
      ? createConnection({ path: init.target.path, allowHalfOpen: true })
      : createConnection({ host: init.target.host, port: init.target.port, allowHalfOpen: true, noDelay: true, timeout: init.connectTimeoutMs ?? 10_000 })
    sockets.add(outbound)
    let connected = false
    let closed = 0
    const onClose = (hadError: boolean): void => {
      if (hadError) { inbound.destroy(); outbound.destroy() }
      if (++closed === 2 && connected) stats.open--
    }
    inbound.once('close', (e) => { sockets.delete(inbound); onClose(e) })
    outbound.once('close', (e) => { sockets.delete(outbound); onClose(e) })
    outbound.on('timeout', () => { if (!connected) outbound.destroy() })
    outbound.on('error', () => {
      if (!connected) stats.failed++
      outbound.destroy()
      inbound.destroy()
    })
    outbound.once('connect', () => {
      connected = true
      outbound.setTimeout(0)
      stats.open++
      inbound.setNoDelay(true)
      inbound.on('data', (d: Buffer) => { stats.bytesIn += d.byteLength })
      outbound.on('data', (d: Buffer) => { stats.bytesOut += d.byteLength })
      inbound.pipe(outbound)
      outbound.pipe(inbound)
      inbound.resume()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => { reject(new OniError('ONI_ROUTE', `cannot listen on 127.0.0.1:${init.port ?? 0} for route to ${formatRouteTarget(init.target)}: ${err.message}`, { cause: err })) })
    server.listen({ host: '127.0.0.1', port: init.port ?? 0, signal: init.signal }, () => { resolve() })
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    port,
    target: init.target,
    stats,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
