/**
 * A journal of a node's own records kept in memory (tests, the simulator, and a process that
 * restarts its OHT node without restarting itself). The SDK's file journal keeps the same
 * entries in a 0600 file. Entries are copied in and out: the caller's bytes stay its own.
 */
import type { OwnRecordEntry, OwnRecordJournal } from './index.ts'
import { copyRecord } from './records.ts'

export interface MemoryJournal extends OwnRecordJournal {
  /** The entries held now (copies). */
  entries(): OwnRecordEntry[]
}

function copyEntry (e: OwnRecordEntry): OwnRecordEntry {
  const out: OwnRecordEntry = { id: e.id, key: e.key.slice(), expiresAt: e.expiresAt }
  if (e.record !== undefined) out.record = copyRecord(e.record)
  if (e.seq !== undefined) out.seq = e.seq
  return out
}

export function createMemoryJournal (): MemoryJournal {
  const map = new Map<string, OwnRecordEntry>()
  return {
    async load () { return [...map.values()].map(copyEntry) },
    async save (entry) {
      const prev = map.get(entry.id)
      const e = copyEntry(entry)
      // A seq only goes up, whatever order saves come in.
      if (prev?.seq !== undefined) e.seq = Math.max(prev.seq, e.seq ?? -1)
      map.set(entry.id, e)
    },
    async expire (id) {
      const e = map.get(id)
      if (e === undefined) return
      e.record?.value.fill(0)
      if (e.seq === undefined) { map.delete(id); return }
      delete e.record
    },
    entries () { return [...map.values()].map(copyEntry) }
  }
}
