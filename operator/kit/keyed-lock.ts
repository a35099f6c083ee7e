/**
 * Runs async sections one at a time per key, in call order. Used where two reconcile workers may
 * reach the same object through different owners (a PersistentVolume name that two HASanTargets
 * ask for): the read that decides and the write that follows must not interleave.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(section);
    this.tails.set(key, mine);
    try {
      return await mine;
    } finally {
      // Forget the key once nobody queued behind this section.
      if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }

  /** Keys with a section running or queued (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
