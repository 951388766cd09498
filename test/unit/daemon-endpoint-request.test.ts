/** POST /v1/endpoints bodies: the short and the routes form, keys, and every refusal typed. */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseEndpointRequest } from '../../src/daemon/index.ts'

describe('endpoint requests', () => {
  it('takes the short form, the routes form and the three key kinds', () => {
    assert.deepEqual(parseEndpointRequest({ name: 'web', port: 80, target: 'localhost:8080' }), { name: 'web', routes: [{ virtualPort: 80, target: '127.0.0.1:8080' }] })
    assert.deepEqual(parseEndpointRequest({ name: 'site', routes: [{ virtualPort: 80, target: '127.0.0.1:1' }, { virtualPort: 443, target: 'unix:/run/s.sock' }], key: { type: 'derived', path: 'Web.Blog' } }), {
      name: 'site', routes: [{ virtualPort: 80, target: '127.0.0.1:1' }, { virtualPort: 443, target: 'unix:/run/s.sock' }], key: { type: 'derived', path: 'web.blog' }
    })
    assert.deepEqual(parseEndpointRequest({ name: 'k', port: 1, target: '[::1]:2', key: { type: 'file', path: '/etc/key' } }).key, { type: 'file', path: '/etc/key' })
    assert.deepEqual(parseEndpointRequest({ name: 'n', port: 1, target: '127.0.0.1:2', key: { type: 'new' } }).key, { type: 'new' })
  })

  it('refuses what would be wrong or unsafe, with DAEMON_BAD_REQUEST and a message that says why', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: '-x', port: 1, target: '127.0.0.1:1' }, /endpoint name/],
      [{ name: 'x', port: 0, target: '127.0.0.1:1' }, /not a port/],
      [{ name: 'x', port: 1, target: '10.0.0.1:80' }, /must be a loopback/],
      [{ name: 'x', port: 1, target: 'example.com:80' }, /must be a loopback/],
      [{ name: 'x', port: 1, target: '127.0.0.1:70000' }, /must be a loopback/],
      [{ name: 'x', routes: [] }, /routes must be a list/],
      [{ name: 'x', routes: [{ virtualPort: 1, target: '127.0.0.1:1' }, { virtualPort: 1, target: '127.0.0.1:2' }] }, /routed twice/],
      [{ name: 'x', port: 1, target: '127.0.0.1:1', routes: [] }, /not both/],
      [{ name: 'x', port: 1, target: '127.0.0.1:1', key: { type: 'derived', path: 'a..b' } }, /key path/],
      [{ name: 'x', port: 1, target: '127.0.0.1:1', key: { type: 'file', path: 'rel/key' } }, /absolute/],
      [{ name: 'x', port: 1, target: '127.0.0.1:1', key: { type: 'magic' } }, /key type/],
      [{ name: 'x', port: 1, target: '127.0.0.1:1', extra: true }, /unknown field extra/],
      [{ name: 'x' }, /needs name, port/]
    ]
    for (const [body, message] of cases) assert.throws(() => parseEndpointRequest(body), { code: 'DAEMON_BAD_REQUEST', message }, JSON.stringify(body))
  })
})
