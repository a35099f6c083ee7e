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
  writeFileSync(f, "peer-secret-value");
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
  assert.equal(c.peerRecords, "encrypted", "records are encrypted unless asked otherwise");
  const pairOf = (records: string) =>
    parseServeArgs(
      [...base, "--node", "b", "--peer", "127.0.0.2:3261", "--peer-listen", "127.0.0.3:3261"].concat([
        "--peer-secret-file",
        f,
        "--peer-records",
        records,
      ]),
    );
  assert.equal(pairOf("authenticated").peerRecords, "authenticated");
  assert.throws(() => pairOf("plain"), /--peer-records: .*"encrypted"\|"authenticated"/);
});

test("size must be a whole number of blocks and at least 1Mi", () => {
  const withSize = (s: string) => base.map((v, i) => (base[i - 1] === "--size" ? s : v));
  assert.throws(() => parseServeArgs(withSize("1000000")), /multiple of the block size/);
  assert.throws(() => parseServeArgs(withSize("4096")), /at least 1Mi/);
});

test("a CHAP, mutual CHAP or peer secret of 11 bytes is refused with the flag, the file and the 12-byte rule; 12 bytes is accepted", () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-config-"));
  const short = join(dir, "short");
  const twelve = join(dir, "twelve");
  const other = join(dir, "other");
  writeFileSync(short, "11-bytes-ab\n");
  writeFileSync(twelve, "12-bytes-abc\n");
  writeFileSync(other, "another-secret\n");
  const chap = (f: string) => ["--chap-user", "u", "--chap-secret-file", f];
  assert.throws(
    () => parseServeArgs([...base, ...chap(short)]),
    new RegExp(
      `--chap-secret-file: the secret in ${short} is 11 bytes long; secrets must be at least 12 bytes`,
    ),
  );
  assert.equal(parseServeArgs([...base, ...chap(twelve)]).chapSecret, "12-bytes-abc");
  assert.throws(
    () =>
      parseServeArgs([
        ...base,
        ...chap(twelve),
        "--mutual-chap-user",
        "t",
        "--mutual-chap-secret-file",
        short,
      ]),
    /--mutual-chap-secret-file: the secret in .* is 11 bytes long/,
  );
  const pair = (f: string) => [
    "--node",
    "a",
    "--peer",
    "127.0.0.2:3261",
    "--peer-listen",
    "127.0.0.1:3261",
    "--peer-secret-file",
    f,
  ];
  assert.throws(
    () => parseServeArgs([...base, ...pair(short)]),
    /--peer-secret-file: the secret in .* is 11 bytes/,
  );
  assert.equal(parseServeArgs([...base, ...pair(other)]).peerSecret, "another-secret");
});

test("a mutual CHAP secret equal to the initiator's CHAP secret is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-config-"));
  const a = join(dir, "a");
  const b = join(dir, "b");
  writeFileSync(a, "the-same-secret\n");
  writeFileSync(b, "the-same-secret\n");
  assert.throws(
    () =>
      parseServeArgs([
        ...base,
        ...["--chap-user", "u", "--chap-secret-file", a],
        ...["--mutual-chap-user", "t", "--mutual-chap-secret-file", b],
      ]),
    /--mutual-chap-secret-file: must differ from --chap-secret-file's secret/,
  );
});

test("limits default to 1024 connections, 64 per source, 10 s login, 256Mi/64Mi write memory and no cold reset; flags override them", () => {
  const d = parseServeArgs(base);
  assert.equal(d.maxConnections, 1024);
  assert.equal(d.maxConnectionsPerSource, 64);
  assert.equal(d.loginTimeout, 10);
  assert.equal(d.writeMemory, 256 * 1024 * 1024);
  assert.equal(d.sessionWriteMemory, 64 * 1024 * 1024);
  assert.equal(d.allowColdReset, false);
  const c = parseServeArgs([
    ...base,
    ...["--max-connections", "200", "--max-connections-per-source", "8", "--login-timeout", "5"],
    ...["--write-memory", "1Gi", "--session-write-memory", "128Mi", "--allow-cold-reset"],
  ]);
  assert.deepEqual(
    [c.maxConnections, c.maxConnectionsPerSource, c.loginTimeout, c.writeMemory, c.sessionWriteMemory],
    [200, 8, 5, 1024 * 1024 * 1024, 128 * 1024 * 1024],
  );
  assert.equal(c.allowColdReset, true);
});

test("limits that cannot work are refused: 0 connections, more per source than in total, session write memory under 16Mi or above the target's", () => {
  assert.throws(
    () => parseServeArgs([...base, "--max-connections", "0"]),
    /--max-connections: must be at least 1/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--max-connections", "ten"]),
    /--max-connections: must be a whole number/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--max-connections", "10", "--max-connections-per-source", "11"]),
    /--max-connections-per-source: cannot exceed --max-connections/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--session-write-memory", "8Mi"]),
    /--session-write-memory: must be at least 16Mi/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--write-memory", "32Mi"]),
    /--session-write-memory: cannot exceed --write-memory/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--login-timeout", "0"]),
    /--login-timeout: must be at least 1/,
  );
});

test("--agent-token-file: read like the secret files (one trailing newline stripped), at least 32 bytes", () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-token-"));
  const good = join(dir, "token");
  writeFileSync(good, `${"ab".repeat(32)}\n`);
  assert.equal(parseServeArgs([...base, "--agent-token-file", good]).agentToken, "ab".repeat(32));
  assert.equal(parseServeArgs(base).agentToken, undefined, "no token: the agent is open as before");
  const short = join(dir, "short");
  writeFileSync(short, "31-bytes-of-token-31-bytes-of-x\n");
  assert.throws(
    () => parseServeArgs([...base, "--agent-token-file", short]),
    /--agent-token-file: the token in .* is 31 bytes long; agent tokens must be at least 32 bytes/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--agent-token-file", join(dir, "missing")]),
    /--agent-token-file: cannot read token file/,
  );
});
