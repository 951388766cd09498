/**
 * Config errors as a person meets them: `file:line:column: setting what is wrong` for syntax
 * and validation errors in TOML and JSON, only .toml/.json accepted, and the commented default
 * config `oht init` writes parsing to exactly the defaults.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CONFIG_TOML, loadConfig, parseConfigText, validateConfig, writeDefaultConfig } from '../../src/daemon/config.ts'
import { positionOf, tomlLocator, jsonLocator, jsonSyntaxError } from '../../src/daemon/config-source.ts'

const STATE = '/var/lib/oht'

function message (fn: () => unknown): string {
  try { fn() } catch (err) { return (err as Error).message }
  assert.fail('expected an error')
}

describe('config error positions', () => {
  it('TOML syntax errors name file, line and column', () => {
    const m = message(() => parseConfigText('[tor]\nmode = "launch"\ntorpath = \n', '/etc/oht.toml', STATE))
    assert.match(m, /^\/etc\/oht\.toml:3:11: not valid TOML: /)
  })

  it('TOML validation errors point at the setting: in a section, under a nested table, unknown keys, list items', () => {
    const text = [
      '# comment',
      '[node]',
      'transport = "tor"',
      '',
      '[tor]',
      '  mode = "sometimes"'
    ].join('\n')
    assert.match(message(() => parseConfigText(text, '/etc/oht.toml', STATE)), /^\/etc\/oht\.toml:6:3: tor\.mode must be one of "launch", "attach", "none", got "sometimes"$/)
    const nested = '[tor]\nmode = "launch"\n\n[tor.torrc]\nGood = 1\n"Bad key" = 2\n'
    assert.match(message(() => parseConfigText(nested, 'oht.toml', STATE)), /^oht\.toml:6:1: tor\.torrc\.Bad key must be a torrc option name/)
    const unknown = 'stray = 1\n[log]\nlevel = "info"\nlevle = "debug"\n'
    assert.match(message(() => parseConfigText(unknown, 'oht.toml', STATE)), /^oht\.toml:1:1: stray is not a known setting/)
    assert.match(message(() => parseConfigText('[log]\nlevel = "info"\nlevle = "debug"\n', 'oht.toml', STATE)), /^oht\.toml:3:1: log\.levle is not a known setting/)
    const list = '[node]\ntransport = "tcp"\nlisten = [\n  "/ip4/127.0.0.1/tcp/0",\n  "localhost:80"\n]\n'
    assert.match(message(() => parseConfigText(list, 'oht.toml', STATE)), /^oht\.toml:3:1: node\.listen\[1\] must be a multiaddr/)
    assert.match(message(() => parseConfigText('node.transport = "carrier pigeon"\n', 'oht.toml', STATE)), /^oht\.toml:1:1: node\.transport must be one of/)
  })

  it('a multi-line string does not confuse the TOML locator', () => {
    const text = '[identity]\nname = """\nmode = "x"\n"""\n[tor]\nmode = "x"\n'
    assert.deepEqual(tomlLocator(text)(['tor', 'mode']), { line: 6, column: 1 })
  })

  it('JSON syntax errors name line and column on every Node version (not read from V8 message text)', () => {
    const m = message(() => parseConfigText('{\n  "tor": { "mode": "launch", }\n}', '/etc/oht.json', STATE))
    assert.match(m, /^\/etc\/oht\.json:2:30: not valid JSON: property name expected$/)
    assert.match(message(() => parseConfigText('{\n  "log": { "level": "info" }\n', 'c.json', STATE)), /^c\.json:3:1: not valid JSON/)
    assert.match(message(() => parseConfigText('{ "a": 1 } // note', 'c.json', STATE)), /^c\.json:1:12: not valid JSON/)
  })

  it('JSON validation errors point at the setting', () => {
    const text = '{\n  "node": { "transport": "tcp" },\n  "log": {\n    "level": "loud"\n  }\n}\n'
    assert.match(message(() => parseConfigText(text, 'oht.json', STATE)), /^oht\.json:4:5: log\.level must be one of "debug", "info", "warn", "error", got "loud"$/)
    const list = '{"node": {"transport": "tcp", "bootstrap": ["/ip4/1.2.3.4/tcp/1", "nope"]}}'
    assert.match(message(() => parseConfigText(list, 'oht.json', STATE)), /^oht\.json:1:67: node\.bootstrap\[1\] must be a multiaddr/)
    assert.deepEqual(jsonLocator('{"a": {"b": [1, 2]}}')(['a', 'b', 7]), { line: 1, column: 8 })
  })

  it('a setting the locator cannot find still names the file and the field', () => {
    assert.match(message(() => validateConfig({ log: { level: 'loud' } }, 'oht.toml', STATE, () => undefined)), /^oht\.toml: log\.level must be one of/)
  })

  it('positionOf counts lines and characters from 1', () => {
    assert.deepEqual(positionOf('ab\ncd', 0), { line: 1, column: 1 })
    assert.deepEqual(positionOf('ab\ncd', 4), { line: 2, column: 2 })
    assert.equal(jsonSyntaxError('{"a": 1}'), undefined)
  })
})

describe('config files by extension, and the default config', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'oht-cfgsrc-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('accepts only .toml and .json, whether found or named', async () => {
    const yaml = join(dir, 'oht.yaml')
    await writeFile(yaml, 'tor:\n  mode: launch\n')
    await assert.rejects(loadConfig(yaml, dir, true), /oht\.yaml: the name must end in \.toml or \.json .*not \.yaml/)
    assert.throws(() => parseConfigText('', join(dir, 'oht'), dir), /must end in \.toml or \.json/)
    const upper = join(dir, 'OHT.TOML')
    await writeFile(upper, '[log]\nlevel = "warn"\n')
    assert.equal((await loadConfig(upper, dir, true)).log.level, 'warn')
  })

  it('the commented default config parses to exactly the defaults', () => {
    assert.deepEqual(parseConfigText(DEFAULT_CONFIG_TOML, join(dir, 'oht.toml'), dir), validateConfig({}, 'defaults', dir))
    // Uncommenting a documented default line keeps it valid and default.
    const uncommented = DEFAULT_CONFIG_TOML.replace('# mode = "launch"', 'mode = "launch"').replace('# level = "info"', 'level = "info"')
    assert.deepEqual(parseConfigText(uncommented, join(dir, 'oht.toml'), dir), validateConfig({}, 'defaults', dir))
  })

  it('writeDefaultConfig writes 0600 once and never replaces a config', async () => {
    const file = join(dir, 'conf', 'multiverse', 'oht.toml')
    assert.equal(await writeDefaultConfig(file), true)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal(await readFile(file, 'utf8'), DEFAULT_CONFIG_TOML)
    await writeFile(file, '[log]\nlevel = "debug"\n')
    assert.equal(await writeDefaultConfig(file), false)
    assert.equal(await readFile(file, 'utf8'), '[log]\nlevel = "debug"\n')
    await assert.rejects(writeDefaultConfig(join(dir, 'oht.json')), /writes a TOML config/)
  })
})
