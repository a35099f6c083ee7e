import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, truncate } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DataFileLockedError, LockHolderSchema, lockDataFile } from "../../../target/store/data-lock.js";

describe("data file lock", () => {
  const withDir = async (fn: (dir: string) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-lock-"));
    try {
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it("a second lock of a held lock file is refused, naming the lock file and its holder; after release it is taken again", () =>
    withDir(async (dir) => {
      const lockFile = join(dir, "a.img.lock");
      const data = join(dir, "a.img");
      const first = await lockDataFile(lockFile, data);
      const holder = LockHolderSchema.parse(JSON.parse(await readFile(lockFile, "utf8")));
      assert.equal(holder.pid, process.pid);
      assert.equal(holder.host, hostname());
      assert.equal(holder.data, data);
      // flock locks of two open files conflict in one process too.
      const refused = await lockDataFile(lockFile, data).then(
        () => assert.fail("the second lock was granted"),
        (e: unknown) => e,
      );
      assert.ok(refused instanceof DataFileLockedError);
      assert.equal(refused.lockFile, lockFile);
      assert.deepEqual(refused.holder, holder);
      assert.match(refused.message, new RegExp(`${lockFile}.*pid ${process.pid} on host`));
      // The refused attempt leaves the holder's record alone.
      assert.deepEqual(LockHolderSchema.parse(JSON.parse(await readFile(lockFile, "utf8"))), holder);
      await first.release();
      const again = await lockDataFile(lockFile, data);
      await again.release();
    }));

  it("locks of two data files in one folder do not conflict", () =>
    withDir(async (dir) => {
      const a = await lockDataFile(join(dir, "a.img.lock"), join(dir, "a.img"));
      const b = await lockDataFile(join(dir, "b.img.lock"), join(dir, "b.img"));
      await Promise.all([a.release(), b.release()]);
    }));

  it("an unreadable holder record (not written yet) gives a refusal without a holder", () =>
    withDir(async (dir) => {
      const lockFile = join(dir, "a.img.lock");
      const first = await lockDataFile(lockFile, join(dir, "a.img"));
      await truncate(lockFile, 0);
      await assert.rejects(
        lockDataFile(lockFile, join(dir, "a.img")),
        (e: unknown) =>
          e instanceof DataFileLockedError && e.holder === null && /held by another process/.test(e.message),
      );
      await first.release();
    }));

  it("a missing flock program is a clear error, and the lock file's directory missing too", () =>
    withDir(async (dir) => {
      await assert.rejects(
        lockDataFile(join(dir, "a.img.lock"), join(dir, "a.img"), { flockCommand: join(dir, "no-flock") }),
        /the flock program \(util-linux\) is not installed/,
      );
      await assert.rejects(
        lockDataFile(join(dir, "missing", "a.img.lock"), join(dir, "missing", "a.img")),
        /cannot open the lock file .*missing\/a\.img\.lock/,
      );
    }));
});
