import { test } from "node:test";
import assert from "node:assert/strict";
import { imageAllowed, targetImageProblem } from "../../../operator/reconcile/image-policy.js";
import { target } from "./fixtures.js";

const allowed = ["ghcr.io/hasan-dev/hasan:0.1.0", "registry.example/san/*"];

test("exact images and prefixes ending in * are allowed; anything else is not", () => {
  assert.equal(imageAllowed("ghcr.io/hasan-dev/hasan:0.1.0", allowed), true);
  assert.equal(imageAllowed("registry.example/san/hasan:9", allowed), true);
  assert.equal(imageAllowed("ghcr.io/hasan-dev/hasan:0.1.1", allowed), false, "exact means exact");
  assert.equal(imageAllowed("ghcr.io/hasan-dev/hasan:0.1.0-evil", allowed), false);
  assert.equal(imageAllowed("registry.example/sanity/x:1", allowed), false, "the prefix ends at the /");
  assert.equal(imageAllowed("anything", []), false);
});

test("a target without spec.pod.image runs the operator's image and is never refused", () => {
  assert.equal(targetImageProblem(target(), []), undefined);
});

test("a target naming an image outside allowedTargetImages gets a spec error naming the setting", () => {
  const problem = targetImageProblem(target({ pod: { image: "evil.example/miner:1" } }), allowed);
  assert.match(
    problem ?? "",
    /^spec\.pod\.image: evil\.example\/miner:1 is not allowed by the operator's allowedTargetImages \(ghcr\.io\/hasan-dev\/hasan:0\.1\.0, registry\.example\/san\/\*\)/,
  );
  assert.equal(
    targetImageProblem(target({ pod: { image: "registry.example/san/t:2" } }), allowed),
    undefined,
  );
});
