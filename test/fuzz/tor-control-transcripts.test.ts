/**
 * Hostile input for the tor control client, beyond the generic decoder run in
 * decoders.test.ts: the project's recorded transcripts truncated and mutated, and the
 * controller itself (not just its parsers) fed garbage while a command waits. Whatever arrives, the
 * framing layer and every reply/event parser either return a result or throw a TorError
 * (never another exception), and a command fed garbage settles by its deadline (never hangs).
 * Seeds are fixed; a failure prints the seed and iteration.
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { Duplex } from 'node:stream'
import { describe, it } from 'node:test'
import { FakeClock, SeededRng } from '../../src/core/index.ts'
import type { Rng } from '../../src/core/index.ts'
import { parseEvent, ReplyFramer, TorControl } from '../../src/tor/control/index.ts'
import type { ControlReply } from '../../src/tor/control/index.ts'
import { parseAddOnion, parseAuthChallenge, parseGetConf, parseGetInfo, parseOnionList, parseProtocolInfo } from '../../src/tor/control/replies.ts'
import { TorError } from '../../src/tor/errors.ts'
import { loadFixture, serverBytes } from '../fixtures/tor/transcript.ts'

const ALPHABET = Buffer.from('0123456789256+-. =\r\n\r\n"\\ABCDEFGHOKabc/:,$~\x00\xff')

function randomWire (rng: Rng, maxLen: number): Uint8Array {
  const n = rng.int(maxLen + 1)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = rng.next() < 0.85 ? ALPHABET[rng.int(ALPHABET.length)] : rng.int(256)
  return out
}

/** Runs `fn`; anything thrown must be a TorError. */
function onlyTorErrors (where: string, fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof TorError)) assert.fail(`${where}: threw ${String(err)} (${(err as Error)?.stack ?? ''})`)
  }
}

/** Feeds bytes in random chunks, then runs every parser over whatever replies came out. */
function exercise (where: string, bytes: Uint8Array, rng: Rng): void {
  const framer = new ReplyFramer({ maxLineBytes: 256, maxReplyBytes: 64 * 1024 })
  const replies: ControlReply[] = []
  onlyTorErrors(where, () => {
    for (let off = 0; off < bytes.length;) {
      const n = 1 + rng.int(64)
      replies.push(...framer.push(bytes.subarray(off, off + n)))
      off += n
    }
  })
  for (const r of replies) {
    onlyTorErrors(where, () => parseEvent(r))
    onlyTorErrors(where, () => parseGetInfo(r))
    onlyTorErrors(where, () => parseGetConf(r))
    onlyTorErrors(where, () => parseProtocolInfo(r))
    onlyTorErrors(where, () => parseAddOnion(r))
    onlyTorErrors(where, () => parseAuthChallenge(r))
    onlyTorErrors(where, () => { for (const l of r.lines) parseOnionList(l.data ?? l.text) })
  }
}

const fixtureNames = readdirSync(new URL('../fixtures/tor/', import.meta.url)).filter(f => f.endsWith('.json')).map(f => f.slice(0, -5)).sort()

describe('tor control under hostile input', () => {
  it('random bytes: 3000 inputs, only TorErrors', () => {
    const seed = 'tor-fuzz-random'
    const rng = new SeededRng(seed)
    for (let i = 0; i < 3000; i++) exercise(`seed ${seed} iteration ${i}`, randomWire(rng, 400), rng)
  })

  it('random bytes after a valid reply prefix reach the parsers deeply', () => {
    const seed = 'tor-fuzz-prefix'
    const rng = new SeededRng(seed)
    const prefixes = ['250-', '250+', '650 CIRC ', '650 HS_DESC ', '650 STATUS_CLIENT NOTICE BOOTSTRAP ', '250 AUTHCHALLENGE ', '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=', '250-ServiceID=', '650 STREAM 1 ']
    for (let i = 0; i < 2000; i++) {
      const prefix = Buffer.from(prefixes[rng.int(prefixes.length)])
      const body = randomWire(rng, 120)
      exercise(`seed ${seed} iteration ${i}`, Buffer.concat([prefix, body, Buffer.from('\r\n250 OK\r\n')]), rng)
    }
  })

  it(`truncated real transcripts (${fixtureNames.length} fixtures): a typed error or a clean prefix, never a crash`, () => {
    const rng = new SeededRng('tor-fuzz-truncate')
    for (const name of fixtureNames) {
      const all = serverBytes(loadFixture(name))
      // the long network transcript: its first 6 KB hold every reply shape it has
      const bytes = all.subarray(0, 6000)
      const cuts = Math.min(bytes.length, 150)
      for (let i = 0; i < cuts; i++) {
        const at = bytes.length <= 150 ? i : rng.int(bytes.length)
        const framer = new ReplyFramer()
        onlyTorErrors(`${name} cut at ${at}`, () => {
          const replies = framer.push(bytes.subarray(0, at))
          for (const r of replies) if (r.status === 650) parseEvent(r)
        })
      }
    }
  })

  it('mutated real transcripts: 1-4 random byte changes, 600 variants, only TorErrors', () => {
    const seed = 'tor-fuzz-mutate'
    const rng = new SeededRng(seed)
    const sources = fixtureNames.map(n => serverBytes(loadFixture(n))).map((b) => { const s = rng.int(Math.max(1, b.length - 1500)); return b.subarray(s, s + 1500) })
    for (let i = 0; i < 600; i++) {
      const src = sources[rng.int(sources.length)]
      const bytes = Uint8Array.from(src)
      for (let k = 1 + rng.int(4); k > 0; k--) bytes[rng.int(bytes.length)] = rng.next() < 0.5 ? ALPHABET[rng.int(ALPHABET.length)] : rng.int(256)
      exercise(`seed ${seed} iteration ${i}`, bytes, rng)
    }
  })

  it('a command answered with garbage settles by its deadline with a value or a TorError', async () => {
    const seed = 'tor-fuzz-controller'
    const rng = new SeededRng(seed)
    for (let i = 0; i < 300; i++) {
      const transport = new Duplex({ read () {}, write (_c, _e, cb) { cb() } })
      const clock = new FakeClock(0)
      const control = new TorControl(transport, { clock, commandTimeoutMs: 100, maxLineBytes: 128, maxReplyBytes: 4096 })
      let outcome: unknown = 'pending'
      const p = control.getInfo(['version', 'config-text']).then((v) => { outcome = v }, (e: unknown) => { outcome = e })
      transport.push(Buffer.from(randomWire(rng, 300)))
      await clock.advance(100)
      await p
      assert.notEqual(outcome, 'pending', `seed ${seed} iteration ${i}: hung`)
      if (!(outcome instanceof Map)) assert.ok(outcome instanceof TorError, `seed ${seed} iteration ${i}: ${String(outcome)}`)
      await control.close()
    }
  })
})
