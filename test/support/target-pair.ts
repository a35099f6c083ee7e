import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./processes.js";
import { startTarget, type TargetHandle } from "./target-process.js";
import { FileWitness } from "../../target/replication/witness-file.js";
import { confirmedByBoth } from "../../target/replication/witness.js";

/** Two target processes forming one HA pair on loopback, with a file witness. */
export interface PairHandle {
  readonly iqn: string;
  readonly a: TargetHandle;
  readonly b: TargetHandle;
  readonly dir: string;
  waitForState(node: "a" | "b", state: string, timeoutMs?: number): Promise<void>;
  waitWorking(timeoutMs?: number): Promise<void>;
  /** Failed and serving: the node won the witness (state Failed comes first, while it asks). */
  waitServingAlone(node: "a" | "b", timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTargetPair(
  o: {
    size?: string;
    extraArgs?: string[];
    /** both data files in one folder (a.img and b.img) instead of one folder per node */
    oneFolder?: boolean;
  } = {},
): Promise<PairHandle> {
  const dir = mkdtempSync(join(tmpdir(), "hasan-pair-"));
  const secret = join(dir, "peer.secret");
  writeFileSync(secret, "pair-secret-for-tests\n");
  const peerA = await freePort();
  const peerB = await freePort();
  const iqn = `iqn.2026-11.dev.hasan:pair-${peerA}`;
  const dirA = join(dir, o.oneFolder ? "san" : "a");
  const dirB = join(dir, o.oneFolder ? "san" : "b");
  const common = (node: "a" | "b") => [
    "--node",
    node,
    "--peer",
    `127.0.0.1:${node === "a" ? peerB : peerA}`,
    "--peer-listen",
    `127.0.0.1:${node === "a" ? peerA : peerB}`,
    "--peer-secret-file",
    secret,
    "--witness",
    `file:${join(dir, "witness")}`,
    ...(o.extraArgs ?? []),
  ];
  mkdirSync(dirA, { recursive: true });
  mkdirSync(dirB, { recursive: true });
  const names = (node: "a" | "b") => (o.oneFolder ? { dataName: `${node}.img`, logName: `${node}.log` } : {});
  const size = o.size ?? "128Mi";
  // Start both at once: each waits for readiness, which a pair node reaches with or without its partner.
  const [a, b] = await Promise.all([
    startTarget({ dir: dirA, iqn, size, extraArgs: common("a"), ...names("a") }),
    startTarget({ dir: dirB, iqn, size, extraArgs: common("b"), ...names("b") }),
  ]);
  const handle: PairHandle = {
    iqn,
    a,
    b,
    dir,
    async waitForState(node, state, timeoutMs = 30_000) {
      const t = node === "a" ? a : b;
      await waitFor(`node ${node} ${state}`, async () => (await t.status()).state === state, timeoutMs, 100);
    },
    async waitServingAlone(node, timeoutMs = 15_000) {
      const t = node === "a" ? a : b;
      await waitFor(
        `node ${node} serving alone`,
        async () => {
          const r = (await t.status()).replication;
          return r?.state === "Failed" && r.serving;
        },
        timeoutMs,
        100,
      );
    },
    /** Both Working, and the witness holds the pair's record confirmed by both (until then neither could go on alone). */
    async waitWorking(timeoutMs = 60_000) {
      await handle.waitForState("a", "Working", timeoutMs);
      await handle.waitForState("b", "Working", timeoutMs);
      const witness = new FileWitness(join(dir, "witness"));
      await waitFor(
        "the pair confirmed in the witness",
        async () => {
          const r = await witness.holder();
          const g = (await a.status()).replication?.generation;
          return r !== null && confirmedByBoth(r) && r.generation === g;
        },
        timeoutMs,
        100,
      );
    },
    async stop() {
      await Promise.all([a.stop(), b.stop()]);
    },
  };
  await handle.waitWorking();
  return handle;
}
