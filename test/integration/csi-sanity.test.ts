// csi-sanity (built from github.com/kubernetes-csi/csi-test, hack/csi/tools.sh) against the CSI
// driver's controller service running on the host, with the operator turning each CreateVolume's
// HASanTarget into a real pair on the local cluster. The node service is not tested here: the host
// has no iSCSI initiator (its guest test comes with the node plugin's deployment), so the "Node
// Service" tests are skipped and listed. A node-mode driver still answers on its own socket:
// csi-sanity's cleanup after every controller test asks the node service for its capabilities.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { OperatorHarness } from "./operator-harness.js";
import { run, spawnLogged, stopProcess, waitFor } from "../support/processes.js";

/** csi-sanity's describe blocks for the node service: every test in them is skipped here. */
const SKIP = "Node Service";

let h: OperatorHarness;
let driver: ChildProcess | undefined;
let nodeDriver: ChildProcess | undefined;
let sanity = "";
let socket = "";
let nodeSocket = "";
const driverLog = () => join(h.logDir, "csi-controller.log");
const nodeDriverLog = () => join(h.logDir, "csi-node.log");

async function serving(what: string, p: ChildProcess, log: string): Promise<void> {
  await waitFor(
    what,
    async () => {
      if (p.exitCode !== null) throw new Error(`driver exited: ${readFileSync(log, "utf8")}`);
      return readFileSync(log, "utf8").includes('"msg":"serving"');
    },
    30_000,
    200,
  );
}

before(async () => {
  const out = execFileSync("hack/csi/tools.sh", { encoding: "utf8" }).trim().split("\n");
  sanity = join(out[out.length - 1]!, "csi-sanity");
  h = await OperatorHarness.create("csi-sanity");
  await h.startOperator(["--status-poll-active-ms", "500"]);
  socket = join(h.logDir, "csi.sock");
  driver = spawnLogged(
    "node",
    [
      "dist/operator/csi/main.js",
      "--mode",
      "controller",
      "--endpoint",
      `unix://${socket}`,
      "--kubeconfig",
      h.cluster.kubeconfig,
      "--default-namespace",
      h.namespace,
      "--namespace",
      h.namespace,
      "--create-wait-ms",
      "180000",
      "--poll-ms",
      "500",
    ],
    driverLog(),
  );
  await serving("CSI controller socket", driver, driverLog());
  nodeSocket = join(h.logDir, "csi-node.sock");
  nodeDriver = spawnLogged(
    "node",
    [
      "dist/operator/csi/main.js",
      "--mode",
      "node",
      "--endpoint",
      `unix://${nodeSocket}`,
      "--node-id",
      "sanity-host",
      "--state-dir",
      join(h.logDir, "csi-node-state"),
    ],
    nodeDriverLog(),
  );
  await serving("CSI node socket", nodeDriver, nodeDriverLog());
});

after(async () => {
  if (driver) await stopProcess(driver);
  if (nodeDriver) await stopProcess(nodeDriver);
  await h?.cleanup();
});

test("csi-sanity: every controller and identity test passes against the controller service", async (t) => {
  const endpoints = [`--csi.endpoint=${nodeSocket}`, `--csi.controllerendpoint=${socket}`];
  const common = [...endpoints, `--ginkgo.skip=${SKIP}`];
  const listed = await run(
    sanity,
    [...endpoints, `--ginkgo.focus=${SKIP}`, "--ginkgo.dry-run", "--ginkgo.v", "--ginkgo.no-color"],
    {
      timeoutMs: 60_000,
    },
  );
  const skipped = [...listed.stdout.matchAll(/^\s*(Node Service.*?)\s*$/gm)].map((m) => m[1]);
  t.diagnostic(`skipped (no iSCSI initiator on the host): ${skipped.length ? skipped.join(" | ") : SKIP}`);
  const r = await run(
    sanity,
    [
      ...common,
      // Small volumes: each one is a pair with two backing PVCs on the cluster's 2Gi local volumes.
      "--csi.testvolumesize=16777216",
      "--csi.testvolumeexpandsize=33554432",
      "--ginkgo.v",
      "--ginkgo.no-color",
      "--ginkgo.timeout=40m",
    ],
    { timeoutMs: 45 * 60_000 },
  );
  const summary = r.stdout.split("\n").filter((l) => /^(Ran \d+|PASS|FAIL|SUCCESS|\s*\[FAIL\])/.test(l));
  t.diagnostic(summary.join("\n"));
  await h.guard(async () => {
    if (r.code !== 0)
      process.stderr.write(
        `${r.stdout.slice(-12_000)}\n${r.stderr.slice(-4000)}\n--- driver ---\n${readFileSync(driverLog(), "utf8").slice(-8000)}\n`,
      );
    assert.equal(r.code, 0, "csi-sanity failed");
    assert.match(r.stdout, /Ran \d+ of \d+ Specs/);
  });
});
