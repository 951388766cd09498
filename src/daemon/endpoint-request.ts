/**
 * What `POST /v1/endpoints` accepts, validated before ONI's endpoint manager sees it:
 *
 *   { name, port, target }                                  one route (the short form)
 *   { name, routes: [{ virtualPort, target }, …], key? }    several routes
 *   key: { type: "new" }                      a key generated and kept in the state dir (default)
 *      | { type: "derived", path: "a.b.c" }   a key-tree child of the node's identity: the same
 *                                             address whenever the path is the same
 *      | { type: "file", path: "/abs/key" }   an existing key file (copied into the state dir)
 *
 * Targets are local services only: "127.0.0.1:<port>" (any 127/8 address), "localhost:<port>",
 * "[::1]:<port>" or "unix:/path": an API call must not turn the router into a proxy to hosts
 * on its networks.
 */
import { DaemonError } from './errors.ts'

export type EndpointKeyRequest = { type: 'new' } | { type: 'derived', path: string } | { type: 'file', path: string }

export interface EndpointRequest {
  name: string
  routes: Array<{ virtualPort: number, target: string }>
  /** @default { type: 'new' } */
  key?: EndpointKeyRequest
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const KEY_PATH = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63}){0,15}$/
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):(\d{1,5})$/
const MAX_ROUTES = 16

const bad = (message: string): DaemonError => new DaemonError('DAEMON_BAD_REQUEST', message)

function port (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw bad(`${what} ${JSON.stringify(v)} is not a port number (1-65535)`)
  return v
}

function target (v: unknown): string {
  if (typeof v !== 'string') throw bad('an endpoint target is a string such as "127.0.0.1:8080" or "unix:/run/app.sock"')
  const m = LOOPBACK.exec(v)
  const unix = v.startsWith('unix:/') && v.length <= 112 && !/[\s"\0]/.test(v)
  if (!unix && (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
    throw bad(`endpoint target ${JSON.stringify(v.slice(0, 100))} must be a loopback "127.0.0.1:<port>" or "unix:/path"`)
  }
  return v.replace(/^localhost:/, '127.0.0.1:')
}

export function parseEndpointRequest (b: Record<string, unknown>): EndpointRequest {
  for (const k of Object.keys(b)) if (!['name', 'port', 'target', 'routes', 'key'].includes(k)) throw bad(`unknown field ${k}`)
  if (typeof b.name !== 'string' || !NAME.test(b.name)) throw bad(`endpoint name ${JSON.stringify(b.name)} must be 1-63 characters of a-z, 0-9, ".", "-" or "_", starting with a letter or digit`)
  let routes: EndpointRequest['routes']
  if (b.routes !== undefined) {
    if (b.port !== undefined || b.target !== undefined) throw bad('give either port and target, or routes, not both')
    if (!Array.isArray(b.routes) || b.routes.length === 0 || b.routes.length > MAX_ROUTES) throw bad(`routes must be a list of 1-${MAX_ROUTES} { virtualPort, target }`)
    routes = b.routes.map((r: unknown) => {
      const o = r as { virtualPort?: unknown, target?: unknown } | null
      if (o === null || typeof o !== 'object') throw bad('a route is { virtualPort, target }')
      return { virtualPort: port(o.virtualPort, 'virtual port'), target: target(o.target) }
    })
    if (new Set(routes.map(r => r.virtualPort)).size !== routes.length) throw bad('a virtual port is routed twice')
  } else {
    if (b.port === undefined || b.target === undefined) throw bad('an endpoint needs name, port (number) and target ("127.0.0.1:<port>"), or name and routes')
    routes = [{ virtualPort: port(b.port, 'endpoint port'), target: target(b.target) }]
  }
  const out: EndpointRequest = { name: b.name, routes }
  if (b.key !== undefined) {
    const k = b.key as { type?: unknown, path?: unknown } | null
    if (k === null || typeof k !== 'object') throw bad('key must be { type: "new" | "derived" | "file", path? }')
    if (k.type === 'new') out.key = { type: 'new' }
    else if (k.type === 'derived') {
      if (typeof k.path !== 'string' || !KEY_PATH.test(k.path.toLowerCase())) throw bad(`key path ${JSON.stringify(k.path)} must be dotted labels of a-z, 0-9, "_" or "-", such as "universe.router.multiverse"`)
      out.key = { type: 'derived', path: k.path.toLowerCase() }
    } else if (k.type === 'file') {
      if (typeof k.path !== 'string' || !k.path.startsWith('/') || k.path.length > 4096 || k.path.includes('\0')) throw bad('a key file path must be absolute')
      out.key = { type: 'file', path: k.path }
    } else throw bad('key type must be "new", "derived" or "file"')
  }
  return out
}
