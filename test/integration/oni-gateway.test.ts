/**
 * Router-VM gateway mode, end to end, with nothing faked: a real `oht daemon` (child process)
 * with `[gateway]` enabled launches its own tor on the private Tor network; two unmodified
 * "VMs" (network namespaces) sit behind it on a bridge; an `outside` namespace plays the
 * internet (TCP, UDP and DNS servers) and tcpdump records everything that reaches it for the
 * whole test.
 *
 * Why the root namespace is the router: the private Tor network listens on 127.0.0.1 of the
 * root namespace, and a tor in another namespace cannot reach that loopback. So the daemon and
 * its tor run in the root namespace, and every interface the test adds there (the bridge, the
 * veths to `ctl` and `outside`) has a unique name, per-interface forwarding switched on (the
 * global switch is left alone), and is deleted at the end; the gateway's nftables table has a
 * unique name too and touches only the bridge's traffic. A `ctl` namespace the router really
 * forwards for proves the outside listeners answer and that the capture records what arrives:
 * its probes must be in the capture, the VMs' must not.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readKeyFile } from '../../src/crypto/index.ts'
import { signMapping, MAPPING_SALT } from '../../src/oni/mapping.ts'
import { formatIpv6, virtualAddressFromPublicKey } from '../../src/oni/virtual-address.ts'
import { attachTor, publishOnion, type TorControl, type StreamEvent } from '../../src/tor/index.ts'
import { networkTorrc } from '../../src/tor/testnet/index.ts'
import { oht, ohtEnv, ROOT, startDaemon, type DaemonHandle } from '../../examples/lib/daemons.ts'
import { createGatewayNet, run, type GatewayNet } from '../helpers/gateway-net.ts'
import { canUseNetns, type Netns } from '../helpers/netns.ts'
import { testnet, type Testnet } from '../helpers/tor-testnet.ts'

const TCP_PORT = 8080
const UDP_PORT = 9999

function haveNft (): boolean {
  return spawnSync('nft', ['--version']).status === 0 && spawnSync('tcpdump', ['--version']).status === 0
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

function lines (child: ChildProcess, into: string[]): void {
  let buf = ''
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) { into.push(buf.slice(0, nl)); buf = buf.slice(nl + 1) }
  })
}

describe('gateway mode: VMs behind the router reach onion services and nothing else', { timeout: 900_000 }, async () => {
  const privileged = await canUseNetns() && haveNft()
  let net: Testnet | undefined
  let gw: GatewayNet | undefined
  let daemon: DaemonHandle | undefined
  let web: Server | undefined
  let base = ''
  let env: Record<string, string> = {}
  let onion = ''
  let table = ''
  let pcap = ''
  let tcpdump: ChildProcess | undefined
  let outsideServer: ChildProcess | undefined
  const outsideLog: string[] = []
  const webHits: string[] = []
  let tor: TorControl | undefined
  const streams: StreamEvent[] = []
  let baselineVmPing = -1
  const names: Record<string, string> = {}

  const vm = (i: number): NonNullable<GatewayNet>['vms'][number] => (gw as GatewayNet).vms[i]
  const status = async (): Promise<any> => JSON.parse((await oht(['gateway', 'status', '--json'], env)).stdout)

  /** The test's own eyes on the daemon's tor: STREAM events over its control port. */
  const watchTor = async (): Promise<void> => {
    await tor?.close().catch(() => {})
    const dataDir = join(base, 'state', 'tor')
    const portLine = (await readFile(join(dataDir, 'control-port'), 'utf8')).trim()
    const port = Number(/:(\d+)$/.exec(portLine)?.[1])
    tor = await attachTor({ port }, { cookiePath: join(dataDir, 'control_auth_cookie') })
    tor.onEvent((e) => { if (e.type === 'STREAM') streams.push(e) })
    await tor.addEvents(['STREAM'])
  }

  /** Every way out we know of, from a VM: none of these may reach the outside namespace. */
  const tryToLeak = async (i: number, tag: string): Promise<void> => {
    const ns = vm(i).ns
    const out = gw?.outside.address as string
    const results = await Promise.all([
      ns.exec('curl', ['-s', '-m', '8', `http://${out}:${TCP_PORT}/`], { timeoutMs: 20_000 }),
      ns.exec('curl', ['-s', '-m', '8', `http://${names.outsideByName}:${TCP_PORT}/`], { timeoutMs: 20_000 }),
      ns.exec('socat', ['-u', '-', `UDP:${out}:${UDP_PORT}`], { input: `leak-${tag}\n`, timeoutMs: 10_000 }),
      ns.exec('ping', ['-n', '-c', '2', '-i', '0.3', '-W', '1', out], { timeoutMs: 10_000 }),
      ns.exec('dig', [`@${out}`, `${tag}-${names.leak}`, 'A', '+time=3', '+tries=1'], { timeoutMs: 10_000 })
    ])
    for (const r of results.slice(0, 2)) assert.doesNotMatch(r.stdout, /outside-tcp/, 'TCP reached the outside server')
    assert.notEqual(results[3].code, 0, 'ping answered from outside')
    assert.doesNotMatch(results[3].stdout, / 0% packet loss/)
    assert.doesNotMatch(results[4].stdout, new RegExp(`IN\\s+A\\s+${out.replace(/\./g, '\\.')}`), 'the outside resolver answered')
  }

  before(async () => {
    if (!privileged) return
    net = await testnet({ clients: 2 })
    base = await mkdtemp(join(tmpdir(), 'oht-gateway-'))
    gw = await createGatewayNet({ vms: 2 })
    table = `oht_gw_${gw.id}`
    for (const [k, v] of Object.entries({ leak: 'leak', outsideByName: 'outside', blocked: 'ads', ordinary: 'ordinary', ctl: 'ctlprobe', later: 'later-ads' })) names[k] = `${v}-${gw.id}.example`

    // The onion service the VMs are to reach: a web server behind client 0's tor.
    web = createServer((req, res) => { webHits.push(req.url ?? ''); res.end(`onion-ok ${req.url ?? ''}\n`) })
    await new Promise<void>((resolve) => { web?.listen(0, '127.0.0.1', resolve) })
    const control0 = await net.clients[0].control()
    const ep = await publishOnion(control0, { ports: [{ virtualPort: 80, target: `127.0.0.1:${(web.address() as { port: number }).port}` }], detach: true, probe: { socksPort: net.clients[1].socksPort } })
    onion = ep.address
    await control0.close()

    // The internet, and its witness.
    outsideServer = gw.outside.ns.spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/outside-server.ts'), gw.outside.address, String(TCP_PORT), String(UDP_PORT)])
    lines(outsideServer, outsideLog)
    await until('outside servers', 30_000, async () => outsideLog.includes('{"kind":"ready"}') ? true : undefined)

    // Without the gateway, this router forwards vm0 to the outside: the path it has to close.
    baselineVmPing = (await vm(0).ns.exec('ping', ['-n', '-c', '1', '-W', '2', gw.outside.address])).code ?? -1

    pcap = join(base, 'outside.pcap')
    tcpdump = gw.outside.ns.spawn('tcpdump', ['-i', gw.outside.ifname, '-n', '-U', '-s', '512', '-w', pcap])
    await new Promise<void>((resolve, reject) => {
      let err = ''
      tcpdump?.stderr?.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) resolve() })
      tcpdump?.once('exit', () => { reject(new Error(`tcpdump exited: ${err}`)) })
    })

    const blocklist = join(base, 'blocklist.hosts')
    await writeFile(blocklist, `# test blocklist\n0.0.0.0 ${names.blocked}\n`)
    const torrc: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(networkTorrc(net.toJSON().authorities))) if (v !== null && v !== undefined) torrc[k] = v
    const config = {
      tor: { mode: 'launch', torrc, reconnect_interval_ms: 500 },
      gateway: {
        enabled: true,
        interface: gw.bridge,
        trans_port: randomInt(20_000, 40_000),
        dns_port: randomInt(40_000, 60_000),
        table,
        blocklist_file: blocklist,
        hosts: { 'files.vm': '10.152.152.21' },
        onet_names: { nomap: 'pzg6v235igvnd32bldoaoi2z32ua3b2quq7j7jiibsuoli5ueesvfwyd' }
      }
    }
    env = ohtEnv(base, join(base, 'state'))
    env.OHT_CONFIG = join(base, 'oht.json')
    await writeFile(env.OHT_CONFIG, JSON.stringify(config))
    assert.equal((await oht(['init'], env)).code, 0)
    daemon = await startDaemon('gateway', env, [], { timeoutMs: 300_000 })
    await watchTor()
  })

  after(async () => {
    await tor?.close().catch(() => {})
    await daemon?.stop()
    if (tcpdump !== undefined && tcpdump.exitCode === null) tcpdump.kill('SIGINT')
    await gw?.destroy()
    for (const t of table !== '' ? [table, `${table}_a`] : []) await run('nft', ['delete', 'table', 'inet', t])
    await new Promise<void>((resolve) => { if (web === undefined) resolve(); else web.close(() => { resolve() }) })
    await net?.stop()
    if (base !== '') await rm(base, { recursive: true, force: true })
  })

  it('without the gateway the router would forward the VMs; the control network reaches the outside', async () => {
    if (!privileged) {
      // Without root/nft here, the gateway refuses with a coded error instead (unit tests cover the rest).
      const { createGateway } = await import('../../src/oni/gateway/index.ts')
      const { systemClock, cryptoRng } = await import('../../src/core/index.ts')
      const g = createGateway({ interface: 'lo', torMode: 'launch', nftPath: '/nonexistent/nft' }, { clock: systemClock, rng: cryptoRng })
      await assert.rejects(g.start(), (e: any) => e.code === 'ONI_GATEWAY_NFT_MISSING' || e.code === 'ONI_GATEWAY_INTERFACE')
      return
    }
    const g = gw as GatewayNet
    assert.equal(baselineVmPing, 0, 'before the gateway, vm0 could ping the outside')
    const ctl = g.ctl.ns
    const tcp = await ctl.exec('curl', ['-s', '-m', '10', `http://${g.outside.address}:${TCP_PORT}/`])
    assert.equal(tcp.stdout, 'outside-tcp\n')
    const udp = await ctl.exec('socat', ['-t', '3', '-', `UDP:${g.outside.address}:${UDP_PORT}`], { input: 'ctl-udp\n' })
    assert.equal(udp.stdout, 'ctl-udp\n')
    assert.equal((await ctl.exec('ping', ['-n', '-c', '1', '-W', '2', g.outside.address])).code, 0)
    const dns = await ctl.exec('dig', ['+short', `@${g.outside.address}`, names.ctl, 'A', '+time=3', '+tries=1'])
    assert.equal(dns.stdout.trim(), g.outside.address)
  })

  it('an unmodified curl in each VM fetches from an onion service by name', async () => {
    if (!privileged) return
    for (const i of [0, 1]) {
      const r = await vm(i).ns.exec('curl', ['-s', '-S', '-m', '90', `http://${onion}/from-vm${i}`], { timeoutMs: 120_000 })
      assert.equal(r.stdout, `onion-ok /from-vm${i}\n`, r.stderr)
    }
    assert.deepEqual(webHits.filter(h => h.startsWith('/from-vm')), ['/from-vm0', '/from-vm1'])
  })

  it('two VMs\' streams and lookups leave through different circuits (tor\'s own STREAM events)', async () => {
    if (!privileged) return
    const byStream = new Map<string, string>()
    const circuits = new Map<string, Set<string>>()
    for (const e of streams) {
      if (e.status === 'NEW' && e.sourceAddr !== undefined) byStream.set(e.streamId, e.sourceAddr.split(':')[0])
      if ((e.status === 'SENTCONNECT' || e.status === 'SUCCEEDED') && e.circuitId !== '0') {
        const src = byStream.get(e.streamId)
        if (src === undefined) continue
        if (!circuits.has(src)) circuits.set(src, new Set())
        circuits.get(src)?.add(e.circuitId)
      }
    }
    const a = circuits.get(vm(0).address)
    const b = circuits.get(vm(1).address)
    assert.ok(a !== undefined && a.size > 0, `vm0's streams in tor's events: ${JSON.stringify([...circuits])}`)
    assert.ok(b !== undefined && b.size > 0, 'vm1\'s streams in tor\'s events')
    assert.deepEqual([...a].filter(c => b.has(c)), [], 'no circuit carried both VMs')
    // Their name lookups reached tor from two different (per-VM) loopback sources.
    const sources = new Set(streams.filter(e => e.status === 'NEWRESOLVE' && e.target.startsWith(onion)).map(e => e.sourceAddr?.split(':')[0]))
    assert.ok(sources.size >= 2 && [...sources].every(s => s?.startsWith('127.83.') === true), JSON.stringify([...sources]))
    // The gateway's status agrees with tor.
    const s = await status()
    assert.deepEqual(new Set(s.vms.find((v: any) => v.address === vm(0).address).circuits), a)
  })

  it('TCP by address and by name, UDP, ping and DNS to the outside resolver never arrive there', async () => {
    if (!privileged) return
    await tryToLeak(0, 'running')
    await tryToLeak(1, 'running')
    // DNS sent to the outside resolver was answered by the gateway's own resolver instead
    // (the outside server would answer every question with an A record).
    const txt = await vm(0).ns.exec('dig', [`@${gw?.outside.address as string}`, `txt-${names.leak}`, 'TXT', '+time=3', '+tries=1'])
    assert.match(txt.stdout, /status: NOTIMP/)
    // Other networks cannot use the gateway's TransPort or resolver as an open Tor proxy.
    const gst = await status()
    const ctl = gw?.ctl.ns as Netns
    const viaCtl = await ctl.exec('curl', ['-s', '-m', '5', `http://${gw?.routerAddress as string}:${gst.tor.transPort as number}/`], { timeoutMs: 15_000 })
    assert.notEqual(viaCtl.code, 0)
    const dnsCtl = await ctl.exec('dig', [`@${gw?.routerAddress as string}`, '-p', gst.dns.listen[0].split(':')[1], 'files.vm', '+time=2', '+tries=1'], { timeoutMs: 10_000 })
    assert.match(dnsCtl.stdout, /timed out|no servers could be reached/)
    const fromVms = outsideLog.filter(l => vm(0).address !== '' && (l.includes(`"${vm(0).address}"`) || l.includes(`"${vm(1).address}"`)))
    assert.deepEqual(fromVms, [], 'the outside servers heard from a VM')
    const s = await until('drops counted', 10_000, async () => {
      const st = await status()
      return st.vms.find((v: any) => v.address === vm(0).address)?.dropped.packets > 0 ? st : undefined
    })
    assert.ok(s.firewall.dropped.forward.packets > 0)
  })

  it('a blocklisted name is answered locally and never reaches tor; VM hostnames and .onet names resolve', async () => {
    if (!privileged) return
    const ns = vm(0).ns
    const blocked = await ns.exec('dig', ['+short', names.blocked, 'A', '+time=5', '+tries=1'])
    assert.equal(blocked.stdout.trim(), '0.0.0.0')
    // A name that is not blocked does go to tor (which cannot resolve it on this network).
    await ns.exec('dig', [names.ordinary, 'A', '+time=12', '+tries=1'], { timeoutMs: 20_000 })
    await until('tor saw the ordinary lookup', 10_000, async () => streams.some(e => e.target.startsWith(names.ordinary)) ? true : undefined)
    assert.equal(streams.some(e => e.target.includes(names.blocked)), false, 'tor was asked for a blocklisted name')

    assert.equal((await ns.exec('dig', ['+short', 'files.vm', 'A'])).stdout.trim(), '10.152.152.21')
    // `<onion>.onet` answers the onet address of a key whose signed mapping is in the OHT.
    const identity = await readKeyFile(join(base, 'state', 'identity.key'))
    const mapping = signMapping(identity, { linkPort: 4789, issuedAt: Date.now() })
    const put = await oht(['put', '--mutable', '--salt', new TextDecoder().decode(MAPPING_SALT), '-'], env, { stdin: mapping })
    assert.equal(put.code, 0, put.stderr)
    const aaaa = await ns.exec('dig', ['+short', `${identity.onion}.onet`, 'AAAA'])
    assert.equal(aaaa.stdout.trim(), formatIpv6(virtualAddressFromPublicKey(identity.publicKey)))
    identity.destroy()
    // An alias whose key published no mapping does not resolve.
    assert.match((await ns.exec('dig', ['nomap.onet', 'AAAA'])).stdout, /status: NXDOMAIN/)
  })

  it('reports per-VM connections, bytes and DNS answered/blocked in the CLI, the API and the metrics', async () => {
    if (!privileged) return
    const s = await status()
    assert.equal(s.enabled, true)
    assert.equal(s.state, 'active')
    assert.equal(s.firewall.rules, 'active')
    assert.equal(s.firewall.present, true)
    assert.equal(s.tor.connected, true)
    const v0 = s.vms.find((v: any) => v.address === vm(0).address)
    assert.ok(v0.connections.total >= 1 && v0.bytesUp > 0 && v0.bytesDown > 0, JSON.stringify(v0))
    assert.ok(v0.dns.queries > 0 && v0.dns.blocked >= 1 && v0.dns.local >= 1)
    const text = await oht(['gateway', 'status'], env)
    assert.equal(text.code, 0)
    assert.match(text.stdout, new RegExp(`^${vm(0).address.replace(/\./g, '\\.')}\\s+-\\s+\\d+\\s+\\d+`, 'm'))
    assert.match(text.stdout, /firewall\s+table inet oht_gw_\w+: active/)
    const metrics = (await oht(['metrics'], env)).stdout
    assert.match(metrics, /^oht_gateway_up 1$/m)
    assert.match(metrics, new RegExp(`^oht_gateway_vm_dns_blocked_total\\{vm="${vm(0).address.replace(/\./g, '\\.')}"\\} [1-9]`, 'm'))
    assert.match(metrics, /^oht_gateway_connections_total [1-9]/m)
  })

  it('without nft, or without CAP_NET_ADMIN, a daemon says so clearly and keeps running', async () => {
    if (!privileged) return
    const cases: Array<{ label: string, nftPath: string, prefix?: string[], code: string, message: RegExp }> = [
      { label: 'no-nft', nftPath: '/nonexistent/nft', code: 'ONI_GATEWAY_NFT_MISSING', message: /needs nftables.*install it/ },
      { label: 'no-cap', nftPath: 'nft', prefix: ['setpriv', '--bounding-set=-net_admin'], code: 'ONI_GATEWAY_PERMISSION', message: /CAP_NET_ADMIN/ }
    ]
    for (const c of cases) {
      const envX = ohtEnv(base, join(base, c.label))
      envX.OHT_CONFIG = join(base, `${c.label}.json`)
      await writeFile(envX.OHT_CONFIG, JSON.stringify({ gateway: { enabled: true, interface: gw?.bridge, nft_path: c.nftPath, table: `${table}_x` } }))
      assert.equal((await oht(['init'], envX)).code, 0)
      const d = await startDaemon(c.label, envX, ['--tor-control', `127.0.0.1:${(net as Testnet).clients[1].controlPort}`], { timeoutMs: 300_000, ...(c.prefix !== undefined ? { prefix: c.prefix } : {}) })
      try {
        assert.ok(d.logs.some(l => l.includes('gateway unavailable') && l.includes(c.code)), d.logs.join('\n'))
        const st = JSON.parse((await oht(['status', '--json'], envX)).stdout)
        assert.equal(st.phase, 'running', 'the rest of the daemon runs')
        const g = await oht(['gateway', 'status', '--json'], envX)
        assert.equal(g.code, 1)
        const body = JSON.parse(g.stdout)
        assert.equal(body.state, 'unavailable')
        assert.equal(body.error.code, c.code)
        assert.match(body.error.message, c.message)
        const put = await oht(['put', `still working ${c.label}`], envX)
        assert.equal(put.code, 0, put.stderr)
      } finally {
        assert.equal(await d.stop(), 0)
      }
      assert.notEqual((await run('nft', ['list', 'table', 'inet', `${table}_x`])).code, 0, 'it applied nothing')
    }
  })

  it('SIGHUP reloads the blocklist', async () => {
    if (!privileged) return
    await writeFile(join(base, 'blocklist.hosts'), `0.0.0.0 ${names.blocked}\n0.0.0.0 ${names.later}\n`)
    daemon?.child.kill('SIGHUP')
    await until('blocklist reloaded', 10_000, async () => (await status()).blocklist.names === 2 ? true : undefined)
    assert.equal((await vm(1).ns.exec('dig', ['+short', names.later, 'A'])).stdout.trim(), '0.0.0.0')
    assert.equal(daemon?.child.exitCode, null, 'SIGHUP did not end the daemon')
  })

  it('with tor killed mid-test the VMs are cut off, not exposed; then onion access comes back', async () => {
    if (!privileged) return
    const before = JSON.parse((await oht(['status', '--json'], env)).stdout)
    process.kill(before.tor.pid, 'SIGKILL')
    await until('the gateway notices', 20_000, async () => (await status()).tor.connected === false ? true : undefined)
    const cut = await vm(0).ns.exec('curl', ['-s', '-m', '10', `http://${onion}/while-tor-is-dead`], { timeoutMs: 20_000 })
    assert.notEqual(cut.code, 0)
    await tryToLeak(0, 'tordead')
    await tryToLeak(1, 'tordead')
    await until('tor back under the gateway', 180_000, async () => (await status()).tor.connected === true ? true : undefined)
    await watchTor()
    const back = await until('onion reachable again', 120_000, async () => {
      const r = await vm(1).ns.exec('curl', ['-s', '-m', '30', `http://${onion}/after-tor-restart`], { timeoutMs: 40_000 })
      return r.code === 0 ? r : undefined
    })
    assert.equal(back.stdout, 'onion-ok /after-tor-restart\n')
    assert.ok(!webHits.includes('/while-tor-is-dead'))
  })

  it('a clean stop leaves the VMs cut off (lockdown rules), never routed in the clear', async () => {
    if (!privileged) return
    assert.equal(await daemon?.stop(), 0)
    const listed = await run('nft', ['list', 'table', 'inet', table])
    assert.equal(listed.code, 0, 'the table stays in the kernel')
    assert.doesNotMatch(listed.stdout, /chain prerouting/, 'nothing is redirected any more')
    assert.match(listed.stdout, new RegExp(`iifname "${gw?.bridge as string}" counter name "dropped_forward" drop`))
    await tryToLeak(0, 'stopped')
    assert.notEqual((await vm(0).ns.exec('curl', ['-s', '-m', '5', `http://${onion}/after-stop`], { timeoutMs: 15_000 })).code, 0)
  })

  it('attached to a running tor, the gateway adds its options by SETCONF and puts them back on stop', async () => {
    if (!privileged) return
    const client = (net as Testnet).clients[1]
    const control = await client.control()
    try {
      const before = await control.getConf(['TransPort', 'DNSPort', 'AutomapHostsOnResolve'])
      const envA = ohtEnv(base, join(base, 'attach'))
      envA.OHT_CONFIG = join(base, 'attach.json')
      const transPort = randomInt(20_000, 40_000)
      await writeFile(envA.OHT_CONFIG, JSON.stringify({ gateway: { enabled: true, interface: gw?.bridge, trans_port: transPort, dns_port: randomInt(40_000, 60_000), table: `${table}_a` } }))
      assert.equal((await oht(['init'], envA)).code, 0)
      const d = await startDaemon('attach', envA, ['--tor-control', `127.0.0.1:${client.controlPort}`], { timeoutMs: 300_000 })
      try {
        // Its rules are in; only now is the first daemon's lockdown table removed (as an admin
        // would, by hand): the VMs are never without one of the two.
        assert.equal((await run('nft', ['delete', 'table', 'inet', table])).code, 0)
        const during = await control.getConf(['TransPort', 'AutomapHostsOnResolve'])
        assert.ok(during.get('TransPort')?.some(v => v.startsWith(`${gw?.routerAddress as string}:${transPort}`)), JSON.stringify([...during]))
        assert.deepEqual(during.get('AutomapHostsOnResolve'), ['1'])
        const r = await until('onion through the attached tor', 120_000, async () => {
          const c = await vm(0).ns.exec('curl', ['-s', '-m', '30', `http://${onion}/via-attached-tor`], { timeoutMs: 40_000 })
          return c.code === 0 ? c : undefined
        })
        assert.equal(r.stdout, 'onion-ok /via-attached-tor\n')
        await tryToLeak(0, 'attached')
      } finally {
        assert.equal(await d.stop(), 0)
      }
      const after = await control.getConf(['TransPort', 'DNSPort', 'AutomapHostsOnResolve'])
      assert.deepEqual([...after], [...before], 'tor\'s options are as they were')
    } finally {
      await control.close()
    }
  })

  it('the capture in `outside` holds the control network\'s probes and nothing from the VMs', async () => {
    if (!privileged) return
    const t = tcpdump as ChildProcess
    await new Promise<void>((resolve) => { t.once('exit', () => { resolve() }); t.kill('SIGINT') })
    const dump = await run('tcpdump', ['-r', pcap, '-n', '-tt'])
    assert.equal(dump.code, 0, dump.stderr)
    const esc = (a: string): string => a.replace(/\./g, '\\.')
    const fromVm = dump.stdout.split('\n').filter(l => vm(0) !== undefined && [vm(0).address, vm(1).address].some(a => new RegExp(`\\bIP ${esc(a)}(\\.\\d+)? >`).test(l)))
    assert.deepEqual(fromVm, [], 'packets from a VM reached the outside')
    const testNames = [names.leak, names.outsideByName, names.blocked, names.ordinary, names.later]
    const dnsLeaks = dump.stdout.split('\n').filter(l => testNames.some(n => l.includes(n)))
    assert.deepEqual(dnsLeaks, [], 'DNS queries for test names reached the outside')
    // The capture did work: it holds the control network's TCP, UDP, ping and DNS.
    const ctl = dump.stdout.split('\n').filter(l => new RegExp(`\\bIP ${esc(gw?.ctl.address as string)}(\\.\\d+)? >`).test(l))
    assert.ok(ctl.some(l => l.includes(`.${TCP_PORT}: Flags [S]`)), 'the ctl TCP SYN is in the capture')
    assert.ok(ctl.some(l => l.includes('ICMP echo request')))
    assert.ok(ctl.some(l => l.includes(`.${UDP_PORT}: UDP`)))
    assert.ok(dump.stdout.includes(names.ctl), 'the ctl DNS query is in the capture')
  })
})
