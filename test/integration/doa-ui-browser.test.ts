/**
 * The template app's UI in a real browser (Debian's Chromium through playwright-core, no
 * browser download), served by a real `oht daemon` through `oht app run`: the page loads under
 * its strict Content-Security-Policy without a single violation, reads the state, and a
 * signature made in the page is an op signed by the daemon with the user's key, in the state the
 * CLI then reads. The daemon runs with the local transport: what is tested is the page and the
 * run server, not the network (doa-apps.test.ts does the network over tor).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

const ROOT = new URL('../..', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'oht.js')
const CHROMIUM = '/usr/bin/chromium'

function cli (args: string[], env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`oht ${args.join(' ')} timed out`)) }, 60_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout: out, stderr: err }) })
  })
}

describe('the template app in Chromium, through oht app run', () => {
  let base: string
  let env: Record<string, string>
  let daemon: ChildProcess | undefined
  let browser: Browser | undefined

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'oht-doa-ui-'))
    env = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OHT_')) env[k] = v
    Object.assign(env, { HOME: base, XDG_CONFIG_HOME: join(base, 'config'), XDG_DATA_HOME: join(base, 'data'), OHT_STATE_DIR: join(base, 'state') })
    assert.equal((await cli(['init'], env)).code, 0)
    daemon = spawn(process.execPath, [BIN, 'daemon', '--transport', 'local'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    const st = await cli(['status', '--wait', '60s'], env)
    assert.equal(st.code, 0, st.stderr)
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)`)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  })

  after(async () => {
    await browser?.close()
    if (daemon !== undefined && daemon.exitCode === null) {
      daemon.kill('SIGTERM')
      await new Promise(resolve => daemon?.once('exit', resolve))
    }
    await rm(base, { recursive: true, force: true })
  })

  it('loads under its CSP, shows the state, and signs the book from the page', async () => {
    const dir = join(base, 'guestbook')
    assert.equal((await cli(['app', 'new', dir], env)).code, 0)
    const pub = await cli(['app', 'publish', dir], env)
    assert.equal(pub.code, 0, pub.stderr)
    const run = await cli(['app', 'run', 'guestbook'], env)
    assert.equal(run.code, 0, run.stderr)
    const url = run.stdout.trim()
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/)

    const page = await (browser as Browser).newPage()
    const problems: string[] = []
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()) })
    page.on('pageerror', (e) => { problems.push(String(e)) })
    const failed: string[] = []
    page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`) })
    await page.goto(url)
    // The token went into a cookie and out of the address bar.
    assert.equal(new URL(page.url()).search, '')
    // Locators, not waitForFunction: the page's CSP (rightly) refuses the eval that would need.
    await page.locator('#count', { hasText: /^0$/ }).waitFor()
    assert.equal(await page.isVisible('#sign'), true, 'the local run server lets the page sign')
    assert.equal(await page.isVisible('#readonly'), false)
    await page.fill('#name', 'ada')
    await page.fill('#message', 'signed in a browser')
    await page.click('button[type=submit]')
    await page.locator('#count', { hasText: /^1$/ }).waitFor()
    assert.match(await page.textContent('#entries') ?? '', /ada\s*signed in a browser/)
    // A refused op shows the validator's reason in the page.
    await page.fill('#name', 'x'.repeat(40))
    await page.fill('#message', ' ')
    await page.click('button[type=submit]')
    await page.locator('#error', { hasText: /\S/ }).waitFor()
    assert.match(await page.textContent('#error') ?? '', /message is 1\.\.280 characters/)
    assert.deepEqual(problems, [], 'no script errors, no CSP violations')
    assert.deepEqual(failed, ['422 /api/submit'], 'every request answered but the refused op')
    await page.close()

    // The daemon signed and folded it: the CLI reads the same state.
    const st = JSON.parse((await cli(['app', 'state', 'guestbook', '--json', '--no-sync'], env)).stdout) as { state: { signatures: number, entries: Array<{ name: string, message: string }> } }
    assert.equal(st.state.signatures, 1)
    assert.deepEqual(st.state.entries.map(e => [e.name, e.message]), [['ada', 'signed in a browser']])
  })
})
