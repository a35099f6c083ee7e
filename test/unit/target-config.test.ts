import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServeArgs, ConfigError } from "../../target/config.js";

const base = [
  "--data",
  "/tmp/lun.img",
  "--size",
  "1Gi",
  "--iqn",
  "iqn.2026-11.dev.hasan:t1",
  "--listen",
  "127.0.0.1:3260",
  "--agent-listen",
  "127.0.0.1:8080",
];

test("a minimal serve command line parses with defaults", () => {
  const c = parseServeArgs(base);
  assert.equal(c.size, 1073741824);
  assert.deepEqual(c.listen, { host: "127.0.0.1", port: 3260 });
  assert.equal(c.blockSize, 512);
  assert.deepEqual(c.witness, { kind: "none" });
  assert.deepEqual(c.allowInitiator, []);
});

test("every problem is reported with the flag name", () => {
  try {
    parseServeArgs(["--size", "12GB", "--iqn", "target1", "--listen", "nohost"]);
    assert.fail("should have thrown");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const m = e.message;
    assert.match(m, /--data: is required/);
    assert.match(m, /--size: invalid size "12GB"/);
    assert.match(m, /--iqn: must be an iSCSI name/);
    assert.match(m, /--listen: must be HOST:PORT/);
    assert.match(m, /--agent-listen: is required/);
  }
});

test("unknown flags and half-given pairs of flags are refused", () => {
  assert.throws(() => parseServeArgs([...base, "--bogus", "1"]), /Unknown option '--bogus'/);
  assert.throws(
    () => parseServeArgs([...base, "--chap-user", "u"]),
    /--chap-user and --chap-secret-file go together/,
  );
  assert.throws(() => parseServeArgs([...base, "--node", "a"]), /a pair node needs --node, --peer/);
  assert.throws(() => parseServeArgs([...base, "--witness", "etcd:x"]), /--witness: must be none, file:PATH/);
});

test("a --data that names a directory (/srv/san/, ., ..) is refused: the lock and metadata files are named after the data file", () => {
  for (const data of ["/srv/san/", ".", "..", "/srv/san/.."]) {
    const argv = [...base];
    argv[1] = data;
    assert.throws(() => parseServeArgs(argv), /--data: must name a file/, data);
  }
  assert.equal(parseServeArgs([...base.slice(2), "--data", "a.img"]).data, "a.img");
});

test("secrets come from files, and an unreadable or empty file is a clear error", () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-config-"));
  const f = join(dir, "secret");
  writeFileSync(f, "s3cr3t-password\n");
  const c = parseServeArgs([...base, "--chap-user", "u", "--chap-secret-file", f]);
  assert.equal(c.chapSecret, "s3cr3t-password");
  assert.throws(
    () => parseServeArgs([...base, "--chap-user", "u", "--chap-secret-file", join(dir, "missing")]),
    /--chap-secret-file: cannot read secret file/,
  );
  writeFileSync(f, "");
  assert.throws(() => parseServeArgs([...base, "--chap-user", "u", "--chap-secret-file", f]), /is empty/);
});

test("pair flags parse into peer addresses and a witness", () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-config-"));
  const f = join(dir, "peer");
  writeFileSync(f, "peer-secret");
  const c = parseServeArgs([
    ...base,
    "--node",
    "b",
    "--peer",
    "127.0.0.2:3261",
    "--peer-listen",
    "127.0.0.3:3261",
    "--peer-secret-file",
    f,
    "--witness",
    "lease:default/pair1-witness",
    "--resync-rate",
    "100Mi",
  ]);
  assert.equal(c.node, "b");
  assert.deepEqual(c.peer, { host: "127.0.0.2", port: 3261 });
  assert.deepEqual(c.witness, { kind: "lease", namespace: "default", name: "pair1-witness" });
  assert.equal(c.resyncRate, 100 * 1024 * 1024);
});

test("size must be a whole number of blocks and at least 1Mi", () => {
  const withSize = (s: string) => base.map((v, i) => (base[i - 1] === "--size" ? s : v));
  assert.throws(() => parseServeArgs(withSize("1000000")), /multiple of the block size/);
  assert.throws(() => parseServeArgs(withSize("4096")), /at least 1Mi/);
});
