/**
 * The authentication policy against real tors (DisableNetwork 1, control ports on 127.0.0.1):
 * a tor with CookieAuthentication 1 is reached by SAFECOOKIE with only the cookie path it
 * names, or by plain COOKIE with the cookie file configured; a tor without any control
 * authentication is refused unless NULL auth was asked for. Both tors are killed by PID.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { systemClock } from '../../src/core/index.ts'
import { attachTor } from '../../src/tor/attach.ts'
import { connectTorControl } from '../../src/tor/control/index.ts'
import { TorError } from '../../src/tor/errors.ts'

interface Tor { child: ChildProcess, port: number, dataDir: string }

async function startTor (dir: string, name: string, auth: string[]): Promise<Tor> {
  const base = join(dir, name)
  await writeFile(`${base}.torrc`, '', { mode: 0o600 })
  const child = spawn('tor', ['-f', `${base}.torrc`, '--DataDirectory', `${base}.data`, '--SocksPort', '0',
    '--ControlPort', '127.0.0.1:auto', '--ControlPortWriteToFile', `${base}.port`, ...auth,
    '--DisableNetwork', '1', '--GeoIPFile', '', '--GeoIPv6File', '',
    '--__OwningControllerProcess', String(process.pid), '--Log', `notice file ${base}.log`], { stdio: 'ignore' })
  for (let i = 0; ; i++) {
    const m = /PORT=127\.0\.0\.1:(\d+)/.exec(await readFile(`${base}.port`, 'utf8').catch(() => ''))
    if (m != null) return { child, port: Number(m[1]), dataDir: `${base}.data` }
    if (child.exitCode !== null || i > 300) throw new Error(`tor did not open its control port: ${await readFile(`${base}.log`, 'utf8').catch(() => '')}`)
    await systemClock.sleep(50)
  }
}

async function kill (t: Tor | undefined): Promise<void> {
  if (t?.child.pid === undefined || t.child.exitCode !== null || t.child.signalCode !== null) return
  const exited = new Promise(resolve => t.child.once('exit', resolve))
  process.kill(t.child.pid, 'SIGKILL')
  await exited
}

describe('tor control authentication policy with real tors', () => {
  let dir = ''
  let cookieTor: Tor | undefined
  let openTor: Tor | undefined

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oht-tor-auth-'))
    ;[cookieTor, openTor] = await Promise.all([
      startTor(dir, 'cookie', ['--CookieAuthentication', '1']),
      startTor(dir, 'open', ['--CookieAuthentication', '0'])
    ])
  })

  after(async () => {
    await Promise.all([kill(cookieTor), kill(openTor)])
    await rm(dir, { recursive: true, force: true })
  })

  it('CookieAuthentication 1: attachTor with no cookie path authenticates by SAFECOOKIE', async () => {
    const control = await attachTor({ port: (cookieTor as Tor).port })
    try {
      assert.equal(control.authenticated, true)
      assert.match(await control.getInfoOne('version'), /^0\.4\./)
    } finally {
      await control.close()
    }
  })

  it('plain COOKIE needs the cookie file configured, and then works', async () => {
    const t = cookieTor as Tor
    const peerNamed = await connectTorControl({ port: t.port })
    try {
      await assert.rejects(peerNamed.authenticate({ method: 'COOKIE' }), (err: unknown) => err instanceof TorError && err.code === 'TOR_AUTH_FAILED' && /cookiePath/.test(err.message))
    } finally {
      await peerNamed.close()
    }
    const configured = await connectTorControl({ port: t.port })
    try {
      await configured.authenticate({ method: 'COOKIE', cookiePath: join(t.dataDir, 'control_auth_cookie') })
      assert.equal(configured.authenticated, true)
    } finally {
      await configured.close()
    }
  })

  it('a tor without control authentication is refused by default and accepted with allowNullAuth', async () => {
    const t = openTor as Tor
    await assert.rejects(attachTor({ port: t.port }), (err: unknown) => err instanceof TorError && err.code === 'TOR_AUTH_FAILED' && /allowNullAuth/.test(err.message) && /CookieAuthentication 1/.test(err.message))
    const control = await attachTor({ port: t.port }, { allowNullAuth: true })
    try {
      assert.match(await control.getInfoOne('version'), /^0\.4\./)
    } finally {
      await control.close()
    }
  })
})
