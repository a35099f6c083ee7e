/**
 * What both pair harnesses share: a temporary directory with each node's LUN file and log, the
 * breakable proxy on the peer link, and the checks every pair test ends with (both nodes in
 * sync, LUN files byte-identical). Subclasses run the nodes and reach their status.
 */
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReplicationStatus } from "../../target/agent/status-schema.js";
import { PairProxy } from "./pair-proxy.js";
import { waitFor } from "./processes.js";
import { createLogger } from "../../target/log.js";
import {
  confirmedByBoth,
  createWitness,
  parseWitnessSpec,
  type Witness,
} from "../../target/replication/witness.js";

export type Node = "a" | "b";

export abstract class PairFixture {
  readonly sizeBytes: number;
  dir = "";
  proxy!: PairProxy;
  protected proxyPort = 0;

  constructor(sizeBytes: number | undefined) {
    this.sizeBytes = sizeBytes ?? 16 * 1024 * 1024;
  }

  abstract status(n: Node): Promise<ReplicationStatus>;
  /** The witness spec the nodes use (`none` when they have none). */
  abstract witnessSpec(): string;
  abstract kill(n: Node): Promise<void>;

  /** Makes the directory (with a/ and b/) and starts the proxy in front of `peerPort`. */
  protected async prepare(prefix: string, peerPort: number): Promise<void> {
    this.dir = await fsp.mkdtemp(join(tmpdir(), prefix));
    for (const n of ["a", "b"] as const) await fsp.mkdir(join(this.dir, n), { recursive: true });
    this.proxy = new PairProxy(peerPort);
    this.proxyPort = await this.proxy.start();
  }

  lunPath(n: Node): string {
    return join(this.dir, n, "lun.img");
  }

  logPath(n: Node): string {
    return join(this.dir, `${n}.log`);
  }

  private witness: Promise<Witness> | null = null;

  /**
   * Both nodes Working with nothing out of sync, and the witness holding the pair's record
   * confirmed by both at their generation (until then neither could go on alone).
   */
  async waitInSync(timeoutMs = 90_000): Promise<void> {
    let last = "";
    const spec = this.witnessSpec();
    this.witness ??= createWitness(parseWitnessSpec(spec), createLogger("pair-fixture"));
    const witness = await this.witness;
    await waitFor(
      "both nodes Working and in sync, the pair confirmed in the witness",
      async () => {
        const [a, b] = [await this.status("a"), await this.status("b")];
        last = `a: ${a.state} (${a.message}), b: ${b.state} (${b.message})`;
        if (
          a.state !== "Working" ||
          b.state !== "Working" ||
          a.outOfSyncBytes !== 0 ||
          b.outOfSyncBytes !== 0
        )
          return false;
        if (spec === "none") return true;
        const r = await witness.holder();
        last += `; witness ${JSON.stringify(r)}`;
        return r !== null && confirmedByBoth(r) && r.generation === a.generation;
      },
      timeoutMs,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; ${last}`);
    });
  }

  async fileHash(n: Node): Promise<string> {
    return createHash("sha256")
      .update(await fsp.readFile(this.lunPath(n)))
      .digest("hex");
  }

  async cleanup(): Promise<void> {
    await Promise.all([this.kill("a"), this.kill("b")]);
    await this.proxy?.stop();
    if (this.dir && !process.env.HASAN_KEEP_TEST_DIRS)
      await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
