/**
 * Free TCP ports on 127.0.0.1 for options tor cannot take as `auto` (an authority's ORPort and
 * DirPort go into every node's DirAuthority line before any tor runs). Each port is held open
 * until the whole batch is allocated, so one batch never repeats a port; the short window
 * between closing and tor's bind is a race other processes could win, which surfaces as a
 * TOR_LAUNCH_FAILED naming the busy port.
 */
import { createServer } from 'node:net'
import type { Server } from 'node:net'

export async function allocatePorts (count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = []
  try {
    const ports: number[] = []
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      ports.push(await new Promise<number>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, host, () => {
          const addr = server.address()
          if (addr === null || typeof addr === 'string') reject(new Error('no port assigned'))
          else resolve(addr.port)
        })
      }))
    }
    return ports
  } finally {
    await Promise.all(servers.map(async s => { await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }
}
