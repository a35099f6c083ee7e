/**
 * What every part of a pair node shares: its identity and geometry, the local copy, the
 * persisted metadata (generation record, dirty bitmap, shared unit state), the locks that order
 * I/O, the state machine, and the loss handling in progress. The parts (device, sequencer,
 * handshake, resync, partner loss, unit state routing, peer messages) each hold one of these and
 * nothing else of each other's.
 */
import { DeviceUnavailableError, type BlockDevice } from "../store/block-device.js";
import type { DirtyBitmap, DirtyRegionStore } from "../store/dirty-bitmap.js";
import { saveGeneration, type GenerationRecord } from "../store/pair-generation.js";
import type { PairMetadataFiles } from "../store/metadata-files.js";
import { RangeLock } from "../store/range-lock.js";
import type { Logger } from "../log.js";
import { ActiveExtents } from "./active-extents.js";
import { IoGate } from "./io-gate.js";
import type { PairUnitStateStore } from "./pair-unit-state.js";
import { PeerLostError, PeerRequestError, type PeerConnection } from "./peer-connection.js";
import { modeOf, PairStateMachine, type Link, type Mode } from "./pair-state.js";
import type { NodeName } from "./witness.js";

/**
 * Bits are made durable for whole activity extents (like DRBD's activity log): a cold write
 * marks its 4 MiB-aligned extent, so a sequential stream pays one bitmap fsync per extent
 * rather than per region. Unwritten regions of an extent are only copied after a crash or a
 * link loss while the extent was active.
 */
const ACTIVITY_EXTENT_BYTES = 4 * 1024 * 1024;
/** How long an I/O waits for a decision (handshake, witness) before it is refused. */
const WAIT_LIMIT_MS = 20_000;

export interface CoreOptions {
  node: NodeName;
  local: BlockDevice;
  metadata: PairMetadataFiles;
  regionSize: number;
  regions: number;
  logger: Logger;
}

export class PairCore {
  readonly node: NodeName;
  readonly peerNode: NodeName;
  readonly log: Logger;
  readonly local: BlockDevice;
  readonly regionSize: number;
  /** regions and bytes of the LUN: they change only when the LUN grows (lun-growth.ts) */
  regions: number;
  sizeBytes: number;
  readonly metadata: PairMetadataFiles;
  /** Extents with mutations in flight or recently written (their bits are durable). */
  readonly hot: ActiveExtents;
  readonly rangeLock = new RangeLock();
  readonly gate = new IoGate();
  readonly machine: PairStateMachine;
  readonly stats = { resyncedBytes: 0, mirroredWrites: 0 };

  gen!: GenerationRecord;
  store!: DirtyRegionStore;
  /** Regions the partner may lack (the resync set). */
  outOfSync!: DirtyBitmap;
  units!: PairUnitStateStore;
  resyncProgress: { doneBytes: number; totalBytes: number; startedAt: number } | null = null;
  /** The loss handling in progress (awaited by I/O that found the link gone). */
  lossHandling: Promise<void> = Promise.resolve();
  /** when the link was last lost (null: never linked since start) */
  lostAt: number | null = null;
  /**
   * A handshake of this process linked the node with its partner: it then holds every write the
   * pair acknowledged since (sent in the handshake, see sync-direction.ts).
   */
  linkedSinceStart = false;

  constructor(o: CoreOptions) {
    this.node = o.node;
    this.peerNode = o.node === "a" ? "b" : "a";
    this.log = o.logger;
    this.local = o.local;
    this.regionSize = o.regionSize;
    this.regions = o.regions;
    this.sizeBytes = o.local.sizeBytes;
    this.metadata = o.metadata;
    this.hot = new ActiveExtents(
      Math.max(1, Math.floor(ACTIVITY_EXTENT_BYTES / this.regionSize)),
      this.regions,
    );
    this.machine = new PairStateMachine(this.log, () => JSON.stringify(this.aluaKey()));
  }

  /** Set by the node: the ALUA states as a comparable value (listeners hear when they change). */
  aluaKey: () => unknown = () => null;

  get closed(): boolean {
    return this.machine.situation === "Closed";
  }

  get link(): Link | null {
    return this.machine.record.link;
  }

  get conn(): PeerConnection | null {
    return this.machine.record.conn;
  }

  mode(): Mode {
    return modeOf(this.machine.record, this.node);
  }

  /** Persists a new generation record, then makes it the node's. */
  async setGeneration(next: GenerationRecord): Promise<void> {
    await saveGeneration(this.metadata, next);
    this.gen = next;
  }

  unavailable(): DeviceUnavailableError {
    const r = this.machine.record;
    const m = this.mode();
    if (m === "wait" || ((m === "sequencer" || m === "forwarder") && !this.leaseValid()))
      return new DeviceUnavailableError(`pair node ${this.node}: ${r.message}`, "transitioning");
    return new DeviceUnavailableError(
      `pair node ${this.node} does not serve I/O: ${r.message}`,
      "unavailable",
    );
  }

  /** Waits (outside any gate) until the mode is decided; returns it. */
  async decidedMode(): Promise<Exclude<Mode, "wait">> {
    const until = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const m = this.mode();
      if (m !== "wait") return m;
      const left = until - Date.now();
      if (left <= 0) throw this.unavailable();
      await this.machine.nextChange(Math.min(left, 1000));
    }
  }

  /** Whether this node holds a read lease from its partner on the current link. */
  leaseValid(): boolean {
    const c = this.link?.conn;
    return !!c && c.leaseValid();
  }

  /** Whether the node serves I/O right now: alone, or linked with a read lease. */
  serving(): boolean {
    const m = this.mode();
    return m === "alone" || ((m === "sequencer" || m === "forwarder") && this.leaseValid());
  }

  /**
   * Like decidedMode, for operations that answer from the local copy (reads, the compare of
   * COMPARE AND WRITE): a linked node also waits until it holds a read lease, so a node cut off
   * from its partner stops answering before the partner may write alone.
   */
  async readableMode(): Promise<Exclude<Mode, "wait">> {
    const until = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const m = this.mode();
      if (m === "refuse" || m === "alone" || (m !== "wait" && this.leaseValid())) return m;
      const left = until - Date.now();
      if (left <= 0) throw this.unavailable();
      // A renewed lease wakes waiters; a lapse is only seen by looking again.
      await this.machine.nextChange(Math.min(left, 100));
    }
  }

  /**
   * Runs an operation in the pair's order: once the mode is decided (`readable`: and this node
   * holds a read lease), inside the I/O gate, with the mode it found there. When the link is lost
   * under it, the operation may or may not have reached the sequencer; routing it again (alone,
   * or over a new link) is idempotent, so it waits for the loss to be handled and routes again.
   */
  async routed<T>(
    route: (mode: "sequencer" | "forwarder" | "alone") => Promise<T>,
    o: { readable?: boolean } = {},
  ): Promise<T> {
    for (;;) {
      const now = this.mode();
      const m = o.readable ? await this.readableMode() : now === "wait" ? await this.decidedMode() : now;
      if (m === "refuse") throw this.unavailable();
      const release = this.gate.tryEnter() ?? (await this.gate.enter());
      let lost = false;
      try {
        const mode = this.mode();
        // The mode changed while entering the gate: decide again.
        if (mode === "wait" || mode === "refuse") continue;
        return await route(mode);
      } catch (e) {
        if (!this.isPeerLoss(e)) throw this.peerError(e);
        lost = true;
      } finally {
        release();
      }
      if (lost) await this.lossHandling;
    }
  }

  /** The error to give the SCSI layer for a failed peer request. */
  peerError(e: unknown): Error {
    if (e instanceof PeerRequestError && e.unavailable)
      return new DeviceUnavailableError(e.message, e.unavailable);
    return e instanceof Error ? e : new Error(String(e));
  }

  isPeerLoss(e: unknown): boolean {
    return e instanceof PeerLostError;
  }

  inRange(offset: number, length: number): boolean {
    return offset + length <= this.sizeBytes;
  }

  startResyncProgress(): void {
    const total = this.outOfSync.count() * this.regionSize;
    this.resyncProgress = {
      doneBytes: 0,
      totalBytes: Math.min(total, this.sizeBytes),
      startedAt: Date.now(),
    };
  }

  countResynced(bytes: number): void {
    this.stats.resyncedBytes += bytes;
    if (this.resyncProgress) this.resyncProgress.doneBytes += bytes;
  }
}
