/**
 * Where reservation operations (the shared unit state) run: on the node that sequences writes,
 * in the same order, with the resulting state sent to the partner before the operation
 * resolves; alone, here. The partner's broadcasts replace this node's copy.
 */
import { z } from "zod";
import { DeviceUnavailableError } from "../store/block-device.js";
import {
  UnitAttentionSchema,
  UnitOpResultSchema,
  UnitOpSchema,
  UnitStateSchema,
  type UnitAttention,
  type UnitOp,
  type UnitOpResult,
  type UnitState,
} from "../scsi/unit-state.js";
import type { PairCore } from "./pair-core.js";
import { PeerLostError, Priority, type PeerConnection } from "./peer-connection.js";
import type { MessageOf } from "./protocol.js";

const UnitStateBroadcastSchema = z.object({
  state: UnitStateSchema,
  unitAttentions: z.array(UnitAttentionSchema),
});

export class UnitStateRouting {
  constructor(private readonly core: PairCore) {}

  /** Runs a reservation operation in the pair's single order. */
  apply(op: UnitOp): Promise<UnitOpResult> {
    const core = this.core;
    return core.routed(async (mode) => {
      if (mode === "alone") return core.units.applyHere(op, async () => undefined);
      if (mode === "sequencer") return core.units.applyHere(op, (s, uas) => this.publish(s, uas));
      const reply = await core.link!.conn.request(
        "unitState",
        { op: "apply", body: op },
        undefined,
        Priority.control,
      );
      return UnitOpResultSchema.parse(JSON.parse(reply.data.toString("utf8")));
    });
  }

  /** Sends the sequencer's new unit state to the partner; resolves once the partner holds it. */
  async publish(state: UnitState, unitAttentions: UnitAttention[]): Promise<void> {
    const core = this.core;
    const conn = core.link?.conn;
    try {
      if (!conn) throw new PeerLostError("no link");
      await conn.request(
        "unitState",
        { op: "state", body: { state, unitAttentions } },
        undefined,
        Priority.control,
      );
    } catch (e) {
      if (!core.isPeerLoss(e)) throw core.peerError(e);
      await core.lossHandling;
      if (core.mode() !== "alone") throw core.unavailable();
    }
  }

  /** A unitState message: an operation for this node to sequence, or the sequencer's new state. */
  onMessage(c: PeerConnection, m: MessageOf<"unitState">): void {
    const fail = (e: unknown) =>
      c.reply(m.id, { ok: false, error: (e as Error).message }, undefined, Priority.control);
    if (m.body.op === "state") {
      const parsed = UnitStateBroadcastSchema.safeParse(m.body.body);
      if (!parsed.success) {
        c.close(`invalid unit state from the partner: ${parsed.error.message}`);
        return;
      }
      this.core.units
        .replace(parsed.data.state, parsed.data.unitAttentions)
        .then(() => c.reply(m.id, { ok: true }, undefined, Priority.control), fail);
      return;
    }
    const op = UnitOpSchema.safeParse(m.body.body);
    if (!op.success) {
      c.close(`invalid unit operation from the partner: ${op.error.message}`);
      return;
    }
    this.serve(op.data).then(
      (result) => c.reply(m.id, { ok: true }, Buffer.from(JSON.stringify(result)), Priority.control),
      fail,
    );
  }

  private async serve(op: UnitOp): Promise<UnitOpResult> {
    const core = this.core;
    const release = await core.gate.enter();
    try {
      if (core.mode() !== "sequencer")
        throw new DeviceUnavailableError("no longer the sequencer", "transitioning");
      return await core.units.applyHere(op, (s, uas) => this.publish(s, uas));
    } finally {
      release();
    }
  }
}
