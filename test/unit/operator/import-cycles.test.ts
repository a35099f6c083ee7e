import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { findCycle, folderEdges, layeringTable, relativeImports, tsFilesUnder } from "./import-graph.js";

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

test("every operator folder imports only what the layering table in operator/README.md allows", () => {
  const table = layeringTable(fs.readFileSync(path.join(operatorDir, "README.md"), "utf8"));
  assert.ok(table.size >= 8, `read ${table.size} rows of the layering table`);
  const refused: string[] = [];
  for (const [from, out] of folderEdges(operatorImports())) {
    const allowed = table.get(from);
    if (allowed === undefined) refused.push(`${from}/ is not in the layering table`);
    else if (allowed !== "*")
      for (const [to, why] of out) if (!allowed.has(to)) refused.push(`${from} → ${to}: ${why}`);
  }
  assert.deepEqual(refused, []);
});

test("the layering table reads folder lists, nothing and anything", () => {
  const readme = [
    "### Layering",
    "| folder | may import |",
    "| --- | --- |",
    "| `api/`, `kit/` | nothing of the operator |",
    "| `status/` | `pair/`, `kit/` |",
    "| `main.ts`, `scripts/` | anything |",
    "## Next",
    "| `x/` | `y/` |",
  ].join("\n");
  const t = layeringTable(readme);
  assert.deepEqual(t.get("api"), new Set());
  assert.deepEqual(t.get("status"), new Set(["pair", "kit"]));
  assert.equal(t.get("."), "*");
  assert.equal(t.get("scripts"), "*");
  assert.equal(t.has("x"), false);
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
