/**
 * A TUN device (layer 3, IFF_TUN | IFF_NO_PI: one read = one IP packet) on Linux.
 *
 * open("/dev/net/tun") and ioctl(TUNSETIFF) go through koffi (FFI, prebuilt in its npm
 * package). libuv cannot poll a TUN fd (net.Socket({ fd }) refuses a character device), and a
 * blocking read in libuv's thread pool would pin a pool thread and keep the process alive, so a
 * small worker thread poll()s the non-blocking fd with a short timeout and posts each packet to
 * the main thread (like a listening socket, an open device keeps the process alive until
 * close()). Writes are synchronous and never block: the kernel takes or drops a packet.
 *
 * Without root or without /dev/net/tun, openTun throws ONI_TUN_UNAVAILABLE; the rest of ONI
 * (SOCKS5, endpoints, routes) works without it.
 */
import { closeSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { OniError } from './errors.ts'

const TUN_PATH = '/dev/net/tun'
const O_RDWR = 0o2
const O_NONBLOCK = 0o4000
const O_CLOEXEC = 0o2000000
const TUNSETIFF = 0x400454ca
const IFF_TUN = 0x0001
const IFF_NO_PI = 0x1000
const IFNAMSIZ = 16
const IFREQ_BYTES = 40
/** How often the reader re-checks its stop flag while idle. */
const POLL_TIMEOUT_MS = 100
export const MAX_PACKET_BYTES = 65_535

export interface TunInit {
  /** Interface name; `%d` lets the kernel pick a number. @default 'onet%d' */
  name?: string
}

export interface TunStats { packetsIn: number, packetsOut: number, bytesIn: number, bytesOut: number, writeErrors: number }

export interface TunDevice {
  /** The name the kernel gave the interface. */
  readonly name: string
  readonly closed: boolean
  readonly stats: Readonly<TunStats>
  /** Subscribes to packets read from the interface; returns the unsubscribe function. */
  onPacket(listener: (packet: Uint8Array) => void): () => void
  /** Injects one IP packet into the kernel; false when the kernel refused it (counted). */
  write(packet: Uint8Array): boolean
  /** Stops the reader and closes the fd; the kernel then removes the interface. */
  close(): Promise<void>
}

interface Libc { open: (path: string, flags: number) => number, ioctl: (fd: number, req: number, arg: Buffer) => number, errno: () => number }

function loadLibc (): Libc {
  try {
    const require = createRequire(import.meta.url)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const koffi = require('koffi') as { load(path: string): { func(sig: string): (...args: unknown[]) => unknown }, errno(): number }
    const lib = koffi.load('libc.so.6')
    const open = lib.func('int open(const char *path, int flags)')
    const ioctl = lib.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)')
    return {
      open: (p, f) => open(p, f) as number,
      ioctl: (fd, req, arg) => ioctl(fd, req, arg) as number,
      errno: () => koffi.errno()
    }
  } catch (err) {
    throw new OniError('ONI_TUN_UNAVAILABLE', 'cannot load libc through koffi: TUN mode needs Linux and the koffi package (npm install)', { cause: err })
  }
}

// The reader runs as plain JavaScript in a worker: no TypeScript loader needed there.
const READER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const fs = require('node:fs')
const koffi = require(workerData.koffiPath)
const poll = koffi.load('libc.so.6').func('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)')
const stop = new Int32Array(workerData.stop)
const buf = Buffer.alloc(workerData.maxPacket)
const pfd = Buffer.alloc(8)
pfd.writeInt32LE(workerData.fd, 0)
pfd.writeInt16LE(1, 4) // POLLIN
try {
  while (Atomics.load(stop, 0) === 0) {
    pfd.writeInt16LE(0, 6)
    if (poll(pfd, 1, workerData.pollMs) <= 0) continue
    for (;;) {
      let n
      try { n = fs.readSync(workerData.fd, buf, 0, buf.length, null) } catch (e) {
        if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') break
        throw e
      }
      if (n <= 0) break
      const copy = new Uint8Array(n)
      copy.set(buf.subarray(0, n))
      parentPort.postMessage(copy, [copy.buffer])
    }
  }
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message || e) })
}
`

/**
 * Creates a TUN interface. Configure it afterwards with `configureInterface` (ip-command.ts);
 * it may be moved into another network namespace while this process keeps the fd.
 *
 * @example
 * const tun = await openTun({ name: 'onet0' })
 * await configureInterface({ name: tun.name, addresses: ['fd6f::1/128'], routes: ['fd6f::/16'], mtu: 1280 })
 * tun.onPacket(p => { ... })
 */
export async function openTun (init: TunInit = {}): Promise<TunDevice> {
  const requested = init.name ?? 'onet%d'
  if (Buffer.byteLength(requested) >= IFNAMSIZ || !/^[A-Za-z0-9_.%-]+$/.test(requested)) {
    throw new OniError('ONI_BAD_ARGUMENT', `interface name ${JSON.stringify(requested)} must be 1-15 characters of [A-Za-z0-9_.%-]`)
  }
  if (process.platform !== 'linux') throw new OniError('ONI_TUN_UNAVAILABLE', 'TUN devices are supported on Linux only')
  const libc = loadLibc()
  const fd = libc.open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC)
  if (fd < 0) {
    const errno = libc.errno()
    throw new OniError('ONI_TUN_UNAVAILABLE', `cannot open ${TUN_PATH} (errno ${errno}): TUN mode needs root (CAP_NET_ADMIN) and the tun kernel module`)
  }
  const ifr = Buffer.alloc(IFREQ_BYTES)
  ifr.write(requested, 0, 'latin1')
  ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ)
  if (libc.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const errno = libc.errno()
    closeSync(fd)
    const hint = errno === 1 ? 'needs root (CAP_NET_ADMIN)' : errno === 16 ? 'the name is taken' : 'see errno'
    throw new OniError('ONI_TUN_UNAVAILABLE', `ioctl(TUNSETIFF, ${requested}) failed with errno ${errno}: ${hint}`)
  }
  const nul = ifr.indexOf(0)
  const name = ifr.toString('latin1', 0, nul < 0 || nul > IFNAMSIZ ? IFNAMSIZ : nul)
  return new Tun(fd, name)
}

class Tun implements TunDevice {
  readonly name: string
  private readonly fd: number
  private readonly worker: Worker
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4))
  private readonly listeners = new Set<(packet: Uint8Array) => void>()
  private readonly exited: Promise<void>
  private isClosed = false
  readonly stats: TunStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, writeErrors: 0 }

  constructor (fd: number, name: string) {
    this.fd = fd
    this.name = name
    const koffiPath = createRequire(import.meta.url).resolve('koffi')
    this.worker = new Worker(READER_SOURCE, {
      eval: true,
      workerData: { fd, stop: this.stopFlag.buffer, koffiPath, maxPacket: MAX_PACKET_BYTES, pollMs: POLL_TIMEOUT_MS }
    })
    this.exited = new Promise<void>((resolve) => { this.worker.once('exit', () => { resolve() }) })
    this.worker.on('message', (m: unknown) => {
      if (!(m instanceof Uint8Array)) return
      this.stats.packetsIn++
      this.stats.bytesIn += m.byteLength
      for (const l of this.listeners) l(m)
    })
    this.worker.on('error', () => { /* the reader failed; close() still cleans up */ })
  }

  get closed (): boolean { return this.isClosed }

  onPacket (listener: (packet: Uint8Array) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  write (packet: Uint8Array): boolean {
    if (this.isClosed) return false
    try {
      writeSync(this.fd, packet)
      this.stats.packetsOut++
      this.stats.bytesOut += packet.byteLength
      return true
    } catch {
      this.stats.writeErrors++
      return false
    }
  }

  async close (): Promise<void> {
    if (this.isClosed) { await this.exited; return }
    this.isClosed = true
    this.listeners.clear()
    Atomics.store(this.stopFlag, 0, 1)
    await this.exited
    closeSync(this.fd)
  }
}
