import { aborted } from "./errors.js";

/**
 * One call at a time per volume. A second call for a volume that is busy is answered ABORTED at
 * once (CSI's "operation pending for volume"), and the caller retries: two CreateVolumes racing
 * for one name, or a DeleteVolume overtaking a CreateVolume that still waits, cannot interleave.
 */
export class VolumeLocks {
  private readonly busy = new Set<string>();

  async run<T>(key: string, body: () => Promise<T>): Promise<T> {
    if (this.busy.has(key)) throw aborted(`an operation on volume ${key} is already in progress`);
    this.busy.add(key);
    try {
      return await body();
    } finally {
      this.busy.delete(key);
    }
  }
}
