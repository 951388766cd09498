/**
 * torrc generation for the launcher and the private network, and the small parsers the
 * launcher and testnet use on tor's answers.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { countHsDirs, nodeTorrc, parseBootstrapPhase, renderTorrc, votingSchedule } from '../../src/tor/index.ts'
import type { AuthorityLine } from '../../src/tor/index.ts'

const AUTHS: AuthorityLine[] = [0, 1, 2].map(i => ({ nickname: `ohtauth${i}`, orPort: 5000 + i, dirPort: 6000 + i, v3ident: String(i).repeat(40), fingerprint: 'F'.repeat(39) + String(i) }))

describe('renderTorrc', () => {
  it('writes one line per value, repeats arrays, maps booleans and quotes empty values', () => {
    const text = renderTorrc({ SocksPort: 0, ExitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'], SafeLogging: false, GeoIPFile: '', Skipped: null, Gone: undefined })
    assert.equal(text, 'SocksPort 0\nExitPolicy accept 127.0.0.0/8:*\nExitPolicy reject *:*\nSafeLogging 0\nGeoIPFile ""\n')
  })

  it('refuses values that would inject another option, and malformed names', () => {
    assert.throws(() => renderTorrc({ Nickname: 'x\nControlPort 9051' }), { code: 'TOR_BAD_CONFIG' })
    assert.throws(() => renderTorrc({ 'Bad Name': 1 }), { code: 'TOR_BAD_CONFIG' })
  })
})

describe('votingSchedule', () => {
  it('puts the first valid-after time 9 s after now, on the whole second, as an offset in the 10 s cycle', () => {
    const s = votingSchedule(1_700_000_003_400)
    assert.equal(s.firstValidAfterMs, 1_700_000_012_000)
    assert.equal(s.offsetS, 2)
  })
})

describe('nodeTorrc', () => {
  const common = (t: Record<string, unknown>): void => {
    assert.equal(t.TestingTorNetwork, 1)
    assert.equal(t.LearnCircuitBuildTimeout, 0)
    assert.equal(t.ShutdownWaitLength, 0)
    assert.deepEqual(t.DirAuthority, AUTHS.map(a => `${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`))
  }

  it('makes authorities vote on the shifted schedule and call every relay Stable at once', () => {
    const t = nodeTorrc({ role: 'authority', nickname: 'ohtauth0', dataDir: '/d', orPort: 5000, dirPort: 6000, votingOffsetS: 7, authorities: AUTHS })
    common(t)
    assert.equal(t.DirPort, '127.0.0.1:6000')
    assert.equal(t.ORPort, '127.0.0.1:5000')
    assert.equal(t.V3AuthoritativeDirectory, 1)
    assert.equal(t.TestingV3AuthVotingStartOffset, 7)
    assert.equal(t.AuthDirVoteStableGuaranteeMinUptime, 0)
    assert.equal(t.AuthDirVoteStableGuaranteeMTBF, 0)
  })

  it('lets relays exit to loopback only and never resolve DNS', () => {
    const t = nodeTorrc({ role: 'relay', nickname: 'ohtrelay0', dataDir: '/d', orPort: 5005, authorities: AUTHS })
    common(t)
    assert.deepEqual(t.ExitPolicy, ['accept 127.0.0.0/8:*', 'reject *:*'])
    assert.equal(t.ServerDNSResolvConfFile, '/dev/null')
    assert.equal(t.DirPort, undefined)
    assert.equal(t.AuthoritativeDirectory, undefined)
  })

  it('gives clients no relay role', () => {
    const t = nodeTorrc({ role: 'client', nickname: 'ohtclient0', dataDir: '/d', authorities: AUTHS })
    common(t)
    assert.equal(t.ORPort, undefined)
    assert.equal(t.ExitRelay, undefined)
  })

  it('binds every address it names to 127.0.0.1', () => {
    const text = renderTorrc(nodeTorrc({ role: 'authority', nickname: 'a', dataDir: '/d', orPort: 1, dirPort: 2, authorities: AUTHS }))
    const addrs = text.match(/\b\d+\.\d+\.\d+\.\d+\b/g) ?? []
    assert.ok(addrs.length > 0)
    for (const a of addrs) assert.match(a, /^127\.0\.0\.[01]$/)
  })
})

describe('tor answer parsers', () => {
  it('parses bootstrap phases', () => {
    assert.deepEqual(parseBootstrapPhase('NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits"'),
      { percent: 75, tag: 'enough_dirinfo', summary: 'Loaded enough directory info to build circuits' })
    assert.equal(parseBootstrapPhase('garbage'), undefined)
  })

  it('counts relays with the HSDir flag in a consensus', () => {
    const ns = [
      'r ohtauth0 AAAA BBBB 2026-11-22 01:00:00 127.0.0.1 5000 6000',
      's Authority Exit Fast Guard HSDir Running Stable V2Dir Valid',
      'r ohtrelay0 CCCC DDDD 2026-11-22 01:00:00 127.0.0.1 5003 0',
      's Exit Fast Guard Running Stable V2Dir Valid',
      'r ohtrelay1 EEEE FFFF 2026-11-22 01:00:00 127.0.0.1 5004 0',
      's Fast HSDir Running Valid'
    ].join('\n')
    assert.equal(countHsDirs(ns), 2)
  })
})
