/**
 * The own-record journal's cost per put: the file journal rewrites its whole file atomically
 * (temp file, fsync, rename, fsync dir) on every change, so a save costs more as the journal
 * grows. Measured here: one save at a time (a put's write-ahead) with 100, 1,000 and 10,000
 * entries already held, plain and sealed, against the memory journal in the same run; and 200
 * saves arriving together (group commit: writes per save). Values are 256 bytes.
 *
 * Measured on the shared 2-core machine (busy; p50 of 50 saves): 100 entries 3.3 ms plain /
 * 2.7 ms sealed, 1,000 entries 5.2 / 24 ms, 10,000 entries (5.6 MiB) 38 / 113 ms, against
 * 0.002 ms for the memory journal; 200 saves arriving together took one write (17 ms).
 * Sealing on noble's pure-JS XChaCha20-Poly1305 had cost 430 ms at 10,000 entries, hence the
 * node:crypto ChaCha20-Poly1305 under noble's HChaCha20 (src/crypto/seal.ts). A put over tor
 * takes seconds, so a few tens of ms of write-ahead is small; 10,000 entries is the default cap.
 *
 * Usage: node --import tsx bench/journal.ts [--saves 50]
 * Writes bench/results/journal.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cryptoRng, systemClock, toHex } from '../src/core/index.ts'
import { createMemoryJournal, type OwnRecordEntry, type OwnRecordJournal } from '../src/oht/index.ts'
import { createFileJournal } from '../src/sdk/file-journal.ts'

const arg = process.argv.indexOf('--saves')
const SAVES = arg !== -1 ? Number(process.argv[arg + 1]) : 50
if (!Number.isInteger(SAVES) || SAVES < 1) { console.error('bench/journal: --saves takes a positive whole number'); process.exit(2) }

function entry (): OwnRecordEntry {
  const key = cryptoRng.bytes(32)
  return { id: toHex(key), key, expiresAt: Date.now() + 3_600_000, seq: 0, record: { kind: 'immutable', ttlMs: 3_600_000, value: cryptoRng.bytes(256) } }
}

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }
const round = (x: number): number => +x.toFixed(3)

async function timeSaves (j: OwnRecordJournal, n: number): Promise<{ p50: number, p95: number }> {
  const ms: number[] = []
  for (let i = 0; i < n; i++) {
    const e = entry()
    const t0 = performance.now()
    await j.save(e)
    ms.push(performance.now() - t0)
  }
  return { p50: round(pct(ms, 50)), p95: round(pct(ms, 95)) }
}

const dir = await mkdtemp(join(tmpdir(), 'oht-bench-journal-'))
const results: Record<string, unknown> = { saves: SAVES, valueBytes: 256, node: process.version }
try {
  const mem = createMemoryJournal()
  results.memory = await timeSaves(mem, SAVES)
  for (const held of [100, 1_000, 10_000]) {
    for (const sealed of [false, true]) {
      const path = join(dir, `${held}-${sealed ? 's' : 'p'}.json`)
      const j = createFileJournal({ path, maxEntries: held + SAVES + 1, ...(sealed ? { passphrase: 'bench' } : {}) }, { clock: systemClock })
      await j.load()
      await Promise.all(Array.from({ length: held }, async () => { await j.save(entry()) })) // filled by group commit
      const t = await timeSaves(j, SAVES)
      const name = `file${sealed ? 'Sealed' : ''}${held}`
      results[name] = { ...t, fileBytes: j.bytes, vsMemoryP50: round(t.p50 / Math.max(0.001, (results.memory as { p50: number }).p50)) }
      console.log(`${name.padEnd(18)} save p50 ${t.p50} ms  p95 ${t.p95} ms  (${j.size} entries, ${(j.bytes / 1024).toFixed(0)} KiB encoded)`)
      await j.close()
    }
  }
  const burst = createFileJournal({ path: join(dir, 'burst.json') }, { clock: systemClock })
  await burst.load()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: 200 }, async () => { await burst.save(entry()) }))
  const wall = performance.now() - t0
  results.burst200 = { wallMs: round(wall), writes: burst.writes, savesPerWrite: round(200 / burst.writes) }
  console.log(`burst of 200 saves: ${round(wall)} ms, ${burst.writes} writes (${round(200 / burst.writes)} saves per write)`)
  await burst.close()
  console.log(`memory journal     save p50 ${(results.memory as { p50: number }).p50} ms`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
mkdirSync(new URL('results/', import.meta.url), { recursive: true })
writeFileSync(new URL('results/journal.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
