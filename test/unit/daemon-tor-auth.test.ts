/**
 * The daemon's tor auth settings reach attachTor: the configured cookie file (the only cookie
 * plain COOKIE auth will send), the NULL opt-in, and a refusal that names the config keys.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FakeClock } from '../../src/core/index.ts'
import type { TorControl } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'
import { validateConfig } from '../../src/daemon/config.ts'
import { createJsonLog } from '../../src/daemon/json-log.ts'
import { TorLink } from '../../src/daemon/tor-link.ts'

const fakeControl = {
  onClose: () => () => {},
  onEvent: () => () => {},
  addEvents: async () => {},
  close: async () => {},
  getInfoOne: async (key: string) => key === 'net/listeners/socks' ? '"127.0.0.1:9050"' : ''
}

function link (tor: Record<string, unknown>, attachTor: ConstructorParameters<typeof TorLink>[2]['attachTor']): TorLink {
  const clock = new FakeClock()
  const config = validateConfig({ tor: { mode: 'attach', control: '127.0.0.1:9051', ...tor } }, 'test', '/state')
  return new TorLink(config, '/state', { clock, log: createJsonLog(() => {}, clock, 'error'), launchTor: async () => { throw new Error('attach mode') }, attachTor })
}

describe('daemon tor authentication settings', () => {
  it('passes tor.control_cookie_file and tor.allow_null_auth to attachTor and keeps them in the session', async () => {
    const seen: unknown[] = []
    const l = link({ control_cookie_file: '/run/tor/control.authcookie', allow_null_auth: true }, async (_t, opts) => {
      seen.push({ cookiePath: opts.cookiePath, allowNullAuth: opts.allowNullAuth })
      return fakeControl as unknown as TorControl
    })
    const s = await l.start()
    assert.deepEqual(seen, [{ cookiePath: '/run/tor/control.authcookie', allowNullAuth: true }])
    assert.equal(s.cookiePath, '/run/tor/control.authcookie')
    assert.equal(s.allowNullAuth, true)
    await l.stop()
  })

  it('by default passes no cookie file and does not accept NULL auth', async () => {
    const seen: unknown[] = []
    const l = link({}, async (_t, opts) => {
      seen.push({ cookiePath: opts.cookiePath, allowNullAuth: opts.allowNullAuth })
      return fakeControl as unknown as TorControl
    })
    await l.start()
    assert.deepEqual(seen, [{ cookiePath: undefined, allowNullAuth: undefined }])
    await l.stop()
  })

  it('a refused authentication keeps TOR_AUTH_FAILED and names the config keys to set', async () => {
    const l = link({}, async () => { throw new TorError('TOR_AUTH_FAILED', 'no usable authentication method: tor offers NULL') })
    await assert.rejects(l.start(), (err: unknown) => {
      assert.ok(err instanceof TorError)
      assert.equal(err.code, 'TOR_AUTH_FAILED')
      assert.match(err.message, /tor\.allow_null_auth/)
      assert.match(err.message, /tor\.control_cookie_file/)
      return true
    })
    await l.stop()
  })

  it('rejects a non-boolean allow_null_auth, naming the field', () => {
    assert.throws(() => validateConfig({ tor: { mode: 'attach', control: '127.0.0.1:9051', allow_null_auth: 'yes' } }, 'oht.toml', '/state'), /tor\.allow_null_auth/)
  })
})
