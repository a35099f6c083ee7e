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
 * cleared only once the region's data is durable on both nodes: for mirrored writes once the
 * region was idle for a while and both nodes flushed since (bitmap-settler.ts), for resync once
 * the receiver acknowledged the region after fsync (the sender flushed before it started). 256 KiB keeps the bitmap small (512 KiB for
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
 *
 * The parts: pair-state.ts (the situations and the one transition() with its table of legal
 * moves), pair-core.ts (what the parts share), pair-device.ts (the BlockDevice, routing by
 * mode), sequencer.ts (the single order of mutations), handshake.ts with link-plan.ts (the
 * handshake and its pure plan), peer-messages.ts (one handler per message type),
 * resync-session.ts (resync on either end), partner-loss.ts (loss and the witness) and
 * unit-state-routing.ts (reservations in the pair's order). This file wires them.
 */
import type { BlockDevice } from "../store/block-device.js";
import type { PairMetadataFiles } from "../store/metadata-files.js";
import { DirtyRegionStore, regionCount } from "../store/dirty-bitmap.js";
import { freshGeneration, loadGeneration } from "../store/pair-generation.js";
import type { NodeState, ReplicationStatus, VerifyStatus } from "../agent/status-schema.js";
import type { Logger } from "../log.js";
import type { UnitStateStore } from "../scsi/unit-state.js";
import type { AluaState, PortGroupInfo } from "../scsi/port-groups.js";
import { asResyncTarget } from "./generation-transitions.js";
import { BitmapSettler } from "./bitmap-settler.js";
import { Handshake } from "./handshake.js";
import { LunGrowth, type GrowthResult } from "./lun-growth.js";
import { PairCore } from "./pair-core.js";
import { pairDevice } from "./pair-device.js";
import { PairUnitStateStore } from "./pair-unit-state.js";
import { PartnerLoss } from "./partner-loss.js";
import type { LinkProtection } from "./protocol.js";
import { PeerLink, withAuthFailure, type HostPort, type PeerTls } from "./peer-link.js";
import { PeerSecrets } from "./peer-secrets.js";
import { ResyncSession } from "./resync-session.js";
import { Sequencer } from "./sequencer.js";
import { TokenBucket } from "./token-bucket.js";
import { UnitStateRouting } from "./unit-state-routing.js";
import { OnlineVerify, type VerifyRequest } from "./verify.js";
import { verifyRecordFile } from "./verify-record.js";
import type { NodeName, Witness } from "./witness.js";

export const DEFAULT_REGION_SIZE = 256 * 1024;

export interface PairNodeOptions {
  node: NodeName;
  local: BlockDevice;
  /** the generation record, dirty bitmap and unit state files, named after the LUN file (metadataFiles()) */
  metadata: PairMetadataFiles;
  peer: HostPort;
  listen: HostPort;
  secret: Buffer | string | PeerSecrets;
  tls?: PeerTls;
  /**
   * What this node asks of the peer link's records: "encrypted" (default) or "authenticated"
   * (not encrypted; used when both nodes ask for it, frame-seal.ts)
   */
  linkProtection?: LinkProtection;
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
  /** how long an acknowledged heartbeat lets a linked node serve reads (default: two thirds of peerTimeoutMs) */
  leaseMs?: number;
  /** period of the pair confirmation in the witness while Working (default 5000 ms) */
  confirmIntervalMs?: number;
}

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
  /**
   * Grows the pair's LUN to `sizeBytes` bytes on both nodes, in the order of the writes (or on
   * this node alone while it serves alone; the partner then grows when it returns). Idempotent;
   * a smaller size is refused (GrowthRefusedError). See lun-growth.ts.
   */
  grow(sizeBytes: number): Promise<GrowthResult>;
  /** Subscribes to this node's LUN growth (done and durable); returns the unsubscribe function. */
  onGrown(fn: (sizeBytes: number) => void): () => void;
  /**
   * Starts an online verify of both copies (here when this node sequences, else on the
   * sequencer); refused while one runs (VerifyRefusedError) or the pair is not Working
   * (DeviceUnavailableError). See verify.ts.
   */
  startVerify(req: VerifyRequest): Promise<VerifyStatus>;
  /** Bytes compared and mismatched regions found by this node since it started (metrics). */
  verifyTotals(): { bytesChecked: number; regionsMismatched: number };
  /** Resolves a split brain by discarding the changes of node `discard`. */
  resolveSplitBrain(discard: NodeName): Promise<string>;
  /** The peer link's listen address (node b), for tests that bind port 0. */
  listenAddress(): HostPort | null;
  close(): Promise<void>;
}

const HOT_IDLE_MS = 1500;

export async function startPairNode(options: PairNodeOptions): Promise<PairNode> {
  const node = new PairNodeImpl(options);
  await node.start();
  return node;
}

class PairNodeImpl implements PairNode {
  readonly node: NodeName;
  readonly device: BlockDevice;
  private readonly core: PairCore;
  private readonly seq: Sequencer;
  private readonly units: UnitStateRouting;
  private readonly loss: PartnerLoss;
  private readonly settler: BitmapSettler;
  private readonly growth: LunGrowth;
  private readonly verify: OnlineVerify;
  private resync!: ResyncSession;
  private handshake!: Handshake;
  private peerLink!: PeerLink;
  private readonly secret: PeerSecrets;
  private readonly heartbeatMs: number;
  private readonly peerTimeoutMs: number;
  private readonly confirmIntervalMs: number;
  private readonly bucket: TokenBucket | null;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastConfirm = 0;

  constructor(private readonly o: PairNodeOptions) {
    this.node = o.node;
    const regionSize = o.regionSize ?? DEFAULT_REGION_SIZE;
    if (!Number.isInteger(regionSize) || regionSize < 4096 || regionSize % 4096 !== 0) {
      throw new Error(`region size ${regionSize} must be a positive multiple of 4096`);
    }
    this.core = new PairCore({
      node: o.node,
      local: o.local,
      metadata: o.metadata,
      regionSize,
      regions: regionCount(o.local.sizeBytes, regionSize),
      logger: o.logger.child({ pairNode: o.node }),
    });
    this.core.aluaKey = () => this.alua();
    this.secret = PeerSecrets.of(o.secret);
    this.heartbeatMs = o.heartbeatMs ?? 500;
    this.peerTimeoutMs = o.peerTimeoutMs ?? 3000;
    this.confirmIntervalMs = o.confirmIntervalMs ?? 5000;
    this.bucket = o.resyncRateBytesPerSec
      ? new TokenBucket(o.resyncRateBytesPerSec, Math.max(regionSize, o.resyncRateBytesPerSec / 10))
      : null;
    this.seq = new Sequencer(this.core);
    this.settler = new BitmapSettler(this.core, HOT_IDLE_MS);
    this.units = new UnitStateRouting(this.core);
    this.growth = new LunGrowth(this.core);
    this.verify = new OnlineVerify(this.core, verifyRecordFile(o.metadata.generation));
    this.loss = new PartnerLoss(this.core, o.witness, {
      witnessTimeoutMs: o.witnessTimeoutMs ?? 5000,
      fenceMarginMs: Math.max(250, this.heartbeatMs),
    });
    this.device = pairDevice(this.core, this.seq, () => this.close());
  }

  async start(): Promise<void> {
    const core = this.core;
    const sizeBytes = core.sizeBytes;
    const loaded = await loadGeneration(this.o.metadata);
    if (loaded && loaded.regionSize !== core.regionSize) {
      throw new Error(
        `the pair metadata in ${this.o.metadata.generation} uses ${loaded.regionSize}-byte regions; start with that region size`,
      );
    }
    if (loaded && loaded.sizeBytes > sizeBytes) {
      throw new Error(`the pair metadata records a ${loaded.sizeBytes}-byte LUN, larger than ${sizeBytes}`);
    }
    await core.setGeneration(loaded ? { ...loaded, sizeBytes } : freshGeneration(core.regionSize, sizeBytes));
    core.store = await DirtyRegionStore.open(this.o.metadata, core.regions);
    core.outOfSync = core.store.image.clone();
    core.units = await PairUnitStateStore.open(this.o.metadata, core.log);
    core.units.route = { apply: (op) => this.units.apply(op) };
    await this.verify.load();
    core.log.info(
      {
        generation: core.gen.current,
        bitmapUuid: core.gen.bitmapUuid,
        consistent: core.gen.consistent,
        initialized: core.gen.initialized,
        dirtyRegions: core.outOfSync.count(),
        regionSize: core.regionSize,
      },
      loaded ? "pair metadata loaded" : "new pair metadata created",
    );
    this.resync = new ResyncSession(core, this.bucket, () => void this.loss.confirmPair());
    this.peerLink = new PeerLink({
      node: this.node,
      peer: this.o.peer,
      listen: this.o.listen,
      secret: this.secret,
      ...(this.o.tls ? { tls: this.o.tls } : {}),
      ...(this.o.linkProtection ? { protection: this.o.linkProtection } : {}),
      logger: core.log,
      heartbeatMs: this.heartbeatMs,
      timeoutMs: this.peerTimeoutMs,
      ...(this.o.leaseMs !== undefined ? { leaseMs: this.o.leaseMs } : {}),
      onConnection: (c) => this.handshake.onConnection(c),
    });
    this.handshake = new Handshake(
      core,
      this.loss,
      this.resync,
      this.units,
      this.growth,
      {
        core,
        seq: this.seq,
        units: this.units,
        resync: this.resync,
        growth: this.growth,
        verify: this.verify,
        resolveSplitBrain: (discard) => this.resolveSplitBrain(discard),
      },
      (c) => this.peerLink.connectionEnded(c),
    );
    await this.peerLink.start();
    // Wait a little for the partner before deciding to go on alone.
    this.timers.push(
      setTimeout(() => {
        if (!core.conn && !core.closed) {
          core.lossHandling = core.lossHandling.then(() =>
            this.loss.lost("partner not reachable at startup"),
          );
        }
      }, this.peerTimeoutMs),
    );
    this.timers.push(setInterval(() => this.housekeeping(), 1000));
  }

  // ---------------------------------------------------------------- periodic work

  private housekeeping(): void {
    const core = this.core;
    if (core.closed) return;
    const now = Date.now();
    const situation = core.machine.situation;
    const mode = core.mode();
    this.settler.tick(now);
    // A verify started, or saved before a restart or a lost link, walks while this node sequences.
    this.verify.resume();
    if (now - this.lastConfirm > this.confirmIntervalMs) {
      this.lastConfirm = now;
      if (situation === "Working") void this.loss.confirmPair();
      if (mode === "alone") void this.loss.renewAlone();
    }
    core.store
      .flush()
      .catch((e: Error) => core.log.error({ err: e.message }, "cannot persist the dirty bitmap"));
  }

  // ---------------------------------------------------------------- administration

  status(): ReplicationStatus {
    const core = this.core;
    const c = core.conn;
    const r = core.resyncProgress;
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
    const rec = core.machine.record;
    const authError = this.peerLink.authError();
    return {
      node: this.node,
      state: rec.nodeState,
      peer: {
        address: `${this.o.peer.host}:${this.o.peer.port}`,
        connected: c !== null && !c.closed,
        lastHeardMs: c ? c.lastHeardMs : null,
        authError,
        ...(c && !c.closed ? { records: c.protection, protocol: c.version } : {}),
      },
      generation: core.gen.current,
      outOfSyncBytes: Math.min(core.outOfSync.count() * core.regionSize, core.sizeBytes),
      resync,
      serving: core.serving(),
      alua: this.alua(),
      stats: { ...core.stats },
      message: withAuthFailure(
        core.lostAt !== null && !c
          ? `${rec.message} (partner lost ${Math.round((Date.now() - core.lostAt) / 1000)}s ago)`
          : rec.message,
        authError,
      ),
      verify: this.verify.status(),
    };
  }

  onStateChange(fn: (state: NodeState, previous: NodeState, message: string) => void): () => void {
    return this.core.machine.onChange(fn);
  }

  unitState(): UnitStateStore {
    return this.core.units;
  }

  grow(sizeBytes: number): Promise<GrowthResult> {
    return this.growth.grow(sizeBytes);
  }

  onGrown(fn: (sizeBytes: number) => void): () => void {
    return this.growth.onGrown(fn);
  }

  startVerify(req: VerifyRequest): Promise<VerifyStatus> {
    return this.verify.start(req);
  }

  verifyTotals(): { bytesChecked: number; regionsMismatched: number } {
    return { ...this.verify.totals };
  }

  portGroups(): PortGroupInfo[] {
    const s = this.alua();
    const core = this.core;
    const seq = core.link?.sequencer ?? (core.mode() === "alone" ? this.node : null);
    return [
      { id: 1, state: s.a, preferred: seq === "a", relativePorts: [1] },
      { id: 2, state: s.b, preferred: seq === "b", relativePorts: [2] },
    ];
  }

  alua(): { a: AluaState; b: AluaState } {
    const link = this.core.link;
    const mine = this.myAlua();
    const theirs: AluaState = link
      ? link.sequencer === this.core.peerNode
        ? "active/optimized"
        : "active/non-optimized"
      : "unavailable";
    return this.node === "a" ? { a: mine, b: theirs } : { a: theirs, b: mine };
  }

  private myAlua(): AluaState {
    const core = this.core;
    switch (core.mode()) {
      case "alone":
        return "active/optimized";
      case "sequencer":
        return core.leaseValid() ? "active/optimized" : "transitioning";
      case "forwarder":
        return core.leaseValid() ? "active/non-optimized" : "transitioning";
      case "wait":
        return "transitioning";
      default:
        return "unavailable";
    }
  }

  async resolveSplitBrain(discard: NodeName): Promise<string> {
    const core = this.core;
    const rec = core.machine.record;
    const sb = rec.splitBrain;
    if (!sb || rec.nodeState !== "SplitBrain") {
      throw new Error(`node ${this.node} is ${rec.nodeState}, not in split brain; nothing to resolve`);
    }
    if (discard !== this.node) {
      const c = core.conn;
      if (!c) throw new Error(`node ${discard} is not connected; ask it directly`);
      c.send("discardRequest", { discard });
      return `asked node ${discard} to discard its changes and resync from node ${this.node}`;
    }
    // Keep the bitmap (it marks what this node changed since the common ancestor); with no
    // common ancestor every region must be copied.
    if (!sb.commonAncestor) core.outOfSync.setAll();
    await core.store.markAllDurable(core.outOfSync);
    await core.setGeneration(asResyncTarget(core.gen, sb.peerCurrent));
    const conn = core.conn;
    core.lostAt = Date.now();
    core.log.warn(
      { discard, resyncFrom: core.peerNode, full: !sb.commonAncestor },
      "split brain resolved: discarding this node's changes",
    );
    core.machine.transition(
      "Incomplete",
      `discarding this node's changes; resyncing from node ${core.peerNode}`,
    );
    conn?.close("split brain resolved; reconnecting to resync");
    return `node ${this.node} discards its changes and resyncs from node ${core.peerNode}`;
  }

  listenAddress(): HostPort | null {
    return this.peerLink.address();
  }

  async close(): Promise<void> {
    const core = this.core;
    if (core.closed) return;
    core.machine.transition("Closed", "shut down");
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.loss.cancelRetry();
    await this.peerLink.stop();
    await core.store.flush().catch(() => undefined);
    await core.store.close();
    await core.local.close();
  }
}
