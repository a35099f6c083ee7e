/**
 * A lost witness record must never let the node that is behind serve. After a partition, one
 * node wins the witness and writes alone; then the record is deleted (files removed, or the
 * Lease deleted on the local cluster). The other node keeps refusing (its retries find no
 * record, which grants nothing), the holder writes its record back, and once the link heals
 * the behind node receives what it missed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { PairHarness, type HarnessOptions } from "../support/pair-harness.js";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import type { Node } from "../support/pair-fixture.js";
import { createWitness, parseWitnessSpec, type Witness } from "../../target/replication/witness.js";
import { createLogger } from "../../target/log.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scenario(h: PairHarness, deleteRecord: () => Promise<void>, witness: Witness): Promise<void> {
  const before = randomBytes(8192);
  await h.write("a", 65536, before);
  h.proxy.partition("both");
  let winner: Node | null = null;
  await h.waitFor(
    "one node serving alone, the other refused",
    async () => {
      const [a, b] = [await h.status("a"), await h.status("b")];
      if (a.state !== "Failed" || b.state !== "Failed") return false;
      if (a.serving === b.serving) return false;
      winner = a.serving ? "a" : "b";
      return true;
    },
    60_000,
  );
  const w = winner!;
  const l: Node = w === "a" ? "b" : "a";
  const after = randomBytes(8192);
  await h.write(w, 65536, after);

  await deleteRecord();
  assert.equal(await witness.holder(), null, "the record is gone");
  // The loser retries the witness every 2 s: for 8 s it must keep refusing, never serve its old copy.
  const said = new Set<string>();
  for (const until = Date.now() + 8000; Date.now() < until;) {
    const s = await h.status(l);
    assert.equal(s.serving, false, `node ${l} (behind) must not serve: ${s.message}`);
    said.add(s.message.replace(/ \(partner lost \d+s ago\)/, ""));
    await assert.rejects(h.read(l, 65536, 8192), /503/);
    await sleep(200);
  }
  // Until the holder writes its record back the refusal says the record is missing, then who holds it.
  assert.ok(
    [...said].some((m) => /no record of this pair|holds the witness/.test(m)),
    `the refusal says why: ${[...said].join(" | ")}`,
  );
  // The holder wrote its record back; it still serves.
  await h.waitFor(
    "the holder's record back in the witness",
    async () => (await witness.holder())?.holder === w,
    30_000,
  );
  assert.deepEqual(await h.read(w, 65536, 8192), after);

  h.proxy.restore();
  await h.waitInSync();
  assert.deepEqual(await h.read(l, 65536, 8192), after, `node ${l} received the write it missed`);
  assert.equal(await h.fileHash("a"), await h.fileHash("b"));
}

describe("pair: a lost witness record", { timeout: 600_000 }, () => {
  describe("file witness", () => {
    const h = new PairHarness({ sizeBytes: 4 * 1024 * 1024 });
    before(async () => {
      await h.setup();
      await Promise.all([h.start("a"), h.start("b")]);
      await h.waitInSync();
    });
    after(() => h.cleanup());

    it("deleting the record files lets the stale node serve nothing; the holder writes the record back", async () => {
      const spec = h.witnessSpec();
      const witness = await createWitness(parseWitnessSpec(spec), createLogger("witness-loss-test"));
      await scenario(
        h,
        async () => {
          for (const f of await fsp.readdir(h.dir)) {
            if (f.startsWith("witness.v")) await fsp.rm(join(h.dir, f));
          }
        },
        witness,
      );
    });
  });

  describe("Lease witness on the local cluster", () => {
    let cluster: Cluster;
    const ns = `hasan-wl-${randomBytes(3).toString("hex")}`;
    const lease = "pair-witness";
    let h: PairHarness;
    before(async () => {
      cluster = await ensureCluster();
      process.env.KUBECONFIG = cluster.kubeconfig;
      await cluster.kubectlOk(["create", "namespace", ns]);
      const o: HarnessOptions = { sizeBytes: 4 * 1024 * 1024, witness: `lease:${ns}/${lease}` };
      h = new PairHarness(o);
      await h.setup();
      await Promise.all([h.start("a"), h.start("b")]);
      await h.waitInSync();
    });
    after(async () => {
      await h?.cleanup();
      await cluster?.kubectl(["delete", "namespace", ns, "--wait=false"]);
    });

    it("deleting the Lease lets the stale node serve nothing; the holder writes it back", async () => {
      const witness = await createWitness(
        parseWitnessSpec(`lease:${ns}/${lease}`),
        createLogger("witness-loss-test"),
      );
      await scenario(
        h,
        async () => void (await cluster.kubectlOk(["delete", "lease", "-n", ns, lease])),
        witness,
      );
    });
  });
});
