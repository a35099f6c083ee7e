/**
 * What a node does when its partner is gone (the link broke, or the partner never answered at
 * startup): decide at once whether it may keep serving, and if it must ask, ask the witness.
 * Only a node holding the witness serves alone; one that is refused retries now and then, and
 * an incomplete copy (an interrupted resync target) never asks. While Working, both nodes
 * confirm the pair to the witness now and then (witness.ts has the rules).
 */
import { goingAlone, wantsNewGeneration } from "./generation-transitions.js";
import { newGenerationId } from "../store/pair-generation.js";
import type { PairCore } from "./pair-core.js";
import type { Situation } from "./pair-state.js";
import type { PeerConnection } from "./peer-connection.js";
import type { Witness } from "./witness.js";

const WITNESS_RETRY_MS = 2000;

export class PartnerLoss {
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly core: PairCore,
    private readonly witness: Witness,
    /** how long a claim keeps trying an unreachable witness */
    private readonly witnessTimeoutMs: number,
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
        return this.claim(reason);
    }
  }

  private async claim(reason: string): Promise<void> {
    const core = this.core;
    const won = await this.claimWitness();
    // The partner came back meanwhile (the handshake decides), or the node shut down.
    if (core.machine.situation !== "Claiming") return;
    if (won) {
      core.machine.transition("Alone", `${reason}; serving alone (witness held), recording changed regions`);
      return;
    }
    core.machine.transition(
      "Refused",
      `${reason}; the witness went to the partner or is unreachable; not serving`,
    );
    this.scheduleRetry();
  }

  private async claimWitness(): Promise<boolean> {
    const core = this.core;
    const until = Date.now() + this.witnessTimeoutMs;
    for (;;) {
      // In sync with the partner until now: writing alone starts a new generation.
      const rotate = wantsNewGeneration(core.gen);
      const next = rotate ? newGenerationId() : core.gen.current;
      try {
        const won = await this.witness.tryAcquire({
          node: core.node,
          current: core.gen.current,
          next,
          consistent: core.gen.consistent,
          initialized: core.gen.initialized,
        });
        if (!won) {
          core.log.warn(
            { generation: core.gen.current },
            "witness refused: the partner holds it or holds newer data",
          );
          return false;
        }
        if (rotate || !core.gen.initialized) await core.setGeneration(goingAlone(core.gen, next));
        core.log.warn(
          { generation: core.gen.current, since: core.gen.bitmapUuid },
          "witness won: serving alone",
        );
        return true;
      } catch (e) {
        core.log.warn({ err: (e as Error).message }, "witness unreachable");
        if (Date.now() > until || core.conn || core.closed) return false;
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

  /** While Working: records in the witness that both nodes hold the current generation. */
  async confirmPair(): Promise<void> {
    const core = this.core;
    if (core.machine.situation !== "Working") return;
    try {
      const ok = await this.witness.confirmPair(core.gen.current);
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
}
