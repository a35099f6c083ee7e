/**
 * The files a target keeps beside its data file, with real `serve` processes: metadata named
 * after the data file (two nodes in one folder), the data file's lock (a second target refused,
 * a SIGKILLed holder leaves no lock), the adoption of the fixed names of older versions, and
 * the lock on a FUSE mount.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DataFileLockedError, LockHolderSchema, lockDataFile } from "../../target/store/data-lock.js";
import { legacyPairFiles, metadataFiles } from "../../target/store/metadata-files.js";
import { freePort, waitFor } from "../support/processes.js";
import { ScsiClient, cdbs } from "../support/scsi-client.js";
import { ScsiSession } from "../support/scsi-session.js";
import { startTargetPair } from "../support/target-pair.js";
import { repoRoot, startTarget, type TargetHandle } from "../support/target-process.js";

const HANDSHAKE_FAILED = /handshake with the partner failed/;
const RENAME_ERROR = /ENOENT|rename/;

/** `serve` again on `t`'s data file with other ports; resolves with its exit code and output. */
async function secondServe(
  t: TargetHandle,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const args = [...t.args];
  args[args.indexOf("--listen") + 1] = `127.0.0.1:${await freePort()}`;
  args[args.indexOf("--agent-listen") + 1] = `127.0.0.1:${await freePort()}`;
  const peerListen = args.indexOf("--peer-listen");
  if (peerListen >= 0) args[peerListen + 1] = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((r) => child.once("close", (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function lockHolder(t: TargetHandle) {
  return LockHolderSchema.parse(JSON.parse(readFileSync(metadataFiles(t.dataFile).lock, "utf8")));
}

async function ready(t: TargetHandle): Promise<boolean> {
  return (await fetch(`http://${t.host}:${t.agentPort}/readyz`)).status === 200;
}

describe("target metadata files and data file lock", { timeout: 300_000 }, () => {
  it("two nodes of a pair with their data files in one folder: Working for 10 s, no failed handshake, no rename error, distinct metadata files", async (t) => {
    const pair = await startTargetPair({ size: "32Mi", oneFolder: true });
    t.after(async () => {
      await pair.stop();
      rmSync(pair.dir, { recursive: true, force: true });
    });
    const folder = dirname(pair.a.dataFile);
    assert.equal(folder, dirname(pair.b.dataFile));
    // Writes (dirty bitmap, generation) and a registration (unit state) go through both nodes.
    const session = new ScsiSession({
      port: () => pair.a.port,
      iqn: pair.iqn,
      initiator: "iqn.2026-11.dev.hasan:w",
    });
    const pr = await ScsiClient.open({
      port: pair.b.port,
      iqn: pair.iqn,
      initiator: "iqn.2026-11.dev.hasan:pr",
    });
    try {
      await pr.commandClearingUnitAttention(cdbs.testUnitReady());
      const reg = await pr.command(cdbs.persistentReserveOut(0x00, 0), {
        dataOut: cdbs.prOutParams(0n, 0xabcn),
      });
      assert.equal(reg.status, 0, "REGISTER through node b");
      const until = Date.now() + 10_000;
      let i = 0;
      while (Date.now() < until) {
        await session.write((i++ % 64) * 65536, randomBytes(65536));
        for (const n of [pair.a, pair.b]) {
          const r = (await n.status()).replication;
          assert.equal(r?.state, "Working", `node ${n === pair.a ? "a" : "b"}: ${r?.state} (${r?.message})`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      session.close();
      pr.close();
    }
    for (const n of [pair.a, pair.b]) {
      const log = n.log();
      assert.doesNotMatch(log, HANDSHAKE_FAILED);
      assert.doesNotMatch(log, RENAME_ERROR);
      assert.equal((await n.status()).replication?.outOfSyncBytes, 0);
    }
    const [fa, fb] = [metadataFiles(pair.a.dataFile), metadataFiles(pair.b.dataFile)];
    const files = readdirSync(folder).sort();
    for (const f of [fa, fb]) {
      for (const p of [f.lock, f.generation, f.dirtyBitmap, f.unitState]) {
        assert.ok(files.includes(p.slice(folder.length + 1)), `${p} in ${files.join(", ")}`);
      }
    }
    for (const legacy of Object.values(legacyPairFiles(folder))) {
      assert.ok(!files.includes(legacy.slice(folder.length + 1)), `${legacy} written`);
    }
    // Each node persisted the shared registration in its own file.
    for (const f of [fa, fb]) {
      const state = JSON.parse(readFileSync(f.unitState, "utf8")) as { registrations: unknown[] };
      assert.equal(state.registrations.length, 1, f.unitState);
    }
    assert.notEqual(lockHolder(pair.a).pid, lockHolder(pair.b).pid);

    // A second `serve` on node a's data file (same pair flags) is refused; the pair goes on.
    const second = await secondServe(pair.a);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, new RegExp(`${fa.lock}.*pid ${pair.a.process.pid} on host`));
    assert.equal((await pair.a.status()).replication?.state, "Working");
    assert.equal((await pair.b.status()).replication?.state, "Working");
  });

  it("a second serve on the same --data exits non-zero with one line naming the lock file and its holder; the first keeps serving", async (t) => {
    const first = await startTarget({ size: "16Mi" });
    t.after(async () => {
      await first.stop();
      rmSync(dirname(first.dataFile), { recursive: true, force: true });
    });
    const holder = lockHolder(first);
    assert.equal(holder.pid, first.process.pid);
    const second = await secondServe(first);
    assert.equal(second.code, 1);
    const lines = second.stderr.trim().split("\n");
    assert.equal(lines.length, 1, second.stderr);
    assert.equal(
      lines[0],
      `hasan-target: ${first.dataFile} is in use: its lock ${metadataFiles(first.dataFile).lock} is held by ` +
        `pid ${holder.pid} on host ${holder.host} (started ${holder.startedAt}); refusing to start a second target on it`,
    );
    // It did not get as far as opening the data file or serving.
    assert.doesNotMatch(second.stdout, /target serving|created LUN file/);
    assert.ok(await ready(first));
    assert.equal((await first.status()).state, "Standalone");
    assert.deepEqual(lockHolder(first), holder);
  });

  it("a holder killed with SIGKILL leaves no lock: the restart takes it at once", async (t) => {
    const target = await startTarget({ size: "16Mi" });
    t.after(async () => {
      await target.stop();
      rmSync(dirname(target.dataFile), { recursive: true, force: true });
    });
    const killedPid = target.process.pid;
    await target.stop("SIGKILL");
    const started = Date.now();
    await target.restart();
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 15_000, `restart took ${tookMs} ms`);
    assert.equal(lockHolder(target).pid, target.process.pid);
    assert.notEqual(target.process.pid, killedPid);
    assert.doesNotMatch(target.log(), /is in use/);
    assert.ok(await ready(target));
  });

  it("a node started on a folder with the fixed-name metadata of an older version adopts it: same generation, no full resync", async (t) => {
    const pair = await startTargetPair({ size: "32Mi" });
    t.after(async () => {
      await pair.stop();
      rmSync(pair.dir, { recursive: true, force: true });
    });
    const generation = (await pair.a.status()).replication?.generation;
    assert.ok(generation);
    await pair.stop();
    // Node a's folder as an older version left it.
    const files = metadataFiles(pair.a.dataFile);
    const legacy = legacyPairFiles(files.dir);
    renameSync(files.generation, legacy.generation);
    renameSync(files.dirtyBitmap, legacy.dirtyBitmap);
    const logBefore = pair.a.log().length;
    await Promise.all([pair.a.restart(), pair.b.restart()]);
    await pair.waitWorking();
    const log = pair.a.log().slice(logBefore);
    assert.match(log, /adopted the pair metadata an older version kept under fixed names/);
    assert.equal(log.match(/adopted the pair metadata/g)?.length, 1);
    assert.match(log, /pair metadata loaded/);
    assert.doesNotMatch(log, /new pair metadata created|is new/);
    const a = (await pair.a.status()).replication;
    assert.equal(a?.generation, generation);
    assert.equal(a?.stats.resyncedBytes, 0);
    assert.equal(JSON.parse(readFileSync(files.generation, "utf8")).current, generation);
    for (const p of Object.values(legacy)) assert.throws(() => readFileSync(p), /ENOENT/);
  });

  describe("on a FUSE mount", () => {
    const base = mkdtempSync(join(tmpdir(), "hasan-fuse-"));
    const src = join(base, "src");
    const mnt = join(base, "mnt");
    mkdirSync(src);
    mkdirSync(mnt);
    const mounted = spawnSync("bindfs", [src, mnt], { stdio: "ignore" }).status === 0;
    after(() => {
      if (mounted) spawnSync("umount", [mnt], { stdio: "ignore" });
      rmSync(base, { recursive: true, force: true });
    });
    const skip = mounted ? false : "needs bindfs and the right to mount a FUSE filesystem";

    it(
      "a lock held through a FUSE mount refuses a second one, and the SIGKILL of its holder releases it",
      { skip },
      async () => {
        const lockFile = join(mnt, "a.img.lock");
        const data = join(mnt, "a.img");
        const moduleUrl = new URL(`file://${join(repoRoot, "dist/target/store/data-lock.js")}`).href;
        const holder = spawn(
          process.execPath,
          [
            "--input-type=module",
            "-e",
            `const { lockDataFile } = await import(${JSON.stringify(moduleUrl)});
           await lockDataFile(${JSON.stringify(lockFile)}, ${JSON.stringify(data)});
           process.stdout.write("locked\\n");
           setInterval(() => {}, 1000);`,
          ],
          { stdio: ["ignore", "pipe", "inherit"] },
        );
        let out = "";
        holder.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
        try {
          await waitFor("the holder locked", async () => out.includes("locked"), 10_000, 20);
          await assert.rejects(
            lockDataFile(lockFile, data),
            (e: unknown) => e instanceof DataFileLockedError && e.holder?.pid === holder.pid,
          );
        } finally {
          const exited = new Promise((r) => holder.once("exit", r));
          holder.kill("SIGKILL");
          await exited;
        }
        const again = await lockDataFile(lockFile, data);
        await again.release();
      },
    );
  });
});
