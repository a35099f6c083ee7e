/**
 * Connections from the partner: each authenticated connection replaces the previous one and is
 * handshaken: both nodes swap generation records, geometry and dirty bitmaps, plan the link
 * (link-plan.ts), persist the plan and only then let I/O use the link. A connection that ends
 * hands the node over to partner loss.
 */
import { DirtyBitmap } from "../store/dirty-bitmap.js";
import { HandshakeMailbox } from "./handshake-mailbox.js";
import { planLink, viewOf } from "./link-plan.js";
import type { LunGrowth } from "./lun-growth.js";
import type { PairCore } from "./pair-core.js";
import type { PartnerLoss } from "./partner-loss.js";
import type { PeerConnection } from "./peer-connection.js";
import { dispatchPeerMessage, type PeerMessageContext } from "./peer-messages.js";
import type { ResyncSession } from "./resync-session.js";
import type { UnitStateRouting } from "./unit-state-routing.js";

const HANDSHAKE_STEP_MS = 15_000;

export class Handshake {
  constructor(
    private readonly core: PairCore,
    private readonly loss: PartnerLoss,
    private readonly resync: ResyncSession,
    private readonly units: UnitStateRouting,
    private readonly growth: LunGrowth,
    private readonly messages: PeerMessageContext,
    /** tells the peer link that a connection ended (node a dials again) */
    private readonly connectionEnded: (c: PeerConnection) => void,
  ) {}

  /** A new authenticated connection from the partner. */
  onConnection(c: PeerConnection): void {
    const core = this.core;
    if (core.closed) {
      c.close("shutting down");
      return;
    }
    const old = core.conn;
    if (old) this.forgetLink("replaced by a new connection from the partner");
    core.machine.transition("Handshaking", "handshaking with the partner", {
      conn: c,
      wasAlone: core.mode() === "alone",
    });
    const mailbox = new HandshakeMailbox();
    c.onClosed = (reason) => this.onClosed(c, reason);
    c.onLeaseRenewed = () => core.machine.changed();
    c.setHandler((m) => dispatchPeerMessage(this.messages, c, m, mailbox));
    // The old connection's loss needs no witness: the partner is back.
    old?.close("replaced by a new connection from the partner");
    void this.run(c, mailbox).catch((e: Error) => {
      core.log.error({ err: e.message }, "handshake with the partner failed");
      c.close(`handshake failed: ${e.message}`);
    });
  }

  private onClosed(c: PeerConnection, reason: string): void {
    const core = this.core;
    this.connectionEnded(c);
    if (core.conn !== c || core.closed) return;
    this.forgetLink(reason);
    core.lossHandling = this.loss.lost(`partner lost: ${reason}`, c);
  }

  /** The link is gone: regions with mutations in flight may now differ (their bits are durable already). */
  private forgetLink(reason: string): void {
    const core = this.core;
    const hadLink = core.link !== null;
    core.lostAt = Date.now();
    core.resyncProgress = null;
    for (const r of core.hot.allRegions()) core.outOfSync.set(r);
    core.hot.clear();
    core.log.warn({ reason, hadLink }, "partner link lost");
  }

  private async run(c: PeerConnection, mailbox: HandshakeMailbox): Promise<void> {
    const core = this.core;
    await core.lossHandling;
    if (core.conn !== c) return;
    this.loss.cancelRetry();
    await core.gate.exclusive(async () => {
      if (core.conn !== c) return;
      const wasAlone = core.machine.record.wasAlone;
      const mine = {
        regionSize: core.regionSize,
        sizeBytes: core.sizeBytes,
        bits: Uint8Array.from(core.outOfSync.bytes),
      };
      const keptRunning = core.linkedSinceStart;
      c.send(
        "syncState",
        {
          generation: viewOf(core.gen),
          regionSize: mine.regionSize,
          sizeBytes: mine.sizeBytes,
          splitBrainDiscard: false,
          keptRunning,
        },
        Buffer.from(mine.bits),
      );
      const theirs = await mailbox.take("syncState", HANDSHAKE_STEP_MS, c);
      if (core.conn !== c) return;
      if (theirs.body.regionSize === core.regionSize && theirs.body.sizeBytes > core.sizeBytes) {
        // The partner grew while this node was away (or a growth was cut short): this node grows
        // to the partner's size before it serves. The new space is zeros here; what the partner
        // wrote there is dirty in its bitmap and resyncs.
        core.log.info(
          { from: core.sizeBytes, to: theirs.body.sizeBytes },
          "handshake: growing the LUN to the partner's size",
        );
        await this.growth.growLocal(theirs.body.sizeBytes);
        if (core.conn !== c) return;
      }
      const plan = planLink({
        node: core.node,
        gen: core.gen,
        mine: { ...mine, sizeBytes: core.sizeBytes },
        theirs: {
          generation: theirs.body.generation,
          regionSize: theirs.body.regionSize,
          sizeBytes: theirs.body.sizeBytes,
          bits: theirs.data,
        },
        wasAlone,
        keptRunning: { mine: keptRunning, theirs: theirs.body.keptRunning },
      });
      if (plan.kind === "refuse") {
        core.log.error(plan.reason);
        throw new Error(plan.reason);
      }
      core.log.info(
        {
          decision: plan.decision,
          mine: viewOf(core.gen),
          partner: theirs.body.generation,
          partnerDirtyRegions: new DirtyBitmap(core.regions, theirs.data).count(),
        },
        "handshake: sync decision",
      );
      if (plan.kind === "split-brain") {
        core.log.error(
          { reason: plan.splitBrain.reason },
          "split brain: no data is copied until it is resolved",
        );
        core.machine.transition(plan.situation, plan.message, { splitBrain: plan.splitBrain });
      } else {
        core.outOfSync.merge(plan.bits);
        await core.store.markAllDurable(core.outOfSync);
        await core.setGeneration(plan.gen);
        if (plan.situation !== "Working") core.startResyncProgress();
        if (core.conn !== c) return;
        core.machine.transition(plan.situation, plan.message, {
          link: { conn: c, sequencer: plan.sequencer, role: plan.role },
        });
        core.linkedSinceStart = true;
        // The sequencer's reservations are the pair's from now on.
        if (plan.sequencer === core.node) await this.units.publish(core.units.get(), []);
      }
      c.send("syncReady", {});
      await mailbox.take("syncReady", HANDSHAKE_STEP_MS, c);
    });
    if (core.conn !== c) return;
    core.machine.changed();
    const link = core.link;
    if (link?.role === "source") void this.resync.runAsSource(link);
    if (core.machine.situation === "Working") void this.loss.confirmPair();
  }
}
