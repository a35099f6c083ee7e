/**
 * A mirrored write that the partner applied but this node's copy failed (an injected EIO) must
 * not leave the pair answering two ways: the write fails, the region is marked out of sync, the
 * link drops so only one node serves, and the handshake that follows makes both copies equal.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createLogger } from "../../target/log.js";
import type { BlockDevice, WriteOptions } from "../../target/store/block-device.js";
import { FileBlockDevice } from "../../target/store/file-device.js";
import { metadataFiles } from "../../target/store/metadata-files.js";
import { startPairNode, type PairNode } from "../../target/replication/pair.js";
import { FileWitness } from "../../target/replication/witness-file.js";
import { confirmedByBoth } from "../../target/replication/witness.js";

const MiB = 1024 * 1024;

/** A file device whose next write at one offset fails with EIO. */
function failingDevice(inner: FileBlockDevice): BlockDevice & { failNextWriteAt(offset: number): void } {
  let failAt: number | null = null;
  return {
    sizeBytes: inner.sizeBytes,
    read: (o, l) => inner.read(o, l),
    write: (o: number, d: Buffer, opts?: WriteOptions) => {
      if (o === failAt) {
        failAt = null;
        return Promise.reject(Object.assign(new Error("EIO: i/o error (injected)"), { code: "EIO" }));
      }
      return inner.write(o, d, opts);
    },
    flush: () => inner.flush(),
    unmap: (o, l) => inner.unmap(o, l),
    compareAndWrite: (o, e, d) => inner.compareAndWrite(o, e, d),
    isMapped: (o, l) => inner.isMapped(o, l),
    allocationAt: (o) => inner.allocationAt(o),
    close: () => inner.close(),
    failNextWriteAt: (offset: number) => {
      failAt = offset;
    },
  };
}

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("pair: a local write error after the partner applied the write", { timeout: 120_000 }, () => {
  let dir: string;
  let a: PairNode;
  let b: PairNode;
  let aDisk: ReturnType<typeof failingDevice>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "hasan-write-error-"));
    const witness = join(dir, "witness");
    const make = async (node: "a" | "b", peerPort: number, local: BlockDevice) => {
      const d = join(dir, node);
      return startPairNode({
        node,
        local,
        metadata: metadataFiles(join(d, "lun.img")),
        peer: { host: "127.0.0.1", port: peerPort },
        listen: { host: "127.0.0.1", port: 0 },
        secret: "write-error-secret",
        witness: new FileWitness(witness),
        logger: createLogger(`write-error-${node}`),
        heartbeatMs: 200,
        peerTimeoutMs: 1500,
        regionSize: 64 * 1024,
      });
    };
    for (const n of ["a", "b"]) await mkdir(join(dir, n), { recursive: true });
    b = await make("b", 1, await FileBlockDevice.open(join(dir, "b", "lun.img"), 8 * MiB));
    aDisk = failingDevice(await FileBlockDevice.open(join(dir, "a", "lun.img"), 8 * MiB));
    a = await make("a", b.listenAddress()!.port, aDisk);
    const w = new FileWitness(witness);
    await until("Working and confirmed in the witness", async () => {
      if (a.status().state !== "Working" || b.status().state !== "Working") return false;
      const r = await w.holder();
      return r !== null && confirmedByBoth(r);
    });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function scenario(through: PairNode, offset: number): Promise<void> {
    const before = randomBytes(65536);
    const after = randomBytes(65536);
    await through.device.write(offset, before);
    assert.deepEqual(await a.device.read(offset, 65536), before);
    assert.deepEqual(await b.device.read(offset, 65536), before);

    aDisk.failNextWriteAt(offset);
    // Node a sequences: b applies the write, a's copy fails. Written through a, the failure is the
    // answer; written through b, b may retry it once the link is gone (and succeed alone).
    const acknowledged = await through.device.write(offset, after).then(
      () => true,
      () => false,
    );
    if (through === a) assert.equal(acknowledged, false, "the sequencer's own write fails with its copy");

    // From now on every answer from either node is one and the same.
    const answers = new Set<string>();
    const digest = (x: Buffer) => createHash("sha256").update(x).digest("hex").slice(0, 12);
    for (const end = Date.now() + 6000; Date.now() < end;) {
      for (const n of [a, b]) {
        try {
          answers.add(digest(await n.device.read(offset, 65536)));
        } catch {
          // not serving (refused by the witness, or waiting): no answer is fine
        }
      }
      assert.ok(
        answers.size <= 1,
        `the nodes answered differently after the failed write (${[...answers].join(", ")})`,
      );
      await new Promise((r) => setTimeout(r, 100));
    }

    await until(
      "Working again",
      () => a.status().state === "Working" && b.status().state === "Working",
      60_000,
    );
    await until(
      "nothing out of sync",
      () => a.status().outOfSyncBytes === 0 && b.status().outOfSyncBytes === 0,
    );
    const [ra, rb] = [await a.device.read(offset, 65536), await b.device.read(offset, 65536)];
    assert.ok(ra.equals(rb), "both nodes return the same data");
    if (acknowledged) assert.ok(ra.equals(after), "an acknowledged write is what both return");
    else
      assert.ok(ra.equals(before) || ra.equals(after), "a failed write left either the old or the new data");
    await Promise.all([a.device.flush(), b.device.flush()]);
    const [fa, fb] = [await readFile(join(dir, "a", "lun.img")), await readFile(join(dir, "b", "lun.img"))];
    assert.ok(fa.equals(fb), "the LUN files are byte-identical");
  }

  it("EIO on the sequencer's copy of its own write: the write fails, no two answers, the copies end equal", async () => {
    await scenario(a, MiB);
  });

  it("EIO on the sequencer's copy of a write forwarded by the partner: no two answers, the copies end equal", async () => {
    await scenario(b, 3 * MiB);
  });
});
