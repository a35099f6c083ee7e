// The modules a compiled entry point loads: relative imports followed through dist/, package
// imports collected by package name. Static `import`/`export … from` and dynamic `import("…")` with
// a literal specifier are what tsc emits for this project's ESM.
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";

export interface ImportGraph {
  /** absolute paths of the project's own modules reached, entry points included */
  files: Set<string>;
  /** package name -> the first project module that imports it */
  packages: Map<string, string>;
  /** dynamic imports whose specifier is not a literal, which the walk cannot follow */
  unresolved: string[];
}

const SPECIFIER =
  /(?:\bimport|\bexport)\s[^;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
const DYNAMIC_NON_LITERAL = /\bimport\(\s*[^"'\s)]/g;

/** "@scope/name/sub" -> "@scope/name", "name/sub" -> "name"; undefined for a Node.js builtin. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith("node:")) return undefined;
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
  return builtinModules.includes(name) ? undefined : name;
}

export function importGraph(entryPoints: readonly string[]): ImportGraph {
  const graph: ImportGraph = { files: new Set(), packages: new Map(), unresolved: [] };
  const queue = [...entryPoints.map((e) => path.resolve(e))];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (graph.files.has(file)) continue;
    graph.files.add(file);
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(DYNAMIC_NON_LITERAL)) graph.unresolved.push(`${file}: ${m[0]}`);
    for (const m of source.matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec === undefined) continue;
      if (spec.startsWith(".")) {
        queue.push(path.resolve(path.dirname(file), spec));
        continue;
      }
      const pkg = packageOf(spec);
      if (pkg !== undefined && !graph.packages.has(pkg)) graph.packages.set(pkg, file);
    }
  }
  return graph;
}
