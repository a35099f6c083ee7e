import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { run } from "../support/processes.js";

function secretFile(value: string): string {
  const f = join(mkdtempSync(join(tmpdir(), "hasan-secret-")), "secret");
  writeFileSync(f, `${value}\n`);
  return f;
}

const inq = (url: string, env?: NodeJS.ProcessEnv, initiator = "iqn.2026-11.dev.hasan:client1") =>
  run("iscsi-inq", ["-i", initiator, url], { timeoutMs: 30_000, ...(env ? { env } : {}) });

test("discovery lists the target, its portal and LUN 0 of the configured size", async () => {
  const target = await startTarget({ size: "16Mi" });
  try {
    const r = await run("iscsi-ls", ["-s", `iscsi://127.0.0.1:${target.port}`], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`Target:${target.iqn.replace(/\./g, "\\.")} Portal:127\\.0\\.0\\.1:${target.port},1`),
    );
    assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS/);
    // READ CAPACITY(16) gives the exact size: 16 MiB in 512-byte blocks, thin provisioned, zeros after unmap.
    const cap = await run("iscsi-readcapacity16", [target.url(0)], { timeoutMs: 30_000 });
    assert.match(cap.stdout, /RETURNED LOGICAL BLOCK ADDRESS:32767\n/);
    assert.match(cap.stdout, /LOGICAL BLOCK LENGTH IN BYTES:512\n/);
    assert.match(cap.stdout, /LBPME:1 LBPRZ:1/);
    assert.match(cap.stdout, /Total size:16777216/);
  } finally {
    await target.stop();
  }
});

test("CHAP: the right secret logs in, a wrong or missing one is refused", async () => {
  const target = await startTarget({
    size: "16Mi",
    extraArgs: ["--chap-user", "alice", "--chap-secret-file", secretFile("alice-secret-123")],
  });
  try {
    const ok = await inq(target.url(0, { user: "alice", secret: "alice-secret-123" }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
    const wrong = await inq(target.url(0, { user: "alice", secret: "not-the-secret" }));
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr + wrong.stdout, /[Ll]ogin|[Aa]uth/);
    const none = await inq(target.url(0));
    assert.notEqual(none.code, 0);
    assert.match(target.log(), /authentication failed|CHAP/i);
    // The target keeps serving after refusals.
    assert.equal((await inq(target.url(0, { user: "alice", secret: "alice-secret-123" }))).code, 0);
  } finally {
    await target.stop();
  }
});

test("mutual CHAP: the initiator verifies the target's secret", async () => {
  const target = await startTarget({
    size: "16Mi",
    extraArgs: [
      "--chap-user",
      "alice",
      "--chap-secret-file",
      secretFile("alice-secret-123"),
      "--mutual-chap-user",
      "target-1",
      "--mutual-chap-secret-file",
      secretFile("target-secret-456"),
    ],
  });
  try {
    const url = target.url(0, { user: "alice", secret: "alice-secret-123" });
    const env = (password: string) => ({
      ...process.env,
      LIBISCSI_CHAP_TARGET_USERNAME: "target-1",
      LIBISCSI_CHAP_TARGET_PASSWORD: password,
    });
    const ok = await inq(url, env("target-secret-456"));
    assert.equal(ok.code, 0, ok.stderr);
    const impostor = await inq(url, env("some-other-secret"));
    assert.notEqual(
      impostor.code,
      0,
      "an initiator must refuse a target that cannot prove the mutual secret",
    );
  } finally {
    await target.stop();
  }
});

test("the initiator allow-list admits listed initiators only", async () => {
  const target = await startTarget({
    size: "16Mi",
    extraArgs: ["--allow-initiator", "iqn.2026-11.dev.hasan:client1"],
  });
  try {
    assert.equal((await inq(target.url(0), undefined, "iqn.2026-11.dev.hasan:client1")).code, 0);
    const other = await inq(target.url(0), undefined, "iqn.2026-11.dev.hasan:intruder");
    assert.notEqual(other.code, 0);
  } finally {
    await target.stop();
  }
});
