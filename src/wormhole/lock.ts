/** Per-key mutual exclusion: operations on one contact (or group) run one after another. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    const result = prev.then(fn, fn)
    const tail = result.then(() => undefined, () => undefined)
    this.tails.set(key, tail)
    try {
      return await result
    } finally {
      // The last one out removes the entry, so idle keys hold nothing.
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
