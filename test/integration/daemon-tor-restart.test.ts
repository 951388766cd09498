/**
 * The daemon survives tor dying under it: a daemon that launched its own tor (joined to a
 * private Tor network) gets that tor SIGKILLed, relaunches it, rebuilds its node at the same
 * onion address (its own records reloaded from its journal and republished), and is
 * reachable again from another daemon.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'
import { oht, ohtEnv, startDaemon, type DaemonHandle } from '../../examples/lib/daemons.ts'

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${String(last)})`)
}

describe('oht daemon when its tor dies', () => {
  let net: Testnet
  let base: string
  let a: DaemonHandle | undefined
  let b: DaemonHandle | undefined
  let envA: Record<string, string>
  let envB: Record<string, string>

  before(async () => {
    net = await testnet({ clients: 1 })
    base = await mkdtemp(join(tmpdir(), 'oht-tor-restart-'))
    envA = ohtEnv(base, join(base, 'a'))
    envB = ohtEnv(base, join(base, 'b'))
    // A launches its own tor, configured to join the private network.
    const torrc: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(net.clientTorrc())) if (v !== null && v !== undefined) torrc[k] = v
    const config = join(base, 'a.json')
    await writeFile(config, JSON.stringify({ tor: { mode: 'launch', torrc, reconnect_interval_ms: 500 } }))
    envA.OHT_CONFIG = config
    for (const env of [envA, envB]) assert.equal((await oht(['init'], env)).code, 0)
    a = await startDaemon('a', envA, [], { timeoutMs: 300_000 })
    const sa = JSON.parse((await oht(['status', '--json'], envA)).stdout)
    b = await startDaemon('b', envB, ['--tor-control', `127.0.0.1:${net.clients[0].controlPort}`, '--bootstrap', sa.addrs.find((x: string) => x.startsWith('/onion3/'))], { timeoutMs: 300_000 })
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    await net?.stop()
    if (base !== undefined) await rm(base, { recursive: true, force: true })
  })

  it('relaunches tor, keeps its onion address and serves puts and gets again', async () => {
    const before = JSON.parse((await oht(['status', '--json'], envA)).stdout)
    assert.equal(before.tor.mode, 'launch')
    assert.equal(before.tor.connected, true)
    const torPid: number = before.tor.pid
    assert.ok(alive(torPid), 'the launched tor runs')
    const k1 = (await oht(['put', 'before tor died'], envA)).stdout.trim()
    assert.equal((await oht(['get', k1], envB)).stdout, 'before tor died')

    process.kill(torPid, 'SIGKILL')
    const after = await until('tor back under the daemon', 180_000, async () => {
      const s = JSON.parse((await oht(['status', '--json'], envA)).stdout)
      return s.tor.restarts >= 1 && s.tor.connected === true && s.phase === 'running' ? s : undefined
    })
    assert.notEqual(after.tor.pid, torPid, 'a new tor process')
    assert.equal(alive(torPid), false)
    assert.equal(after.identity.address, before.identity.address, 'same onion address')
    assert.deepEqual(after.addrs, before.addrs, 'same onion multiaddr')
    assert.ok(a?.logs.some(l => l.includes('lost tor; reconnecting')))
    assert.ok(a?.logs.some(l => l.includes('tor is back')))
    assert.ok(a?.logs.some(l => l.includes('recovered after tor restart')))
    const m = await oht(['metrics'], envA)
    assert.match(m.stdout, /^oht_tor_reconnects_total 1$/m)
    // The rebuilt node loaded what A wrote from its journal (its store was wiped with the old
    // node), serves it, and republished it to its peers once it had joined again.
    assert.ok(after.node.ownRecords >= 1, `own records after the rebuild: ${after.node.ownRecords}`)
    assert.ok(after.node.recordsStored >= 1, 'the rebuilt node holds its own record again')
    await until('own records republished after the tor restart', 120_000, async () => {
      const r = Number(/^oht_republished_total (\d+)$/m.exec((await oht(['metrics'], envA)).stdout)?.[1] ?? 0)
      return r >= 1 ? r : undefined
    })
    assert.ok(a?.logs.some(l => l.includes('node rebuilt on the new tor session')))

    // A's rebuilt node reaches B, and B reaches A at the same address again.
    const k2 = await until('a put after the restart', 120_000, async () => {
      const r = await oht(['put', 'after tor came back', '--json'], envA)
      return r.code === 0 && JSON.parse(r.stdout).stored >= 1 ? JSON.parse(r.stdout).key as string : undefined
    })
    assert.equal((await oht(['get', k2], envB)).stdout, 'after tor came back')
    const k3 = (await oht(['put', 'from b to the new a'], envB)).stdout.trim()
    assert.equal((await oht(['get', k3], envA)).stdout, 'from b to the new a')
  })

  it('stops its relaunched tor on SIGTERM', async () => {
    const s = JSON.parse((await oht(['status', '--json'], envA)).stdout)
    const torPid: number = s.tor.pid
    assert.ok(alive(torPid))
    assert.equal(await a?.stop(), 0)
    await until('the launched tor gone', 30_000, async () => alive(torPid) ? undefined : true)
  })
})
