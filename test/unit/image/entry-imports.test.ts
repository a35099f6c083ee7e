// What the image's three programs load: the image ships dist/operator and dist/target without the
// Pulumi component and only the production dependencies (npm ci --omit=dev --omit=peer), so the
// operator, the target and the CSI driver must reach neither @pulumi/* nor any package outside
// "dependencies", nor a module outside what the image copies.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { importGraph } from "../../support/import-graph.js";
import { repoRoot } from "../../support/target-process.js";

const dist = path.join(repoRoot, "dist");
const entryPoints = ["operator/main.js", "target/main.js", "operator/csi/main.js"].map((p) =>
  path.join(dist, p),
);
const pkg = z
  .object({
    dependencies: z.record(z.string(), z.string()),
    peerDependencies: z.record(z.string(), z.string()),
  })
  .parse(JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")));

describe("the image's entry points", () => {
  const graph = importGraph(entryPoints);

  it("follow every import (no computed dynamic import the walk cannot see)", () => {
    assert.deepEqual(graph.unresolved, []);
    // The target's witnesses are loaded with import("./witness-….js"): the walk must see them.
    assert.ok([...graph.files].some((f) => f.endsWith(path.join("replication", "witness-lease.js"))));
  });

  it("never reach @pulumi/*", () => {
    const pulumi = [...graph.packages].filter(([name]) => name.startsWith("@pulumi/"));
    assert.deepEqual(pulumi, []);
  });

  it("load only production dependencies", () => {
    const outside = [...graph.packages].filter(([name]) => !(name in pkg.dependencies));
    assert.deepEqual(outside, [], "packages imported but not in package.json dependencies");
  });

  it("load only modules the image copies (dist/operator and dist/target, not the Pulumi component)", () => {
    const outside = [...graph.files].filter((f) => {
      const rel = path.relative(dist, f);
      return (
        !(rel.startsWith(`operator${path.sep}`) || rel.startsWith(`target${path.sep}`)) ||
        rel.startsWith(path.join("operator", "pulumi"))
      );
    });
    assert.deepEqual(outside, []);
  });
});

describe("the Pulumi component", () => {
  it("is what needs the @pulumi peers, and the walk finds them there", () => {
    const graph = importGraph([path.join(dist, "operator/pulumi/index.js")]);
    for (const name of Object.keys(pkg.peerDependencies)) assert.ok(graph.packages.has(name), name);
  });
});
