/**
 * The agent token on the real product: a pair of `dist/target/main.js serve` processes run with
 * --agent-token-file, as the operator starts them. Without the token or with another one, nobody
 * reads /status or asks to resolve a split brain (401/403, the pair untouched); with it both work;
 * the kubelet's probes and /metrics stay open.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { IscsiPairHarness } from "../support/iscsi-pair-harness.js";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../support/processes.js";
import { startTarget, targetMain, type TargetHandle } from "../support/target-process.js";

const h = new IscsiPairHarness({ sizeBytes: 8 * 1024 * 1024, sessionsPerNode: 1 });

const post = (n: "a" | "b", headers: Record<string, string>) =>
  fetch(`${h.agentUrl(n)}/split-brain/resolve`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ discard: n }),
    signal: AbortSignal.timeout(10_000),
  });

describe("agent token on a pair of target processes", { timeout: 120_000 }, () => {
  before(async () => {
    await h.setup();
    await Promise.all([h.start("a"), h.start("b")]);
    await h.waitInSync();
  });
  after(() => h.cleanup());

  it("refuses /status and the split-brain resolution without the token (401) or with another (403), and changes nothing", async () => {
    assert.ok(h.agentToken, "the harness runs the agents with a token, as the operator does");
    const before = { a: await h.status("a"), b: await h.status("b") };
    for (const n of ["a", "b"] as const) {
      const none = await post(n, {});
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await post(n, { authorization: `Bearer ${"0".repeat(64)}` })).status, 403);
      const status = await fetch(`${h.agentUrl(n)}/status`);
      assert.equal(status.status, 401);
      assert.doesNotMatch(await status.text(), /iqn\.2026-11\.dev\.hasan:faults-/, "no initiator names");
    }
    const after = { a: await h.status("a"), b: await h.status("b") };
    for (const n of ["a", "b"] as const) {
      assert.equal(after[n].state, "Working");
      assert.equal(after[n].generation, before[n].generation, "no data was thrown away");
    }
    await h.waitInSync(10_000);
  });

  it("with the token: /status answers and the resolution reaches the node (which refuses it: no split brain)", async () => {
    const s = await fetch(`${h.agentUrl("a")}/status`, { headers: h.agentHeaders() });
    assert.equal(s.status, 200);
    const r = await post("a", h.agentHeaders());
    assert.equal(r.status, 409, await r.clone().text());
    assert.equal((await h.status("a")).state, "Working");
  });

  it("keeps the probes and /metrics open (the kubelet has no token)", async () => {
    for (const path of ["/healthz", "/readyz", "/disruption-safe", "/metrics"]) {
      const r = await fetch(`${h.agentUrl("b")}${path}`);
      assert.equal(r.status, 200, path);
    }
  });
});

describe("a standalone target without --agent-token-file", { timeout: 60_000 }, () => {
  let t: TargetHandle;
  before(async () => {
    t = await startTarget({ size: "8Mi" });
  });
  after(() => t.stop());

  it("answers /status without a token, as before (development and standalone use)", async () => {
    const r = await fetch(`http://${t.host}:${t.agentPort}/status`);
    assert.equal(r.status, 200);
  });
});

describe("a standalone target refusing to start with a short token", { timeout: 60_000 }, () => {
  it("exits with the flag's problem", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-token-"));
    await writeFile(join(dir, "token"), "too-short\n");
    const r = await run(process.execPath, [
      targetMain,
      "serve",
      ...["--data", join(dir, "lun.img"), "--size", "8Mi", "--iqn", "iqn.2026-11.dev.hasan:short"],
      ...["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"],
      ...["--agent-token-file", join(dir, "token")],
    ]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--agent-token-file: the token in .* is 9 bytes long; agent tokens must be at least 32 bytes/,
    );
  });
});
