import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock } from '../../src/core/index.ts'
import type { TorControl, TorEvent } from '../../src/tor/control/index.ts'
import { validateConfig } from '../../src/daemon/config.ts'
import { createJsonLog } from '../../src/daemon/json-log.ts'
import { TorLink, type TorSession } from '../../src/daemon/tor-link.ts'

/** Just enough of a control connection for the link: events, close, a few GETINFO keys. */
class ScriptedControl {
  closed = false
  private closeListeners: Array<(err?: Error) => void> = []
  private eventListeners: Array<(e: TorEvent) => void> = []
  constructor (readonly socksPort: number) {}
  onClose (l: (err?: Error) => void): () => void { this.closeListeners.push(l); return () => { this.closeListeners = this.closeListeners.filter(x => x !== l) } }
  onEvent (l: (e: TorEvent) => void): () => void { this.eventListeners.push(l); return () => { this.eventListeners = this.eventListeners.filter(x => x !== l) } }
  async getInfoOne (key: string): Promise<string> {
    if (key === 'net/listeners/socks') return `"127.0.0.1:${this.socksPort}"`
    if (key === 'status/bootstrap-phase') return 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"'
    if (key === 'process/pid') return '4242'
    throw new Error(`unexpected GETINFO ${key}`)
  }

  async addEvents (): Promise<void> {}
  async close (): Promise<void> { this.closed = true }
  /** tor went away. */
  die (): void { this.closed = true; for (const l of this.closeListeners) l(new Error('connection reset')) }
  emit (e: Partial<TorEvent>): void { for (const l of this.eventListeners) l(e as TorEvent) }
}

describe('daemon tor link (attach mode)', () => {
  it('reconnects after tor goes away, retrying on the clock, and tells its listeners', async () => {
    const clock = new FakeClock()
    const config = validateConfig({ tor: { mode: 'attach', control: '127.0.0.1:9051', reconnect_interval_ms: 1000 } }, 'test', '/state')
    const controls: ScriptedControl[] = []
    let torUp = true
    let attempts = 0
    const logs: string[] = []
    const link = new TorLink(config, '/state', {
      clock,
      log: createJsonLog((l) => logs.push(l), clock, 'debug'),
      launchTor: async () => { throw new Error('not in attach mode') },
      attachTor: async (target) => {
        attempts++
        assert.deepEqual(target, { host: '127.0.0.1', port: 9051 })
        if (!torUp) throw new Error('ECONNREFUSED')
        const c = new ScriptedControl(9050 + controls.length)
        controls.push(c)
        return c as unknown as TorControl
      }
    })
    const lost: Error[] = []
    const sessions: TorSession[] = []
    link.onLost((err) => lost.push(err))
    link.onReconnect(async (s) => { sessions.push(s) })

    const first = await link.start()
    assert.equal(first.socksPort, 9050)
    assert.equal(first.controlPort, 9051)
    assert.equal(link.state.connected, true)
    assert.equal(link.state.bootstrapPercent, 100)
    assert.equal(link.state.pid, 4242)

    controls[0].emit({ type: 'CIRC', status: 'BUILT' } as Partial<TorEvent>)
    controls[0].emit({ type: 'CIRC', status: 'FAILED' } as Partial<TorEvent>)
    assert.deepEqual(link.state.circuits, { built: 1, failed: 1, closed: 0 })

    torUp = false
    controls[0].die()
    assert.equal(lost.length, 1)
    assert.equal(link.state.connected, false)
    assert.equal(link.current, undefined)
    await clock.advance(3500)
    assert.equal(attempts, 4, 'one attempt per interval while tor is down')
    assert.equal(sessions.length, 0)
    assert.equal(link.state.reconnectAttempts, 3, 'status can say how long getting tor back has been failing')

    torUp = true
    await clock.advance(1000)
    assert.equal(sessions.length, 1)
    assert.equal(sessions[0].socksPort, 9051, 'the new session')
    assert.equal((link.current as TorSession | undefined)?.control, controls[1] as unknown as TorControl)
    assert.equal(link.state.connected, true)
    assert.equal(link.state.restarts, 1)
    assert.equal(link.state.reconnectAttempts, undefined)
    // events of the old connection no longer count
    controls[0].emit({ type: 'CIRC', status: 'BUILT' } as Partial<TorEvent>)
    assert.equal(link.state.circuits.built, 1)
    assert.ok(logs.some(l => l.includes('"msg":"tor is back"')))

    await link.stop()
    assert.equal(controls[1].closed, true, 'stop closes the attached control connection')
    assert.equal(clock.pending, 0, 'no timers left')
  })

  it('stop() during reconnecting ends the retry loop', async () => {
    const clock = new FakeClock()
    const config = validateConfig({ tor: { mode: 'attach', control: '127.0.0.1:9051' } }, 'test', '/state')
    let calls = 0
    const first = new ScriptedControl(9050)
    const link = new TorLink(config, '/state', {
      clock,
      log: createJsonLog(() => {}, clock),
      launchTor: async () => { throw new Error('no') },
      attachTor: async () => { calls++; if (calls > 1) throw new Error('down'); return first as unknown as TorControl }
    })
    await link.start()
    first.die()
    await clock.advance(5000)
    const before = calls
    await link.stop()
    await clock.advance(10_000)
    assert.equal(calls, before, 'no attempts after stop')
    assert.equal(clock.pending, 0)
  })
})
