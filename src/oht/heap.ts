/** A binary min-heap ordered by a numeric priority; ties keep no particular order. */
export class MinHeap<T> {
  private readonly items: T[] = []
  constructor (private readonly priority: (item: T) => number) {}

  get size (): number { return this.items.length }
  peek (): T | undefined { return this.items[0] }

  push (item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    const p = this.priority(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.priority(a[parent]) <= p) break
      a[i] = a[parent]
      i = parent
    }
    a[i] = item
  }

  pop (): T | undefined {
    const a = this.items
    if (a.length === 0) return undefined
    const top = a[0]
    const last = a.pop() as T
    if (a.length > 0) {
      let i = 0
      const p = this.priority(last)
      for (;;) {
        const l = 2 * i + 1
        if (l >= a.length) break
        const r = l + 1
        const c = r < a.length && this.priority(a[r]) < this.priority(a[l]) ? r : l
        if (this.priority(a[c]) >= p) break
        a[i] = a[c]
        i = c
      }
      a[i] = last
    }
    return top
  }

  /** Keeps only items for which `keep` is true, then restores heap order. */
  filter (keep: (item: T) => boolean): void {
    const kept = this.items.filter(keep)
    this.items.length = 0
    for (const it of kept) this.push(it)
  }

  clear (): void { this.items.length = 0 }
}
