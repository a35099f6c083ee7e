/**
 * The Kubernetes Lease witness against the local control plane: compare-and-swap through the
 * Lease's resourceVersion lets exactly one of two racing nodes go on alone.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import type { LeaseWitness } from "../../target/replication/witness-lease.js";
import { createLogger } from "../../target/log.js";

describe("Lease witness", { timeout: 600_000 }, () => {
  let cluster: Cluster;
  const ns = `hasan-lease-${randomBytes(3).toString("hex")}`;
  let make: (name: string) => LeaseWitness;

  before(async () => {
    cluster = await ensureCluster();
    process.env.KUBECONFIG = cluster.kubeconfig;
    await cluster.kubectlOk(["create", "namespace", ns]);
    const { LeaseWitness } = await import("../../target/replication/witness-lease.js");
    const logger = createLogger("lease-witness-test");
    make = (name) => LeaseWitness.create(ns, name, logger);
  });
  after(async () => {
    await cluster?.kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  const claim = (node: "a" | "b", current: string, next: string) => ({
    node,
    current,
    next,
    consistent: true,
    initialized: true,
  });

  it("records the pair, then grants exactly one of two racing nodes", async () => {
    for (let round = 0; round < 5; round++) {
      const name = `pair-${round}`;
      const [wa, wb] = [make(name), make(name)];
      assert.equal(await wa.holder(), null);
      assert.ok(await wa.confirmPair("0000000000000000"));
      assert.ok(
        await wb.confirmPair("0000000000000000"),
        "the partner's identical confirmation succeeds too",
      );
      const rec = await wb.holder();
      assert.deepEqual([rec?.holder, rec?.generation], [null, "0000000000000000"]);
      const wins = await Promise.all([
        wa.tryAcquire(claim("a", "0000000000000000", "00000000000000a1")),
        wb.tryAcquire(claim("b", "0000000000000000", "00000000000000b1")),
      ]);
      assert.equal(wins.filter(Boolean).length, 1, `exactly one wins: ${wins.join(",")}`);
      const winner = wins[0] ? "a" : "b";
      const held = await wa.holder();
      assert.equal(held?.holder, winner);
      assert.equal(held?.generation, winner === "a" ? "00000000000000a1" : "00000000000000b1");
      // The loser cannot claim it later, nor undo it with a stale pair confirmation.
      const loserW = winner === "a" ? wb : wa;
      assert.equal(
        await loserW.tryAcquire(claim(winner === "a" ? "b" : "a", "0000000000000000", "00000000000000c1")),
        false,
      );
      assert.equal(await loserW.confirmPair("0000000000000000"), false);
    }
    const lease = await cluster.kubectlOk([
      "get",
      "lease",
      "-n",
      ns,
      "pair-0",
      "-o",
      "jsonpath={.spec.holderIdentity}",
    ]);
    assert.match(lease, /^[ab]$/);
  });
});
