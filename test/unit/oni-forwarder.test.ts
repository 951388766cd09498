import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatRouteTarget, parseRouteTarget, startForwarder } from '../../src/oni/forwarder.ts'
import { isOniError } from '../../src/oni/errors.ts'

async function roundTrip (port: number, msg: string): Promise<string> {
  return await new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    s.on('data', (d) => { out += String(d) })
    s.on('error', () => {})
    s.on('close', () => { resolve(out) })
    s.end(msg)
  })
}

describe('oni route forwarder', () => {
  it('parses and formats route targets', () => {
    assert.deepEqual(parseRouteTarget('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 })
    assert.deepEqual(parseRouteTarget('8080'), { host: '127.0.0.1', port: 8080 })
    assert.deepEqual(parseRouteTarget('[::1]:22'), { host: '::1', port: 22 })
    assert.deepEqual(parseRouteTarget('unix:/run/app.sock'), { path: '/run/app.sock' })
    assert.equal(formatRouteTarget(parseRouteTarget('[::1]:22')), '[::1]:22')
    for (const bad of ['', 'host', 'host:0', 'host:70000', 'unix:relative', 'a b:80', 'unix:/x\0y']) {
      assert.throws(() => parseRouteTarget(bad), (e) => isOniError(e, 'ONI_ROUTE'), bad)
    }
  })

  it('pipes a half-closed TCP stream both ways and counts bytes and connections', async () => {
    const upper = createServer({ allowHalfOpen: true }, (s) => {
      let data = ''
      s.on('data', (d) => { data += String(d) })
      s.on('end', () => { s.end(data.toUpperCase()) })
    })
    await new Promise<void>((resolve) => upper.listen(0, '127.0.0.1', resolve))
    const f = await startForwarder({ target: { host: '127.0.0.1', port: (upper.address() as { port: number }).port } })
    try {
      assert.equal(await roundTrip(f.port, 'onion'), 'ONION')
      assert.equal(await roundTrip(f.port, 'again'), 'AGAIN')
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(f.stats.total, 2)
      assert.equal(f.stats.bytesIn, 10)
      assert.equal(f.stats.bytesOut, 10)
      assert.equal(f.stats.open, 0)
    } finally {
      await f.close()
      await new Promise<void>((resolve) => upper.close(() => { resolve() }))
    }
  })

  it('forwards to a unix socket and counts a failed target', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oni-fwd-'))
    const path = join(dir, 's.sock')
    const srv = createServer((s) => { s.end('unix ok') })
    await new Promise<void>((resolve) => srv.listen(path, resolve))
    const f = await startForwarder({ target: { path } })
    const dead = await startForwarder({ target: { path: join(dir, 'missing.sock') } })
    try {
      assert.equal(await roundTrip(f.port, "x"), "unix ok")
      assert.equal(await roundTrip(dead.port, 'x'), '')
      assert.equal(dead.stats.failed, 1)
    } finally {
      await f.close()
      await dead.close()
      srv.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
