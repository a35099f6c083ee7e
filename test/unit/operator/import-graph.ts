import fs from "node:fs";
import path from "node:path";

/** Relative module specifiers a TypeScript source imports or re-exports (static and dynamic). */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)["'](\.{1,2}\/[^"']+)["']/gm;
  for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** Every .ts file under dir (paths relative to dir, with "/"). */
export function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(r);
    }
  };
  walk("");
  return out;
}

/** The folder a file belongs to: its first path segment, or "." for a file at the top. */
export function folderOf(file: string): string {
  const i = file.indexOf("/");
  return i < 0 ? "." : file.slice(0, i);
}

/**
 * Folder-to-folder edges from files and what they import (paths relative to one root, "/"):
 * edge a → b with the file that makes it. Imports leaving the root are ignored.
 */
export function folderEdges(
  imports: ReadonlyMap<string, readonly string[]>,
): Map<string, Map<string, string>> {
  const edges = new Map<string, Map<string, string>>();
  for (const [file, specs] of imports) {
    const from = folderOf(file);
    for (const spec of specs) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      if (target.startsWith("../")) continue;
      const to = folderOf(target);
      if (to === from) continue;
      const out = edges.get(from) ?? new Map<string, string>();
      if (!out.has(to)) out.set(to, `${file} imports ${spec}`);
      edges.set(from, out);
    }
  }
  return edges;
}

/** One cycle in the folder graph as a list of "a → b (because)" steps, or undefined when there is none. */
export function findCycle(edges: ReadonlyMap<string, ReadonlyMap<string, string>>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, "open");
    stack.push(n);
    for (const next of [...(edges.get(n)?.keys() ?? [])].sort()) {
      if (state.get(next) === "open") {
        const loop = [...stack.slice(stack.indexOf(next)), next];
        return loop.slice(1).map((to, i) => `${loop[i]} → ${to} (${edges.get(loop[i]!)!.get(to)})`);
      }
      if (!state.has(next)) {
        const c = visit(next);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of [...edges.keys()].sort()) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

/**
 * The "may import" table under "### Layering" in operator/README.md: folder → the folders it may
 * import, or "*" for anything. Files at the top of operator/ are the folder ".".
 */
export function layeringTable(readme: string): Map<string, Set<string> | "*"> {
  const section = readme.split(/^### Layering$/m)[1]?.split(/^#{2,3} /m)[0] ?? "";
  const table = new Map<string, Set<string> | "*">();
  const folders = (cell: string) =>
    [...cell.matchAll(/`([^`]+)`/g)].map((m) => (m[1]!.endsWith("/") ? m[1]!.slice(0, -1) : "."));
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || !cells[1]!.includes("`")) continue;
    const allowed: Set<string> | "*" = cells[2]!.startsWith("anything") ? "*" : new Set(folders(cells[2]!));
    for (const f of folders(cells[1]!)) table.set(f, allowed);
  }
  return table;
}
