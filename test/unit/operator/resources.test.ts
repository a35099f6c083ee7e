import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resourceOfPath, resourcePath } from "../../../operator/kit/resources.js";

describe("resourceOfPath (the metrics label of an API request)", () => {
  it("names the resource of core and group paths, namespaced or not, without object names", () => {
    assert.equal(resourceOfPath(resourcePath("v1", "Pod", "ns", "p-a")), "pods");
    assert.equal(
      resourceOfPath(resourcePath("v1", "PersistentVolume", undefined, "pv1")),
      "persistentvolumes",
    );
    assert.equal(resourceOfPath(resourcePath("hasan.dev/v1alpha1", "HASanTarget", "ns")), "hasantargets");
    assert.equal(
      resourceOfPath("/apis/coordination.k8s.io/v1/namespaces/ns/leases?fieldManager=x"),
      "leases",
    );
  });
  it("keeps the subresource, which tells status writes from spec writes", () => {
    assert.equal(
      resourceOfPath("/apis/hasan.dev/v1alpha1/namespaces/ns/hasantargets/t1/status"),
      "hasantargets/status",
    );
    assert.equal(resourceOfPath("/api/v1/namespaces/ns/pods/p/eviction"), "pods/eviction");
  });
  it("a namespace object itself is the namespaces resource", () => {
    assert.equal(resourceOfPath("/api/v1/namespaces/ns"), "namespaces");
    assert.equal(resourceOfPath("/api/v1/namespaces"), "namespaces");
  });
});
