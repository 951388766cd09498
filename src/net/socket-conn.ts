/**
 * A libp2p MultiaddrConnection over a node:net Socket. The TCP transport has one but does not
 * export it; the onion3 transport needs its own because its sockets come from tor's SOCKS port
 * (outbound) or from the local target of an onion service (inbound), and the remote address
 * it reports must be the /onion3 one, never the loopback socket address.
 */
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Logger, AbortOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Socket } from 'node:net'
import type { Uint8ArrayList } from 'uint8arraylist'
import { abortReason } from '../core/index.ts'

export interface SocketConnInit {
  socket: Socket
  remoteAddr: Multiaddr
  direction: 'inbound' | 'outbound'
  log: Logger
}

class SocketMultiaddrConnection extends AbstractMultiaddrConnection {
  private readonly socket: Socket

  constructor (init: SocketConnInit) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: init.log })
    const socket = this.socket = init.socket
    socket.setNoDelay(true)
    socket.on('data', (buf: Buffer) => { this.onData(buf) })
    socket.on('error', (err) => { this.abort(err) })
    // allowHalfOpen is off: after 'end' node closes the socket and 'close' follows
    socket.once('end', () => { this.onTransportClosed() })
    socket.once('close', (hadError) => {
      if (hadError) this.abort(new Error('socket closed after a transmission error'))
      else this.onTransportClosed()
    })
    socket.on('drain', () => { this.safeDispatchEvent('drain') })
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>((resolve, reject) => {
      const signal = options?.signal
      const onAbort = (): void => { this.socket.destroy(); reject(abortReason(signal as AbortSignal)) }
      this.socket.once('close', () => { signal?.removeEventListener('abort', onAbort); resolve() })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    this.socket.destroySoon()
    await closed
  }

  sendReset (): void {
    if (this.socket.writableEnded || this.socket.destroyed) { this.socket.destroy(); return }
    this.socket.resetAndDestroy()
  }

  sendPause (): void { this.socket.pause() }
  sendResume (): void { this.socket.resume() }
}

export function socketToMultiaddrConnection (init: SocketConnInit): AbstractMultiaddrConnection {
  return new SocketMultiaddrConnection(init)
}
