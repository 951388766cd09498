import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { renderGatewayRules, renderLockdownRules, renderRemoval, type FirewallSpec } from '../../src/oni/gateway/nft-rules.ts'
import { classifyNftError, parseCounters } from '../../src/oni/gateway/nft.ts'
import { isOniError } from '../../src/oni/errors.ts'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/gateway/${name}`, import.meta.url), 'utf8')
const base: FirewallSpec = { table: 'oht_gateway', interface: 'br-vms', address: '10.152.152.10', transPort: 9040, dnsPort: 9053, localTcpPorts: [], localUdpPorts: [], maxVms: 1024 }

/** `nft -c` asks the kernel to check a ruleset without applying it: possible as root with nft installed. */
function nftCanCheck (): boolean {
  return process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0
}

describe('gateway nftables rules', () => {
  it('renders the active ruleset exactly as the golden file', () => {
    assert.equal(renderGatewayRules(base), fixture('active.nft'))
  })

  it('renders IPv6 torification and local ports exactly as the golden file', () => {
    assert.equal(renderGatewayRules({ ...base, address6: 'fd00:152::10', localTcpPorts: [22], localUdpPorts: [67] }), fixture('active-ipv6-local.nft'))
  })

  it('renders the lockdown ruleset exactly as the golden file', () => {
    assert.equal(renderLockdownRules({ ...base, localTcpPorts: [22] }), fixture('lockdown.nft'))
  })

  it('replaces an earlier table in the same transaction and never sets a drop policy', () => {
    for (const text of [renderGatewayRules(base), renderLockdownRules(base)]) {
      const lines = text.split('\n').filter(l => !l.startsWith('#'))
      assert.deepEqual(lines.slice(0, 2), ['table inet oht_gateway {}', 'delete table inet oht_gateway'])
      // A drop policy on a base chain would drop the whole machine's traffic, not just the VMs'.
      assert.doesNotMatch(text, /policy drop/)
      // Every drop is confined to the inside interface.
      // (or to the router's inside address arriving on another interface).
      for (const l of text.split('\n').filter(l => /\bdrop$/.test(l))) assert.match(l, /\b[io]ifname "br-vms"|iifname != "br-vms" ip daddr 10\.152\.152\.10 /)
      // Nothing from inside is ever accepted in the forward chain.
      const forward = text.slice(text.indexOf('chain forward'))
      assert.doesNotMatch(forward, /accept$/m)
    }
  })

  it('keeps the TransPort and the resolver from serving any other interface', () => {
    const text = renderGatewayRules(base)
    const input = text.slice(text.indexOf('chain input'))
    const firstAccept = input.search(/ accept\n/)
    assert.ok(input.indexOf('iifname != "br-vms" ip daddr 10.152.152.10 tcp dport { 9040, 9053 }') < firstAccept)
    assert.ok(input.indexOf('iifname != "br-vms" ip daddr 10.152.152.10 udp dport 9053') < firstAccept)
  })

  it('sends DNS to the resolver before the catch-all TCP redirect', () => {
    const text = renderGatewayRules(base)
    assert.ok(text.indexOf('tcp dport 53 dnat') < text.indexOf('meta l4proto tcp dnat'))
  })

  it('removal deletes the table whether or not it exists', () => {
    assert.equal(renderRemoval('oht_gateway'), 'table inet oht_gateway {}\ndelete table inet oht_gateway\n')
  })

  it('refuses values that would break out of the rule text', () => {
    const cases: Array<Partial<FirewallSpec>> = [
      { interface: 'eth0" accept #' }, { interface: 'a-name-far-too-long' }, { interface: '' },
      { table: 'Bad-Table' }, { table: 'x; flush ruleset' },
      { address: '10.0.0.300' }, { address: '::1' }, { address6: 'not-v6' },
      { transPort: 0 }, { dnsPort: 65536 }, { transPort: 9053 },
      { localTcpPorts: [9040] }, { localUdpPorts: [53] }, { localTcpPorts: [1.5] }, { maxVms: 0 }
    ]
    for (const c of cases) {
      assert.throws(() => renderGatewayRules({ ...base, ...c }), (e) => isOniError(e, 'ONI_GATEWAY_CONFIG'), JSON.stringify(c))
    }
    assert.throws(() => renderRemoval('a"b'), (e) => isOniError(e, 'ONI_GATEWAY_CONFIG'))
  })

  it('is accepted by the kernel (nft -c) when this machine can check it', (t) => {
    if (!nftCanCheck()) { t.diagnostic('not root or no nft: the kernel check did not run'); return }
    for (const text of [renderGatewayRules(base), renderGatewayRules({ ...base, address6: 'fd00::1', localTcpPorts: [22, 80], localUdpPorts: [67] }), renderLockdownRules(base), renderRemoval('oht_gateway')]) {
      execFileSync('nft', ['-c', '-f', '-'], { input: text })
    }
  })
})

describe('gateway nft errors and counters', () => {
  it('names a missing nft binary and missing CAP_NET_ADMIN by code', () => {
    const enoent = Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' })
    assert.equal(classifyNftError('nft', ['-f', '-'], enoent, '').code, 'ONI_GATEWAY_NFT_MISSING')
    const eperm = Object.assign(new Error('Command failed'), { code: 1 as unknown as string })
    const perm = classifyNftError('nft', ['-f', '-'], eperm, 'Error: Could not process rule: Operation not permitted\n')
    assert.equal(perm.code, 'ONI_GATEWAY_PERMISSION')
    assert.match(perm.message, /CAP_NET_ADMIN/)
    const other = classifyNftError('nft', ['-f', '-'], eperm, 'Error: syntax error, unexpected junk')
    assert.equal(other.code, 'ONI_GATEWAY_RULES')
    assert.match(other.message, /syntax error/)
  })

  it('reads named counters and per-address set counters from nft -j output', () => {
    const json = JSON.stringify({ nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'oht_gateway', handle: 1 } },
      { counter: { family: 'inet', name: 'dropped_input', table: 'oht_gateway', handle: 2, packets: 3, bytes: 180 } },
      { counter: { family: 'inet', name: 'dropped_forward', table: 'oht_gateway', handle: 3, packets: 7, bytes: 588 } },
      { set: { family: 'inet', name: 'vm_drops4', table: 'oht_gateway', type: 'ipv4_addr', elem: [{ elem: { val: '10.152.152.11', timeout: 3600, expires: 3590, counter: { packets: 6, bytes: 504 } } }] } },
      { set: { family: 'inet', name: 'vm_drops6', table: 'oht_gateway', type: 'ipv6_addr', elem: [{ elem: { val: 'fd00::11', counter: { packets: 1, bytes: 84 } } }, 'junk', { elem: null }] } },
      { set: { family: 'inet', name: 'other', table: 'oht_gateway', elem: [{ elem: { val: '1.2.3.4', counter: { packets: 9, bytes: 9 } } }] } }
    ] })
    const c = parseCounters(json)
    assert.equal(c.present, true)
    assert.deepEqual(c.droppedInput, { packets: 3, bytes: 180 })
    assert.deepEqual(c.droppedForward, { packets: 7, bytes: 588 })
    assert.deepEqual([...c.byAddress.entries()], [['10.152.152.11', { packets: 6, bytes: 504 }], ['fd00::11', { packets: 1, bytes: 84 }]])
    assert.throws(() => parseCounters('not json'), (e) => isOniError(e, 'ONI_GATEWAY_RULES'))
    assert.throws(() => parseCounters('{"x":1}'), (e) => isOniError(e, 'ONI_GATEWAY_RULES'))
  })
})
