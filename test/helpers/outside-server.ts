/**
 * "The internet" for gateway tests, run inside the test's `outside` namespace:
 * a TCP server (answers every connection with an HTTP response whose body is "outside-tcp"), a UDP echo, and a DNS server that answers every A query
 * with this host's address. Every packet it receives is logged as one JSON line on stdout
 * (`{"kind":"tcp"|"udp"|"dns","from":…,"name"?:…}`), then "ready" once all three listen.
 *
 * Usage: node --import tsx outside-server.ts <address> <tcpPort> <udpPort>
 */
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'

const [address, tcpPortText, udpPortText] = process.argv.slice(2)
const log = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

const tcp = createServer((s) => {
  log({ kind: 'tcp', from: s.remoteAddress })
  s.on('error', () => {})
  // A whole HTTP response, so that curl prints the body when it gets through.
  s.end('HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\noutside-tcp\n')
})
await new Promise<void>((resolve) => { tcp.listen(Number(tcpPortText), address, resolve) })

const udp = createSocket('udp4')
udp.on('message', (m, r) => { log({ kind: 'udp', from: r.address }); udp.send(m, r.port, r.address) })
await new Promise<void>((resolve) => { udp.bind(Number(udpPortText), address, resolve) })

const dns = createSocket('udp4')
dns.on('message', (m, r) => {
  if (m.byteLength < 17) return
  const labels: string[] = []
  let off = 12
  while (off < m.byteLength && m[off] !== 0 && labels.length < 64) {
    labels.push(m.subarray(off + 1, off + 1 + m[off]).toString('latin1'))
    off += 1 + m[off]
  }
  const name = labels.join('.').toLowerCase()
  log({ kind: 'dns', from: r.address, name })
  const q = m.subarray(12, off + 5)
  const head = Buffer.from([m[0], m[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0])
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address.split('.').map(Number)])
  dns.send(Buffer.concat([head, q, rr]), r.port, r.address)
})
await new Promise<void>((resolve) => { dns.bind(53, address, resolve) })
log({ kind: 'ready' })
