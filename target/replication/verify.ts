/**
 * Online verify (like DRBD's): the node that sequences writes walks the LUN region by region
 * (the dirty bitmap's regions), both nodes hash each region (region-hash.ts) and the sequencer
 * compares the digests. A region whose copies differ is copied at once, still under the lock it
 * was compared under, from the node chosen as the source to the other (flushed on the source,
 * written and fsynced on the other, like a resync's region), and the walk goes on.
 *
 * It is not marked out of sync in the dirty bitmap: a link lost before its copy would have the
 * handshake's resync copy it from the node the generations choose, which may be the very copy
 * the user distrusts. Unmarked, it stays as it was until the run resumes (its position is never
 * past a region not yet repaired), compares it again and copies it from the source. A region the
 * surviving node writes meanwhile is resynced like any other write, and then compares equal.
 *
 * Ordering against writes: each region is hashed on both nodes while the sequencer holds the
 * region's range lock, the lock every mirrored write to it takes; no write to the region is then
 * in flight on either node, and writes elsewhere go on. The lock is held for one read and hash
 * on each node, never for the walk. A token bucket caps the bytes compared per second.
 *
 * The run is persisted (verify-record.ts) about once a second, at each mismatch and at the end;
 * the follower saves the records the sequencer sends it. A run pauses while the pair is not
 * Working and resumes from the saved position on whichever node sequences next.
 */
import type { VerifyStatus } from "../agent/status-schema.js";
import { DeviceUnavailableError } from "../store/block-device.js";
import type { PairCore } from "./pair-core.js";
import type { Link } from "./pair-state.js";
import { PeerLostError, Priority } from "./peer-connection.js";
import { hashRegion, REGION_HASH_ALGORITHM } from "./region-hash.js";
import { regionLength, sendOutOfSyncRegions } from "./resync.js";
import { TokenBucket } from "./token-bucket.js";
import {
  loadVerifyRecord,
  MAX_LISTED_REGIONS,
  newRunId,
  saveVerifyRecord,
  type VerifyRecord,
} from "./verify-record.js";
import type { NodeName } from "./witness.js";

/**
 * Default pace of a verify: a 1 TiB LUN in about 18 hours. `make bench` measured no rise of a
 * 4 KiB random write load's p99 at 8 and 16 MiB/s, and a clear one at 32 MiB/s, on two CPUs
 * shared by the initiator and both nodes.
 */
export const DEFAULT_VERIFY_RATE = 16 * 1024 * 1024;
/** How often the position is saved while walking. */
const SAVE_EVERY_MS = 1000;

export type VerifySourceChoice = "sequencer" | NodeName;

export interface VerifyRequest {
  source?: VerifySourceChoice;
  rateBytesPerSecond?: number;
}

/** A verify this node refuses to start (one runs already, or the request is wrong). */
export class VerifyRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VerifyRefusedError";
  }
}

export class OnlineVerify {
  private record: VerifyRecord | null = null;
  /** the walk running on this node (only while it sequences) */
  private walking: Promise<void> | null = null;
  private lastSaved = 0;
  /** since the process started, for the metrics */
  readonly totals = { bytesChecked: 0, regionsMismatched: 0 };

  constructor(
    private readonly core: PairCore,
    private readonly file: string,
  ) {}

  async load(): Promise<void> {
    this.record = await loadVerifyRecord(this.file);
    if (this.record?.state === "running") {
      this.core.log.info(
        { runId: this.record.runId, nextOffset: this.record.nextOffset },
        "a verify was running: it resumes once the pair is Working",
      );
    }
  }

  get running(): boolean {
    return this.record?.state === "running";
  }

  status(): VerifyStatus {
    const r = this.record;
    const core = this.core;
    return {
      state: r ? r.state : "idle",
      runId: r?.runId ?? null,
      source: r?.source ?? null,
      rateBytesPerSecond: r?.rateBytesPerSecond ?? 0,
      start: r?.startedAt ?? null,
      end: r?.endedAt ?? null,
      totalBytes: core.sizeBytes,
      bytesChecked: r?.bytesChecked ?? 0,
      regionsMismatched: r?.regionsMismatched ?? 0,
      regionsRepaired: r?.regionsRepaired ?? 0,
      mismatchedRegions: r ? [...r.mismatchedRegions] : [],
      regionSize: core.regionSize,
      hash: REGION_HASH_ALGORITHM,
      message: r?.message ?? "no verify has run",
    };
  }

  /**
   * Starts a run here (this node sequences) or asks the sequencer to. Refused with
   * VerifyRefusedError while one runs, DeviceUnavailableError while the pair is not Working.
   */
  async start(req: VerifyRequest): Promise<VerifyStatus> {
    const core = this.core;
    const rate = req.rateBytesPerSecond ?? DEFAULT_VERIFY_RATE;
    if (!Number.isSafeInteger(rate) || rate <= 0) {
      throw new VerifyRefusedError(`rateBytesPerSecond must be a positive whole number, not ${rate}`);
    }
    if (core.machine.situation !== "Working") throw this.notWorking();
    const link = core.link!;
    if (link.sequencer !== core.node) {
      await link.conn.request(
        "forwardVerify",
        { source: req.source ?? "sequencer", rateBytesPerSecond: rate },
        undefined,
        Priority.control,
      );
      return this.status();
    }
    if (this.running) {
      throw new VerifyRefusedError(
        `verify ${this.record!.runId} is running (${this.record!.bytesChecked} of ${core.sizeBytes} bytes checked)`,
      );
    }
    const source: NodeName = !req.source || req.source === "sequencer" ? core.node : req.source;
    this.record = {
      version: 1,
      runId: newRunId(),
      state: "running",
      source,
      rateBytesPerSecond: rate,
      startedAt: new Date().toISOString(),
      endedAt: null,
      nextOffset: 0,
      bytesChecked: 0,
      regionsMismatched: 0,
      regionsRepaired: 0,
      mismatchedRegions: [],
      message: `comparing both copies at up to ${rate} bytes/s; node ${source}'s copy is kept where they differ`,
    };
    core.log.info({ runId: this.record.runId, source, rateBytesPerSecond: rate }, "verify started");
    await this.save(link);
    this.resume();
    return this.status();
  }

  /** The follower's side: the record the sequencer saved. */
  async received(record: VerifyRecord): Promise<void> {
    if (this.walking) throw new Error("a verify record from the partner while this node walks its own");
    this.record = record;
    await saveVerifyRecord(this.file, record);
  }

  /** Starts (or resumes) the walk when a run is due here: periodic, and after a start. */
  resume(): void {
    const core = this.core;
    if (this.walking || !this.running || !this.drives(core.link)) return;
    const link = core.link!;
    this.walking = this.walk(link)
      .catch(async (e: Error) => {
        if (!this.drives(link)) return;
        core.log.error({ err: e.message, runId: this.record?.runId }, "verify failed");
        await this.end(link, "failed", `verify failed: ${e.message}`).catch(() => undefined);
      })
      .finally(() => {
        this.walking = null;
      });
  }

  /** Whether this node drives a run on `link`: the link is current and Working and it sequences. */
  private drives(link: Link | null): link is Link {
    const core = this.core;
    return (
      link !== null &&
      core.link?.conn === link.conn &&
      core.machine.situation === "Working" &&
      link.sequencer === core.node &&
      !core.closed
    );
  }

  private async walk(link: Link): Promise<void> {
    const core = this.core;
    const rec = this.record!;
    if (rec.nextOffset > 0) {
      core.log.info(
        { runId: rec.runId, nextOffset: rec.nextOffset },
        "verify resumes from its saved position",
      );
    }
    // A burst of one region: regions are paced evenly, never compared back to back in a batch
    // that client writes would queue behind.
    const bucket = new TokenBucket(rec.rateBytesPerSecond, core.regionSize);
    while (rec.nextOffset < core.sizeBytes) {
      const region = Math.floor(rec.nextOffset / core.regionSize);
      const length = regionLength(core, region);
      await bucket.take(length);
      if (!this.drives(link)) return;
      const same = await this.compare(link, region, length);
      if (same === null) return;
      rec.nextOffset = region * core.regionSize + length;
      rec.bytesChecked += length;
      this.totals.bytesChecked += length;
      if (!same) {
        await this.save(link);
        // The copy counts against the rate too (taken after the region's lock is released).
        await bucket.take(length);
      } else if (Date.now() - this.lastSaved >= SAVE_EVERY_MS) {
        await this.save(link);
      }
    }
    if (!this.drives(link)) return;
    if (!core.outOfSync.isEmpty()) {
      // Regions a run saved by an earlier version marked out of sync, to be copied after the walk.
      rec.message = `repairing the regions marked out of sync from node ${rec.source}`;
      await this.save(link);
      if (!(await this.repair(link, bucket))) return;
      rec.regionsRepaired = rec.regionsMismatched;
    }
    const repaired = rec.regionsRepaired;
    await this.end(
      link,
      "completed",
      rec.regionsMismatched === 0
        ? `both copies identical (${rec.bytesChecked} bytes compared)`
        : `${rec.regionsMismatched} regions differed; ${repaired} repaired from node ${rec.source}`,
    );
  }

  /**
   * Hashes one region on both nodes under its range lock; true when the digests match, null when
   * the link or the role went away first (the run pauses).
   */
  private async compare(link: Link, region: number, length: number): Promise<boolean | null> {
    const core = this.core;
    const offset = region * core.regionSize;
    // Inside the I/O gate: a handshake or a growth waits for the region, and the region for them.
    const leave = core.gate.tryEnter() ?? (await core.gate.enter());
    try {
      if (!this.drives(link)) return null;
      const unlock =
        core.rangeLock.tryAcquire(offset, length) ?? (await core.rangeLock.acquire(offset, length));
      try {
        const theirs = link.conn.request("verifyHash", { offset, length }, undefined, Priority.resync);
        theirs.catch(() => undefined);
        const data = await core.local.read(offset, length);
        const mine = await hashRegion(data);
        const reply = await theirs;
        if (mine.equals(reply.data)) return true;
        core.log.warn(
          { runId: this.record!.runId, region, offset, source: this.record!.source },
          "verify: the copies of a region differ; copying it from the source",
        );
        await this.repairRegion(link, offset, length, data);
        // Counted once copied: a run that lost its link before compares the region again.
        this.mismatched(region);
        this.record!.regionsRepaired++;
        return false;
      } finally {
        unlock();
      }
    } catch (e) {
      if (e instanceof PeerLostError) return null;
      throw e;
    } finally {
      leave();
    }
  }

  /** Counts a region whose copies differed. */
  private mismatched(region: number): void {
    const rec = this.record!;
    rec.regionsMismatched++;
    this.totals.regionsMismatched++;
    if (rec.mismatchedRegions.length < MAX_LISTED_REGIONS) rec.mismatchedRegions.push(region);
  }

  /**
   * Copies one region from the source to the other node, under the caller's range lock. `here`
   * is this node's copy, read for the hash under the same lock.
   */
  private async repairRegion(link: Link, offset: number, length: number, here: Buffer): Promise<void> {
    const copy = this.copyEnds(link);
    await copy.flushSource();
    await copy.writeOther(offset, copy.fromHere ? here : await copy.readSource(offset, length));
    this.core.countResynced(length);
  }

  /**
   * Copies the regions marked out of sync (by a run of an earlier version) from the source to the
   * other node with the resync's sender; false when the link went away first (the handshake's
   * resync then copies them).
   */
  private async repair(link: Link, bucket: TokenBucket): Promise<boolean> {
    const core = this.core;
    const copy = this.copyEnds(link);
    await copy.flushSource();
    try {
      return await sendOutOfSyncRegions({
        regionSize: core.regionSize,
        sizeBytes: core.sizeBytes,
        local: { read: copy.readSource },
        outOfSync: core.outOfSync,
        store: core.store,
        rangeLock: core.rangeLock,
        bucket,
        isHot: (r) => core.hot.has(r),
        active: () => this.drives(link),
        send: copy.writeOther,
        copied: (bytes) => core.countResynced(bytes),
      });
    } catch (e) {
      if (e instanceof PeerLostError) return false;
      throw e;
    }
  }

  /** The two ends of a repair's copy, seen from this node (the sequencer). */
  private copyEnds(link: Link): {
    fromHere: boolean;
    /** What is copied must be durable on the source first, as for a resync (resync-session.ts). */
    flushSource(): Promise<void>;
    readSource(offset: number, length: number): Promise<Buffer>;
    /** Written and fsynced on the node that is not the source. */
    writeOther(offset: number, data: Buffer): Promise<void>;
  } {
    const core = this.core;
    const conn = link.conn;
    if (this.record!.source === core.node) {
      return {
        fromHere: true,
        flushSource: () => core.local.flush(),
        readSource: (offset, length) => core.local.read(offset, length),
        writeOther: async (offset, data) => {
          await conn.request("verifyRepair", { offset }, data, Priority.resync);
        },
      };
    }
    return {
      fromHere: false,
      flushSource: async () => {
        await conn.request("flush", {}, undefined, Priority.control);
      },
      readSource: async (offset, length) => {
        const { data } = await conn.request("read", { offset, length }, undefined, Priority.resync);
        if (data.length !== length) throw new Error(`the source returned ${data.length} of ${length} bytes`);
        return data;
      },
      writeOther: async (offset, data) => {
        await core.local.write(offset, data);
        await core.local.flush();
      },
    };
  }

  private async end(link: Link, state: "completed" | "failed", message: string): Promise<void> {
    const rec = this.record!;
    rec.state = state;
    rec.endedAt = new Date().toISOString();
    rec.message = message;
    this.core.log.info(
      {
        runId: rec.runId,
        state,
        bytesChecked: rec.bytesChecked,
        regionsMismatched: rec.regionsMismatched,
        regionsRepaired: rec.regionsRepaired,
      },
      "verify ended",
    );
    await this.save(link);
  }

  /** Saves the record here and sends it to the partner, which saves it too. */
  private async save(link: Link): Promise<void> {
    const rec = this.record!;
    this.lastSaved = Date.now();
    await saveVerifyRecord(this.file, rec);
    if (this.core.link?.conn === link.conn) link.conn.send("verifyRecord", rec, undefined, Priority.control);
  }

  private notWorking(): DeviceUnavailableError {
    const r = this.core.machine.record;
    return new DeviceUnavailableError(
      `node ${this.core.node} is ${r.nodeState} (${r.message}); a verify runs while both nodes are Working`,
      "unavailable",
    );
  }
}
