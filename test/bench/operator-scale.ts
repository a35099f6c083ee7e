// `make bench-operator`: the operator at scale on the local cluster. Applies N HASanTargets
// (default 500) whose pods can never be scheduled (a node selector no node has), then reports:
// time until every target has children and a status for its generation, the operator's memory,
// and its writes to the API per minute once nothing changes any more (the goal is zero).
import { readFileSync } from "node:fs";
import { OperatorHarness } from "../integration/operator-harness.js";
import { printTable } from "./qemu-bench.js";

const count = Number(process.env.BENCH_TARGETS ?? 500);
const steadyMs = Number(process.env.BENCH_STEADY_MS ?? 60_000);
// After the last target got its first status: later transitions and the first drift check of
// every child (60 s after its creation) still write; steady state starts after them.
const settleMs = Number(process.env.BENCH_SETTLE_MS ?? 90_000);

interface Listed {
  metadata: { name: string; generation?: number };
  status?: { observedGeneration?: number; phase?: string };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The operator's API writes so far, by "METHOD resource". */
async function writes(h: OperatorHarness): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${h.metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const l of text.split("\n")) {
    const m = /^hasan_operator_api_requests_total\{method="(POST|PUT|PATCH|DELETE)",resource="([^"]*)"/.exec(
      l,
    );
    if (!m) continue;
    const key = `${m[1]} ${m[2]}`;
    out.set(key, (out.get(key) ?? 0) + Number(l.split(" ").pop()));
  }
  return out;
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

async function main() {
  const h = await OperatorHarness.create("scale");
  try {
    const op = await h.startOperator();
    const pid = op.child.pid ?? 0;
    const rssBefore = rssMiB(pid);
    const t0 = Date.now();
    // Apply in parallel batches, as a GitOps tool would.
    for (let i = 0; i < count; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, count - i) }, (_, j) =>
          h.applyTarget(`t${String(i + j).padStart(4, "0")}`, {
            capacity: "64Mi",
            pod: { nodeSelector: { "hasan.dev/bench": "no-such-node" } },
          }),
        ),
      );
    }
    const applied = Date.now() - t0;
    let done = 0;
    await h.waitFor(
      `all ${count} targets reconciled`,
      async () => {
        const list = await h.client.list<Listed>("hasan.dev/v1alpha1", "HASanTarget", h.namespace);
        done = list.items.filter(
          (t) =>
            t.status?.observedGeneration !== undefined &&
            t.status.observedGeneration === t.metadata.generation,
        ).length;
        return done === count;
      },
      30 * 60_000,
    );
    const reconciled = Date.now() - t0;
    const rssAfter = rssMiB(pid);
    await new Promise((r) => setTimeout(r, settleMs));
    const w0 = await writes(h);
    await new Promise((r) => setTimeout(r, steadyMs));
    const w1 = await writes(h);
    const perMinute = ((total(w1) - total(w0)) * 60_000) / steadyMs;
    const byKind = [...w1]
      .map(([k, v]) => [k, v - (w0.get(k) ?? 0)] as const)
      .filter(([, d]) => d > 0)
      .map(([k, d]) => [`  of which ${k}`, ((d * 60_000) / steadyMs).toFixed(1)]);
    console.log(`\nOperator at scale (${count} HASanTargets, pods unschedulable, local cluster)`);
    printTable(
      ["measure", "value"],
      [
        ["apply all (client side)", `${(applied / 1000).toFixed(1)} s`],
        [
          "time until all reconciled (children + status for the generation)",
          `${(reconciled / 1000).toFixed(1)} s`,
        ],
        ["operator memory (RSS) before / after", `${rssBefore.toFixed(0)} MiB / ${rssAfter.toFixed(0)} MiB`],
        [
          `API writes per minute in steady state (${steadyMs / 1000} s window, ${settleMs / 1000} s after)`,
          perMinute.toFixed(1),
        ],
        ...byKind,
      ],
    );
  } finally {
    await h.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
