/**
 * A scripted tor behind a real TorControl, for unit tests of code that drives tor: every
 * command line written is recorded, and `reply(line)` decides the answer (a full reply text,
 * "250 OK" when it returns undefined). `event(text)` pushes a 650 event.
 *
 * @example
 * const tor = fakeTorControl((line) => line === 'GETINFO version' ? '250-version=0.4.9.11\r\n250 OK\r\n' : undefined)
 * await tor.control.getInfoOne('version')
 * tor.event('650 STREAM 1 NEW 0 1.2.3.4:80 SOURCE_ADDR=10.0.0.2:5000')
 */
import { Duplex } from 'node:stream'
import { TorControl } from '../../src/tor/control/index.ts'

export interface FakeTorControl {
  control: TorControl
  /** Command lines, without CRLF. */
  lines: string[]
  event(text: string): void
  hangUp(): void
}

export function fakeTorControl (reply: (line: string) => string | undefined): FakeTorControl {
  const lines: string[] = []
  let buf = ''
  const transport: Duplex = new Duplex({
    read () {},
    write (chunk: Buffer, _enc, cb) {
      buf += chunk.toString('utf8')
      let nl
      while ((nl = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 2)
        lines.push(line)
        const r = reply(line) ?? '250 OK\r\n'
        setImmediate(() => { transport.push(Buffer.from(r, 'utf8')) })
      }
      cb()
    }
  })
  const control = new TorControl(transport, {})
  return {
    control,
    lines,
    event: (text) => { transport.push(Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'utf8')) },
    hangUp: () => { transport.push(null) }
  }
}
