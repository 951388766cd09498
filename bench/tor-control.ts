/**
 * Tor control client speed: reply framing throughput (against a naive split of the same bytes
 * as baseline, measured in the same run), event parsing rate, and command round trips against
 * a real tor (DisableNetwork 1, control port on 127.0.0.1), sequential vs pipelined.
 *
 *   node --import tsx bench/tor-control.ts
 *
 * Prints the figures and writes bench/results/tor-control.json.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../src/core/index.ts'
import { connectTorControl, parseEvent, ReplyFramer } from '../src/tor/control/index.ts'

const CHUNK = 64 * 1024
const results: Record<string, unknown> = {}

/**
 * Tor's side of a recorded control-port transcript (test/fixtures/tor/*.json, read as data:
 * bench/ imports no code from test/).
 */
function recordedServerBytes (name: string): Buffer {
  const fixture = JSON.parse(readFileSync(new URL(`../test/fixtures/tor/${name}.json`, import.meta.url), 'utf8')) as { wire: Array<{ s?: string }> }
  return Buffer.from(fixture.wire.map(e => e.s ?? '').join(''), 'utf8')
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]
}

/** Median ms of `runs` runs of `fn`. */
function time (runs: number, fn: () => void): number {
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = systemClock.monotonic()
    fn()
    ms.push(systemClock.monotonic() - t0)
  }
  return median(ms)
}

function frameAll (bytes: Uint8Array): number {
  const framer = new ReplyFramer({ maxReplyBytes: 64 * 1024 * 1024 })
  let n = 0
  for (let off = 0; off < bytes.length; off += CHUNK) n += framer.push(bytes.subarray(off, off + CHUNK)).length
  return n
}

/** Baseline: decode and split lines, no framing state, no limits, no dot-unstuffing. */
function naiveSplit (bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').split('\r\n').length
}

function framingBench (): void {
  const relay = (i: number): string => `r relay${i} AAAAAAAAAAAAAAAAAAAAAAAAAAA ${'B'.repeat(27)} 2026-11-22 01:00:00 127.0.0.1 ${9000 + (i % 1000)} 0\r\n` +
    's Fast Guard HSDir Running Stable V2Dir Valid\r\nw Bandwidth=1000\r\n'
  let ns = '250+ns/all=\r\n'
  for (let i = 0; ns.length < 8 * 1024 * 1024; i++) ns += relay(i)
  const data = Buffer.from(ns + '.\r\n250 OK\r\n')
  const small = Buffer.from('250-version=0.4.9.11\r\n250 OK\r\n'.repeat(100_000))
  const events = recordedServerBytes('events-network')
  const manyEvents = Buffer.concat(Array.from({ length: 40 }, () => events))

  const mb = (b: Uint8Array, ms: number): number => (b.byteLength / 1024 / 1024) / (ms / 1000)
  const dataMs = time(5, () => frameAll(data))
  const dataBase = time(5, () => naiveSplit(data))
  const smallMs = time(5, () => frameAll(small))
  const smallBase = time(5, () => naiveSplit(small))
  let eventCount = 0
  const eventMs = time(5, () => {
    const framer = new ReplyFramer()
    eventCount = 0
    for (let off = 0; off < manyEvents.length; off += CHUNK) {
      for (const r of framer.push(manyEvents.subarray(off, off + CHUNK))) if (r.status === 650) { parseEvent(r); eventCount++ }
    }
  })

  results.framing = {
    dataReply: { bytes: data.byteLength, mbPerSec: mb(data, dataMs), baselineMbPerSec: mb(data, dataBase), ratioVsBaseline: dataBase / dataMs },
    smallReplies: { replies: 100_000, repliesPerSec: 100_000 / (smallMs / 1000), mbPerSec: mb(small, smallMs), baselineMbPerSec: mb(small, smallBase), ratioVsBaseline: smallBase / smallMs },
    events: { events: eventCount, eventsPerSec: eventCount / (eventMs / 1000), mbPerSec: mb(manyEvents, eventMs) }
  }
  const f = results.framing as { dataReply: { mbPerSec: number, baselineMbPerSec: number, ratioVsBaseline: number }, smallReplies: { repliesPerSec: number, mbPerSec: number, baselineMbPerSec: number, ratioVsBaseline: number }, events: { eventsPerSec: number, mbPerSec: number } }
  console.log(`framing, 8 MiB data reply (ns/all-like):  ${f.dataReply.mbPerSec.toFixed(0)} MB/s   naive split baseline ${f.dataReply.baselineMbPerSec.toFixed(0)} MB/s   ratio ${f.dataReply.ratioVsBaseline.toFixed(2)}`)
  console.log(`framing, 100k small replies:             ${(f.smallReplies.repliesPerSec / 1e6).toFixed(2)} M replies/s (${f.smallReplies.mbPerSec.toFixed(0)} MB/s)   baseline ${f.smallReplies.baselineMbPerSec.toFixed(0)} MB/s   ratio ${f.smallReplies.ratioVsBaseline.toFixed(2)}`)
  console.log(`framing + parseEvent, real event stream: ${(f.events.eventsPerSec / 1e3).toFixed(0)} k events/s (${f.events.mbPerSec.toFixed(0)} MB/s)`)
}

async function torBench (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'oht-bench-tor-'))
  await writeFile(join(dir, 'torrc'), '', { mode: 0o600 })
  const tor = spawn('tor', ['-f', join(dir, 'torrc'), '--DataDirectory', join(dir, 'data'), '--SocksPort', '0',
    '--ControlPort', '127.0.0.1:auto', '--ControlPortWriteToFile', join(dir, 'port'), '--CookieAuthentication', '1',
    '--DisableNetwork', '1', '--GeoIPFile', '', '--GeoIPv6File', '', '--__OwningControllerProcess', String(process.pid), '--Log', 'err stderr'], { stdio: 'ignore' })
  const spawned = await new Promise<boolean>((resolve) => { tor.once('spawn', () => { resolve(true) }); tor.once('error', () => { resolve(false) }) })
  if (!spawned) { console.log('tor not installed: round-trip figures skipped'); await rm(dir, { recursive: true, force: true }); return }
  try {
    let port = 0
    for (let i = 0; port === 0; i++) {
      const m = /:(\d+)/.exec(await readFile(join(dir, 'port'), 'utf8').catch(() => ''))
      if (m != null) port = Number(m[1])
      else if (i > 300) throw new Error('tor did not open its control port')
      else await systemClock.sleep(50)
    }
    const t0 = systemClock.monotonic()
    const control = await connectTorControl({ port })
    await control.authenticate()
    const authMs = systemClock.monotonic() - t0
    for (let i = 0; i < 50; i++) await control.getInfoOne('version') // warm-up
    const N = 1000
    const lat: number[] = []
    const s0 = systemClock.monotonic()
    for (let i = 0; i < N; i++) {
      const a = systemClock.monotonic()
      await control.getInfoOne('version')
      lat.push(systemClock.monotonic() - a)
    }
    const seqMs = systemClock.monotonic() - s0
    const p0 = systemClock.monotonic()
    await Promise.all(Array.from({ length: N }, async () => await control.getInfoOne('version')))
    const pipeMs = systemClock.monotonic() - p0
    await control.close()
    results.roundTrip = {
      connectAndSafeCookieMs: authMs,
      sequential: { commands: N, p50Ms: pct(lat, 0.5), p95Ms: pct(lat, 0.95), perSec: N / (seqMs / 1000) },
      pipelined: { commands: N, perSec: N / (pipeMs / 1000) },
      pipelinedVsSequential: seqMs / pipeMs
    }
    console.log(`connect + SAFECOOKIE auth:               ${authMs.toFixed(1)} ms`)
    console.log(`GETINFO version, sequential:             p50 ${pct(lat, 0.5).toFixed(3)} ms  p95 ${pct(lat, 0.95).toFixed(3)} ms  ${(N / (seqMs / 1000)).toFixed(0)} cmds/s`)
    console.log(`GETINFO version, ${N} pipelined:         ${(N / (pipeMs / 1000)).toFixed(0)} cmds/s   ratio vs sequential ${(seqMs / pipeMs).toFixed(2)}`)
  } finally {
    if (tor.exitCode === null) {
      const exited = new Promise(resolve => tor.once('exit', resolve))
      tor.kill('SIGKILL')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  }
}

framingBench()
await torBench()
const out = new URL('./results/', import.meta.url).pathname
await mkdir(out, { recursive: true })
await writeFile(join(out, 'tor-control.json'), JSON.stringify({ when: new Date(systemClock.now()).toISOString(), ...results }, null, 2) + '\n')
console.log(`wrote ${join(out, 'tor-control.json')}`)
