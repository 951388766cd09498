/**
 * Fuzzes every wormhole decoder with seeded inputs (default 1,000,000): random bytes of the
 * interesting lengths and mutations of valid frames, one in ten sealed correctly to a live
 * WormholeCrypto so the inner decoders (prekey message, card, ratchet) are reached behind a valid
 * outer layer. Prints inputs, crashes (anything thrown that is not a typed WORMHOLE_ error: must
 * be 0), the slowest input, peak heap, and the error codes seen.
 *
 * Usage: node --import tsx bench/wormhole-fuzz.ts [--inputs 1000000] [--seed wormhole-fuzz] [--async-every 10]
 * Writes bench/results/wormhole-fuzz.json; exits 1 if anything crashed.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { runWormholeFuzz } from '../test/helpers/wormhole-fuzz.ts'

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: 'wormhole-fuzz' },
    'async-every': { type: 'string', default: '10' },
    help: { type: 'boolean', default: false }
  }
})
if (values.help === true) {
  console.log('usage: node --import tsx bench/wormhole-fuzz.ts [--inputs N] [--seed S] [--async-every K]')
  process.exit(0)
}
const inputs = Number(values.inputs)
const asyncEvery = Number(values['async-every'])
if (!Number.isInteger(inputs) || inputs < 1 || !Number.isInteger(asyncEvery) || asyncEvery < 0) {
  console.error('--inputs must be a positive integer and --async-every a non-negative integer')
  process.exit(2)
}

const started = Date.now()
const report = await runWormholeFuzz({
  iterations: inputs,
  seed: values.seed,
  asyncEvery,
  onProgress: (done) => {
    if (done > 0 && done % 100_000 === 0) console.log(`  ${done.toLocaleString('en')} inputs, ${((Date.now() - started) / 1000).toFixed(0)} s`)
  }
})

console.log(`inputs      ${report.inputs.toLocaleString('en')} (seed ${values.seed})`)
console.log(`crashes     ${report.crashes.length}`)
console.log(`accepted    ${report.accepted.toLocaleString('en')} (valid inputs, decoded without error)`)
console.log(`slowest     ${report.slowest.ms.toFixed(2)} ms (${report.slowest.target}, ${report.slowest.bytes} bytes)`)
console.log(`peak heap   ${(report.peakHeapBytes / 2 ** 20).toFixed(1)} MiB`)
console.log(`wall        ${(report.wallMs / 1000).toFixed(1)} s (${Math.round(report.inputs / (report.wallMs / 1000)).toLocaleString('en')} inputs/s)`)
console.log('by target   ' + Object.entries(report.byTarget).map(([k, v]) => `${k} ${v}`).join(', '))
console.log('by code     ' + Object.entries(report.byCode).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', '))
for (const c of report.crashes.slice(0, 5)) console.log(`CRASH ${c.target}: ${c.error}\n  input ${c.input}`)

mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/wormhole-fuzz.json', import.meta.url), JSON.stringify({ seed: values.seed, node: process.version, ...report, crashes: report.crashes.length, crashSamples: report.crashes.slice(0, 20) }, null, 2) + '\n')
console.log('wrote bench/results/wormhole-fuzz.json')
process.exit(report.crashes.length === 0 ? 0 : 1)
