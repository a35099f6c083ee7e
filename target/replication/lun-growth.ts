/**
 * Growing the pair's LUN while it serves. The growth is ordered like a mutation: the node that
 * sequences writes closes its I/O gate (so no write it sequences, its own or forwarded, is in
 * flight), asks the partner to grow (`grow`), grows itself, and only then opens the gate again. A
 * node that does not sequence asks the sequencer (`forwardGrow`). A node serving alone grows
 * alone; its partner grows at the next handshake, before it serves (handshake.ts), and whatever
 * was written alone in the new space is dirty in the bitmap like any other write and resyncs.
 *
 * One node's growth (`growLocal`): the LUN file first, then the dirty bitmap (file and memory),
 * then the generation record. A node restarted in between opens its file at the size it has
 * (serve.ts) and adopts it in its record, so a growth cut short is completed, never undone.
 * Listeners (the SCSI layer) then report the new capacity and raise CAPACITY DATA HAS CHANGED.
 */
import { DeviceUnavailableError } from "../store/block-device.js";
import { regionCount } from "../store/dirty-bitmap.js";
import type { PairCore } from "./pair-core.js";

/** A growth the pair refuses: the request is wrong or the pair's state does not allow it now. */
export class GrowthRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrowthRefusedError";
  }
}

/** Sizes are whole 512-byte sectors (the target checks its own logical block size too). */
export const GROWTH_ALIGNMENT = 512;

export type GrowthCheck = { kind: "same" } | { kind: "grow" } | { kind: "refuse"; reason: string };

/** Whether a LUN of `current` bytes may become `requested` bytes. */
export function checkGrowth(current: number, requested: number): GrowthCheck {
  if (!Number.isSafeInteger(requested) || requested <= 0) {
    return { kind: "refuse", reason: `invalid LUN size ${requested}: a positive whole number of bytes` };
  }
  if (requested % GROWTH_ALIGNMENT !== 0) {
    return { kind: "refuse", reason: `LUN size ${requested} is not a multiple of ${GROWTH_ALIGNMENT} bytes` };
  }
  if (requested < current) {
    return {
      kind: "refuse",
      reason: `the LUN holds ${current} bytes; shrinking it to ${requested} would lose data and is refused`,
    };
  }
  return requested === current ? { kind: "same" } : { kind: "grow" };
}

export interface GrowthResult {
  sizeBytes: number;
  /** false when the LUN already had this size (the call is idempotent) */
  grew: boolean;
  message: string;
}

export class LunGrowth {
  private readonly listeners = new Set<(sizeBytes: number) => void>();
  /** One local growth at a time. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly core: PairCore) {}

  /** Subscribes to this node's growth (after it is durable); returns the unsubscribe function. */
  onGrown(fn: (sizeBytes: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Grows the pair's LUN to `sizeBytes` on both nodes (or alone, when this node serves alone).
   * Resolves once every node that serves holds the new size; idempotent.
   */
  async grow(sizeBytes: number): Promise<GrowthResult> {
    const core = this.core;
    const check = checkGrowth(core.sizeBytes, sizeBytes);
    if (check.kind === "refuse") throw new GrowthRefusedError(check.reason);
    const mode = await core.decidedMode();
    if (mode === "refuse") throw core.unavailable();
    if (mode === "forwarder") {
      const link = core.link!;
      if (core.machine.situation !== "Working") throw this.notNow();
      await link.conn.request("forwardGrow", { sizeBytes });
      return this.result(sizeBytes, check.kind === "grow");
    }
    return this.growAsSequencer(sizeBytes);
  }

  /** Sequencer or alone: the growth in the pair's order. */
  async growAsSequencer(sizeBytes: number): Promise<GrowthResult> {
    const core = this.core;
    return core.gate.exclusive(async () => {
      const check = checkGrowth(core.sizeBytes, sizeBytes);
      if (check.kind === "refuse") throw new GrowthRefusedError(check.reason);
      const mode = core.mode();
      if (mode === "alone") {
        if (check.kind === "grow") await this.growLocal(sizeBytes);
        return this.result(sizeBytes, check.kind === "grow");
      }
      if (mode !== "sequencer") {
        throw new DeviceUnavailableError(`node ${core.node} no longer sequences writes`, "transitioning");
      }
      if (core.machine.situation !== "Working") throw this.notNow();
      // The partner first: if it cannot grow, neither does this node. Asked even when this node
      // has the size already (a growth cut short by a lost link completes here).
      await core.link!.conn.request("grow", { sizeBytes });
      if (check.kind === "grow") await this.growLocal(sizeBytes);
      return this.result(sizeBytes, check.kind === "grow");
    });
  }

  /**
   * Grows this node's copy: LUN file, dirty bitmap, generation record, in that order. Growing to
   * the current size does nothing.
   */
  growLocal(sizeBytes: number): Promise<void> {
    const run = this.chain.then(() => this.growLocalNow(sizeBytes));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async growLocalNow(sizeBytes: number): Promise<void> {
    const core = this.core;
    const check = checkGrowth(core.sizeBytes, sizeBytes);
    if (check.kind === "refuse") throw new GrowthRefusedError(check.reason);
    if (check.kind === "same") return;
    const local = core.local;
    if (!local.grow) throw new GrowthRefusedError("this node's device cannot grow");
    const from = core.sizeBytes;
    const regions = regionCount(sizeBytes, core.regionSize);
    await local.grow(sizeBytes);
    await core.store.grow(regions);
    core.outOfSync.grow(regions);
    core.hot.grow(regions);
    core.regions = regions;
    core.sizeBytes = sizeBytes;
    await core.setGeneration({ ...core.gen, sizeBytes });
    core.log.info({ from, to: sizeBytes, regions }, "LUN grown");
    for (const fn of this.listeners) {
      try {
        fn(sizeBytes);
      } catch (e) {
        core.log.error({ err: (e as Error).message }, "a listener of the LUN growth failed");
      }
    }
  }

  private notNow(): GrowthRefusedError {
    const r = this.core.machine.record;
    return new GrowthRefusedError(
      `node ${this.core.node} is ${r.nodeState} (${r.message}); the LUN grows while both nodes are Working or while one serves alone`,
    );
  }

  private result(sizeBytes: number, grew: boolean): GrowthResult {
    const core = this.core;
    const where =
      core.mode() === "alone" ? "this node (serving alone; the partner grows when it returns)" : "both nodes";
    return {
      sizeBytes,
      grew,
      message: grew
        ? `LUN grown to ${sizeBytes} bytes on ${where}`
        : `the LUN already holds ${sizeBytes} bytes`,
    };
  }
}
