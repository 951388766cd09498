/**
 * One endpoint manager: a pre-ONI daemon's endpoints.json moves into ONI's state with the same
 * keys (so the same onion addresses), the old file is kept as endpoints.json.migrated, a rerun
 * imports nothing twice, and a malformed old file stops the move with an error naming it.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { systemClock } from '../../src/core/index.ts'
import { deriveChildSeed, generateIdentity, identityFromSeed, readKeyFile, type Identity } from '../../src/crypto/index.ts'
import { createJsonLog, migrateDaemonEndpoints } from '../../src/daemon/index.ts'
import { importEndpoints } from '../../src/oni/index.ts'

const OLD = {
  endpoints: [
    { name: 'web', port: 80, target: '127.0.0.1:8080' },
    { name: '_admin', port: 8443, target: 'localhost:9443' },
    { name: 'sock', port: 22, target: 'unix:/run/app.sock' }
  ]
}

describe('endpoints.json migration to ONI', () => {
  let dir = ''
  let owner: Identity
  const logs: string[] = []
  const log = createJsonLog((l) => { logs.push(l) }, systemClock)
  const expected = (name: string): string => { const s = deriveChildSeed(owner.seed, `endpoint.${name}`); try { return `${identityFromSeed(s).onion}.onion` } finally { s.fill(0) } }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-migrate-'))
    owner = generateIdentity()
  })
  after(async () => { owner.destroy(); await rm(dir, { recursive: true, force: true }) })

  it('moves every endpoint with its derived key, same address, and keeps the old file as .migrated', async () => {
    const state = join(dir, 'a')
    await mkdir(state, { mode: 0o700 })
    const oldText = JSON.stringify(OLD, null, 2)
    await writeFile(join(state, 'endpoints.json'), oldText, { mode: 0o600 })
    const r = await migrateDaemonEndpoints(state, join(state, 'oni'), owner, log)
    assert.deepEqual(r?.imported.map(e => [e.requested, e.name, e.address]), [
      ['web', 'web', expected('web')],
      ['_admin', 'admin', expected('_admin')],
      ['sock', 'sock', expected('sock')]
    ])
    const oni = JSON.parse(await readFile(join(state, 'oni', 'endpoints.json'), 'utf8'))
    assert.equal(oni.version, 1)
    assert.deepEqual(oni.endpoints.map((e: { name: string, key: unknown, routes: unknown }) => [e.name, e.key, e.routes]), [
      ['web', { type: 'imported' }, [{ virtualPort: 80, target: '127.0.0.1:8080', mode: 'forward' }]],
      ['admin', { type: 'imported' }, [{ virtualPort: 8443, target: '127.0.0.1:9443', mode: 'forward' }]],
      ['sock', { type: 'imported' }, [{ virtualPort: 22, target: 'unix:/run/app.sock', mode: 'forward' }]]
    ])
    for (const [name, old] of [['web', 'web'], ['admin', '_admin'], ['sock', 'sock']]) {
      const keyFile = join(state, 'oni', 'keys', `${name}.key`)
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
      const id = await readKeyFile(keyFile)
      assert.equal(`${id.onion}.onion`, expected(old), `${name}: the same key as before`)
      id.destroy()
    }
    assert.equal((await stat(join(state, 'oni', 'endpoints.json'))).mode & 0o777, 0o600)
    await assert.rejects(stat(join(state, 'endpoints.json')), { code: 'ENOENT' })
    assert.equal(await readFile(join(state, 'endpoints.json.migrated'), 'utf8'), oldText)
    assert.ok(logs.some(l => l.includes('endpoint migrated to ONI') && l.includes('"was":"_admin"')))

    // nothing left to move; the same list again (restored from a backup) adds nothing twice
    assert.equal(await migrateDaemonEndpoints(state, join(state, 'oni'), owner, log), undefined)
    await writeFile(join(state, 'endpoints.json'), oldText, { mode: 0o600 })
    const again = await migrateDaemonEndpoints(state, join(state, 'oni'), owner, log)
    assert.equal(again?.imported.length, 0)
    assert.equal(again?.present.length, 3)
    assert.equal(JSON.parse(await readFile(join(state, 'oni', 'endpoints.json'), 'utf8')).endpoints.length, 3)
    await stat(join(state, 'endpoints.json.migrated-2'))
  })

  it('a taken name gets a suffix; a different address never replaces an existing endpoint', async () => {
    const oniDir = join(dir, 'b', 'oni')
    const other = generateIdentity()
    await importEndpoints(oniDir, [{ name: 'web', identity: other, routes: [{ virtualPort: 80, target: '127.0.0.1:1' }] }])
    const state = join(dir, 'b')
    await writeFile(join(state, 'endpoints.json'), JSON.stringify({ endpoints: [OLD.endpoints[0]] }))
    const r = await migrateDaemonEndpoints(state, oniDir, owner, log)
    assert.deepEqual(r?.imported.map(e => [e.name, e.address]), [['web-2', expected('web')]])
    const names = JSON.parse(await readFile(join(oniDir, 'endpoints.json'), 'utf8')).endpoints.map((e: { name: string, onion: string }) => [e.name, e.onion])
    assert.deepEqual(names, [['web', other.onion], ['web-2', expected('web').replace('.onion', '')]])
    other.destroy()
  })

  it('a malformed old file stops the move, is named in the error, and stays as it was', async () => {
    for (const text of ['{not json', JSON.stringify({ endpoints: [{ name: 'web', port: 99999, target: '127.0.0.1:1' }] }), JSON.stringify({ endpoints: [{ name: 'web', port: 80, target: '10.0.0.1:80' }] }), JSON.stringify({ list: [] })]) {
      const state = await mkdtemp(join(dir, 'bad-'))
      await writeFile(join(state, 'endpoints.json'), text)
      await assert.rejects(migrateDaemonEndpoints(state, join(state, 'oni'), owner, log), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'DAEMON_STATE')
        assert.ok(err.message.includes(join(state, 'endpoints.json')), err.message)
        return true
      })
      assert.equal(await readFile(join(state, 'endpoints.json'), 'utf8'), text)
      await assert.rejects(stat(join(state, 'oni', 'endpoints.json')), { code: 'ENOENT' })
    }
  })
})
