/**
 * A witness kept in files on one machine (tests, single-host demos). Every change is a new
 * version file `<name>.v<N>` created with link(2), which fails when the name exists: of two
 * nodes racing from version N only one creates N+1, the other re-reads and re-evaluates.
 * A version file is complete before it becomes visible (written and fsynced under a
 * temporary name first), so readers never see a torn record.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import {
  evaluateClaim,
  evaluateConfirm,
  renewAloneBy,
  type ClaimRequest,
  type NodeName,
  type Witness,
  type WitnessRecord,
} from "./witness.js";

const node = z.enum(["a", "b"]);
const RecordSchema = z
  .object({
    holder: node.nullable(),
    generation: z.string().min(1).max(64),
    // Records written before pair records named their confirmations were confirmed by both.
    confirmedBy: z.array(node).max(2).optional(),
    renewedAt: z.number(),
  })
  .transform((r): WitnessRecord => ({
    ...r,
    confirmedBy: r.confirmedBy ?? (r.holder === null ? ["a", "b"] : []),
  }));

const KEEP_VERSIONS = 4;

export class FileWitness implements Witness {
  readonly kind = "file" as const;
  private readonly dir: string;
  private readonly base: string;

  constructor(readonly path: string) {
    this.dir = dirname(path);
    this.base = basename(path);
  }

  async tryAcquire(claim: ClaimRequest): Promise<boolean> {
    return this.compareAndSwap((r) => evaluateClaim(r, claim, Date.now()));
  }

  async confirmPair(node: NodeName, generation: string): Promise<boolean> {
    return this.compareAndSwap((r) => evaluateConfirm(r, node, generation, Date.now()));
  }

  renewAlone(node: NodeName, generation: string): Promise<"ok" | "conflict"> {
    return renewAloneBy((next) => this.compareAndSwap(next), node, generation);
  }

  async release(): Promise<void> {}

  async holder(): Promise<WitnessRecord | null> {
    return (await this.readLatest()).record;
  }

  private versionName(n: number): string {
    return `${this.base}.v${String(n).padStart(12, "0")}`;
  }

  private async versions(): Promise<number[]> {
    await fsp.mkdir(this.dir, { recursive: true });
    const prefix = `${this.base}.v`;
    const names = await fsp.readdir(this.dir);
    return names
      .filter((n) => n.startsWith(prefix) && /^\d{12}$/.test(n.slice(prefix.length)))
      .map((n) => Number(n.slice(prefix.length)))
      .sort((x, y) => x - y);
  }

  private async readLatest(): Promise<{ version: number; record: WitnessRecord | null }> {
    for (let attempt = 0; ; attempt++) {
      const vs = await this.versions();
      const version = vs.at(-1) ?? 0;
      if (version === 0) return { version, record: null };
      try {
        const text = await fsp.readFile(join(this.dir, this.versionName(version)), "utf8");
        return { version, record: RecordSchema.parse(JSON.parse(text)) };
      } catch (e) {
        // Pruned by a concurrent writer between readdir and read: read again.
        if ((e as NodeJS.ErrnoException).code === "ENOENT" && attempt < 50) continue;
        throw new Error(`witness ${this.path}: cannot read version ${version}: ${(e as Error).message}`);
      }
    }
  }

  private async compareAndSwap(
    next: (r: WitnessRecord | null) => WitnessRecord | "keep" | null,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const { version, record } = await this.readLatest();
      const updated = next(record);
      if (!updated) return false;
      if (updated === "keep") return true;
      const tmp = join(this.dir, `.${this.base}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
      const fh = await fsp.open(tmp, "wx", 0o600);
      try {
        await fh.writeFile(JSON.stringify(updated) + "\n");
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await fsp.link(tmp, join(this.dir, this.versionName(version + 1)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw e;
      } finally {
        await fsp.unlink(tmp).catch(() => undefined);
      }
      // A pruned old version name can be created again by a writer that read long ago; it only
      // counts when nothing newer exists (the newest version never goes away).
      if (((await this.versions()).at(-1) ?? 0) > version + 1) {
        await fsp.unlink(join(this.dir, this.versionName(version + 1))).catch(() => undefined);
        continue;
      }
      await this.syncDir();
      await this.prune(version + 1);
      return true;
    }
    throw new Error(`witness ${this.path}: too much contention`);
  }

  private async syncDir(): Promise<void> {
    const d = await fsp.open(this.dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  private async prune(latest: number): Promise<void> {
    for (const v of await this.versions()) {
      if (v <= latest - KEEP_VERSIONS) {
        await fsp.unlink(join(this.dir, this.versionName(v))).catch(() => undefined);
      }
    }
  }
}
