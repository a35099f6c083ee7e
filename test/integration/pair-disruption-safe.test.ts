/**
 * A target pod's readiness is `/disruption-safe`: true only while losing the node loses no data
 * (the pair is Working). The pair's PodDisruptionBudget counts Ready pods, so evictions are
 * refused while a node is alone or a resync runs, without the operator having to update it.
 */
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import { startTargetPair, type PairHandle } from "../support/target-pair.js";
import { qemuIoOk } from "../support/qemu.js";
import type { TargetHandle } from "../support/target-process.js";
import { waitFor } from "../support/processes.js";

let pair: PairHandle;

before(async () => {
  pair = await startTargetPair({ size: "64Mi", extraArgs: ["--resync-rate", "4Mi"] });
});

after(async () => {
  await pair?.stop();
});

async function safe(t: TargetHandle): Promise<{ code: number; reason: string }> {
  const r = await fetch(`http://${t.host}:${t.agentPort}/disruption-safe`);
  return { code: r.status, reason: (await r.text()).trim() };
}

test("disruption-safe: 200 while Working; 503 with the reason while alone and while resyncing; 200 again once in sync", async () => {
  assert.equal((await safe(pair.a)).code, 200);
  assert.equal((await safe(pair.b)).code, 200);

  await pair.b.stop("SIGKILL");
  await pair.waitServingAlone("a");
  const alone = await safe(pair.a);
  assert.equal(alone.code, 503, "the only copy is not safe to lose");
  assert.match(alone.reason, /^Failed/);
  // Enough changes for a resync that takes a few seconds at 4 MiB/s.
  await qemuIoOk(pair.a.url(), ["write -P 0x5a 0 24M"]);

  await pair.b.restart().catch(() => undefined);
  const seen = new Set<string>();
  await waitFor(
    "the resync to run and end",
    async () => {
      const [a, b] = [await safe(pair.a), await safe(pair.b)];
      if (a.code !== 200 || b.code !== 200) seen.add(`${a.reason.split(":")[0]}/${b.reason.split(":")[0]}`);
      return a.code === 200 && b.code === 200;
    },
    120_000,
    200,
  );
  assert.ok(
    [...seen].some((s) => s === "Synchronizing/Pending"),
    `both refused while the resync ran (saw ${[...seen].join(", ")})`,
  );
  await pair.waitWorking();
  await qemuIoOk(pair.b.url(), ["read -P 0x5a 0 24M"]);
});
