import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ReplyFramer, parseReplies } from '../../src/tor/control/framing.ts'
import { TorError } from '../../src/tor/errors.ts'

const enc = (s: string): Uint8Array => Buffer.from(s, 'utf8')

describe('tor control framing', () => {
  it('frames single-line, multi-line and data replies', () => {
    const replies = parseReplies(enc('250 OK\r\n250-version=0.4.9.11\r\n250+config-text=\r\nSocksPort 0\r\n..dotted\r\n.\r\n250 OK\r\n'))
    assert.equal(replies.length, 2)
    assert.deepEqual(replies[0], { status: 250, lines: [{ status: 250, divider: ' ', text: 'OK' }] })
    assert.equal(replies[1].lines.length, 3)
    assert.equal(replies[1].lines[0].text, 'version=0.4.9.11')
    assert.equal(replies[1].lines[1].divider, '+')
    assert.equal(replies[1].lines[1].data, 'SocksPort 0\n.dotted')
  })

  it('reassembles replies split at every byte boundary', () => {
    const wire = enc('250-a=1\r\n250+b=\r\nx\r\n.\r\n250 OK\r\n650 CIRC 1 BUILT\r\n')
    const framer = new ReplyFramer()
    const out = []
    for (const b of wire) out.push(...framer.push(Uint8Array.of(b)))
    assert.equal(out.length, 2)
    assert.equal(out[0].lines[1].data, 'x')
    assert.equal(out[1].status, 650)
    assert.equal(framer.midReply, false)
  })

  it('rejects a line over the limit before buffering it', () => {
    const framer = new ReplyFramer({ maxLineBytes: 16 })
    assert.throws(() => framer.push(enc('250 ' + 'a'.repeat(40))), (e) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL')
    // the framer stays failed: the stream is desynchronised
    assert.throws(() => framer.push(enc('250 OK\r\n')), (e) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL')
  })

  it('rejects a status change within one reply and a bare LF', () => {
    assert.throws(() => parseReplies(enc('250-a\r\n550 b\r\n')), (e) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL')
    assert.throws(() => parseReplies(enc('250 OK\n')), (e) => e instanceof TorError && e.code === 'TOR_CONTROL_PROTOCOL')
  })
})
