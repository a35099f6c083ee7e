/**
 * The pair node API in one process: TLS on the peer link (both ends verified), the status
 * contract, ALUA, reservations shared through the pair, and the resync rate cap.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { ReplicationStatusSchema } from "../../target/agent/status-schema.js";
import { FileBlockDevice } from "../../target/store/file-device.js";
import { metadataFiles } from "../../target/store/metadata-files.js";
import { startPairNode, type PairNode, type PairNodeOptions } from "../../target/replication/pair.js";
import { NoWitness } from "../../target/replication/witness.js";
import { itNexusId, type UnitAttention, type UnitOp } from "../../target/scsi/unit-state.js";

const MiB = 1024 * 1024;

class LogCapture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

interface Tls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

function makeCerts(dir: string): { a: Tls; b: Tls; rogueB: Tls } {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const ca of ["ca", "rogue"])
    ssl(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      "-subj",
      `/CN=${ca}`,
      "-days",
      "1",
    );
  for (const [name, ca] of [
    ["a", "ca"],
    ["b", "ca"],
    ["rogue-b", "rogue"],
  ] as const) {
    ssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "1",
    );
  }
  const load = (name: string, ca: string): Tls => ({
    cert: execFileSync("cat", [join(dir, `${name}.crt`)]),
    key: execFileSync("cat", [join(dir, `${name}.key`)]),
    ca: execFileSync("cat", [join(dir, `${ca}.crt`)]),
  });
  return { a: load("a", "ca"), b: load("b", "ca"), rogueB: load("rogue-b", "rogue") };
}

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("pair node API", { timeout: 300_000 }, () => {
  let dir: string;
  let certs: ReturnType<typeof makeCerts>;
  let nodes: PairNode[] = [];
  const logs = { a: new LogCapture(), b: new LogCapture() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "hasan-pair-api-"));
    certs = makeCerts(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    nodes = [];
  });

  async function start(
    node: "a" | "b",
    sub: string,
    extra: Partial<PairNodeOptions> & { peerPort?: number } = {},
  ): Promise<PairNode> {
    const d = join(dir, sub, node);
    await mkdir(d, { recursive: true });
    logs[node] = new LogCapture();
    const pn = await startPairNode({
      node,
      local: await FileBlockDevice.open(join(d, "lun.img"), 8 * MiB),
      metadata: metadataFiles(join(d, "lun.img")),
      peer: { host: "127.0.0.1", port: extra.peerPort ?? 1 },
      listen: { host: "127.0.0.1", port: 0 },
      secret: "api-test-secret",
      witness: new NoWitness(),
      logger: pino({ level: "info" }, logs[node]),
      heartbeatMs: 200,
      peerTimeoutMs: 1500,
      regionSize: 64 * 1024,
      ...extra,
    });
    nodes.push(pn);
    return pn;
  }

  it("mirrors over TLS with both certificates verified, and reports status and ALUA", async () => {
    const b = await start("b", "tls", { tls: certs.b });
    const a = await start("a", "tls", { tls: certs.a, peerPort: b.listenAddress()!.port });
    await until("Working", () => a.status().state === "Working" && b.status().state === "Working");
    const data = randomBytes(65536);
    await b.device.write(MiB, data);
    assert.deepEqual(await a.device.read(MiB, 65536), data);
    for (const n of [a, b]) {
      const s = ReplicationStatusSchema.parse(n.status());
      assert.equal(s.peer.connected, true);
      assert.equal(s.serving, true);
      assert.equal(s.outOfSyncBytes, 0);
    }
    assert.deepEqual(a.alua(), { a: "active/optimized", b: "active/non-optimized" });
    assert.deepEqual(b.alua(), { a: "active/optimized", b: "active/non-optimized" });
    assert.deepEqual(
      a.portGroups().map((g) => [g.id, g.state, g.preferred]),
      [
        [1, "active/optimized", true],
        [2, "active/non-optimized", false],
      ],
    );
  });

  it("refuses a partner whose certificate another CA signed", async () => {
    const b = await start("b", "rogue", { tls: certs.rogueB });
    const a = await start("a", "rogue", { tls: certs.a, peerPort: b.listenAddress()!.port });
    await until("a refused the rogue certificate", () =>
      /peer connection refused|TLS/.test(logs.a.text + logs.b.text),
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(a.status().peer.connected, false);
    assert.notEqual(a.status().state, "Working");
    assert.notEqual(b.status().state, "Working");
  });

  it("shares persistent reservations: an operation on either node is seen on both with its unit attentions", async () => {
    const b = await start("b", "pr");
    const a = await start("a", "pr", { peerPort: b.listenAddress()!.port });
    await until("Working", () => a.status().state === "Working" && b.status().state === "Working");
    const uasOnB: UnitAttention[] = [];
    b.unitState().onUnitAttention((ua) => uasOnB.push(ua));
    const nexus = (port: number, isid: string) => ({
      id: itNexusId("iqn.2026-01.test:host1", isid, port),
      initiatorName: "iqn.2026-01.test:host1",
      isid,
      relativeTargetPort: port,
    });
    const op = (
      n: ReturnType<typeof nexus>,
      serviceAction: "register" | "reserve" | "preempt",
      key: string,
      other = "0000000000000000",
    ): UnitOp => ({
      kind: "pr-out",
      nexus: n,
      serviceAction,
      type: serviceAction === "register" ? null : "write-exclusive",
      key: serviceAction === "register" ? "0000000000000000" : key,
      serviceActionKey: serviceAction === "register" ? key : other,
      aptpl: false,
      allTargetPorts: false,
      specIpt: false,
      transportIds: [],
      unregister: false,
      moveRelativeTargetPort: 0,
    });
    // Registered through node b's port (forwarded to the sequencer, node a) and node a's port.
    const r1 = await b.unitState().apply(op(nexus(2, "23d000000001"), "register", "00000000000000b1"));
    assert.equal(r1.outcome.status, 0);
    await a.unitState().apply(op(nexus(1, "23d000000002"), "register", "00000000000000a1"));
    const r2 = await b.unitState().apply(op(nexus(2, "23d000000001"), "reserve", "00000000000000b1"));
    assert.equal(r2.outcome.status, 0);
    for (const n of [a, b]) {
      const st = n.unitState().get();
      assert.equal(st.registrations.length, 2);
      assert.equal(st.reservation?.holderNexusId, nexus(2, "23d000000001").id);
    }
    // Persisted next to the LUN on the node that did not sequence it, too.
    const saved = JSON.parse(
      await readFile(join(dir, "pr", "b", "lun.img.pair-unit-state.json"), "utf8"),
    ) as {
      registrations: unknown[];
    };
    assert.equal(saved.registrations.length, 2);
    // Node a's initiator preempts node b's: b's nexus hears about it on node b.
    const r3 = await a
      .unitState()
      .apply(op(nexus(1, "23d000000002"), "preempt", "00000000000000a1", "00000000000000b1"));
    assert.equal(r3.outcome.status, 0);
    await until("the unit attention reached node b", () =>
      uasOnB.some((ua) => ua.nexusId === nexus(2, "23d000000001").id),
    );
    assert.equal(b.unitState().get().registrations.length, 1);
    assert.equal(b.unitState().get().reservation?.holderNexusId, nexus(1, "23d000000002").id);
  });

  it("caps the resync bandwidth at --resync-rate", async () => {
    const rate = 2 * MiB;
    const b0 = await start("b", "rate");
    const port = b0.listenAddress()!.port;
    const a = await start("a", "rate", { peerPort: port, resyncRateBytesPerSec: rate });
    await until("Working", () => a.status().state === "Working");
    await b0.close();
    nodes = nodes.filter((n) => n !== b0);
    await until("a alone", () => a.status().serving && a.status().state === "Failed");
    for (let off = 0; off < 4 * MiB; off += MiB) await a.device.write(off, randomBytes(MiB));
    const t0 = Date.now();
    const b = await start("b", "rate", { listen: { host: "127.0.0.1", port } });
    await until(
      "in sync",
      () => a.status().state === "Working" && b.status().state === "Working",
      60_000,
    ).catch((e: Error) => {
      const tail = (t: string) => t.split("\n").slice(-40).join("\n");
      throw new Error(
        `${e.message}: a ${JSON.stringify(a.status())}, ` +
          `b ${JSON.stringify(b.status())}\n` +
          `--- a ---\n${tail(logs.a.text)}\n--- b ---\n${tail(logs.b.text)}`,
      );
    });
    const seconds = (Date.now() - t0) / 1000;
    // 4 MiB at 2 MiB/s with a 0.2 MiB burst needs at least 1.9 s; never faster than the cap.
    assert.ok(seconds >= 1.8, `resynced 4 MiB in ${seconds}s, faster than ${rate} B/s`);
    assert.equal(a.status().stats.resyncedBytes, 4 * MiB);
    assert.deepEqual(await b.device.read(3 * MiB, 4096), await a.device.read(3 * MiB, 4096));
  });
});
