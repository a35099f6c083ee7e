// End to end on the local cluster with real target pods: the pair becomes Synchronized
// (`kubectl wait` works), a cut peer link shows up as Degraded with a zero-disruption PDB, the
// eviction webhook answers 429 with the reason while the pair is not Working, and a drain waits
// for the pair to heal and then proceeds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { OperatorHarness } from "./operator-harness.js";
import { freePort } from "../support/processes.js";
import { startDrain } from "../support/cluster.js";
import { KubeApiError } from "../../operator/kit/kube-client.js";

let h: OperatorHarness;
let webhookName = "";
let failedNode = "";
const name = "pair";
const podRef = (n: "a" | "b") => ({ namespace: h.namespace, name: `${name}-${n}` });

before(async () => {
  h = await OperatorHarness.create("hst-e2e");
  const pki = join(h.logDir, "pki");
  execFileSync("operator/scripts/webhook-certs.sh", [pki]);
  const port = await freePort();
  await h.startOperator([
    "--webhook-addr",
    `127.0.0.1:${port}`,
    "--webhook-cert",
    join(pki, "tls.crt"),
    "--webhook-key",
    join(pki, "tls.key"),
    "--status-poll-steady-ms",
    "1000",
  ]);
  webhookName = `hasan-eviction-${h.namespace}`;
  await h.client.apply(
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: webhookName },
      webhooks: [
        {
          name: "eviction.hasan.dev",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          failurePolicy: "Fail",
          timeoutSeconds: 5,
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": h.namespace } },
          clientConfig: {
            url: `https://127.0.0.1:${port}/validate-eviction`,
            caBundle: readFileSync(join(pki, "ca.crt")).toString("base64"),
          },
          rules: [
            {
              apiGroups: [""],
              apiVersions: ["v1"],
              operations: ["CREATE"],
              resources: ["pods/eviction"],
              scope: "Namespaced",
            },
          ],
        },
      ],
    } as { apiVersion: string; kind: string; metadata: { name: string } },
    "integration-test",
  );
});

after(async () => {
  if (!h) return;
  await h.cluster.restoreLink(podRef("a"), podRef("b")).catch(() => undefined);
  if (failedNode) await h.cluster.restoreNode(failedNode).catch(() => undefined);
  for (const node of ["hasan-node-1", "hasan-node-2", "hasan-node-3"]) {
    await h.cluster.kubectl(["uncordon", node]).catch(() => undefined);
  }
  await h.client.delete(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    undefined,
    webhookName,
  );
  await h.cleanup();
});

async function evict(pod: string): Promise<{ code: number; message: string }> {
  try {
    await h.client.request("POST", `/api/v1/namespaces/${h.namespace}/pods/${pod}/eviction`, {
      body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace: h.namespace } },
    });
    return { code: 201, message: "" };
  } catch (e) {
    if (e instanceof KubeApiError) return { code: e.code, message: e.message };
    throw e;
  }
}

/** Disruptions the PDB allows right now, as computed by the cluster's disruption controller. */
const disruptionsAllowed = async () =>
  (
    (await h.child("policy/v1", "PodDisruptionBudget", name)) as
      { status?: { disruptionsAllowed?: number } } | undefined
  )?.status?.disruptionsAllowed;

test("the pair becomes Synchronized and the PDB allows one disruption", () =>
  h.guard(async () => {
    await h.applyTarget(name, { capacity: "64Mi" });
    await h.waitFor("target exists", async () => h.target(name));
    await h.waitSynchronized(name, 180);
    const t = await h.target(name);
    assert.equal(t?.status?.phase, "Ready");
    assert.deepEqual(
      t?.status?.nodes?.map((n) => n.state),
      ["Working", "Working"],
    );
    await h.waitFor("PDB allows one disruption", async () => (await disruptionsAllowed()) === 1);
    const table = await h.cluster.kubectlOk(["get", "hst", name, "-n", h.namespace]);
    assert.match(table, /Ready\s+Working\s+Working\s+100%/);
  }));

test("a cut peer link shows as Degraded; the PDB and the webhook refuse evictions with the reason", () =>
  h.guard(async () => {
    await h.cluster.cutLink(podRef("a"), podRef("b"));
    const cutAt = Date.now();
    const degraded = await h.waitFor(
      "Degraded",
      async () => {
        const c = (await h.target(name))?.status?.conditions?.find((x) => x.type === "Degraded");
        return c?.status === "True" ? c : undefined;
      },
      60_000,
    );
    process.stderr.write(`degraded after ${Date.now() - cutAt} ms: ${degraded.message}\n`);
    assert.match(degraded.message, /node [ab] (lost|unreachable|state unknown)/);
    await h.waitFor("PDB allows no disruption", async () => (await disruptionsAllowed()) === 0);
    // Which node goes on alone is a race for the witness; the webhook must refuse to evict that
    // one, with the reason, and the budget still holds the other while the pair is degraded.
    // Both nodes are Failed while they wait out the read lease and ask the witness; the winner
    // says it serves alone.
    const serving = await h.waitFor(
      "one node serving alone",
      async () =>
        (await h.target(name))?.status?.nodes?.find(
          (n) => n.state === "Failed" && /serving alone/.test(n.message ?? ""),
        )?.name,
      60_000,
    );
    const other = serving === "a" ? "b" : "a";
    const denied = await evict(`${name}-${serving}`);
    assert.equal(denied.code, 429, denied.message);
    assert.match(denied.message, new RegExp(`partner node ${other} is down|only copy`));
    const deniedOther = await evict(`${name}-${other}`);
    assert.equal(deniedOther.code, 429, deniedOther.message);
    assert.ok(await h.child("v1", "Pod", `${name}-a`), "pod a still there");
    assert.ok(await h.child("v1", "Pod", `${name}-b`), "pod b still there");
  }));

test("a drain waits while the partner node is down and completes once the pair healed", () =>
  h.guard(async () => {
    await h.cluster.restoreLink(podRef("a"), podRef("b"));
    await h.waitSynchronized(name, 180);
    const podA = await h.child("v1", "Pod", `${name}-a`);
    const podB = await h.child("v1", "Pod", `${name}-b`);
    const nodeA = podA?.spec?.nodeName as string;
    const nodeB = podB?.spec?.nodeName as string;
    failedNode = nodeB;
    await h.cluster.failNode(nodeB);
    await h.waitFor(
      "node b not Working",
      async () => (await h.target(name))?.status?.nodes?.[1]?.state !== "Working",
      60_000,
    );
    const drain = startDrain(h.cluster, nodeA, name);
    const output = drain.output;
    await h.waitFor("drain retrying on 429", async () => /will retry after 5s/i.test(output()), 60_000);
    process.stderr.write(
      `drain says: ${output()
        .split("\n")
        .find((l) => /evicting/i.test(l) && /error/i.test(l))}\n`,
    );
    const stillThere = await h.child("v1", "Pod", `${name}-a`);
    assert.equal(stillThere?.metadata.uid, podA?.metadata.uid, "pod a not evicted while its partner is down");

    await h.cluster.restoreNode(nodeB);
    failedNode = "";
    await h.waitSynchronized(name, 180);
    const { code } = await drain.exited;
    assert.equal(code, 0, output());
    await h.waitFor("pod a evicted", async () => {
      const p = await h.child("v1", "Pod", `${name}-a`);
      return !p || p.metadata.uid !== podA?.metadata.uid;
    });
    // Pod a's volume lives on the drained node: it returns once the node is uncordoned.
    await h.cluster.kubectlOk(["uncordon", nodeA]);
    await h.waitSynchronized(name, 180);
    await h.waitFor(
      "both Working again",
      async () => (await h.target(name))?.status?.nodes?.every((n) => n.state === "Working"),
      180_000,
    );
  }));
