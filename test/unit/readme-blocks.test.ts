/**
 * The README block extractor the README test runs on: which blocks it finds, what a skip
 * marker means, and that a marker it cannot read is an error rather than a silent skip.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { readmeBlocks, readmeScript, ReadmeError } from '../helpers/readme.ts'

const SAMPLE = [
  '# Title', // 1
  '## Layout', // 2
  '```sh', // 3
  'not run: outside the sections', // 4
  '```', // 5
  '## Quick start', // 6
  '<!-- readme-test: skip (installs things) -->', // 7
  '```sh', // 8
  'apt-get install -y tor', // 9
  '```', // 10
  '## Using it', // 11
  '### Wormhole', // 12
  '```sh', // 13
  'oht wormhole send x', // 14
  'echo two', // 15
  '```', // 16
  '```toml', // 17
  '[a]', // 18
  '```', // 19
  '```js', // 20
  "import { createNode } from 'oht'", // 21
  '```', // 22
  '## Identity', // 23
  '```sh', // 24
  'not run either', // 25
  '```' // 26
].join('\n')

describe('readmeBlocks', () => {
  it('finds the blocks under Quick start and Using it (any ### under them), with lines, kinds and skip reasons', () => {
    const blocks = readmeBlocks(SAMPLE)
    assert.deepEqual(blocks.map(b => [b.line, b.kind, b.section, b.heading, b.skip]), [
      [8, 'shell', 'Quick start', 'Quick start', 'installs things'],
      [13, 'shell', 'Using it', 'Wormhole', undefined],
      [17, 'other', 'Using it', 'Wormhole', undefined],
      [20, 'module', 'Using it', 'Wormhole', undefined]
    ])
    assert.equal(blocks[1].code, 'oht wormhole send x\necho two')
  })

  it('refuses markers it cannot read, stale markers and unclosed blocks', () => {
    assert.throws(() => readmeBlocks('## Using it\n<!-- readme-test: skip -->\n```sh\nx\n```'), ReadmeError)
    assert.throws(() => readmeBlocks('## Using it\n<!-- readme-test: later (x) -->\n```sh\nx\n```'), /must read "readme-test: skip \(why\)"/)
    assert.throws(() => readmeBlocks('## Using it\n<!-- readme-test: skip (x) -->\ntext between\n```sh\nx\n```'), /right before its code block/)
    assert.throws(() => readmeBlocks('## Using it\n<!-- readme-test: skip (x) -->\n## Next'), /no code block after it/)
    assert.throws(() => readmeBlocks('## Layout\n<!-- readme-test: skip (x) -->\n```sh\nx\n```'), /outside the sections/)
    assert.throws(() => readmeBlocks('## Using it\n```sh\nx\n'), /never closes/)
  })

  it('the script runs shell lines as they are, modules with plain node, and maps script lines back to README lines', () => {
    const { script, lineMap } = readmeScript(readmeBlocks(SAMPLE))
    const lines = script.split('\n')
    assert.equal(lines[0], 'set -eo pipefail')
    assert.ok(!script.includes('apt-get'), 'a skipped block is not in the script')
    assert.ok(!script.includes('[a]'), 'a toml block is not in the script')
    const at = lines.indexOf('echo two') + 1
    assert.equal(lineMap.get(at), 15)
    assert.match(script, /cat > "\$OHT_README_APP\/block-20\.mjs" <<'OHT_README_BLOCK_END'\nimport \{ createNode \} from 'oht'\nOHT_README_BLOCK_END\n\(cd "\$OHT_README_APP" && node block-20\.mjs\)/)
  })

  it('the real README parses, and Using it has runnable blocks', async () => {
    const blocks = readmeBlocks(await readFile(new URL('../../README.md', import.meta.url), 'utf8'))
    assert.ok(blocks.filter(b => b.section === 'Using it' && b.skip === undefined && b.kind === 'shell').length >= 3)
  })
})
