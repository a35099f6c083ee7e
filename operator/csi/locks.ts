import { aborted } from "./errors.js";

/**
 * One call at a time per volume. A second call for a volume that is busy is answered ABORTED at
 * once (CSI's "operation pending for volume"), and the caller retries: two CreateVolumes racing
 * for one name, or a DeleteVolume overtaking a CreateVolume that still waits, cannot interleave.
 * The driver's own background work (runBackground: the node's session repair) never makes a call
 * fail: a call that finds the volume busy with it waits for it, and background work skips a
 * volume that is busy.
 */
export class VolumeLocks {
  private readonly busy = new Map<string, { background: boolean; done: Promise<void> }>();

  async run<T>(key: string, body: () => Promise<T>): Promise<T> {
    for (let held = this.busy.get(key); held; held = this.busy.get(key)) {
      if (!held.background) throw aborted(`an operation on volume ${key} is already in progress`);
      await held.done;
    }
    return await this.hold(key, false, body);
  }

  /** Runs background work on a volume, or throws ABORTED at once when the volume is busy. */
  async runBackground<T>(key: string, body: () => Promise<T>): Promise<T> {
    if (this.busy.has(key)) throw aborted(`an operation on volume ${key} is already in progress`);
    return await this.hold(key, true, body);
  }

  private async hold<T>(key: string, background: boolean, body: () => Promise<T>): Promise<T> {
    let release!: () => void;
    this.busy.set(key, { background, done: new Promise<void>((r) => (release = r)) });
    try {
      return await body();
    } finally {
      this.busy.delete(key);
      release();
    }
  }
}
