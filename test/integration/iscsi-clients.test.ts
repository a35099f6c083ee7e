/**
 * The iSCSI transport against real initiators (libiscsi's iscsi-ls / iscsi-inq and qemu-io),
 * served from a RAM disk in this process so only the transport is under test.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { pino } from "pino";
import { IscsiServer, type IscsiServerOptions } from "../../target/iscsi/server.js";
import { RamDiskTarget } from "../unit/iscsi/support/ram-disk-target.js";

const IQN = "iqn.2026-11.dev.hasan:clients";
const CHAP = { user: "alice", secret: "alice-secret-12" };
const MUTUAL = { user: "target-a", secret: "target-secret-12" };

interface Served {
  server: IscsiServer;
  scsi: RamDiskTarget;
  port: number;
  logins: Record<string, unknown>[];
}

const servers: Served[] = [];

async function serve(o: Partial<IscsiServerOptions> = {}): Promise<Served> {
  const scsi = new RamDiskTarget(64 * 1024 * 1024);
  const logins: Record<string, unknown>[] = [];
  // keep the structured "login complete" lines to see what was negotiated
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) {
        if (line.includes('"login complete"')) logins.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  const server = new IscsiServer({
    targetName: IQN,
    portalGroupTag: 1,
    relativeTargetPort: 1,
    targetPortGroup: 1,
    scsi,
    auth: { allowedInitiators: [] },
    logger: pino({ level: "info" }, sink),
    ...o,
  });
  await server.listen("127.0.0.1", 0);
  const s = { server, scsi, port: server.address().port, logins };
  servers.push(s);
  return s;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

let plain: Served;
let partner: Served;
let chap: Served;

before(async () => {
  // a pair's partner portal, reported by SendTargets next to the one the initiator used
  partner = await serve({ portalGroupTag: 2, relativeTargetPort: 2, targetPortGroup: 2 });
  plain = await serve({ extraPortals: () => [{ address: `127.0.0.1:${partner.port}`, portalGroupTag: 2 }] });
  chap = await serve({ auth: { chap: CHAP, mutualChap: MUTUAL, allowedInitiators: [] } });
});

after(async () => {
  await Promise.all(servers.map((s) => s.server.close({ graceMs: 500 })));
});

test("iscsi-ls discovers the target, both portals and the LUN", async () => {
  const r = await run("iscsi-ls", ["-s", `iscsi://127.0.0.1:${plain.port}`]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`Target:${IQN} Portal:127\\.0\\.0\\.1:${plain.port},1`));
  assert.match(r.out, new RegExp(`Target:${IQN} Portal:127\\.0\\.0\\.1:${partner.port},2`));
  assert.equal(r.out.match(/Lun:0\s+Type:DIRECT_ACCESS \(Size:6[34]M\)/g)?.length, 2, r.out);
});

test("iscsi-inq reads INQUIRY through a normal session", async () => {
  const r = await run("iscsi-inq", [`iscsi://127.0.0.1:${plain.port}/${IQN}/0`]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Vendor:HASAN/);
});

test("CHAP: right secret logs in, wrong or missing secret is refused", async () => {
  const url = (cred: string) => `iscsi://${cred}127.0.0.1:${chap.port}/${IQN}/0`;
  const ok = await run("iscsi-inq", [url(`${CHAP.user}%${CHAP.secret}@`)]);
  assert.equal(ok.code, 0, ok.out);
  const wrong = await run("iscsi-inq", [url(`${CHAP.user}%not-the-secret@`)]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /Authentication failure/);
  const none = await run("iscsi-inq", [url("")]);
  assert.notEqual(none.code, 0);
  assert.match(none.out, /Authentication failure/);
  const discovery = await run("iscsi-ls", [
    "-s",
    `iscsi://${CHAP.user}%${CHAP.secret}@127.0.0.1:${chap.port}`,
  ]);
  assert.equal(discovery.code, 0, discovery.out);
  assert.match(discovery.out, /Lun:0/);
});

test("mutual CHAP: the initiator accepts the target's answer and rejects a wrong one", async () => {
  const url = `iscsi://${CHAP.user}%${CHAP.secret}@127.0.0.1:${chap.port}/${IQN}/0`;
  const ok = await run("iscsi-inq", [url], {
    LIBISCSI_CHAP_TARGET_USERNAME: MUTUAL.user,
    LIBISCSI_CHAP_TARGET_PASSWORD: MUTUAL.secret,
  });
  assert.equal(ok.code, 0, ok.out);
  const bad = await run("iscsi-inq", [url], {
    LIBISCSI_CHAP_TARGET_USERNAME: MUTUAL.user,
    LIBISCSI_CHAP_TARGET_PASSWORD: "not-what-the-target-knows",
  });
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /Invalid CHAP_R response from the target/);
});

test("qemu-io writes and reads back 1 MiB (json: filename)", async () => {
  const file = `json:${JSON.stringify({
    driver: "raw",
    file: { driver: "iscsi", transport: "tcp", portal: `127.0.0.1:${plain.port}`, target: IQN, lun: 0 },
  })}`;
  const r = await run("qemu-io", ["-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M", file]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /read 1048576\/1048576 bytes/);
  assert.doesNotMatch(r.out, /Pattern verification failed/);
  assert.ok(plain.scsi.disk.subarray(0, 1 << 20).every((b) => b === 0xab));
});

test("qemu-io with CRC32C header digests (iscsi:// URL and image options)", async () => {
  plain.logins.length = 0;
  const r = await run("qemu-io", [
    "--image-opts",
    "-c",
    "write -P 0x5c 3M 3M",
    "-c",
    "read -P 0x5c 3M 3M",
    `driver=iscsi,transport=tcp,portal=127.0.0.1:${plain.port},target=${IQN},lun=0,header-digest=crc32c`,
  ]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /Pattern verification failed/);
  assert.ok(
    plain.logins.some((l) => l.headerDigest === "CRC32C"),
    JSON.stringify(plain.logins),
  );
  const inq = await run("iscsi-inq", [`iscsi://127.0.0.1:${plain.port}/${IQN}/0?header_digest=crc32c`]);
  assert.equal(inq.code, 0, inq.out);
});

test("several initiators at once each see their own data", async () => {
  const jobs = [0, 1, 2, 3, 4, 5].map((i) => {
    const off = 8 + i * 4;
    const pattern = `0x${(0x10 + i).toString(16)}`;
    return run("qemu-io", [
      "-f",
      "raw",
      "-c",
      `write -P ${pattern} ${off}M 4M`,
      "-c",
      `read -P ${pattern} ${off}M 4M`,
      `iscsi://127.0.0.1:${plain.port}/${IQN}/0`,
    ]);
  });
  const results = await Promise.all(jobs);
  for (const r of results) {
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /Pattern verification failed/);
  }
  for (let i = 0; i < 6; i++) {
    const off = (8 + i * 4) << 20;
    assert.ok(
      plain.scsi.disk.subarray(off, off + (4 << 20)).every((b) => b === 0x10 + i),
      `region ${i}`,
    );
  }
});

test("qemu-io: 8 concurrent 8 MiB writes, twice the session's 32 MiB of write memory, all complete and read back (qemu retries the TASK SET FULL answers)", async () => {
  let refusals = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      refusals += chunk.toString().split('"write refused: write memory full"').length - 1;
      cb();
    },
  });
  const small = await serve({
    writeMemory: { target: 48 * 1024 * 1024, session: 32 * 1024 * 1024 },
    logger: pino({ level: "debug" }, sink),
  });
  const commands: string[] = [];
  for (let i = 0; i < 8; i++) commands.push("-c", `aio_write -P 0x${(0x40 + i).toString(16)} ${i * 8}M 8M`);
  commands.push("-c", "aio_flush");
  for (let i = 0; i < 8; i++) commands.push("-c", `read -P 0x${(0x40 + i).toString(16)} ${i * 8}M 8M`);
  const r = await run("qemu-io", [...commands, `iscsi://127.0.0.1:${small.port}/${IQN}/0`]);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.match(/wrote 8388608\/8388608 bytes/g)?.length, 8, r.out);
  assert.equal(r.out.match(/read 8388608\/8388608 bytes/g)?.length, 8, r.out);
  assert.doesNotMatch(r.out, /Pattern verification failed|error/i);
  assert.ok(refusals > 0, "some writes met a full session and were retried");
  assert.equal(small.server.writeMemory.inUse, 0);
});
