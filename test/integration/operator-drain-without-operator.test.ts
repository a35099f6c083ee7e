// Drains stay safe while the operator is down: a target pod is Ready only while its pair is
// Working, and the pair's PodDisruptionBudget counts Ready pods, so the cluster's own disruption
// controller refuses to evict the node that holds the only current copy during a resync, with no
// operator (and no webhook) to ask. Stop the operator, fail b's node, write through a, bring b
// back, drain a's node during the resync: refused until the resync ends, then it goes through.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness } from "./operator-harness.js";
import { startDrain } from "../support/cluster.js";
import { qemuIoOk } from "../support/qemu.js";
import { TargetStatusSchema } from "../../target/agent/status-schema.js";

let h: OperatorHarness;
const name = "pdb";
let failedNode: string | undefined;
let cordoned: string | undefined;

interface PodJson {
  metadata: { uid: string };
  spec: { nodeName?: string };
  status?: { podIP?: string };
}

before(async () => {
  h = await OperatorHarness.create("hst-pdb");
  await h.startOperator(["--status-poll-steady-ms", "1000"]);
});

after(async () => {
  if (failedNode) await h.cluster.restoreNode(failedNode).catch(() => undefined);
  if (cordoned) await h.cluster.kubectl(["uncordon", cordoned]);
  await h.startOperator(["--status-poll-steady-ms", "1000"]).catch(() => undefined);
  await h.cleanup();
});

const pod = async (n: "a" | "b") =>
  (await h.child("v1", "Pod", `${name}-${n}`)) as unknown as PodJson | undefined;
const disruptionsAllowed = async () =>
  (
    (await h.child("policy/v1", "PodDisruptionBudget", name)) as
      { status?: { disruptionsAllowed?: number } } | undefined
  )?.status?.disruptionsAllowed;

test("with the operator stopped, draining the node that holds the only current copy waits for the resync", () =>
  h.guard(async () => {
    await h.applyTarget(name, { capacity: "96Mi", replication: { resyncRateLimit: "2Mi" } });
    await h.waitSynchronized(name, 180);
    await h.waitFor("PDB allows one disruption", async () => (await disruptionsAllowed()) === 1);
    const status = (await h.target(name))?.status;
    const portalA = status?.portals?.[0];
    const iqn = status?.iqn;
    assert.ok(portalA && iqn, "status names the portals and the IQN");
    const [podA, podB] = [await pod("a"), await pod("b")];
    const nodeA = podA?.spec.nodeName;
    const nodeB = podB?.spec.nodeName;
    const agentA = `http://${podA?.status?.podIP}:8080`;
    assert.ok(nodeA && nodeB && podA?.status?.podIP, "both pods scheduled, a has an IP");
    // The agent answers /status only with the pair's token; the initiator logs in with the
    // generated CHAP credentials.
    const token = await h.agentToken(name);
    const chap = await h.chapCredentials(name);
    const stateA = async () =>
      TargetStatusSchema.parse(
        await (
          await fetch(`${agentA}/status`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          })
        ).json(),
      ).replication;

    await h.stopOperator();
    failedNode = nodeB;
    await h.cluster.failNode(nodeB);
    await h.waitFor(
      "a serving alone",
      async () => {
        const s = await stateA();
        return s?.state === "Failed" && s.serving;
      },
      60_000,
    );
    // 32 MiB that b lacks: the resync takes about 16 s at 2 MiB/s.
    await qemuIoOk(`iscsi://${chap.user}%${chap.secret}@${portalA}/${iqn}/0`, ["write -P 0x3c 0 32M"]);
    await h.cluster.restoreNode(nodeB);
    failedNode = undefined;
    await h.waitFor("the resync in flight", async () => (await stateA())?.state === "Synchronizing", 120_000);
    await h.waitFor("the budget refuses disruptions", async () => (await disruptionsAllowed()) === 0, 30_000);

    cordoned = nodeA;
    const drain = startDrain(h.cluster, nodeA, name);
    let workingAt = 0;
    let refusedWhileResyncing = false;
    let evictedDuringResync = false;
    try {
      await h.waitFor(
        "a Working again (or pod a evicted during the resync)",
        async () => {
          const s = await stateA().catch(() => undefined);
          const current = await pod("a");
          if (current?.metadata.uid !== podA?.metadata.uid && workingAt === 0) {
            evictedDuringResync = true;
            return true;
          }
          if (s?.state === "Synchronizing" && /disruption budget/i.test(drain.output()))
            refusedWhileResyncing = true;
          if (s?.state === "Working") {
            workingAt = Date.now();
            return true;
          }
          return false;
        },
        240_000,
      );
      assert.ok(
        !evictedDuringResync,
        `pod a, the only current copy, was evicted during the resync: ${drain.output()}`,
      );
      const exit = await Promise.race([
        drain.exited,
        new Promise<null>((r) => setTimeout(() => r(null), 120_000)),
      ]);
      process.stderr.write(`drain output:\n${drain.output()}\n`);
      assert.ok(
        refusedWhileResyncing,
        `the drain was refused by the budget during the resync: ${drain.output()}`,
      );
      assert.ok(exit, `the drain completes once the pair is Working: ${drain.output()}`);
      assert.equal(exit.code, 0, drain.output());
      assert.ok(exit.at >= workingAt, "the drain finished only after the pair was Working");
    } finally {
      if (drain.process.exitCode === null) drain.process.kill("SIGTERM");
    }
    await h.cluster.kubectlOk(["uncordon", nodeA]);
    cordoned = undefined;
  }));
