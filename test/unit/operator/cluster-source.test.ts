// Where the operator and the CSI controller find their cluster, and the refusal to start when there
// is none (the client library would otherwise retry http://localhost:8080 forever).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  clusterSource,
  NoClusterError,
  SERVICE_ACCOUNT_TOKEN,
} from "../../../operator/kit/cluster-source.js";
import { KubeClient } from "../../../operator/kit/kube-client.js";

const files =
  (...present: string[]) =>
  (f: string) =>
    present.includes(f);

describe("clusterSource", () => {
  it("takes --kubeconfig, then KUBECONFIG, then ~/.kube/config, then the pod's service account", () => {
    const all = files("/home/u/.kube/config", SERVICE_ACCOUNT_TOKEN);
    assert.equal(clusterSource("/k", { KUBECONFIG: "/e", HOME: "/home/u" }, all), "--kubeconfig /k");
    assert.equal(clusterSource(undefined, { KUBECONFIG: "/e", HOME: "/home/u" }, all), "KUBECONFIG=/e");
    assert.equal(clusterSource(undefined, { HOME: "/home/u" }, all), "/home/u/.kube/config");
    assert.equal(
      clusterSource(undefined, { HOME: "/home/u" }, files(SERVICE_ACCOUNT_TOKEN)),
      "the pod's service account",
    );
    assert.equal(clusterSource(undefined, {}, files(SERVICE_ACCOUNT_TOKEN)), "the pod's service account");
  });

  it("refuses when nothing names a cluster, saying what it looked for", () => {
    assert.throws(
      () => clusterSource(undefined, { HOME: "/home/u" }, files()),
      (e: unknown) =>
        e instanceof NoClusterError &&
        e.message.includes("/home/u/.kube/config") &&
        e.message.includes(SERVICE_ACCOUNT_TOKEN) &&
        e.message.includes("--kubeconfig"),
    );
  });

  it("KubeClient.fromOptions refuses too", () => {
    assert.throws(
      () => KubeClient.fromOptions({}, { HOME: "/nonexistent-home-for-this-test" }),
      NoClusterError,
    );
  });
});
