import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { findCycle, folderEdges, relativeImports, tsFilesUnder } from "./import-graph.js";

const operatorDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../operator");

function operatorImports(): Map<string, string[]> {
  const imports = new Map<string, string[]>();
  for (const file of tsFilesUnder(operatorDir))
    imports.set(file, relativeImports(fs.readFileSync(path.join(operatorDir, file), "utf8")));
  return imports;
}

test("no import cycle between the operator's folders (operator/README.md lists who may import whom)", () => {
  const imports = operatorImports();
  assert.ok(imports.size > 50, `read ${imports.size} sources under ${operatorDir}`);
  assert.deepEqual(findCycle(folderEdges(imports)), undefined);
});

test("a cycle through two or three folders is found and named file by file", () => {
  const two = new Map([
    ["reconcile/controller.ts", ["../status/observe.js", "./apply.js"]],
    ["status/observe.ts", ["../reconcile/names.js", "../../target/log.js"]],
  ]);
  assert.deepEqual(findCycle(folderEdges(two)), [
    "reconcile → status (reconcile/controller.ts imports ../status/observe.js)",
    "status → reconcile (status/observe.ts imports ../reconcile/names.js)",
  ]);
  const three = new Map([
    ["a/x.ts", ["../b/y.js"]],
    ["b/y.ts", ["../c/z.js"]],
    ["c/z.ts", ["../a/x.js"]],
    ["main.ts", ["./a/x.js"]],
  ]);
  assert.equal(findCycle(folderEdges(three))?.length, 3);
  const layered = new Map([
    ["main.ts", ["./reconcile/controller.js", "./webhook/server.js"]],
    ["reconcile/controller.ts", ["../pair/names.js", "../status/observe.js"]],
    ["webhook/server.ts", ["../status/observe.js"]],
    ["status/observe.ts", ["../pair/names.js"]],
  ]);
  assert.equal(findCycle(folderEdges(layered)), undefined);
});

test("imports are read from static, type-only, re-export and dynamic forms", () => {
  const src = [
    'import { a } from "../pair/names.js";',
    'import type { B } from "./b.js";',
    'export { c } from "../kit/c.js";',
    'const d = await import("../status/d.js");',
    'import "./side-effect.js";',
    'import express from "express";',
  ].join("\n");
  assert.deepEqual(relativeImports(src), [
    "../pair/names.js",
    "./b.js",
    "../kit/c.js",
    "../status/d.js",
    "./side-effect.js",
  ]);
});
