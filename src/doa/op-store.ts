/**
 * A session's ops on disk, so a host or a user keeps an app's log across restarts: one
 * append-only file per app, 0600, and the snapshot it started from (if any) beside it.
 *
 *   <dir>/ops.log       "DOAL" | u8 version 1 | then records: u32 length | op bytes (signed, self-verifying)
 *   <dir>/snapshot.bin  the signed snapshot the replica was started from
 *
 * Every op is verified again when loaded (the replica decodes it), so a file edited on disk is
 * refused op by op, like a forged download; a torn last record (a crash mid-append) is cut off.
 */
import { appendFile, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DoaError } from './errors.ts'
import { MAX_OP_BYTES } from './ops.ts'

const MAGIC = new TextEncoder().encode('DOAL')
const HEADER = 5

export interface OpStore {
  /** The ops stored, in the order appended; a torn tail is dropped (and cut from the file). */
  load(): Promise<Uint8Array[]>
  append(ops: readonly Uint8Array[]): Promise<void>
  loadSnapshot(): Promise<Uint8Array | undefined>
  saveSnapshot(bytes: Uint8Array): Promise<void>
  /** Bytes on disk. */
  size(): Promise<number>
}

export interface OpStoreInit {
  dir: string
  /** Largest log accepted when loading. @default 268435456 (256 MiB) */
  maxBytes?: number
}

export function createOpStore (init: OpStoreInit): OpStore {
  const file = join(init.dir, 'ops.log')
  const snap = join(init.dir, 'snapshot.bin')
  const maxBytes = init.maxBytes ?? 256 * 1024 * 1024
  let ready = false
  const ensure = async (): Promise<void> => {
    if (ready) return
    await mkdir(init.dir, { recursive: true, mode: 0o700 })
    try {
      await stat(file)
    } catch {
      const h = new Uint8Array(HEADER); h.set(MAGIC, 0); h[4] = 1
      await writeFile(file, h, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err })
    }
    ready = true
  }
  return {
    async load () {
      await ensure()
      const st = await stat(file)
      if (st.size > maxBytes) throw new DoaError('DOA_TOO_LARGE', `${file} is ${st.size} bytes, over the ${maxBytes}-byte limit`)
      const b = new Uint8Array(await readFile(file))
      if (b.byteLength < HEADER || MAGIC.some((x, i) => b[i] !== x) || b[4] !== 1) throw new DoaError('DOA_CACHE', `${file} is not a DOA op log`)
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
      const out: Uint8Array[] = []
      let off = HEADER
      while (off + 4 <= b.byteLength) {
        const len = dv.getUint32(off)
        if (len === 0 || len > MAX_OP_BYTES || off + 4 + len > b.byteLength) break
        out.push(b.slice(off + 4, off + 4 + len))
        off += 4 + len
      }
      if (off !== b.byteLength) {
        // A torn append: keep what is whole.
        const fh = await open(file, 'r+')
        try { await fh.truncate(off) } finally { await fh.close() }
      }
      return out
    },
    async append (ops) {
      if (ops.length === 0) return
      await ensure()
      let n = 0
      for (const op of ops) n += 4 + op.byteLength
      const buf = new Uint8Array(n)
      const dv = new DataView(buf.buffer)
      let off = 0
      for (const op of ops) {
        if (op.byteLength > MAX_OP_BYTES) throw new DoaError('DOA_TOO_LARGE', 'op over the size limit')
        dv.setUint32(off, op.byteLength); buf.set(op, off + 4); off += 4 + op.byteLength
      }
      await appendFile(file, buf, { mode: 0o600 })
    },
    async loadSnapshot () {
      try { return new Uint8Array(await readFile(snap)) } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw new DoaError('DOA_CACHE', `cannot read ${snap}: ${(err as Error).message}`, { cause: err })
      }
    },
    async saveSnapshot (bytes) {
      await mkdir(init.dir, { recursive: true, mode: 0o700 })
      await writeFile(snap + '.tmp', bytes, { mode: 0o600 })
      await rename(snap + '.tmp', snap)
    },
    async size () {
      try { return (await stat(file)).size } catch { return 0 }
    }
  }
}

/** An OpStore in memory (tests, the simulator, sessions that keep nothing). */
export function createMemoryOpStore (): OpStore {
  const ops: Uint8Array[] = []
  let snapshot: Uint8Array | undefined
  return {
    load: async () => ops.map(o => o.slice()),
    append: async (more) => { for (const o of more) ops.push(o.slice()) },
    loadSnapshot: async () => snapshot?.slice(),
    saveSnapshot: async (b) => { snapshot = b.slice() },
    size: async () => ops.reduce((n, o) => n + 4 + o.byteLength, HEADER)
  }
}
