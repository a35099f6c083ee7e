/**
 * The standalone UnitStateStore: applies operations one at a time with the
 * shared reducer and keeps the state in a JSON file next to the LUN file
 * (write temp, fsync, rename, fsync directory), so registrations,
 * reservations and the write cache setting survive restarts.
 */
import { promises as fsp } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../log.js";
import { applyUnitOp } from "./unit-state-reducer.js";
import {
  emptyUnitState,
  parsePersistedUnitState,
  type UnitAttention,
  type UnitOp,
  type UnitOpResult,
  type UnitState,
  type UnitStateStore,
} from "./unit-state-schema.js";

export class LocalUnitStateStore implements UnitStateStore {
  private state: UnitState;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly uaListeners: Array<(ua: UnitAttention) => void> = [];
  private readonly changeListeners: Array<(s: UnitState) => void> = [];

  private constructor(
    private readonly path: string | undefined,
    initial: UnitState,
    private readonly logger?: Logger,
  ) {
    this.state = initial;
  }

  /** A store kept only in memory (tests, throw-away targets). */
  static inMemory(initial: UnitState = emptyUnitState()): LocalUnitStateStore {
    return new LocalUnitStateStore(undefined, initial);
  }

  /**
   * Opens the store persisted at `path`, or starts empty when the file does not exist. SPC-2 reservations
   * do not survive a restart (it is a power-on reset); persistent reservations and WCE do.
   */
  static async open(path: string, logger?: Logger): Promise<LocalUnitStateStore> {
    let initial = emptyUnitState();
    try {
      initial = parsePersistedUnitState(path, await fsp.readFile(path, "utf8"));
      logger?.info(
        {
          path,
          registrations: initial.registrations.length,
          reserved: initial.reservation !== null,
          writeCacheEnabled: initial.writeCacheEnabled,
        },
        "loaded logical unit state",
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    return new LocalUnitStateStore(path, initial, logger);
  }

  get(): UnitState {
    return this.state;
  }

  apply(op: UnitOp): Promise<UnitOpResult> {
    const run = async (): Promise<UnitOpResult> => {
      const r = applyUnitOp(this.state, op);
      if (r.state !== this.state) {
        if (this.path && persistedPart(r.state) !== persistedPart(this.state)) await this.persist(r.state);
        this.state = r.state;
        for (const fn of this.changeListeners) fn(r.state);
      }
      for (const ua of r.unitAttentions) for (const fn of this.uaListeners) fn(ua);
      const result: UnitOpResult = { outcome: r.outcome, unitAttentions: r.unitAttentions };
      if (r.abortNexusIds) result.abortNexusIds = r.abortNexusIds;
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  onUnitAttention(fn: (ua: UnitAttention) => void): void {
    this.uaListeners.push(fn);
  }

  onChange(fn: (state: UnitState) => void): void {
    this.changeListeners.push(fn);
  }

  private async persist(state: UnitState): Promise<void> {
    const path = this.path!;
    const tmp = `${path}.tmp`;
    const fh = await fsp.open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify({ ...state, spc2Holder: null }, null, 2) + "\n");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
    const dir = await fsp.open(dirname(path), "r");
    try {
      await dir.sync();
    } catch (err) {
      this.logger?.debug({ err }, "directory fsync not supported");
    } finally {
      await dir.close();
    }
  }
}

/** The state without the parts that are not persisted, as a comparable string. */
function persistedPart(s: UnitState): string {
  return JSON.stringify({ ...s, spc2Holder: null });
}
