import { run } from "./processes.js";

/** Outcome of one libiscsi conformance test, named SUITE.TEST as `iscsi-test-cu -t` accepts. */
export interface ConformanceOutcome {
  name: string;
  result: "passed" | "failed" | "skipped";
  detail: string;
  warnings: string[];
}

export interface ConformanceRun {
  outcomes: ConformanceOutcome[];
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  raw: string;
}

/**
 * Parses iscsi-test-cu's verbose CUnit output. The verdict is CUnit's: a test failed when its result
 * token is FAILED ("Test: X ...FAILED" or a "FAILED" line). CUnit prints "passed" for tests that skip
 * themselves, so skips are told apart by their [SKIPPED] lines; "[FAILED]" messages inside a test
 * that CUnit passed are kept as warnings.
 */
export function parseConformanceOutput(raw: string): ConformanceRun {
  const outcomes: ConformanceOutcome[] = [];
  let suite = "";
  let current: ConformanceOutcome | undefined;
  const note = (o: ConformanceOutcome, text: string) => {
    if (/\[SKIPPED\]/.test(text) && o.result === "passed") o.result = "skipped";
    const msg = /\[(SKIPPED|FAILED)\].*/.exec(text);
    if (msg && !o.detail) o.detail = msg[0].trim();
    if (/\[FAILED\]/.test(text)) o.warnings.push(text.trim());
  };
  for (const line of raw.split("\n")) {
    const s = /^Suite: (\S+)/.exec(line);
    if (s) {
      suite = s[1] ?? "";
      current = undefined;
      continue;
    }
    if (/^Run Summary/.test(line)) {
      current = undefined;
      continue;
    }
    const t = /^ {2}Test: (\S+) \.\.\.(.*)$/.exec(line);
    if (t) {
      current = { name: `${suite}.${t[1]}`, result: "passed", detail: "", warnings: [] };
      outcomes.push(current);
      const rest = t[2] ?? "";
      if (/^FAILED/.test(rest)) current.result = "failed";
      note(current, rest);
      continue;
    }
    if (!current) continue;
    if (/^FAILED\s*$/.test(line)) current.result = "failed";
    else note(current, line);
  }
  for (const o of outcomes) if (o.result === "failed" && !o.detail) o.detail = o.warnings[0] ?? "FAILED";
  const count = (r: ConformanceOutcome["result"]) => outcomes.filter((o) => o.result === r).length;
  return {
    outcomes,
    total: outcomes.length,
    passed: count("passed"),
    failed: count("failed"),
    skipped: count("skipped"),
    raw,
  };
}

export async function runConformance(
  urls: string[],
  options: { test?: string; initiators?: [string, string]; timeoutMs?: number } = {},
): Promise<ConformanceRun> {
  const [i1, i2] = options.initiators ?? ["iqn.2026-11.dev.hasan:init1", "iqn.2026-11.dev.hasan:init2"];
  const args = ["-d", "-i", i1, "-I", i2, "-t", options.test ?? "ALL", ...urls];
  const r = await run("iscsi-test-cu", args, { timeoutMs: options.timeoutMs ?? 900_000 });
  const parsed = parseConformanceOutput(r.stdout + r.stderr);
  if (parsed.total === 0)
    throw new Error(`iscsi-test-cu ran no test (exit ${r.code}): ${r.stdout}${r.stderr}`);
  return parsed;
}
