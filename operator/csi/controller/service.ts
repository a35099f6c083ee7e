import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { HASanTarget } from "../../api/target.js";
import { isConflict } from "../../kit/kube-client.js";
import { capabilitiesProblem } from "../capabilities.js";
import { CsiError, Code, aborted, invalidArgument, notFound } from "../errors.js";
import {
  ControllerExpandVolumeRequestSchema,
  CreateVolumeRequestSchema,
  DeleteVolumeRequestSchema,
  ListVolumesRequestSchema,
  ValidateVolumeCapabilitiesRequestSchema,
  parseRequest,
} from "../messages.js";
import type { CallContext, Handlers } from "../server.js";
import { capacityFor, capacityQuantity } from "./capacity.js";
import { page } from "./list.js";
import { parseVolumeId, requireVolumeId, targetNameFor, volumeIdOf, type VolumeRef } from "./naming.js";
import { PVC_NAMESPACE, parseParameters } from "./parameters.js";
import type { TargetStore } from "./targets.js";
import { VolumeLocks } from "../locks.js";
import {
  capacityBytesOf,
  checkExisting,
  csiVolumeOf,
  desiredTarget,
  isDriverVolume,
  madeWith,
  readinessOf,
  volumeContextOf,
  type VolumeRequest,
} from "./volume.js";

export interface ControllerOptions {
  /** Namespace of volumes whose request names no PVC namespace (callers without --extra-create-metadata). */
  defaultNamespace: string;
  /** Longest CreateVolume waits for a new pair to become ready before answering ABORTED. */
  createWaitMs: number;
  /** How often it looks while waiting. */
  pollMs: number;
}

/** Time kept back from the caller's deadline, so our own answer arrives before it gives up. */
const DEADLINE_MARGIN_MS = 1000;

export const CONTROLLER_CAPABILITIES = ["CREATE_DELETE_VOLUME", "LIST_VOLUMES", "EXPAND_VOLUME"] as const;

export class ControllerService {
  private readonly locks = new VolumeLocks();

  constructor(
    private readonly store: TargetStore,
    private readonly opts: ControllerOptions,
    private readonly log: Logger,
  ) {}

  handlers(): Handlers {
    return {
      CreateVolume: (r, ctx) => this.createVolume(r, ctx),
      DeleteVolume: (r) => this.deleteVolume(r),
      ControllerExpandVolume: (r) => this.expandVolume(r),
      ValidateVolumeCapabilities: (r) => this.validateVolumeCapabilities(r),
      ListVolumes: (r) => this.listVolumes(r),
      ControllerGetCapabilities: async () => ({
        capabilities: CONTROLLER_CAPABILITIES.map((type) => ({ rpc: { type } })),
      }),
    };
  }

  async createVolume(request: unknown, ctx: CallContext): Promise<object> {
    const r = parseRequest(CreateVolumeRequestSchema, request);
    const problem = capabilitiesProblem(r.volume_capabilities);
    if (problem) throw invalidArgument(problem);
    if (r.volume_content_source)
      throw invalidArgument("volume_content_source: cloning and snapshots are not supported by this driver");
    if (Object.keys(r.mutable_parameters).length)
      throw invalidArgument("mutable_parameters: VolumeAttributesClasses are not supported by this driver");
    const parameters = parseParameters(r.parameters);
    const want: VolumeRequest = {
      volumeName: r.name,
      targetName: targetNameFor(r.name),
      namespace: parameters[PVC_NAMESPACE] ?? this.opts.defaultNamespace,
      capacityBytes: capacityFor(r.capacity_range),
      parameters,
    };
    const ref: VolumeRef = { namespace: want.namespace, name: want.targetName };
    return await this.locks.run(volumeIdOf(ref), async () => {
      let t = await this.store.get(ref);
      if (t) {
        checkExisting(t, want, r.capacity_range);
      } else {
        try {
          t = await this.store.create(desiredTarget(want));
          this.log.info({ volume: volumeIdOf(ref), name: r.name }, "HASanTarget created");
        } catch (e) {
          if (!isConflict(e)) throw e;
          // Created by someone else in between: judge it like any existing one.
          t = await this.store.get(ref);
          if (!t) throw aborted(`HASanTarget ${volumeIdOf(ref)} appeared and vanished; retry`);
          checkExisting(t, want, r.capacity_range);
        }
      }
      const ready = await this.waitReady(t, ctx);
      return { volume: csiVolumeOf(ready) };
    });
  }

  /**
   * Waits, within the caller's deadline and createWaitMs, for the pair to be ready. When it is not,
   * the answer is ABORTED ("an operation on this volume is still in progress"): external-provisioner
   * treats ABORTED, like DEADLINE_EXCEEDED, as not final — it calls again with the same name, and
   * should the PVC go away meanwhile it still deletes the volume — while a final code would make it
   * forget a HASanTarget that exists. ABORTED rather than DEADLINE_EXCEEDED because our own wait,
   * not the caller's deadline, ended; the message says what the pair is waiting for.
   */
  private async waitReady(t: HASanTarget, ctx: CallContext): Promise<HASanTarget> {
    const until = Math.min(
      Date.now() + this.opts.createWaitMs,
      ctx.deadline === undefined ? Infinity : ctx.deadline - DEADLINE_MARGIN_MS,
    );
    const id = volumeIdOf(t.metadata);
    for (;;) {
      const r = readinessOf(t);
      if (r.ready) return t;
      if (Date.now() + this.opts.pollMs > until || ctx.signal.aborted)
        throw aborted(`HASanTarget ${id} is ${r.why}; CreateVolume will be retried`);
      await sleep(this.opts.pollMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      const next = await this.store.get(t.metadata);
      if (!next || next.metadata.uid !== t.metadata.uid || next.metadata.deletionTimestamp)
        throw aborted(`HASanTarget ${id} was deleted while its volume was being created`);
      t = next;
    }
  }

  async deleteVolume(request: unknown): Promise<object> {
    const r = parseRequest(DeleteVolumeRequestSchema, request);
    const ref = parseVolumeId(r.volume_id);
    // An id this driver never issued names no volume: deleting it succeeds, as CSI asks.
    if (!ref) return {};
    return await this.locks.run(volumeIdOf(ref), async () => {
      const t = await this.store.get(ref);
      if (!t || t.metadata.deletionTimestamp) return {};
      if (!isDriverVolume(t)) {
        this.log.warn({ volume: r.volume_id }, "not deleting a HASanTarget this driver did not create");
        return {};
      }
      await this.store.delete(t);
      this.log.info({ volume: r.volume_id }, "HASanTarget deleted; the operator removes its pods and PVCs");
      return {};
    });
  }

  private async driverVolume(ref: VolumeRef): Promise<HASanTarget> {
    const t = await this.store.get(ref);
    if (!t || !isDriverVolume(t) || t.metadata.deletionTimestamp)
      throw notFound(`volume ${volumeIdOf(ref)} does not exist`);
    return t;
  }

  /**
   * Grows spec.capacity (never shrinks: a smaller request is already satisfied). The node then
   * rescans, resizes the multipath map and grows the filesystem, hence node_expansion_required.
   */
  async expandVolume(request: unknown): Promise<object> {
    const r = parseRequest(ControllerExpandVolumeRequestSchema, request);
    const ref = requireVolumeId(r.volume_id);
    if (r.volume_capability) {
      const problem = capabilitiesProblem([r.volume_capability]);
      if (problem) throw invalidArgument(problem);
    }
    const bytes = capacityFor(r.capacity_range);
    return await this.locks.run(volumeIdOf(ref), async () => {
      const t = await this.driverVolume(ref);
      const current = capacityBytesOf(t);
      if (bytes > current) {
        try {
          await this.store.setCapacity(t, capacityQuantity(bytes));
        } catch (e) {
          if (isConflict(e)) throw aborted(`volume ${r.volume_id} changed meanwhile; retry`);
          throw e;
        }
        this.log.info({ volume: r.volume_id, from: String(current), to: String(bytes) }, "capacity grown");
      }
      return {
        capacity_bytes: (bytes > current ? bytes : current).toString(),
        node_expansion_required: true,
      };
    });
  }

  async validateVolumeCapabilities(request: unknown): Promise<object> {
    const r = parseRequest(ValidateVolumeCapabilitiesRequestSchema, request);
    const t = await this.driverVolume(requireVolumeId(r.volume_id));
    const problem = capabilitiesProblem(r.volume_capabilities);
    if (problem) return { message: problem };
    if (Object.keys(r.parameters).length) {
      let same = false;
      try {
        same = madeWith(t, parseParameters(r.parameters));
      } catch (e) {
        if (!(e instanceof CsiError && e.code === Code.INVALID_ARGUMENT)) throw e;
      }
      if (!same) return { message: "the volume was created with other parameters" };
    }
    return {
      confirmed: {
        volume_context: volumeContextOf(t),
        volume_capabilities: r.volume_capabilities,
        parameters: r.parameters,
      },
    };
  }

  async listVolumes(request: unknown): Promise<object> {
    const r = parseRequest(ListVolumesRequestSchema, request);
    const listed = (await this.store.list())
      .filter((l) => !l.target.metadata.deletionTimestamp)
      .map((l) => ({ created: l.created, id: volumeIdOf(l.target.metadata), item: l.target }));
    const p = page(listed, r.max_entries, r.starting_token);
    return { entries: p.items.map((t) => ({ volume: csiVolumeOf(t) })), next_token: p.nextToken };
  }
}
