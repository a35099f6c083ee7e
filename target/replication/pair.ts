/**
 * One node of an HA pair: the BlockDevice the SCSI layer uses, kept identical on both
 * nodes, and the state machine around it.
 *
 * States (per node)
 * - Working: linked and in sync. Every mutation goes through one sequencer (node a unless a
 *   resync made the other node the source for this link), which orders overlapping writes
 *   with a range lock, applies them locally and on the partner, and resolves only when both
 *   hold them. The other node forwards its writes, unmaps and COMPARE AND WRITEs to it.
 * - Failed: the partner is lost. The node serves alone only if it wins the witness; then each
 *   write first makes its region's bit durable in the dirty bitmap. The loser refuses I/O.
 * - Synchronizing: linked, sending the regions the partner lacks (union of both bitmaps),
 *   rate-limited, while also sequencing foreground writes.
 * - Pending: linked, receiving. Its copy is inconsistent (persisted as such), so reads of
 *   regions not yet received are forwarded to the source; when the link goes it serves
 *   nothing and never claims the witness.
 * - SplitBrain: both nodes wrote independently (or no consistent copy exists). No data is
 *   copied until someone decides which node's changes to discard.
 *
 * Split-brain resolution: `resolveSplitBrain(discard)` (the agent's
 * `POST /split-brain/resolve {"discard": "a"|"b"}`) on either node. The discarded node marks
 * its own copy inconsistent with the partner as its sync source (keeping its dirty bitmap, so
 * the regions it changed are copied back too; all regions when the histories are unrelated),
 * stops serving and reconnects; the normal handshake then resyncs it from the partner.
 *
 * Dirty bitmap and region size: one bit per `regionSize` bytes (default 256 KiB). The bit of a
 * region is durable before any write to it is sent to the partner (or, alone, applied), and is
 * cleared lazily: for mirrored writes once the region was idle for a while, for resync once the
 * receiver acknowledged the region after fsync. 256 KiB keeps the bitmap small (512 KiB for
 * 1 TiB), makes a sequential 1 MiB write touch at most five bits, and bounds the over-copy of
 * a scattered 4 KiB write load to one region per dirty region. Bits are made durable per 4 MiB
 * activity extent, so the bitmap fsync is paid once per extent that becomes active.
 *
 * Generations and direction: see sync-direction.ts (the decision) and
 * generation-transitions.ts (how a record changes). On every (re)connection both nodes swap
 * their generation records and bitmaps, decide the same way, persist, and only then start I/O
 * on the link. The resync source sequences writes until the next reconnection (moving the
 * sequencer mid-link would need both nodes drained); ALUA reports the sequencer's port group
 * as active/optimized, so initiators follow it.
 *
 * Peer link: node a dials node b (b only listens), both authenticate (peer-auth.ts), frames
 * are validated at the boundary (protocol.ts), heartbeats detect a lost partner
 * (peer-connection.ts). The witness (witness.ts) decides who may go on alone.
 */
import { ActiveExtents } from "./active-extents.js";
import { firstMismatch } from "../store/file-device.js";
import { DeviceUnavailableError, type AllocationRun, type BlockDevice } from "../store/block-device.js";
import { DirtyBitmap, DirtyRegionStore, regionCount, regionsOf } from "../store/dirty-bitmap.js";
import {
  freshGeneration,
  loadGeneration,
  newGenerationId,
  saveGeneration,
  type GenerationRecord,
} from "../store/pair-generation.js";
import { RangeLock } from "../store/range-lock.js";
import type { NodeState, ReplicationStatus } from "../agent/status-schema.js";
import type { Logger } from "../log.js";
import { z } from "zod";
import {
  UnitAttentionSchema,
  UnitOpResultSchema,
  UnitOpSchema,
  UnitStateSchema,
  type UnitAttention,
  type UnitOp,
  type UnitOpResult,
  type UnitState,
  type UnitStateStore,
} from "../scsi/unit-state.js";
import type { AluaState, PortGroupInfo } from "../scsi/port-groups.js";
import { IoGate } from "./io-gate.js";
import { ResyncReceiver, sendOutOfSyncRegions } from "./resync.js";
import { HandshakeMailbox } from "./handshake-mailbox.js";
import {
  afterResyncAsSource,
  afterResyncAsTarget,
  asResyncTarget,
  goingAlone,
  inSyncWith,
  wantsNewGeneration,
} from "./generation-transitions.js";
import { PairUnitStateStore } from "./pair-unit-state.js";
import { type PeerConnection, PeerLostError, PeerRequestError, Priority } from "./peer-connection.js";
import { PeerLink, withAuthFailure, type HostPort, type PeerTls } from "./peer-link.js";
import { PeerSecrets } from "./peer-secrets.js";
import type { Message, MessageOf } from "./protocol.js";
import { decideSync, type SyncDecision } from "./sync-direction.js";
import { TokenBucket } from "./token-bucket.js";
import type { NodeName, Witness } from "./witness.js";

export const DEFAULT_REGION_SIZE = 256 * 1024;

export interface PairNodeOptions {
  node: NodeName;
  local: BlockDevice;
  /** directory for the generation record and the dirty bitmap (next to the LUN file) */
  metaDir: string;
  peer: HostPort;
  listen: HostPort;
  secret: Buffer | string | PeerSecrets;
  tls?: PeerTls;
  witness: Witness;
  resyncRateBytesPerSec?: number;
  regionSize?: number;
  logger: Logger;
  /** heartbeat period (default 500 ms) */
  heartbeatMs?: number;
  /** the partner counts as lost after this long without any message (default 3000 ms) */
  peerTimeoutMs?: number;
  /** how long a node tries to win the witness before refusing I/O (default 5000 ms) */
  witnessTimeoutMs?: number;
  /** period of the pair confirmation in the witness while Working (default 5000 ms) */
  confirmIntervalMs?: number;
}

const UnitStateBroadcastSchema = z.object({
  state: UnitStateSchema,
  unitAttentions: z.array(UnitAttentionSchema),
});

export interface PairNode {
  /** What the SCSI layer reads and writes. */
  readonly device: BlockDevice;
  readonly node: NodeName;
  status(): ReplicationStatus;
  /** Subscribes to state transitions and changes of the ALUA access states; returns the unsubscribe function. */
  onStateChange(fn: (state: NodeState, previous: NodeState, message: string) => void): () => void;
  /** Access states of target port group 1 (node a) and 2 (node b), as this node sees them. */
  alua(): { a: AluaState; b: AluaState };
  /** The same as REPORT TARGET PORT GROUPS describes it: group 1 = node a (relative port 1), group 2 = node b (port 2). */
  portGroups(): PortGroupInfo[];
  /** Persistent and SPC-2 reservations shared by both nodes (give it to the SCSI layer). */
  unitState(): UnitStateStore;
  /** Resolves a split brain by discarding the changes of node `discard`. */
  resolveSplitBrain(discard: NodeName): Promise<string>;
  /** The peer link's listen address (node b), for tests that bind port 0. */
  listenAddress(): HostPort | null;
  close(): Promise<void>;
}

type Mode = "sequencer" | "forwarder" | "alone" | "wait" | "refuse";

interface Link {
  conn: PeerConnection;
  sequencer: NodeName;
  /** this node's part in the resync of this link */
  role: "source" | "target" | "none";
}

const HOT_IDLE_MS = 1500;
/**
 * Bits are made durable for whole activity extents (like DRBD's activity log): a cold write
 * marks its 4 MiB-aligned extent, so a sequential stream pays one bitmap fsync per extent
 * rather than per region. Unwritten regions of an extent are only copied after a crash or a
 * link loss while the extent was active.
 */
const ACTIVITY_EXTENT_BYTES = 4 * 1024 * 1024;
const WAIT_LIMIT_MS = 20_000;

export async function startPairNode(options: PairNodeOptions): Promise<PairNode> {
  const node = new PairNodeImpl(options);
  await node.start();
  return node;
}

class PairNodeImpl implements PairNode {
  readonly node: NodeName;
  readonly peerNode: NodeName;
  readonly device: BlockDevice;
  private readonly log: Logger;
  private readonly local: BlockDevice;
  private readonly regionSize: number;
  private readonly regions: number;
  private readonly secret: PeerSecrets;
  private readonly heartbeatMs: number;
  private readonly peerTimeoutMs: number;
  private readonly witnessTimeoutMs: number;
  private readonly confirmIntervalMs: number;
  private readonly bucket: TokenBucket | null;

  private gen!: GenerationRecord;
  private store!: DirtyRegionStore;
  private units!: PairUnitStateStore;
  /** Regions the partner may lack (the resync set). */
  private outOfSync!: DirtyBitmap;
  /** Extents with mirrored writes in flight or recently written (their bits are durable). */
  private readonly hot: ActiveExtents;
  private readonly rangeLock = new RangeLock();
  private readonly gate = new IoGate();
  private peerLink!: PeerLink;

  private state: NodeState = "Unknown";
  private message = "starting; looking for the partner";
  private conn: PeerConnection | null = null;
  private link: Link | null = null;
  /** Serving alone with the witness held. */
  private alone = false;
  /** A decision about serving is being made (startup, loss handling, handshake). */
  private deciding = true;
  private lossHandling: Promise<void> = Promise.resolve();
  private splitBrain: { reason: string; peerCurrent: string; commonAncestor: boolean } | null = null;
  private readonly listeners: Array<(s: NodeState, p: NodeState, m: string) => void> = [];
  private changeWaiters: Array<() => void> = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private witnessRetry: NodeJS.Timeout | null = null;
  /** when the link was last lost (null: never linked since start) */
  private lostAt: number | null = null;

  private stats = { resyncedBytes: 0, mirroredWrites: 0 };
  private resync: { doneBytes: number; totalBytes: number; startedAt: number } | null = null;
  private receiver!: ResyncReceiver;

  constructor(private readonly o: PairNodeOptions) {
    this.node = o.node;
    this.peerNode = o.node === "a" ? "b" : "a";
    this.log = o.logger.child({ pairNode: o.node });
    this.local = o.local;
    this.regionSize = o.regionSize ?? DEFAULT_REGION_SIZE;
    if (!Number.isInteger(this.regionSize) || this.regionSize < 4096 || this.regionSize % 4096 !== 0) {
      throw new Error(`region size ${this.regionSize} must be a positive multiple of 4096`);
    }
    this.regions = regionCount(o.local.sizeBytes, this.regionSize);
    this.hot = new ActiveExtents(
      Math.max(1, Math.floor(ACTIVITY_EXTENT_BYTES / this.regionSize)),
      this.regions,
    );
    this.secret = PeerSecrets.of(o.secret);
    this.heartbeatMs = o.heartbeatMs ?? 500;
    this.peerTimeoutMs = o.peerTimeoutMs ?? 3000;
    this.witnessTimeoutMs = o.witnessTimeoutMs ?? 5000;
    this.confirmIntervalMs = o.confirmIntervalMs ?? 5000;
    this.bucket = o.resyncRateBytesPerSec
      ? new TokenBucket(o.resyncRateBytesPerSec, Math.max(this.regionSize, o.resyncRateBytesPerSec / 10))
      : null;
    this.device = this.makeDevice();
  }

  async start(): Promise<void> {
    const sizeBytes = this.local.sizeBytes;
    const loaded = await loadGeneration(this.o.metaDir);
    if (loaded && loaded.regionSize !== this.regionSize) {
      throw new Error(
        `the pair metadata in ${this.o.metaDir} uses ${loaded.regionSize}-byte regions; start with that region size`,
      );
    }
    if (loaded && loaded.sizeBytes > sizeBytes) {
      throw new Error(`the pair metadata records a ${loaded.sizeBytes}-byte LUN, larger than ${sizeBytes}`);
    }
    this.gen = loaded ? { ...loaded, sizeBytes } : freshGeneration(this.regionSize, sizeBytes);
    await saveGeneration(this.o.metaDir, this.gen);
    this.store = await DirtyRegionStore.open(this.o.metaDir, this.regions);
    this.outOfSync = this.store.image.clone();
    this.receiver = new ResyncReceiver({
      regionSize: this.regionSize,
      sizeBytes: sizeBytes,
      local: this.local,
      outOfSync: this.outOfSync,
      store: this.store,
    });
    this.units = await PairUnitStateStore.open(this.o.metaDir, this.log);
    this.units.route = { apply: (op) => this.applyUnitOp(op) };
    this.log.info(
      {
        generation: this.gen.current,
        bitmapUuid: this.gen.bitmapUuid,
        consistent: this.gen.consistent,
        initialized: this.gen.initialized,
        dirtyRegions: this.outOfSync.count(),
        regionSize: this.regionSize,
      },
      loaded ? "pair metadata loaded" : "new pair metadata created",
    );
    this.peerLink = new PeerLink({
      node: this.node,
      peer: this.o.peer,
      listen: this.o.listen,
      secret: this.secret,
      ...(this.o.tls ? { tls: this.o.tls } : {}),
      logger: this.log,
      heartbeatMs: this.heartbeatMs,
      timeoutMs: this.peerTimeoutMs,
      onConnection: (c) => this.onConnection(c),
    });
    await this.peerLink.start();
    // Wait a little for the partner before deciding to go on alone.
    this.timers.push(
      setTimeout(() => {
        if (!this.conn && !this.closed) {
          this.lossHandling = this.lossHandling.then(() =>
            this.handleLoss("partner not reachable at startup"),
          );
        }
      }, this.peerTimeoutMs),
    );
    this.timers.push(setInterval(() => this.housekeeping(), 1000));
  }

  // ---------------------------------------------------------------- state

  private setState(state: NodeState, message: string): void {
    const prev = this.state;
    this.message = message;
    if (prev !== state) {
      this.state = state;
      this.log.info({ from: prev, to: state, reason: message }, `replication state ${prev} -> ${state}`);
      this.tell(prev);
    }
    this.notifyChange();
  }

  private tell(prev: NodeState): void {
    this.lastAlua = JSON.stringify(this.alua());
    for (const fn of this.listeners) {
      try {
        fn(this.state, prev, this.message);
      } catch (e) {
        this.log.error({ err: (e as Error).message }, "state change listener failed");
      }
    }
  }

  private lastAlua = "";

  /** Wakes operations waiting for a decision; tells listeners when the access states moved without a state change. */
  private notifyChange(): void {
    if (JSON.stringify(this.alua()) !== this.lastAlua) this.tell(this.state);
    const w = this.changeWaiters;
    this.changeWaiters = [];
    for (const fn of w) fn();
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.changeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private mode(): Mode {
    if (this.closed) return "refuse";
    if (this.link) return this.link.sequencer === this.node ? "sequencer" : "forwarder";
    if (this.alone) return "alone";
    if (this.deciding) return "wait";
    return "refuse";
  }

  private unavailable(): DeviceUnavailableError {
    if (this.deciding)
      return new DeviceUnavailableError(`pair node ${this.node}: ${this.message}`, "transitioning");
    return new DeviceUnavailableError(
      `pair node ${this.node} does not serve I/O: ${this.message}`,
      "unavailable",
    );
  }

  /** Waits (outside any gate) until the mode is decided; returns it. */
  private async decidedMode(): Promise<Exclude<Mode, "wait">> {
    const until = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const m = this.mode();
      if (m !== "wait") return m;
      const left = until - Date.now();
      if (left <= 0) throw this.unavailable();
      await this.changed(Math.min(left, 1000));
    }
  }

  // ---------------------------------------------------------------- block device

  private makeDevice(): BlockDevice {
    return {
      sizeBytes: this.local.sizeBytes,
      read: (offset, length) => this.read(offset, length),
      write: (offset, data, options) => this.mutate({ kind: "write", offset, data, fua: !!options?.fua }),
      flush: () => this.flush(),
      unmap: (offset, length) => this.mutate({ kind: "unmap", offset, length }),
      compareAndWrite: (offset, expected, data) => this.compareAndWrite(offset, expected, data),
      isMapped: (offset, length) => this.isMapped(offset, length),
      allocationAt: (offset) => this.allocationAt(offset),
      close: () => this.close(),
    };
  }

  private async read(offset: number, length: number): Promise<Buffer> {
    for (;;) {
      const m = await this.decidedMode();
      if (m === "refuse") throw this.unavailable();
      const link = this.link;
      if (m === "forwarder" && link?.role === "target") {
        const [first, last] = regionsOf(offset, length, this.regionSize);
        if (this.outOfSync.anyInRange(first, last)) {
          try {
            const reply = await link.conn.request("read", { offset, length });
            if (reply.data.length !== length)
              throw new Error(`peer returned ${reply.data.length} of ${length} bytes`);
            return reply.data;
          } catch (e) {
            if (e instanceof PeerLostError) {
              await this.lossHandling;
              continue;
            }
            throw this.peerError(e);
          }
        }
      }
      return this.local.read(offset, length);
    }
  }

  private async isMapped(offset: number, length: number): Promise<boolean> {
    const [first, last] = regionsOf(offset, length, this.regionSize);
    if (this.link?.role === "target" && this.outOfSync.anyInRange(first, last)) return true;
    return this.local.isMapped(offset, length);
  }

  /** The local file's provisioning, except where this node still waits for resynced data. */
  private async allocationAt(offset: number): Promise<AllocationRun | undefined> {
    if (this.link?.role === "target") return undefined; // isMapped answers per block, conservatively
    return this.local.allocationAt?.(offset);
  }

  private async flush(): Promise<void> {
    for (;;) {
      const m = await this.decidedMode();
      if (m === "refuse") throw this.unavailable();
      const link = this.link;
      if (m === "alone" || !link) {
        await this.local.flush();
        return;
      }
      try {
        await Promise.all([this.local.flush(), link.conn.request("flush", {})]);
        return;
      } catch (e) {
        if (!(e instanceof PeerLostError)) throw this.peerError(e);
        await this.lossHandling;
        if (this.alone) {
          await this.local.flush();
          return;
        }
      }
    }
  }

  private peerError(e: unknown): Error {
    if (e instanceof PeerRequestError && e.unavailable)
      return new DeviceUnavailableError(e.message, e.unavailable);
    return e instanceof Error ? e : new Error(String(e));
  }

  /** Writes and unmaps: routed by mode; retried after a link loss when they had not been applied here. */
  private async mutate(op: Mutation): Promise<void> {
    for (;;) {
      const now = this.mode();
      const m = now === "wait" ? await this.decidedMode() : now;
      if (m === "refuse") throw this.unavailable();
      const release = this.gate.tryEnter() ?? (await this.gate.enter());
      let lost = false;
      try {
        const mode = this.mode();
        if (mode === "sequencer") return await this.sequenced(op);
        if (mode === "alone") return await this.applyAlone(op);
        if (mode === "forwarder") {
          const conn = this.link!.conn;
          if (op.kind === "write")
            await conn.request("forwardWrite", { offset: op.offset, fua: op.fua }, op.data);
          else await conn.request("forwardUnmap", { offset: op.offset, length: op.length });
          return;
        }
        // The mode changed while entering the gate: decide again.
        continue;
      } catch (e) {
        if (!(e instanceof PeerLostError)) throw this.peerError(e);
        lost = true;
      } finally {
        release();
      }
      // A forwarded operation whose link broke may or may not have been applied by the
      // sequencer; applying it again (alone, or via a new link) is idempotent.
      if (lost) await this.lossHandling;
    }
  }

  private async compareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    if (expected.length !== data.length) {
      throw new Error(`compareAndWrite: expected ${expected.length} bytes and data ${data.length} differ`);
    }
    for (;;) {
      const m = await this.decidedMode();
      if (m === "refuse") throw this.unavailable();
      const release = await this.gate.enter();
      let lost = false;
      try {
        const mode = this.mode();
        if (mode === "sequencer") return await this.sequencedCompareAndWrite(offset, expected, data);
        if (mode === "alone") return await this.compareAndWriteAlone(offset, expected, data);
        if (mode === "forwarder") {
          const reply = await this.link!.conn.request(
            "forwardCompareAndWrite",
            { offset },
            Buffer.concat([expected, data]),
          );
          return reply.body.result ?? -1;
        }
        continue;
      } catch (e) {
        if (!(e instanceof PeerLostError)) throw this.peerError(e);
        lost = true;
      } finally {
        release();
      }
      // Whether the sequencer applied it is unknown; comparing again here is the best answer left.
      if (lost) await this.lossHandling;
    }
  }

  // ---------------------------------------------------------------- sequencer paths

  /**
   * Runs a mutation of regions [first, last] with their activity extent marked active and its
   * bits durable in the dirty bitmap: a link loss or crash during it leaves them to be resynced.
   */
  private async inActiveExtent<T>(first: number, last: number, fn: () => Promise<T>): Promise<T> {
    const [ef, el] = this.hot.bounds(first, last);
    this.hot.enter(ef, el);
    try {
      if (!this.store.isDurable(ef, el)) await this.store.markDurable(ef, el);
      return await fn();
    } finally {
      this.hot.leave(ef, el);
    }
  }

  /** Applies a mutation here and on the partner; resolves when both hold it. */
  private async sequenced(op: Mutation): Promise<void> {
    const length = op.kind === "write" ? op.data.length : op.length;
    const [first, last] = regionsOf(op.offset, length, this.regionSize);
    const unlock =
      this.rangeLock.tryAcquire(op.offset, length) ?? (await this.rangeLock.acquire(op.offset, length));
    try {
      await this.inActiveExtent(first, last, () => this.mirror(op, first, last));
    } finally {
      unlock();
    }
  }

  private async mirror(op: Mutation, first: number, last: number): Promise<void> {
    const conn = this.link?.conn;
    const remote = !conn
      ? Promise.reject(new PeerLostError("no link"))
      : op.kind === "write"
        ? conn.request("write", { offset: op.offset, fua: op.fua }, op.data)
        : conn.request("unmap", { offset: op.offset, length: op.length });
    // Let the request leave first: both copies are then written at the same time. (The
    // outcome is read below; the handler keeps an early failure from counting as unhandled.)
    remote.catch(() => undefined);
    if (conn) await conn.sent();
    const here =
      op.kind === "write"
        ? this.local.write(op.offset, op.data, { fua: op.fua })
        : this.local.unmap(op.offset, op.length);
    here.catch(() => undefined);
    let remoteError: unknown;
    try {
      await remote;
    } catch (e) {
      remoteError = e ?? new Error("partner refused the write");
    }
    await here; // a local failure is this write's answer, whatever the partner did
    if (remoteError === undefined) {
      this.stats.mirroredWrites++;
      return;
    }
    if (!(remoteError instanceof PeerLostError)) {
      // The partner could not apply it (its disk failed): it no longer holds a full copy.
      conn?.close(`partner failed a mirrored write: ${(remoteError as Error).message}`);
    }
    // Applied here, maybe not there: the region is out of sync (its bit is already durable).
    this.outOfSync.setRange(first, last);
    await this.lossHandling;
    if (!this.alone) throw this.unavailable();
  }

  private async sequencedCompareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const [first, last] = regionsOf(offset, data.length, this.regionSize);
    const unlock = await this.rangeLock.acquire(offset, data.length);
    try {
      const current = await this.local.read(offset, expected.length);
      const mismatch = firstMismatch(current, expected);
      if (mismatch >= 0) return mismatch;
      const write: Mutation = { kind: "write", offset, data, fua: false };
      await this.inActiveExtent(first, last, () => this.mirror(write, first, last));
      return -1;
    } finally {
      unlock();
    }
  }

  private async applyAlone(op: Mutation): Promise<void> {
    const length = op.kind === "write" ? op.data.length : op.length;
    const [first, last] = regionsOf(op.offset, length, this.regionSize);
    // Only the regions written are out of sync; the rest of the extent is durable ahead of use.
    this.outOfSync.setRange(first, last);
    await this.inActiveExtent(first, last, () =>
      op.kind === "write"
        ? this.local.write(op.offset, op.data, { fua: op.fua })
        : this.local.unmap(op.offset, op.length),
    );
  }

  private async compareAndWriteAlone(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const unlock = await this.rangeLock.acquire(offset, data.length);
    try {
      const current = await this.local.read(offset, expected.length);
      const mismatch = firstMismatch(current, expected);
      if (mismatch >= 0) return mismatch;
      await this.applyAlone({ kind: "write", offset, data, fua: false });
      return -1;
    } finally {
      unlock();
    }
  }

  // ---------------------------------------------------------------- peer messages

  private onConnection(c: PeerConnection): void {
    if (this.closed) {
      c.close("shutting down");
      return;
    }
    const old = this.conn;
    if (old) this.detach("replaced by a new connection from the partner");
    this.conn = c;
    this.deciding = true;
    const mailbox = new HandshakeMailbox();
    c.onClosed = (reason) => this.onConnectionClosed(c, reason);
    c.setHandler((m) => this.onPeerMessage(c, m, mailbox));
    // The old connection's loss needs no witness: the partner is back.
    old?.close("replaced by a new connection from the partner");
    this.notifyChange();
    void this.handshake(c, mailbox).catch((e: Error) => {
      this.log.error({ err: e.message }, "handshake with the partner failed");
      c.close(`handshake failed: ${e.message}`);
    });
  }

  private onConnectionClosed(c: PeerConnection, reason: string): void {
    this.peerLink.connectionEnded(c);
    if (this.conn !== c) return;
    this.detach(reason);
    if (this.closed) return;
    this.deciding = true;
    this.lossHandling = this.handleLoss(`partner lost: ${reason}`);
  }

  /** Forgets the current connection and link. */
  private detach(reason: string): void {
    const hadLink = this.link !== null;
    this.lostAt = Date.now();
    this.conn = null;
    this.link = null;
    this.resync = null;
    // Regions with mirrored writes in flight may now differ; their bits are durable already.
    for (const r of this.hot.allRegions()) this.outOfSync.set(r);
    this.hot.clear();
    this.log.warn({ reason, hadLink }, "partner link lost");
  }

  private onPeerMessage(c: PeerConnection, m: Message, mailbox: HandshakeMailbox): void {
    switch (m.type) {
      case "syncState":
      case "syncReady":
        mailbox.put(m);
        return;
      case "discardRequest":
        void this.resolveSplitBrain(m.body.discard).catch((e: Error) =>
          this.log.warn({ err: e.message }, "cannot discard on the partner's request"),
        );
        return;
      case "unitState":
        this.onUnitStateMessage(c, m);
        return;
    }
    const link = this.link;
    if (!link || link.conn !== c) {
      c.close(`${m.type} before the handshake finished`);
      return;
    }
    const fail = (e: unknown) => {
      const err = e as Error;
      const unavailable = e instanceof DeviceUnavailableError ? e.kind : undefined;
      c.reply(m.id, { ok: false, error: err.message, ...(unavailable ? { unavailable } : {}) });
    };
    const ok = () => c.reply(m.id, { ok: true });
    switch (m.type) {
      case "flush":
        this.local.flush().then(ok, fail);
        return;
      case "write":
      case "unmap":
        if (link.sequencer === this.node) {
          c.close(`${m.type} sent to the sequencer`);
          return;
        }
        if (!this.inRange(m.body.offset, m.type === "write" ? m.data.length : m.body.length)) {
          c.close(`${m.type} outside the device`);
          return;
        }
        if (m.type === "write")
          this.local
            .write(m.body.offset, m.data, { fua: m.body.fua })
            .then(ok, fail)
            .finally(() => c.releaseData(m.data));
        else this.local.unmap(m.body.offset, m.body.length).then(ok, fail);
        return;
      case "forwardWrite":
      case "forwardUnmap":
      case "forwardCompareAndWrite":
        if (link.sequencer !== this.node) {
          c.close(`${m.type} sent to the node that is not the sequencer`);
          return;
        }
        // Once answered, the partner holds the data too: the sequencer's copy of it was sent.
        this.serveForwarded(m)
          .then((result) => c.reply(m.id, { ok: true, result }), fail)
          .finally(() => c.releaseData(m.data));
        return;
      case "read":
        if (!this.inRange(m.body.offset, m.body.length)) {
          c.close("read outside the device");
          return;
        }
        this.local.read(m.body.offset, m.body.length).then((data) => c.reply(m.id, { ok: true }, data), fail);
        return;
      case "resyncChunk":
        this.receiveChunk(link, m)
          .then(ok, fail)
          .finally(() => c.releaseData(m.data));
        return;
      case "resyncDone":
        this.finishAsTarget(link, m.body.current).then(ok, fail);
        return;
      default:
        c.close(`unexpected ${m.type}`);
    }
  }

  private onUnitStateMessage(c: PeerConnection, m: MessageOf<"unitState">): void {
    const fail = (e: unknown) =>
      c.reply(m.id, { ok: false, error: (e as Error).message }, undefined, Priority.control);
    if (m.body.op === "state") {
      const parsed = UnitStateBroadcastSchema.safeParse(m.body.body);
      if (!parsed.success) {
        c.close(`invalid unit state from the partner: ${parsed.error.message}`);
        return;
      }
      this.units
        .replace(parsed.data.state, parsed.data.unitAttentions)
        .then(() => c.reply(m.id, { ok: true }, undefined, Priority.control), fail);
      return;
    }
    const op = UnitOpSchema.safeParse(m.body.body);
    if (!op.success) {
      c.close(`invalid unit operation from the partner: ${op.error.message}`);
      return;
    }
    this.serveUnitOp(op.data).then(
      (result) => c.reply(m.id, { ok: true }, Buffer.from(JSON.stringify(result)), Priority.control),
      fail,
    );
  }

  private async serveUnitOp(op: UnitOp): Promise<UnitOpResult> {
    const release = await this.gate.enter();
    try {
      if (this.mode() !== "sequencer")
        throw new DeviceUnavailableError("no longer the sequencer", "transitioning");
      return await this.units.applyHere(op, (s, uas) => this.publishUnitState(s, uas));
    } finally {
      release();
    }
  }

  /** Runs a reservation operation in the pair's single order. */
  private async applyUnitOp(op: UnitOp): Promise<UnitOpResult> {
    for (;;) {
      const m = await this.decidedMode();
      if (m === "refuse") throw this.unavailable();
      const release = await this.gate.enter();
      let lost = false;
      try {
        const mode = this.mode();
        if (mode === "alone") return await this.units.applyHere(op, async () => undefined);
        if (mode === "sequencer")
          return await this.units.applyHere(op, (s, uas) => this.publishUnitState(s, uas));
        if (mode === "forwarder") {
          const reply = await this.link!.conn.request(
            "unitState",
            { op: "apply", body: op },
            undefined,
            Priority.control,
          );
          return UnitOpResultSchema.parse(JSON.parse(reply.data.toString("utf8")));
        }
        continue;
      } catch (e) {
        if (!(e instanceof PeerLostError)) throw this.peerError(e);
        lost = true;
      } finally {
        release();
      }
      if (lost) await this.lossHandling;
    }
  }

  /** Sends the sequencer's new unit state to the partner; resolves once the partner holds it. */
  private async publishUnitState(state: UnitState, unitAttentions: UnitAttention[]): Promise<void> {
    const conn = this.link?.conn;
    try {
      if (!conn) throw new PeerLostError("no link");
      await conn.request(
        "unitState",
        { op: "state", body: { state, unitAttentions } },
        undefined,
        Priority.control,
      );
    } catch (e) {
      if (!(e instanceof PeerLostError)) throw this.peerError(e);
      await this.lossHandling;
      if (!this.alone) throw this.unavailable();
    }
  }

  private inRange(offset: number, length: number): boolean {
    return offset + length <= this.local.sizeBytes;
  }

  private async serveForwarded(
    m: MessageOf<"forwardWrite"> | MessageOf<"forwardUnmap"> | MessageOf<"forwardCompareAndWrite">,
  ): Promise<number> {
    const release = await this.gate.enter();
    try {
      if (this.mode() !== "sequencer")
        throw new DeviceUnavailableError("no longer the sequencer", "transitioning");
      if (m.type === "forwardWrite") {
        if (!this.inRange(m.body.offset, m.data.length)) throw new Error("write outside the device");
        await this.sequenced({ kind: "write", offset: m.body.offset, data: m.data, fua: m.body.fua });
        return 0;
      }
      if (m.type === "forwardUnmap") {
        if (!this.inRange(m.body.offset, m.body.length)) throw new Error("unmap outside the device");
        await this.sequenced({ kind: "unmap", offset: m.body.offset, length: m.body.length });
        return 0;
      }
      const half = m.data.length / 2;
      if (!Number.isInteger(half) || half === 0 || !this.inRange(m.body.offset, half)) {
        throw new Error("malformed compare and write");
      }
      return await this.sequencedCompareAndWrite(
        m.body.offset,
        m.data.subarray(0, half),
        m.data.subarray(half),
      );
    } finally {
      release();
    }
  }

  // ---------------------------------------------------------------- handshake

  private async handshake(c: PeerConnection, mailbox: HandshakeMailbox): Promise<void> {
    await this.lossHandling;
    if (this.conn !== c) return;
    this.cancelWitnessRetry();
    await this.gate.exclusive(async () => {
      if (this.conn !== c) return;
      const view = {
        current: this.gen.current,
        bitmapUuid: this.gen.bitmapUuid,
        history: this.gen.history,
        consistent: this.gen.consistent,
        syncSource: this.gen.syncSource,
        initialized: this.gen.initialized,
      };
      c.send(
        "syncState",
        {
          generation: view,
          regionSize: this.regionSize,
          sizeBytes: this.local.sizeBytes,
          splitBrainDiscard: false,
        },
        Buffer.from(this.outOfSync.bytes),
      );
      const theirs = await mailbox.take("syncState", 15_000, c);
      if (theirs.body.regionSize !== this.regionSize || theirs.body.sizeBytes !== this.local.sizeBytes) {
        const why = `partner uses ${theirs.body.sizeBytes}-byte LUN with ${theirs.body.regionSize}-byte regions, this node ${this.local.sizeBytes} with ${this.regionSize}`;
        this.log.error(why);
        throw new Error(why);
      }
      if (theirs.data.length !== this.outOfSync.bytes.length)
        throw new Error("partner's bitmap has the wrong size");
      const peerGen = theirs.body.generation;
      const [a, b] = this.node === "a" ? [view, peerGen] : [peerGen, view];
      const decision = decideSync(a, b);
      this.log.info(
        {
          decision,
          mine: view,
          partner: peerGen,
          partnerDirtyRegions: new DirtyBitmap(this.regions, theirs.data).count(),
        },
        "handshake: sync decision",
      );
      await this.applyDecision(
        c,
        decision,
        peerGen.current,
        theirs.data,
        a.bitmapUuid !== null && a.bitmapUuid === b.bitmapUuid,
      );
      // The sequencer's reservations are the pair's from now on.
      if (this.link?.sequencer === this.node) await this.publishUnitState(this.units.get(), []);
      c.send("syncReady", {});
      await mailbox.take("syncReady", 15_000, c);
    });
    if (this.conn !== c) return;
    this.deciding = false;
    this.notifyChange();
    if (this.link?.role === "source") void this.runResync(this.link);
    if (this.state === "Working") void this.confirmPair();
  }

  private async applyDecision(
    c: PeerConnection,
    d: SyncDecision,
    peerCurrent: string,
    peerBits: Buffer,
    commonAncestor: boolean,
  ): Promise<void> {
    if (d.kind === "split-brain") {
      this.splitBrain = { reason: d.reason, peerCurrent, commonAncestor };
      this.log.error({ reason: d.reason }, "split brain: no data is copied until it is resolved");
      this.setState(
        "SplitBrain",
        `split brain: ${d.reason}; resolve with POST /split-brain/resolve {"discard":"a"|"b"}${this.alone ? "; still serving alone" : ""}`,
      );
      return;
    }
    this.splitBrain = null;
    if (d.kind === "adopt" && this.node === "b") {
      this.gen = { ...this.gen, current: peerCurrent };
    }
    if (!this.gen.initialized) this.gen = { ...this.gen, initialized: true };
    const source: NodeName = d.kind === "adopt" ? "a" : d.source;
    this.outOfSync.merge(peerBits);
    if (d.kind === "resync" && d.full) this.outOfSync.setAll();
    await this.store.markAllDurable(this.outOfSync);
    const sameData = this.outOfSync.isEmpty() && (d.kind === "adopt" || this.gen.current === peerCurrent);
    this.alone = false;
    if (sameData) {
      this.gen = inSyncWith(this.gen, d.kind === "adopt" ? this.gen.current : peerCurrent);
      await saveGeneration(this.o.metaDir, this.gen);
      this.link = { conn: c, sequencer: source, role: "none" };
      this.setState("Working", `in sync with the partner; node ${source} sequences writes`);
      return;
    }
    if (source === this.node) {
      await saveGeneration(this.o.metaDir, this.gen);
      this.link = { conn: c, sequencer: this.node, role: "source" };
      this.startResyncProgress();
      this.setState(
        "Synchronizing",
        `sending ${this.outOfSync.count()} regions to the partner (${d.reason})`,
      );
    } else {
      // From now on this copy is a mix of old and new regions until the resync finishes.
      this.gen = asResyncTarget(this.gen, peerCurrent);
      await saveGeneration(this.o.metaDir, this.gen);
      this.link = { conn: c, sequencer: source, role: "target" };
      this.startResyncProgress();
      this.setState("Pending", `receiving ${this.outOfSync.count()} regions from the partner (${d.reason})`);
    }
  }

  private startResyncProgress(): void {
    const total = this.outOfSync.count() * this.regionSize;
    this.resync = { doneBytes: 0, totalBytes: Math.min(total, this.local.sizeBytes), startedAt: Date.now() };
  }

  // ---------------------------------------------------------------- resync

  private async runResync(link: Link): Promise<void> {
    try {
      const done = await sendOutOfSyncRegions({
        regionSize: this.regionSize,
        sizeBytes: this.local.sizeBytes,
        local: this.local,
        outOfSync: this.outOfSync,
        store: this.store,
        rangeLock: this.rangeLock,
        bucket: this.bucket,
        isHot: (r) => this.hot.has(r),
        active: () => this.link === link,
        send: async (offset, data) => {
          await link.conn.request("resyncChunk", { offset }, data, Priority.resync);
        },
        copied: (bytes) => {
          this.stats.resyncedBytes += bytes;
          if (this.resync) this.resync.doneBytes += bytes;
        },
      });
      if (!done) return;
      await link.conn.request("resyncDone", { current: this.gen.current }, undefined, Priority.control);
      if (this.link !== link) return;
      this.gen = afterResyncAsSource(this.gen);
      await saveGeneration(this.o.metaDir, this.gen);
      link.role = "none";
      this.resync = null;
      this.setState("Working", `in sync with the partner; node ${this.node} sequences writes`);
      void this.confirmPair();
    } catch (e) {
      if (e instanceof PeerLostError) return;
      this.log.error({ err: (e as Error).message }, "resync failed; dropping the link to start over");
      link.conn.close(`resync failed: ${(e as Error).message}`);
    }
  }

  private async receiveChunk(link: Link, m: MessageOf<"resyncChunk">): Promise<void> {
    if (link.role !== "target") throw new Error("resync chunk sent to a node that is not a resync target");
    const bytes = await this.receiver.receive(m.body.offset, m.data);
    this.stats.resyncedBytes += bytes;
    if (this.resync) this.resync.doneBytes += bytes;
  }

  private async finishAsTarget(link: Link, current: string): Promise<void> {
    if (link.role !== "target") throw new Error("resync done sent to a node that is not a resync target");
    if (!this.outOfSync.isEmpty()) throw new Error("resync done while regions are still missing");
    await this.local.flush();
    this.gen = afterResyncAsTarget(this.gen, current);
    await saveGeneration(this.o.metaDir, this.gen);
    this.store.image.clearAll();
    await this.store.flush();
    link.role = "none";
    this.resync = null;
    this.setState("Working", `in sync with the partner; node ${link.sequencer} sequences writes`);
  }

  // ---------------------------------------------------------------- partner loss and the witness

  private async handleLoss(reason: string): Promise<void> {
    if (this.closed || this.conn) return;
    this.deciding = true;
    if (this.splitBrain && this.alone) {
      this.deciding = false;
      this.setState("SplitBrain", `${reason}; split brain unresolved; serving alone`);
      return;
    }
    if (!this.gen.consistent) {
      this.alone = false;
      this.deciding = false;
      this.setState(
        "Pending",
        `${reason}; this copy is incomplete (resync interrupted), waiting for the partner`,
      );
      return;
    }
    if (this.alone) {
      this.deciding = false;
      this.setState("Failed", `${reason}; serving alone (witness held)`);
      return;
    }
    this.setState("Failed", `${reason}; asking the witness`);
    const won = await this.claimWitness();
    if (this.conn) return; // the partner came back meanwhile; the handshake decides
    this.alone = won;
    this.deciding = false;
    if (won) this.setState("Failed", `${reason}; serving alone (witness held), recording changed regions`);
    else {
      this.setState("Failed", `${reason}; the witness went to the partner or is unreachable; not serving`);
      this.scheduleWitnessRetry();
    }
  }

  private async claimWitness(): Promise<boolean> {
    const until = Date.now() + this.witnessTimeoutMs;
    for (;;) {
      // In sync with the partner until now: writing alone starts a new generation.
      const rotate = wantsNewGeneration(this.gen);
      const next = rotate ? newGenerationId() : this.gen.current;
      try {
        const won = await this.o.witness.tryAcquire({
          node: this.node,
          current: this.gen.current,
          next,
          consistent: this.gen.consistent,
          initialized: this.gen.initialized,
        });
        if (!won) {
          this.log.warn(
            { generation: this.gen.current },
            "witness refused: the partner holds it or holds newer data",
          );
          return false;
        }
        if (rotate || !this.gen.initialized) {
          this.gen = goingAlone(this.gen, next);
          await saveGeneration(this.o.metaDir, this.gen);
        }
        this.log.warn(
          { generation: this.gen.current, since: this.gen.bitmapUuid },
          "witness won: serving alone",
        );
        return true;
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, "witness unreachable");
        if (Date.now() > until || this.conn || this.closed) return false;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private scheduleWitnessRetry(): void {
    if (this.witnessRetry || this.closed) return;
    this.witnessRetry = setTimeout(() => {
      this.witnessRetry = null;
      if (this.conn || this.alone || this.closed || !this.gen.consistent) return;
      this.lossHandling = this.lossHandling.then(() => this.handleLoss("partner still lost"));
    }, 2000);
  }

  private cancelWitnessRetry(): void {
    if (this.witnessRetry) clearTimeout(this.witnessRetry);
    this.witnessRetry = null;
  }

  private async confirmPair(): Promise<void> {
    if (this.state !== "Working" || !this.link) return;
    try {
      const ok = await this.o.witness.confirmPair(this.gen.current);
      // Both nodes confirm; losing a race against the partner's identical confirmation is fine.
      const held = ok ? null : await this.o.witness.holder();
      if (held && (held.holder !== null || held.generation !== this.gen.current)) {
        this.log.warn(
          { generation: this.gen.current, witness: held },
          "witness refused the pair confirmation (it moved on)",
        );
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "witness unreachable for the pair confirmation");
    }
  }

  // ---------------------------------------------------------------- periodic work

  private lastConfirm = 0;

  private housekeeping(): void {
    if (this.closed) return;
    const now = Date.now();
    if ((this.link && (this.state === "Working" || this.state === "Synchronizing")) || this.alone) {
      for (const r of this.hot.takeIdle(now, HOT_IDLE_MS)) {
        if (!this.outOfSync.test(r)) this.store.clearLazy(r);
      }
    }
    if (this.state === "Working" && now - this.lastConfirm > this.confirmIntervalMs) {
      this.lastConfirm = now;
      void this.confirmPair();
    }
    this.store
      .flush()
      .catch((e: Error) => this.log.error({ err: e.message }, "cannot persist the dirty bitmap"));
  }

  // ---------------------------------------------------------------- administration

  status(): ReplicationStatus {
    const c = this.conn;
    const r = this.resync;
    let resync: ReplicationStatus["resync"] = null;
    if (r) {
      const secs = (Date.now() - r.startedAt) / 1000;
      const rate = secs > 0.5 ? r.doneBytes / secs : 0;
      const left = Math.max(0, r.totalBytes - r.doneBytes);
      resync = {
        doneBytes: Math.min(r.doneBytes, r.totalBytes),
        totalBytes: r.totalBytes,
        bytesPerSecond: Math.round(rate),
        etaSeconds: rate > 0 ? Math.round(left / rate) : null,
      };
    }
    const m = this.mode();
    const authError = this.peerLink.authError();
    return {
      node: this.node,
      state: this.state,
      peer: {
        address: `${this.o.peer.host}:${this.o.peer.port}`,
        connected: c !== null && !c.closed,
        lastHeardMs: c ? c.lastHeardMs : null,
        authError,
      },
      generation: this.gen.current,
      outOfSyncBytes: Math.min(this.outOfSync.count() * this.regionSize, this.local.sizeBytes),
      resync,
      serving: m === "sequencer" || m === "forwarder" || m === "alone",
      stats: { ...this.stats },
      message: withAuthFailure(
        this.lostAt !== null && !c
          ? `${this.message} (partner lost ${Math.round((Date.now() - this.lostAt) / 1000)}s ago)`
          : this.message,
        authError,
      ),
    };
  }

  onStateChange(fn: (state: NodeState, previous: NodeState, message: string) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  unitState(): UnitStateStore {
    return this.units;
  }

  portGroups(): PortGroupInfo[] {
    const s = this.alua();
    const seq = this.link?.sequencer ?? (this.alone ? this.node : null);
    return [
      { id: 1, state: s.a, preferred: seq === "a", relativePorts: [1] },
      { id: 2, state: s.b, preferred: seq === "b", relativePorts: [2] },
    ];
  }

  alua(): { a: AluaState; b: AluaState } {
    const mine = this.myAlua();
    const theirs: AluaState = this.link
      ? this.link.sequencer === this.peerNode
        ? "active/optimized"
        : "active/non-optimized"
      : "unavailable";
    return this.node === "a" ? { a: mine, b: theirs } : { a: theirs, b: mine };
  }

  private myAlua(): AluaState {
    switch (this.mode()) {
      case "sequencer":
      case "alone":
        return "active/optimized";
      case "forwarder":
        return "active/non-optimized";
      case "wait":
        return "transitioning";
      default:
        return "unavailable";
    }
  }

  async resolveSplitBrain(discard: NodeName): Promise<string> {
    const sb = this.splitBrain;
    if (!sb || this.state !== "SplitBrain") {
      throw new Error(`node ${this.node} is ${this.state}, not in split brain; nothing to resolve`);
    }
    if (discard !== this.node) {
      const c = this.conn;
      if (!c) throw new Error(`node ${discard} is not connected; ask it directly`);
      c.send("discardRequest", { discard });
      return `asked node ${discard} to discard its changes and resync from node ${this.node}`;
    }
    // Keep the bitmap (it marks what this node changed since the common ancestor); with no
    // common ancestor every region must be copied.
    if (!sb.commonAncestor) this.outOfSync.setAll();
    await this.store.markAllDurable(this.outOfSync);
    this.gen = asResyncTarget(this.gen, sb.peerCurrent);
    await saveGeneration(this.o.metaDir, this.gen);
    this.alone = false;
    this.splitBrain = null;
    this.log.warn(
      { discard, resyncFrom: this.peerNode, full: !sb.commonAncestor },
      "split brain resolved: discarding this node's changes",
    );
    this.setState("Pending", `discarding this node's changes; resyncing from node ${this.peerNode}`);
    this.conn?.close("split brain resolved; reconnecting to resync");
    return `node ${this.node} discards its changes and resyncs from node ${this.peerNode}`;
  }

  listenAddress(): HostPort | null {
    return this.peerLink.address();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.cancelWitnessRetry();
    await this.peerLink.stop();
    this.notifyChange();
    await this.store.flush().catch(() => undefined);
    await this.store.close();
    await this.local.close();
  }
}

type Mutation =
  | { kind: "write"; offset: number; data: Buffer; fua: boolean }
  | { kind: "unmap"; offset: number; length: number };
