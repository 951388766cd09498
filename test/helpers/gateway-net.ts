/**
 * The network of a router VM, built from namespaces this test creates, around the root
 * namespace playing the router (that is where the private Tor network listens on 127.0.0.1,
 * so the daemon and its tor must run there):
 *
 *   vm0 ns ─veth─┐
 *   vm1 ns ─veth─┴─ bridge "ogb…" (inside interface, 10.I.J.1)  ROOT = router (daemon + tor)
 *   ctl ns ─veth── "ogc…" (10.C.D.1)        a control network the router really forwards for
 *   outside ns ─veth── "ogo…" (10.O.P.1)    the "internet": TCP, UDP and DNS servers, tcpdump
 *
 * Forwarding is switched on only for these interfaces (net.ipv4.conf.<if>.forwarding; the
 * global switch is untouched), so without the gateway the router WOULD route the VMs to the
 * outside: that is the path the gateway must close, and `ctl` proves it open for others.
 * Every name is unique per run; `destroy()` removes the namespaces, interfaces and netns files.
 */
import { execFile } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { createNetns, type ExecResult, type Netns } from './netns.ts'

export interface GatewayNet {
  id: string
  /** The bridge in the root namespace: the gateway's inside interface. */
  bridge: string
  routerAddress: string
  vms: Array<{ ns: Netns, address: string }>
  ctl: { ns: Netns, address: string, routerIf: string }
  outside: { ns: Netns, address: string, routerIf: string, ifname: string }
  destroy(): Promise<void>
}

export async function run (cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null)
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

async function must (cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`)
  return r.stdout
}

/** Three /24s in 10.0.0.0/8 below 10.192/10 (the .onion virtual range), none of them in use here. */
async function freeSubnets (n: number): Promise<string[]> {
  const used = (await must('ip', ['-4', 'route', 'show', 'table', 'all'])) + JSON.stringify(networkInterfaces())
  const out: string[] = []
  while (out.length < n) {
    const s = `10.${randomInt(20, 180)}.${randomInt(0, 256)}`
    if (!used.includes(`${s}.`) && !out.includes(s)) out.push(s)
  }
  return out
}

export async function createGatewayNet (opts: { vms?: number, resolvConf?: string } = {}): Promise<GatewayNet> {
  const id = randomBytes(2).toString('hex')
  const [inside, ctlNet, outNet] = await freeSubnets(3)
  const bridge = `ogb${id}`
  const ctlIf = `ogc${id}`
  const outIf = `ogo${id}`
  const created: string[] = []
  const spaces: Netns[] = []
  const destroy = async (): Promise<void> => {
    for (const ns of spaces) await ns.delete().catch(() => {})
    for (const l of created.reverse()) await run('ip', ['link', 'del', l])
  }
  try {
    const routerAddress = `${inside}.1`
    await must('ip', ['link', 'add', bridge, 'type', 'bridge'])
    created.push(bridge)
    await must('ip', ['addr', 'add', `${routerAddress}/24`, 'dev', bridge])
    await must('ip', ['link', 'set', bridge, 'up'])
    const vms: GatewayNet['vms'] = []
    for (let i = 0; i < (opts.vms ?? 2); i++) {
      const ns = await createNetns(`gvm${i}`, { resolvConf: opts.resolvConf ?? `nameserver ${routerAddress}\noptions timeout:5 attempts:1\n` })
      spaces.push(ns)
      const host = `ogv${id}${i}`
      await must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name])
      created.push(host)
      await must('ip', ['link', 'set', host, 'master', bridge])
      await must('ip', ['link', 'set', host, 'up'])
      const address = `${inside}.${11 + i}`
      await must('ip', ['-n', ns.name, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      await must('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up'])
      await must('ip', ['-n', ns.name, 'route', 'add', 'default', 'via', routerAddress])
      vms.push({ ns, address })
    }
    const pair = async (label: string, rootIf: string, net: string): Promise<{ ns: Netns, address: string, routerIf: string, ifname: string }> => {
      const ns = await createNetns(label)
      spaces.push(ns)
      await must('ip', ['link', 'add', rootIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name])
      created.push(rootIf)
      await must('ip', ['addr', 'add', `${net}.1/24`, 'dev', rootIf])
      await must('ip', ['link', 'set', rootIf, 'up'])
      await must('ip', ['-n', ns.name, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0'])
      await must('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up'])
      await must('ip', ['-n', ns.name, 'route', 'add', 'default', 'via', `${net}.1`])
      return { ns, address: `${net}.2`, routerIf: rootIf, ifname: 'eth0' }
    }
    const ctl = await pair('gctl', ctlIf, ctlNet)
    const outside = await pair('gout', outIf, outNet)
    // Per-interface forwarding: the router routes between these interfaces only.
    for (const i of [bridge, ctlIf, outIf]) await must('sysctl', ['-q', '-w', `net.ipv4.conf.${i}.forwarding=1`])
    return { id, bridge, routerAddress, vms, ctl, outside, destroy }
  } catch (err) {
    await destroy()
    throw err
  }
}
