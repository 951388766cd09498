/**
 * `npm run demo`: three OHT daemons on a private Tor network on this machine. One stores a
 * value, another fetches it across onion services, and every step is told in plain words.
 * Everything it starts (tor processes, daemons, a temp dir) it ends, also on Ctrl-C.
 *
 * Without a tor binary it says how to install one and runs the same demo over loopback TCP.
 * OHT_DEMO_TRANSPORT=tcp forces that path.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestnet, type Testnet } from '../src/tor/testnet/index.ts'
import { oht, ohtEnv, startDaemon, type DaemonHandle } from './lib/daemons.ts'

const NAMES = ['alice', 'bob', 'carol']
const tty = process.stdout.isTTY === true
const bold = (s: string): string => tty ? `\x1b[1m${s}\x1b[0m` : s
const dim = (s: string): string => tty ? `\x1b[2m${s}\x1b[0m` : s
const say = (s = ''): void => { process.stdout.write(s + '\n') }
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

let net: Testnet | undefined
let netStarting: Promise<unknown> | undefined
const abort = new AbortController()
let base: string | undefined
const daemons: DaemonHandle[] = []
let cleaning: Promise<void> | undefined

async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    // a network still coming up stops itself (and removes its dir) when aborted
    abort.abort()
    await netStarting?.catch(() => {})
    for (const d of daemons) await d.stop().catch(() => {})
    await net?.stop().catch(() => {})
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })()
  await cleaning
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping the daemons and the Tor network, removing temp files…`)
    void cleanup().then(() => { say('Cleaned up.'); process.exit(130) })
  })
}

function torInstalled (): boolean {
  const r = spawnSync('tor', ['--version'], { encoding: 'utf8' })
  return r.error === undefined && r.status === 0
}

/** Shows "label … 3.2 s" while `work` runs (on a terminal), then the result line. */
async function step<T> (label: string, work: Promise<T>): Promise<T> {
  const start = performance.now()
  const timer = tty ? setInterval(() => { process.stdout.write(`\r  ${dim(`${label} … ${secs(performance.now() - start)}`)}\x1b[K`) }, 250) : undefined
  try {
    return await work
  } finally {
    if (timer !== undefined) { clearInterval(timer); process.stdout.write('\r\x1b[K') }
  }
}

function must (r: { code: number | null, stderr: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`)
}

async function main (): Promise<void> {
  const useTor = process.env.OHT_DEMO_TRANSPORT !== 'tcp' && torInstalled()
  say(bold('OHT demo: three nodes, a put on one, a get on another'))
  if (!useTor) {
    if (process.env.OHT_DEMO_TRANSPORT !== 'tcp') {
      say('tor is not installed on this machine, so the nodes cannot use onion services.')
      say('Install it to see the real thing:  sudo apt-get install -y tor   (Debian/Ubuntu)')
    }
    say('Running the same demo over loopback TCP instead (no anonymity, same OHT).')
  }
  say()
  base = await mkdtemp(join(tmpdir(), 'oht-demo-'))

  if (useTor) {
    say(`${bold('1.')} Starting a private Tor network on 127.0.0.1: 3 directory authorities, 2 relays and 3 client tors.`)
    say(dim('   Nothing leaves this machine; the network has its own consensus. This takes 15-30 s.'))
    const t0 = performance.now()
    const starting = startTestnet({
      signal: abort.signal,
      clients: NAMES.length,
      onProgress: (e) => { if (tty) process.stdout.write(`\r\x1b[K`); say(dim(`   · ${e.message}`)) }
    })
    netStarting = starting
    net = await step('starting tor', starting)
    say(`   The Tor network is usable after ${secs(performance.now() - t0)}.`)
  } else {
    say(`${bold('1.')} No Tor network needed for TCP.`)
  }

  say(`${bold('2.')} Creating an identity for each node (oht init). Each identity is an Ed25519 key;`)
  say('   its onion address is derived from it, so a node keeps its address across restarts.')
  const envs = NAMES.map(n => ohtEnv(base as string, join(base as string, n)))
  const addresses: string[] = []
  for (const [i, name] of NAMES.entries()) {
    const r = await oht(['init'], envs[i])
    must(r, `oht init for ${name}`)
    addresses.push(r.stdout.split('\n')[0].trim())
    say(`   ${name.padEnd(5)}  ${addresses[i]}`)
  }

  say(`${bold('3.')} Starting one daemon per node${useTor ? ', each attached to its own tor client' : ''}; bob and carol join through alice.`)
  let firstAddr = ''
  for (const [i, name] of NAMES.entries()) {
    const args = useTor ? ['--tor-control', `127.0.0.1:${(net as Testnet).clients[i].controlPort}`] : ['--transport', 'tcp']
    if (i > 0) args.push('--bootstrap', firstAddr)
    const t0 = performance.now()
    const d = await step(`starting ${name}'s daemon`, startDaemon(name, envs[i], args))
    daemons.push(d)
    const status = JSON.parse((await oht(['status', '--json'], envs[i])).stdout) as { addrs: string[], node: { peers: number } }
    if (i === 0) firstAddr = status.addrs.find(a => a.startsWith(useTor ? '/onion3/' : '/ip4/')) ?? status.addrs[0]
    say(`   ${name.padEnd(5)}  ready in ${secs(performance.now() - t0)}, ${status.node.peers} peer(s), reachable at ${dim(firstAddrOf(status.addrs, useTor))}`)
  }

  const message = `Hello from alice, ${new Date().toISOString().slice(0, 19)}Z`
  say(`${bold('4.')} alice stores a message:`)
  say(dim(`   $ oht put "${message}"`))
  const put = await step('storing', oht(['put', message, '--json'], envs[0]))
  must(put, 'oht put')
  const p = JSON.parse(put.stdout) as { key: string, stored: number, attempted: number }
  say(`   key ${p.key}`)
  say(`   The key is the SHA-256 of the message. ${p.stored} of ${p.attempted} nodes closest to it took a copy (${secs(put.ms)}).`)

  say(`${bold('5.')} carol fetches it by key${useTor ? ', over onion services' : ''}:`)
  say(dim(`   $ oht get ${p.key}`))
  const get = await step('looking up', oht(['get', p.key], envs[2]))
  must(get, 'oht get')
  say(`   "${get.stdout}"  (${secs(get.ms)})`)
  if (get.stdout !== message) throw new Error('carol got something else than alice stored')
  if (createHash('sha256').update(get.stdout).digest('hex') !== p.key) throw new Error('the value does not hash to its key')
  say('   Its SHA-256 equals the key, so no node on the way could have altered it.')

  say(`${bold('6.')} bob publishes a named, signed record and alice reads it by bob's address:`)
  say(dim(`   $ oht put status "bob is online"            (on bob)`))
  must(await oht(['put', 'status', 'bob is online'], envs[1]), 'oht put (mutable)')
  say(dim(`   $ oht get --name status --author ${addresses[1]}   (on alice)`))
  const named = await step('looking up', oht(['get', '--name', 'status', '--author', addresses[1]], envs[0]))
  must(named, 'oht get --name')
  say(`   "${named.stdout}": signed by bob's key, so only bob can change it.`)

  say()
  say('Stopping the daemons (SIGTERM: stores wiped, sockets removed), the Tor network and temp files…')
  await cleanup()
  say(bold('Done.') + ' Try it yourself: oht init && oht daemon, then oht put / oht get (see docs/daemon.md).')
}

function firstAddrOf (addrs: string[], useTor: boolean): string {
  return addrs.find(a => a.startsWith(useTor ? '/onion3/' : '/ip4/')) ?? addrs[0] ?? '-'
}

try {
  await main()
  process.exit(0)
} catch (err) {
  if (abort.signal.aborted) {
    await cleanup()
    process.exit(130)
  }
  say(`\nThe demo failed: ${(err as Error).message}`)
  await cleanup()
  process.exit(1)
}
