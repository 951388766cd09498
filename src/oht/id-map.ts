/**
 * A map keyed by 32-byte ids without building strings: buckets by the first 48 bits (a plain
 * number key), exact byte comparison inside a bucket. Hex keys cost an allocation and ~0.4 µs
 * per id; lookups see hundreds of ids each.
 */

/** True if `b` is a view into a larger buffer (e.g. a decoded frame) that keeping it would pin. */
export function isView (b: Uint8Array): boolean {
  return b.byteOffset !== 0 || b.buffer.byteLength !== b.byteLength
}

/** Bits 0-23 and 24-47 of the id at `off` in `buf`, as numbers: the halves of its idPrefix. */
export function idHi24 (buf: Uint8Array, off = 0): number { return (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2] }
export function idLo24 (buf: Uint8Array, off = 0): number { return (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5] }

/** First 48 bits of an id as a number (exact, below 2^53). */
export function idPrefix (id: Uint8Array): number { return idPrefixAt(id, 0) }

/** The 32-byte id at `off` in `buf` equals `id`. */
export function idEqualsAt (id: Uint8Array, buf: Uint8Array, off: number): boolean {
  return id.byteLength === 32 && idsEqualAt(id, 0, buf, off)
}

/** The 32-byte ids at `aOff` in `a` and at `bOff` in `b` are equal (both read in place). */
export function idsEqualAt (a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 32; i++) if (a[aOff + i] !== b[bOff + i]) return false
  return true
}

/** idPrefix of the id at `off` in `buf`. */
export function idPrefixAt (buf: Uint8Array, off: number): number { return idHi24(buf, off) * 0x1000000 + idLo24(buf, off) }

function sameId (a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true
  for (let i = 6; i < 32; i++) if (a[i] !== b[i]) return false
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] && a[5] === b[5]
}

interface Slot<V> { id: Uint8Array, value: V, next?: Slot<V> }

export class IdMap<V> {
  private readonly map = new Map<number, Slot<V>>()
  private count = 0

  get size (): number { return this.count }

  get (id: Uint8Array): V | undefined {
    for (let s = this.map.get(idPrefix(id)); s !== undefined; s = s.next) if (sameId(s.id, id)) return s.value
    return undefined
  }

  /** get() for the 32-byte id at `off` in `buf`, read in place. */
  getAt (buf: Uint8Array, off: number): V | undefined {
    for (let s = this.map.get(idPrefixAt(buf, off)); s !== undefined; s = s.next) if (idEqualsAt(s.id, buf, off)) return s.value
    return undefined
  }

  has (id: Uint8Array): boolean { return this.get(id) !== undefined }

  set (id: Uint8Array, value: V): void {
    const p = idPrefix(id)
    const head = this.map.get(p)
    for (let s = head; s !== undefined; s = s.next) if (sameId(s.id, id)) { s.value = value; return }
    this.map.set(p, { id, value, next: head })
    this.count++
  }

  delete (id: Uint8Array): boolean {
    const p = idPrefix(id)
    let prev: Slot<V> | undefined
    for (let s = this.map.get(p); s !== undefined; prev = s, s = s.next) {
      if (!sameId(s.id, id)) continue
      if (prev === undefined) {
        if (s.next === undefined) this.map.delete(p)
        else this.map.set(p, s.next)
      } else {
        prev.next = s.next
      }
      this.count--
      return true
    }
    return false
  }

  * values (): IterableIterator<V> {
    for (const head of this.map.values()) for (let s: Slot<V> | undefined = head; s !== undefined; s = s.next) yield s.value
  }

  clear (): void { this.map.clear(); this.count = 0 }
}
