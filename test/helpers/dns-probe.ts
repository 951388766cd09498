/**
 * Times DNS answers from wherever it runs (a VM namespace in the gateway benchmark): for each
 * series, `count` queries for `name` (`%i` in the name is replaced by the query's index), at most
 * `parallel` at a time, each with its own socket, a worker pausing `intervalMs` between its
 * queries (to stay below a resolver's per-client rate limit). Prints one JSON object: per series the
 * latencies in ms and the rcodes seen.
 *
 * Usage: node --import tsx dns-probe.ts <server> <port> '<json [{label,name,qtype,count,parallel?,timeoutMs?,intervalMs?}]>'
 */
import { createSocket } from 'node:dgram'

interface Series { label: string, name: string, qtype: number, count: number, parallel?: number, timeoutMs?: number, intervalMs?: number }

const [server, portText, specText] = process.argv.slice(2)
const port = Number(portText)
const series = JSON.parse(specText) as Series[]

function query (name: string, qtype: number, id: number): Buffer {
  const labels = name.split('.').flatMap(l => [l.length, ...Buffer.from(l)])
  return Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1])
}

async function one (name: string, qtype: number, id: number, timeoutMs: number): Promise<{ ms: number, rcode: number | 'timeout' }> {
  const s = createSocket('udp4')
  const t0 = performance.now()
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => { resolve({ ms: performance.now() - t0, rcode: 'timeout' }) }, timeoutMs)
      s.on('message', (m) => {
        if (m.readUInt16BE(0) !== id) return
        clearTimeout(timer)
        resolve({ ms: performance.now() - t0, rcode: m[3] & 0x0f })
      })
      s.send(query(name, qtype, id), port, server)
    })
  } finally {
    s.close()
  }
}

const out: Record<string, { ms: number[], rcodes: Record<string, number> }> = {}
for (const s of series) {
  const ms: number[] = []
  const rcodes: Record<string, number> = {}
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < s.count) {
      const i = next++
      const r = await one(s.name.replace('%i', String(i)), s.qtype, (i * 7919 + 1) & 0xffff, s.timeoutMs ?? 15_000)
      ms.push(r.ms)
      rcodes[String(r.rcode)] = (rcodes[String(r.rcode)] ?? 0) + 1
      if ((s.intervalMs ?? 0) > 0) await new Promise(resolve => setTimeout(resolve, s.intervalMs))
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, s.parallel ?? 1) }, async () => { await worker() }))
  out[s.label] = { ms, rcodes }
}
process.stdout.write(JSON.stringify(out) + '\n')
