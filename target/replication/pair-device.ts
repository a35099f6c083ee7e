/**
 * The BlockDevice a pair node gives the SCSI layer. Each operation is routed by the node's mode:
 * mutations to the sequencer (here, or forwarded over the link), reads to the local copy except
 * regions a resync target still lacks (read from the partner). An operation that meets the loss
 * of the link waits for the loss to be handled and is then routed again: a forwarded mutation
 * whose link broke may or may not have been applied by the sequencer, and applying it again
 * (alone, or through a new link) is idempotent.
 */
import { regionsOf } from "../store/dirty-bitmap.js";
import type { AllocationRun, BlockDevice } from "../store/block-device.js";
import type { PairCore } from "./pair-core.js";
import type { Mutation, Sequencer } from "./sequencer.js";

export function pairDevice(core: PairCore, seq: Sequencer, close: () => Promise<void>): BlockDevice {
  const d = new PairDevice(core, seq);
  return {
    // The LUN may grow (lun-growth.ts): the SCSI layer always sees the current size.
    get sizeBytes() {
      return core.sizeBytes;
    },
    read: (offset, length) => d.read(offset, length),
    write: (offset, data, options) => d.mutate({ kind: "write", offset, data, fua: !!options?.fua }),
    flush: () => d.flush(),
    unmap: (offset, length) => d.mutate({ kind: "unmap", offset, length }),
    compareAndWrite: (offset, expected, data) => d.compareAndWrite(offset, expected, data),
    isMapped: (offset, length) => d.isMapped(offset, length),
    allocationAt: (offset) => d.allocationAt(offset),
    close,
  };
}

class PairDevice {
  constructor(
    private readonly core: PairCore,
    private readonly seq: Sequencer,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const core = this.core;
    const [first, last] = regionsOf(offset, length, core.regionSize);
    // Regions a resync target still lacks are read from the partner, over the link: inside the
    // I/O gate (routed), so never before the partner has finished its side of the handshake.
    return core.routed(
      async (mode) => {
        const link = core.link;
        if (mode === "forwarder" && link?.role === "target" && core.outOfSync.anyInRange(first, last)) {
          const reply = await link.conn.request("read", { offset, length });
          if (reply.data.length !== length)
            throw new Error(`peer returned ${reply.data.length} of ${length} bytes`);
          return reply.data;
        }
        return core.local.read(offset, length);
      },
      { readable: true },
    );
  }

  async isMapped(offset: number, length: number): Promise<boolean> {
    const core = this.core;
    const [first, last] = regionsOf(offset, length, core.regionSize);
    if (core.link?.role === "target" && core.outOfSync.anyInRange(first, last)) return true;
    return core.local.isMapped(offset, length);
  }

  /** The local file's provisioning, except where this node still waits for resynced data. */
  async allocationAt(offset: number): Promise<AllocationRun | undefined> {
    if (this.core.link?.role === "target") return undefined; // isMapped answers per block, conservatively
    return this.core.local.allocationAt?.(offset);
  }

  /**
   * Both copies flushed (alone: this one). The request goes over the link inside the I/O gate
   * (routed), like every other request: a node whose handshake is done may otherwise send it
   * before the partner has finished its side, and the partner drops the link.
   */
  flush(): Promise<void> {
    const core = this.core;
    return core.routed(async (mode) => {
      if (mode === "alone") return core.local.flush();
      await Promise.all([core.local.flush(), core.link!.conn.request("flush", {})]);
    });
  }

  /** Writes and unmaps: to the sequencer (here or over the link), or applied alone. */
  mutate(op: Mutation): Promise<void> {
    const core = this.core;
    return core.routed(async (mode) => {
      if (mode === "sequencer") return this.seq.sequenced(op);
      if (mode === "alone") return this.seq.applyAlone(op);
      const conn = core.link!.conn;
      if (op.kind === "write")
        await conn.request("forwardWrite", { offset: op.offset, fua: op.fua }, op.data);
      else await conn.request("forwardUnmap", { offset: op.offset, length: op.length });
    });
  }

  /** Compared where it is sequenced, so it answers from a copy this node may serve (the lease). */
  compareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const core = this.core;
    if (expected.length !== data.length) {
      return Promise.reject(
        new Error(`compareAndWrite: expected ${expected.length} bytes and data ${data.length} differ`),
      );
    }
    return core.routed(
      async (mode) => {
        if (mode === "sequencer") return this.seq.compareAndWrite(offset, expected, data);
        if (mode === "alone") return this.seq.compareAndWriteAlone(offset, expected, data);
        const reply = await core.link!.conn.request(
          "forwardCompareAndWrite",
          { offset },
          Buffer.concat([expected, data]),
        );
        return reply.body.result ?? -1;
      },
      { readable: true },
    );
  }
}
