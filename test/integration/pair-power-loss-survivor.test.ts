/**
 * One node loses power and comes back before its partner, which stayed up, has gone on alone:
 * both still hold the same generation. The partner kept every write the pair acknowledged (in
 * its page cache), the node that lost power only what it had flushed, so the resync must copy
 * from the partner that stayed up; a flush through it then makes those writes durable on both.
 *
 * The peer timeout is long (the partner's claim waits out a read lease of two thirds of it), so
 * the node that lost power is back and linked while its partner still waits to ask the witness.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LazyFs, unmountLazyFsUnder } from "../support/lazyfs.js";
import { PairHarness, type Node } from "../support/pair-harness.js";

const BLOCK = 4096;

/** A pair-node harness whose nodes keep their LUN files and metadata on lazyfs. */
class PowerLossNodes extends PairHarness {
  private readonly disks = new Map<Node, LazyFs>();

  override async setup(): Promise<void> {
    await super.setup();
    for (const n of ["a", "b"] as const)
      this.disks.set(n, await LazyFs.mount(join(this.dir, `${n}.disk`), join(this.dir, n)));
  }

  /** The node and its machine's page cache die at once; the machine comes back empty. */
  async powerCut(n: Node): Promise<void> {
    await this.kill(n);
    const disk = this.disks.get(n)!;
    await disk.powerCut();
    await disk.remount();
  }

  override async cleanup(): Promise<void> {
    await Promise.all([this.kill("a"), this.kill("b")]);
    for (const d of this.disks.values()) await d.unmount().catch(() => undefined);
    if (this.dir) await unmountLazyFsUnder(this.dir);
    await super.cleanup();
  }
}

const block = (tag: string) => Buffer.alloc(BLOCK, tag);

describe("a node that lost power relinks before its partner went on alone", { timeout: 300_000 }, () => {
  const h = new PowerLossNodes({ peerTimeoutMs: 12_000, heartbeatMs: 250 });
  before(async () => {
    await h.setup();
    await Promise.all([h.start("a"), h.start("b")]);
    await h.waitInSync();
  });
  after(() => h.cleanup());

  for (const [cut, survivor] of [
    ["a", "b"],
    ["b", "a"],
  ] as const) {
    it(`node ${cut} (power cut) receives the writes node ${survivor} kept and flushed`, async () => {
      const offset = (cut === "a" ? 1 : 9) * 1024 * 1024;
      const older = block(`older-${cut}`);
      const newer = block(`newer-${cut}`);
      await h.write(survivor, offset, older);
      await h.flush(survivor);
      // Acknowledged by the pair: both page caches hold it; only the survivor keeps it.
      await h.write(survivor, offset, newer);
      await h.powerCut(cut);
      // The flush waits for the partner (linked again) or for the witness (alone).
      const flushed = h.flush(survivor);
      flushed.catch(() => undefined);
      await h.start(cut);
      await flushed;
      await h.waitInSync(120_000);
      const decision = (await h.logText(survivor))
        .split("\n")
        .filter((l) => l.includes("handshake: sync decision"))
        .pop();
      assert.match(decision ?? "", /same generation|kept running/, "both nodes still held one generation");
      for (const n of ["a", "b"] as const) {
        const got = await h.read(n, offset, BLOCK);
        assert.ok(
          got.equals(newer),
          `node ${n} returns ${got.subarray(0, 12).toString()} after the resync; the flushed write was ${newer.subarray(0, 12).toString()}`,
        );
      }
      assert.equal(await h.fileHash("a"), await h.fileHash("b"), "LUN files differ");
    });
  }
});
