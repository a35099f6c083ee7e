/**
 * On the local cluster, with the operator: spec.replication.records Authenticated reaches both
 * target pods, and the pair links with authenticated records (status.nodes[].linkRecords); turning
 * it back to Encrypted rolls the pods one at a time, and the pair links encrypted again.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness } from "./operator-harness.js";

const name = "records";
let h: OperatorHarness;

before(async () => {
  h = await OperatorHarness.create("hst-records");
  await h.startOperator(["--status-poll-steady-ms", "1000"]);
});

after(async () => {
  await h?.cleanup();
});

type PodSpec = { spec: { containers: { args: string[] }[] }; metadata: { uid: string } };

async function linkRecords(): Promise<(string | undefined)[]> {
  const nodes = (await h.target(name))?.status?.nodes ?? [];
  return ["a", "b"].map((n) => nodes.find((x) => x.name === n)?.linkRecords);
}

async function waitLinked(records: "Encrypted" | "Authenticated"): Promise<void> {
  await h.waitFor(
    `both nodes linked with ${records} records`,
    async () => (await linkRecords()).every((r) => r === records),
    300_000,
  );
  await h.waitSynchronized(name);
}

test("records Authenticated: both pods ask for it and the pair links with authenticated records; back to Encrypted, the pods roll and the link is encrypted again", () =>
  h.guard(async () => {
    await h.applyTarget(name, { capacity: "64Mi", replication: { records: "Authenticated" } });
    await waitLinked("Authenticated");
    const before: Record<string, string> = {};
    for (const n of ["a", "b"]) {
      const pod = (await h.child("v1", "Pod", `${name}-${n}`)) as unknown as PodSpec;
      const args = pod.spec.containers[0]!.args;
      assert.equal(args[args.indexOf("--peer-records") + 1], "authenticated", `pod ${n}`);
      before[n] = pod.metadata.uid;
    }

    await h.applyTarget(name, { capacity: "64Mi", replication: { records: "Encrypted" } });
    await h.waitFor(
      "both pods replaced",
      async () => {
        for (const n of ["a", "b"]) {
          const pod = (await h.child("v1", "Pod", `${name}-${n}`)) as unknown as PodSpec | undefined;
          if (!pod || pod.metadata.uid === before[n]) return false;
          if (pod.spec.containers[0]!.args.includes("--peer-records")) return false;
        }
        return true;
      },
      600_000,
    );
    await waitLinked("Encrypted");
  }));
