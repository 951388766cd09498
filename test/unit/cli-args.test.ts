import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseArgs, parseDuration, type FlagSpec } from '../../src/cli/args.ts'
import { CliError, EXIT } from '../../src/cli/errors.ts'

const flags: FlagSpec[] = [
  { name: 'ttl', type: 'string', description: '' },
  { name: 'mutable', type: 'boolean', description: '' },
  { name: 'count', short: 'n', type: 'number', description: '' }
]
const pos = [{ name: 'a', description: '' }, { name: 'b', description: '', optional: true }]

function code (fn: () => unknown): string {
  try { fn() } catch (err) { assert.ok(err instanceof CliError); return err.code }
  assert.fail('expected a CliError')
}

describe('cli argument parsing', () => {
  it('reads --flag value, --flag=value, booleans, short aliases and positionals in any order', () => {
    const r = parseArgs('put', ['x', '--ttl', '10m', '--mutable', '-n', '3', 'y'], flags, pos)
    assert.deepEqual(r.positionals, ['x', 'y'])
    assert.equal(r.flags.ttl, '10m')
    assert.equal(r.flags.mutable, true)
    assert.equal(r.flags.count, 3)
    assert.equal(parseArgs('put', ['--ttl=1h', 'v'], flags, pos).flags.ttl, '1h')
  })

  it('treats "-" as a positional (stdin) and everything after -- as positionals', () => {
    assert.deepEqual(parseArgs('put', ['-'], flags, pos).positionals, ['-'])
    assert.deepEqual(parseArgs('put', ['--', '--mutable', '-x'], flags, pos).positionals, ['--mutable', '-x'])
  })

  it('rejects unknown flags, naming the flag and the command', () => {
    try {
      parseArgs('put', ['v', '--bogus'], flags, pos)
      assert.fail('no error')
    } catch (err) {
      assert.ok(err instanceof CliError)
      assert.equal(err.code, 'CLI_UNKNOWN_FLAG')
      assert.equal(err.exitCode, EXIT.USAGE)
      assert.match(err.message, /oht put: unknown flag --bogus/)
    }
    assert.equal(code(() => parseArgs('put', ['-z', 'v'], flags, pos)), 'CLI_UNKNOWN_FLAG')
    assert.equal(code(() => parseArgs('put', ['--bogus=1', 'v'], flags, pos)), 'CLI_UNKNOWN_FLAG')
  })

  it('rejects missing values, repeated flags, values on booleans and non-numbers', () => {
    assert.equal(code(() => parseArgs('put', ['v', '--ttl'], flags, pos)), 'CLI_BAD_ARGUMENT')
    assert.equal(code(() => parseArgs('put', ['v', '--ttl', '1', '--ttl', '2'], flags, pos)), 'CLI_BAD_ARGUMENT')
    assert.equal(code(() => parseArgs('put', ['v', '--mutable=yes'], flags, pos)), 'CLI_BAD_ARGUMENT')
    assert.equal(code(() => parseArgs('put', ['v', '-n', 'three'], flags, pos)), 'CLI_BAD_ARGUMENT')
  })

  it('checks positional counts unless --help is asked', () => {
    assert.equal(code(() => parseArgs('put', [], flags, pos)), 'CLI_USAGE')
    assert.equal(code(() => parseArgs('put', ['a', 'b', 'c'], flags, pos)), 'CLI_USAGE')
    assert.deepEqual(parseArgs('put', ['a', 'b', 'c'], flags, pos, { variadic: true }).positionals, ['a', 'b', 'c'])
    assert.equal(parseArgs('put', ['--help'], flags, pos).flags.help, true)
  })

  it('accepts the global flags on every command', () => {
    const r = parseArgs('status', ['--json', '--state-dir', '/s', '--socket=/x.sock', '--config', 'c.toml'], [], [])
    assert.equal(r.flags.json, true)
    assert.equal(r.flags['state-dir'], '/s')
    assert.equal(r.flags.socket, '/x.sock')
    assert.equal(r.flags.config, 'c.toml')
  })

  it('parses durations with units and rejects malformed ones', () => {
    assert.equal(parseDuration('90s', 'ttl'), 90_000)
    assert.equal(parseDuration('10m', 'ttl'), 600_000)
    assert.equal(parseDuration('2h', 'ttl'), 7_200_000)
    assert.equal(parseDuration('7d', 'ttl'), 604_800_000)
    assert.equal(parseDuration('1500ms', 'ttl'), 1500)
    assert.equal(parseDuration('30', 'ttl'), 30_000)
    for (const bad of ['', '0s', '-1m', '1.5h', '10 weeks', 'soon']) {
      assert.equal(code(() => parseDuration(bad, 'ttl')), 'CLI_BAD_ARGUMENT', bad)
    }
  })
})
