/**
 * A stand-in for tor in unit tests of the onion3 transport: a SOCKS5 server on 127.0.0.1 that
 * connects `<onion>.onion:<port>` to whatever a publisher registered for that onion, plus the
 * matching OnionPublisher. It speaks the same SOCKS5 subset tor does (no auth or
 * username/password, CONNECT by hostname) and answers unknown onions with tor's 0xF0.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { OnionPublisher } from '../../src/net/onion-transport.ts'

export interface FakeTor {
  socksPort: number
  /** A publisher that registers services under the onion address of `onion`. */
  publisher(onion: string): OnionPublisher
  /** Every CONNECT seen: target host:port and SOCKS username. */
  readonly connects: Array<{ host: string, port: number, username?: string }>
  /** Published services: "<onion>:<virtualPort>" → local target port. */
  readonly services: Map<string, number>
  stop(): Promise<void>
}

export async function startFakeTor (): Promise<FakeTor> {
  const services = new Map<string, number>()
  const connects: FakeTor['connects'] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => { sockets.delete(socket) })
    socket.on('error', () => {})
    void serve(socket)
  })
  async function serve (socket: Socket): Promise<void> {
    let buf = Buffer.alloc(0)
    const waiters: Array<() => void> = []
    socket.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); waiters.splice(0).forEach(w => { w() }) })
    const read = async (n: number): Promise<Buffer> => {
      while (buf.length < n) {
        if (socket.destroyed) throw new Error('closed')
        await new Promise<void>((resolve) => { waiters.push(resolve); socket.once('close', resolve) })
      }
      const out = buf.subarray(0, n); buf = buf.subarray(n); return out
    }
    try {
      const [, nmethods] = await read(2)
      const methods = [...await read(nmethods)]
      const method = methods.includes(2) ? 2 : 0
      socket.write(Buffer.from([5, method]))
      let username: string | undefined
      if (method === 2) {
        const [, ulen] = await read(2)
        username = (await read(ulen)).toString()
        const [plen] = await read(1)
        await read(plen)
        socket.write(Buffer.from([1, 0]))
      }
      const head = await read(4)
      if (head[3] !== 3) { socket.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0])); return }
      const [len] = await read(1)
      const host = (await read(len)).toString()
      const port = (await read(2)).readUInt16BE(0)
      connects.push({ host, port, username })
      const target = services.get(`${host.replace(/\.onion$/, '')}:${port}`)
      if (target === undefined) { socket.end(Buffer.from([5, 0xf0, 0, 1, 0, 0, 0, 0, 0, 0])); return }
      const upstream = connect(target, '127.0.0.1')
      upstream.on('error', () => { socket.destroy() })
      upstream.once('connect', () => {
        socket.removeAllListeners('data')
        socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]))
        if (buf.length > 0) upstream.write(buf)
        socket.pipe(upstream)
        upstream.pipe(socket)
        socket.on('close', () => { upstream.destroy() })
        upstream.on('close', () => { socket.destroy() })
      })
    } catch {
      socket.destroy()
    }
  }
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  return {
    socksPort: addr.port,
    services,
    connects,
    publisher (onion: string): OnionPublisher {
      return async ({ virtualPort, targetPort }) => {
        const key = `${onion}:${virtualPort}`
        services.set(key, targetPort)
        return { address: onion, remove: async () => { services.delete(key) } }
      }
    },
    async stop () {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
