/**
 * QuotedString escaping and unescaping, keyword-argument splitting, and the command builders'
 * argument checks (what goes on the wire for each option, what is refused).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../../src/core/index.ts'
import { addOnionCommand, delOnionCommand, onionClientAuthAddCommand, setConfCommand, setEventsCommand } from '../../src/tor/control/commands.ts'
import { quoteString, splitArgs, tokenize, unquote } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'

const badArg = (e: unknown): boolean => e instanceof TorError && e.code === 'TOR_BAD_ARGUMENT'
const KEY = Buffer.alloc(64, 3).toString('base64')

describe('tor control quoting', () => {
  it('quoteString escapes quotes and backslashes and unquote inverts it (500 random strings)', () => {
    const rng = new SeededRng('quoting')
    const chars = [...'ab "\\\t=é€😀x ']
    for (let i = 0; i < 500; i++) {
      let s = ''
      for (let n = rng.int(20); n > 0; n--) s += chars[rng.int(chars.length)]
      const q = quoteString(s)
      assert.ok(q.startsWith('"') && q.endsWith('"'))
      assert.equal(unquote(q), s)
      assert.deepEqual(tokenize(`K=${q} next`), [{ key: 'K', value: s }, { value: 'next' }])
    }
  })

  it('unquotes tor\'s escapes: \\n \\r \\t \\" \\\\ and octal bytes (UTF-8 reassembled)', () => {
    assert.equal(unquote('"a\\nb\\rc\\td\\"e\\\\f"'), 'a\nb\rc\td"e\\f')
    assert.equal(unquote('"\\303\\251t\\303\\251"'), 'été')
    assert.equal(unquote('bare'), 'bare')
  })

  it('refuses CR, LF and NUL in a quoted value', () => {
    for (const s of ['a\rb', 'a\nb', 'a\0b']) assert.throws(() => quoteString(s), badArg)
  })

  it('an unterminated quote or a bad octal escape is a protocol error', () => {
    for (const bad of ['"abc', '"abc\\', '"\\777"', '"a"b']) {
      assert.throws(() => unquote(bad), (e: unknown) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL', bad)
    }
  })

  it('splits positional words from KEY=VALUE, keeping $fp=nick positional', () => {
    assert.deepEqual(splitArgs('UPLOADED addr UNKNOWN $AB=nick REASON="x y" HSDIR_INDEX=01'), {
      positional: ['UPLOADED', 'addr', 'UNKNOWN', '$AB=nick'],
      keywords: Object.assign(Object.create(null) as Record<string, string>, { REASON: 'x y', HSDIR_INDEX: '01' })
    })
  })
})

describe('tor control command builders', () => {
  it('ADD_ONION puts every option on the wire in the documented form', () => {
    const line = addOnionCommand({
      key: { type: 'ED25519-V3', blob: `ED25519-V3:${KEY}` },
      ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }, { virtualPort: 81, target: 'unix:/run/oht.sock' }, { virtualPort: 82, target: '[::1]:9' }, { virtualPort: 83 }],
      detach: true,
      discardPK: true,
      nonAnonymous: true,
      maxStreamsCloseCircuit: true,
      maxStreams: 9,
      clientAuthV3: ['a'.repeat(52)],
      powDefenses: { enabled: true, queueRate: 5, queueBurst: 10 }
    })
    assert.equal(line, `ADD_ONION ED25519-V3:${KEY} Flags=Detach,DiscardPK,NonAnonymous,MaxStreamsCloseCircuit,V3Auth MaxStreams=9 ` +
      'PoWDefensesEnabled=1 PoWQueueRate=5 PoWQueueBurst=10 Port=80,127.0.0.1:8080 Port=81,unix:/run/oht.sock Port=82,[::1]:9 Port=83 ' +
      `ClientAuthV3=${'a'.repeat(52)}`)
    assert.equal(addOnionCommand({ key: { type: 'NEW' }, ports: [{ virtualPort: 1 }] }), 'ADD_ONION NEW:ED25519-V3 Port=1')
  })

  it('ADD_ONION refuses bad keys, ports, targets, MaxStreams and client keys', () => {
    const bad = [
      { key: { type: 'ED25519-V3' as const, blob: Buffer.alloc(32).toString('base64') }, ports: [{ virtualPort: 80 }] },
      { key: { type: 'ED25519-V3' as const, blob: 'not base64!' }, ports: [{ virtualPort: 80 }] },
      { key: { type: 'NEW' as const }, ports: [] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 0 }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 65536 }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80, target: '127.0.0.1:99999' }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80, target: 'host port' }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80, target: 'unix:/a b' }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80, target: 'unix:' }] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80 }], maxStreams: -1 },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80 }], maxStreams: 1.5 },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80 }], clientAuthV3: ['short'] },
      { key: { type: 'NEW' as const }, ports: [{ virtualPort: 80 }], powDefenses: { enabled: true, queueRate: -1 } },
      { key: { type: 'RSA1024' } as unknown as { type: 'NEW' }, ports: [{ virtualPort: 80 }] }
    ]
    for (const [i, opts] of bad.entries()) assert.throws(() => addOnionCommand(opts), badArg, `case ${i}`)
  })

  it('DEL_ONION accepts a bare id or x.onion and refuses anything else', () => {
    const id = 'a'.repeat(56)
    assert.equal(delOnionCommand(id), `DEL_ONION ${id}`)
    assert.equal(delOnionCommand(`${id}.onion`), `DEL_ONION ${id}`)
    for (const bad of ['a'.repeat(55), 'A'.repeat(56), `${'a'.repeat(55)}1`, '']) assert.throws(() => delOnionCommand(bad), badArg)
  })

  it('SETCONF quotes what needs quoting, repeats arrays, resets null, maps booleans', () => {
    assert.equal(setConfCommand({ ContactInfo: 'a "b"', SocksPort: ['127.0.0.1:9050', 9051], DisableNetwork: false, Nickname: null, Log: [] }),
      'SETCONF ContactInfo="a \\"b\\"" SocksPort=127.0.0.1:9050 SocksPort=9051 DisableNetwork=0 Nickname Log')
    assert.equal(setConfCommand({ ContactInfo: '' }), 'SETCONF ContactInfo=""')
    assert.throws(() => setConfCommand({}), badArg)
    assert.throws(() => setConfCommand({ X: Number.NaN }), badArg)
  })

  it('ONION_CLIENT_AUTH_ADD checks the address, the 32-byte key and the nickname', () => {
    const id = 'b'.repeat(56)
    const key = Buffer.alloc(32, 1).toString('base64')
    assert.equal(onionClientAuthAddCommand(`${id}.onion`, key, { nickname: 'bob', permanent: true }), `ONION_CLIENT_AUTH_ADD ${id} x25519:${key} ClientName=bob Flags=Permanent`)
    assert.throws(() => onionClientAuthAddCommand('nope', key), badArg)
    assert.throws(() => onionClientAuthAddCommand(id, Buffer.alloc(31).toString('base64')), badArg)
    assert.throws(() => onionClientAuthAddCommand(id, key, { nickname: 'a b' }), badArg)
  })

  it('SETEVENTS takes upper-case event names only', () => {
    assert.equal(setEventsCommand([]), 'SETEVENTS')
    assert.equal(setEventsCommand(['CIRC', 'HS_DESC']), 'SETEVENTS CIRC HS_DESC')
    assert.throws(() => setEventsCommand(['circ']), badArg)
  })
})
