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
      assert.ok(await wa.confirmPair("a", "0000000000000000"));
      assert.equal(
        await wb.tryAcquire(claim("b", "0000000000000000", "00000000000000b0")),
        false,
        "a pair record confirmed by one node grants nothing",
      );
      assert.ok(await wb.confirmPair("b", "0000000000000000"), "the partner's confirmation completes it");
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
      assert.equal(await loserW.confirmPair(winner === "a" ? "b" : "a", "0000000000000000"), false);
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

  it("with one node serving alone, a deleted Lease grants the other nothing, and the holder writes it back", async () => {
    const name = "pair-deleted";
    const [wa, wb] = [make(name), make(name)];
    const g0 = "0000000000000010";
    assert.ok(await wa.confirmPair("a", g0));
    assert.ok(await wb.confirmPair("b", g0));
    assert.ok(await wa.tryAcquire(claim("a", g0, "00000000000000a2")), "a goes on alone");
    await cluster.kubectlOk(["delete", "lease", "-n", ns, name]);
    assert.equal(await wb.holder(), null);
    assert.equal(await wb.tryAcquire(claim("b", g0, "00000000000000b2")), false, "b, behind a, is refused");
    // b's late confirmation of its old generation makes half a pair, which grants nothing.
    assert.ok(await wb.confirmPair("b", g0));
    assert.equal(await wb.tryAcquire(claim("b", g0, "00000000000000b3")), false);
    assert.equal(await wa.renewAlone("a", "00000000000000a2"), "ok");
    const back = await wb.holder();
    assert.deepEqual([back?.holder, back?.generation], ["a", "00000000000000a2"]);
    assert.equal(await wb.tryAcquire(claim("b", g0, "00000000000000b4")), false);
    assert.equal(await wb.renewAlone("b", g0), "conflict", "b would stop if it believed it served alone");
  });
});
