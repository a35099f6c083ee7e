import { readdir, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Container log files: <runDir>/logs/pods/<ns>_<pod>_<uid>/<container>/<restart>.log.
 * Returns the file of the newest incarnation of the pod, latest run (or the one before it).
 */
export async function containerLogFile(
  runDir: string,
  namespace: string,
  pod: string,
  container: string | undefined,
  previous: boolean,
): Promise<string | undefined> {
  const base = path.join(runDir, "logs", "pods");
  const prefix = `${namespace}_${pod}_`;
  const dirs = (await readdir(base).catch(() => [] as string[])).filter((d) => d.startsWith(prefix));
  let newest: { dir: string; t: number } | undefined;
  for (const d of dirs) {
    const t = (await stat(path.join(base, d))).mtimeMs;
    if (!newest || t > newest.t) newest = { dir: d, t };
  }
  if (!newest) return undefined;
  const podDir = path.join(base, newest.dir);
  const containers = await readdir(podDir);
  const c = container ?? (containers.length === 1 ? containers[0] : undefined);
  if (!c || !containers.includes(c)) return undefined;
  const runs = (await readdir(path.join(podDir, c)))
    .map((f) => Number(f.replace(/\.log$/, "")))
    .filter((n) => Number.isInteger(n))
    .sort((a, b) => a - b);
  const n = previous ? runs.at(-2) : runs.at(-1);
  return n === undefined ? undefined : path.join(podDir, c, `${n}.log`);
}

/** The last n lines of a text. */
export function tailLines(text: string, n: number): string {
  if (n <= 0) return "";
  const lines = text.split("\n");
  const trailing = lines.at(-1) === "" ? 1 : 0;
  return lines.slice(Math.max(0, lines.length - trailing - n)).join("\n");
}
