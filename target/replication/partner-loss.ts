/**
 * What a node does when its partner is gone (the link broke, or the partner never answered at
 * startup): decide at once whether it may keep serving, and if it must ask, ask the witness.
 * Only a node holding the witness serves alone; one that is refused retries now and then, and
 * an incomplete copy (an interrupted resync target) never asks. While Working, both nodes
 * confirm the pair to the witness now and then (witness.ts has the rules).
 */
import { performance } from "node:perf_hooks";
import { goingAlone, wantsNewGeneration } from "./generation-transitions.js";
import { newGenerationId } from "../store/pair-generation.js";
import type { PairCore } from "./pair-core.js";
import type { Situation } from "./pair-state.js";
import type { PeerConnection } from "./peer-connection.js";
import { claimRefusal, type Witness } from "./witness.js";

const WITNESS_RETRY_MS = 2000;

export class PartnerLoss {
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly core: PairCore,
    private readonly witness: Witness,
    private readonly o: {
      /** how long a claim keeps trying an unreachable witness */
      witnessTimeoutMs: number;
      /** added to the partner's lease before asking the witness (clock rates, scheduling) */
      fenceMarginMs: number;
    },
  ) {}

  /**
   * The situation a node goes to at once when its partner is lost: it keeps serving only if it
   * already held the witness; an incomplete copy waits for the partner; otherwise it asks.
   */
  private afterLoss(): Extract<Situation, "SplitBrainAlone" | "Incomplete" | "Alone" | "Claiming"> {
    const core = this.core;
    const wasAlone = core.mode() === "alone";
    if (wasAlone && core.machine.situation === "SplitBrainAlone") return "SplitBrainAlone";
    if (!core.gen.consistent) return "Incomplete";
    return wasAlone ? "Alone" : "Claiming";
  }

  /**
   * The partner is gone: moves to the situation decided at once (synchronously, so no I/O sees
   * the old link), then asks the witness when needed. Resolves when the node knows whether it serves.
   * `conn` is the connection that was lost (null: none was up); nothing happens when another one
   * has taken its place.
   */
  lost(reason: string, conn: PeerConnection | null = null): Promise<void> {
    const core = this.core;
    if (core.closed || core.conn !== conn) return Promise.resolve();
    const next = this.afterLoss();
    switch (next) {
      case "SplitBrainAlone":
        core.machine.transition(next, `${reason}; split brain unresolved; serving alone`);
        return Promise.resolve();
      case "Incomplete":
        core.machine.transition(
          next,
          `${reason}; this copy is incomplete (resync interrupted), waiting for the partner`,
        );
        return Promise.resolve();
      case "Alone":
        core.machine.transition(next, `${reason}; serving alone (witness held)`);
        return Promise.resolve();
      case "Claiming":
        core.machine.transition(next, `${reason}; asking the witness`);
        return this.claim(reason, conn?.partnerLeaseEndsBy() ?? 0);
    }
  }

  /**
   * Asks the witness once the partner can no longer serve reads: its read lease (granted by this
   * node's heartbeats, see peer-connection.ts) has run out by `fenceUntil`.
   */
  private async claim(reason: string, fenceUntil: number): Promise<void> {
    const core = this.core;
    const wait = fenceUntil + this.o.fenceMarginMs - performance.now();
    if (wait > 0) {
      core.machine.transition(
        "Claiming",
        `${reason}; waiting ${(wait / 1000).toFixed(1)} s until the partner has stopped serving, then asking the witness`,
      );
      await new Promise((r) => setTimeout(r, wait));
      if (core.machine.situation !== "Claiming") return;
      core.machine.transition("Claiming", `${reason}; asking the witness`);
    }
    const outcome = await this.claimWitness();
    // The partner came back meanwhile (the handshake decides), or the node shut down.
    if (core.machine.situation !== "Claiming") return;
    if (outcome.won) {
      core.machine.transition("Alone", `${reason}; serving alone (witness held), recording changed regions`);
      return;
    }
    core.machine.transition("Refused", `${reason}; not serving: ${outcome.why}`);
    this.scheduleRetry();
  }

  private async claimWitness(): Promise<{ won: true } | { won: false; why: string }> {
    const core = this.core;
    const until = Date.now() + this.o.witnessTimeoutMs;
    for (;;) {
      // In sync with the partner until now: writing alone starts a new generation.
      const rotate = wantsNewGeneration(core.gen);
      const next = rotate ? newGenerationId() : core.gen.current;
      const claim = {
        node: core.node,
        current: core.gen.current,
        next,
        consistent: core.gen.consistent,
        initialized: core.gen.initialized,
      };
      try {
        if (!(await this.witness.tryAcquire(claim))) {
          const record = await this.witness.holder().catch(() => undefined);
          const why =
            (record !== undefined ? claimRefusal(record, claim) : null) ?? "the partner took it meanwhile";
          core.log.warn({ generation: core.gen.current, witness: record, why }, "witness refused the claim");
          return { won: false, why: `the witness refused: ${why}` };
        }
        if (rotate || !core.gen.initialized) await core.setGeneration(goingAlone(core.gen, next));
        core.log.warn(
          { generation: core.gen.current, since: core.gen.bitmapUuid },
          "witness won: serving alone",
        );
        return { won: true };
      } catch (e) {
        core.log.warn({ err: (e as Error).message }, "witness unreachable");
        if (Date.now() > until || core.conn || core.closed)
          return { won: false, why: `the witness is unreachable: ${(e as Error).message}` };
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private scheduleRetry(): void {
    const core = this.core;
    if (this.retryTimer || core.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (core.machine.situation !== "Refused" || !core.gen.consistent) return;
      core.lossHandling = core.lossHandling.then(() => this.lost("partner still lost"));
    }, WITNESS_RETRY_MS);
  }

  cancelRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** While Working: records in the witness that this node holds the current generation with its partner. */
  async confirmPair(): Promise<void> {
    const core = this.core;
    if (core.machine.situation !== "Working") return;
    try {
      const ok = await this.witness.confirmPair(core.node, core.gen.current);
      // Both nodes confirm; losing a race against the partner's identical confirmation is fine.
      const held = ok ? null : await this.witness.holder();
      if (held && (held.holder !== null || held.generation !== core.gen.current)) {
        core.log.warn(
          { generation: core.gen.current, witness: held },
          "witness refused the pair confirmation (it moved on)",
        );
      }
    } catch (e) {
      core.log.warn({ err: (e as Error).message }, "witness unreachable for the pair confirmation");
    }
  }

  /**
   * While serving alone: keeps this node's record in the witness (it comes back if it was
   * deleted). A record that names someone else means this node must not serve: it stops.
   */
  async renewAlone(): Promise<void> {
    const core = this.core;
    const holding = () => core.machine.situation === "Alone" || core.machine.situation === "SplitBrainAlone";
    if (!holding()) return;
    try {
      const r = await this.witness.renewAlone(core.node, core.gen.current);
      if (r === "ok" || !holding()) return;
      const record = await this.witness.holder().catch(() => null);
      core.log.error(
        { witness: record },
        "the witness names another holder while this node serves alone; stopping",
      );
      const why = "the witness record names another holder; stopped serving";
      if (core.machine.situation === "SplitBrainAlone")
        core.machine.transition("SplitBrain", `split brain; ${why}`);
      else core.machine.transition("Refused", why);
    } catch (e) {
      core.log.warn(
        { err: (e as Error).message },
        "witness unreachable for the renewal of this node's record",
      );
    }
  }
}
