/**
 * The lint's one exception for the simulator: src/netsim/world/ may import src/oht/, and no
 * other file of src/netsim/ may. Runs the real lint on a copy of src/ with a planted import.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const root = new URL('../..', import.meta.url).pathname

async function lint (dir: string): Promise<{ code: number, out: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(dir, 'scripts', 'lint.ts')], { cwd: root, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (typeof err.code === 'number' ? err.code : 1), out: stdout + stderr })
    })
  })
}

describe('lint: netsim/world may import oht, nothing else in netsim may', { timeout: 120_000 }, () => {
  let dir = ''
  before(async () => {
    // inside the repository, so the copy resolves typescript from its node_modules
    await mkdir(join(root, '.tmp'), { recursive: true })
    dir = await mkdtemp(join(root, '.tmp', 'lint-'))
    await cp(join(root, 'src'), join(dir, 'src'), { recursive: true })
    await cp(join(root, 'scripts'), join(dir, 'scripts'), { recursive: true })
  })
  after(async () => { if (dir !== '') await rm(dir, { recursive: true, force: true }) })

  it('is clean on the tree as it is (the world imports oht)', async () => {
    const r = await lint(dir)
    assert.equal(r.code, 0, r.out)
  })

  it('flags src/netsim importing src/oht outside world/', async () => {
    const planted = join(dir, 'src', 'netsim', 'planted.ts')
    await writeFile(planted, "import { OhtError } from '../oht/index.ts'\nexport const x = OhtError\n")
    try {
      const r = await lint(dir)
      assert.equal(r.code, 1, r.out)
      assert.match(r.out, /src\/netsim\/planted\.ts:1: layer netsim\/ may not import oht\//)
    } finally {
      await rm(planted)
    }
  })

  it('still flags src/netsim/world importing anything else its layer may not (net/)', async () => {
    const planted = join(dir, 'src', 'netsim', 'world', 'planted.ts')
    await writeFile(planted, "import { NetError } from '../../net/errors.ts'\nexport const x = NetError\n")
    try {
      const r = await lint(dir)
      assert.equal(r.code, 1, r.out)
      assert.match(r.out, /src\/netsim\/world\/planted\.ts:1: layer netsim\/ may not import net\//)
    } finally {
      await rm(planted)
    }
  })
})
