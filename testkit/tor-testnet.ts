/**
 * Shared by integration tests and benchmarks that need real tor: one private Tor network per
 * test file or benchmark run, and loopback servers to publish behind onion services.
 *
 * @example
 * import { after, before, describe, it } from 'node:test'
 * import { testnet, echoServer } from '../helpers/tor-testnet.ts'   // tests (a re-export of this file)
 * describe('my feature over tor', () => {
 *   let net: Testnet
 *   before(async () => { net = await testnet({ clients: 2 }) })
 *   after(async () => { await net?.stop() })
 *   it('...', async () => { net.clients[0].socksPort ... })
 * })
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { startTestnet } from '../src/tor/testnet/index.ts'
import type { Testnet, TestnetInit } from '../src/tor/testnet/index.ts'

export type { Testnet, TestnetClient } from '../src/tor/testnet/index.ts'

/** Starts a private Tor network (3 authorities, 2 relays, `clients` clients, default 2). */
export async function testnet (init: TestnetInit & { signal?: AbortSignal } = {}): Promise<Testnet> {
  const net = await startTestnet({
    ...init,
    onProgress: process.env.OHT_TESTNET_VERBOSE === '1' ? (e) => { process.stderr.write(`testnet: ${e.message} (${e.elapsedMs} ms)\n`) } : init.onProgress
  })
  return net
}

export interface EchoServer {
  port: number
  /** `127.0.0.1:<port>`, the form ADD_ONION's Port target takes. */
  target: string
  /** Sockets accepted so far. */
  readonly accepted: number
  close(): Promise<void>
}

/** A TCP server on 127.0.0.1 that sends `banner` (if any) and then echoes every byte. */
export async function echoServer (banner?: string): Promise<EchoServer> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server: Server = createServer((s) => {
    accepted++
    sockets.add(s)
    s.setNoDelay(true)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    if (banner !== undefined) s.write(banner)
    s.pipe(s)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('echo server has no port')
  return {
    port: addr.port,
    target: `127.0.0.1:${addr.port}`,
    get accepted () { return accepted },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

/** Resolves once `n` bytes arrived (with any extra that came along), or the socket ended. */
export async function readBytes (socket: Socket, n: number): Promise<Buffer> {
  return await new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const done = (): void => {
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onError)
      socket.pause()
    }
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= n) { done(); resolve(buf) }
    }
    const onEnd = (): void => { done(); resolve(buf) }
    const onError = (err: Error): void => { done(); reject(err) }
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', onError)
    // A 'data' listener does not restart a socket an earlier read paused.
    socket.resume()
  })
}
