/**
 * Shared logical-unit state (persistent and SPC-2 reservations, the caching page's WCE) for a
 * pair. Both nodes hold a copy, persisted beside the LUN file (`<data file>.pair-unit-state.json`);
 * every operation is applied by the node that sequences writes, in the same order as writes,
 * and the resulting state with its unit attentions is sent to the partner before the operation
 * resolves, so initiators on either portal see one device (Windows clustering, fence_scsi).
 *
 * The pair node decides where an operation runs (`route`); this module holds the state, runs
 * the reducer and persists.
 */
import { promises as fsp } from "node:fs";
import type { Logger } from "../log.js";
import type { MetadataFiles } from "../store/metadata-files.js";
import {
  applyUnitOp,
  emptyUnitState,
  parsePersistedUnitState,
  type UnitAttention,
  type UnitOp,
  type UnitOpResult,
  type UnitState,
  type UnitStateStore,
} from "../scsi/unit-state.js";

type UnitStateFiles = Pick<MetadataFiles, "dir" | "unitState" | "unitStateTmp">;

export interface UnitStateRoute {
  /** Runs `op` where it must run (here, or forwarded to the sequencer) and resolves with its result. */
  apply(op: UnitOp): Promise<UnitOpResult>;
}

export class PairUnitStateStore implements UnitStateStore {
  private state: UnitState;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly uaListeners: Array<(ua: UnitAttention) => void> = [];
  private readonly changeListeners: Array<(s: UnitState) => void> = [];
  route: UnitStateRoute | null = null;

  private constructor(
    private readonly files: UnitStateFiles,
    initial: UnitState,
    private readonly logger: Logger,
  ) {
    this.state = initial;
  }

  static async open(files: UnitStateFiles, logger: Logger): Promise<PairUnitStateStore> {
    let initial = emptyUnitState();
    try {
      initial = parsePersistedUnitState(files.unitState, await fsp.readFile(files.unitState, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    return new PairUnitStateStore(files, initial, logger);
  }

  get(): UnitState {
    return this.state;
  }

  apply(op: UnitOp): Promise<UnitOpResult> {
    if (!this.route) return Promise.reject(new Error("pair unit state is not wired to a pair node"));
    return this.route.apply(op);
  }

  onUnitAttention(fn: (ua: UnitAttention) => void): void {
    this.uaListeners.push(fn);
  }

  onChange(fn: (state: UnitState) => void): void {
    this.changeListeners.push(fn);
  }

  /**
   * Runs the reducer here (this node sequences), persists, raises the unit attentions, then
   * `publish` (sending the new state to the partner) before the next operation starts.
   */
  applyHere(
    op: UnitOp,
    publish: (state: UnitState, uas: UnitAttention[]) => Promise<void>,
  ): Promise<UnitOpResult> {
    return this.serialized(async () => {
      const r = applyUnitOp(this.state, op);
      if (r.state !== this.state) await this.install(r.state);
      this.raise(r.unitAttentions);
      await publish(this.state, r.unitAttentions);
      const result: UnitOpResult = { outcome: r.outcome, unitAttentions: r.unitAttentions };
      if (r.abortNexusIds) result.abortNexusIds = r.abortNexusIds;
      return result;
    });
  }

  /** Takes the partner's state (it sequences) and raises its unit attentions here too. */
  replace(state: UnitState, uas: UnitAttention[]): Promise<void> {
    return this.serialized(async () => {
      if (JSON.stringify(state) !== JSON.stringify(this.state)) await this.install(state);
      this.raise(uas);
    });
  }

  private async install(state: UnitState): Promise<void> {
    await this.persist(state);
    this.state = state;
    for (const fn of this.changeListeners) fn(state);
  }

  private raise(uas: UnitAttention[]): void {
    for (const ua of uas) for (const fn of this.uaListeners) fn(ua);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async persist(state: UnitState): Promise<void> {
    const path = this.files.unitState;
    const tmp = this.files.unitStateTmp;
    const fh = await fsp.open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify({ ...state, spc2Holder: null }) + "\n");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
    const d = await fsp.open(this.files.dir, "r");
    try {
      await d.sync();
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, "directory fsync not supported");
    } finally {
      await d.close();
    }
  }
}
