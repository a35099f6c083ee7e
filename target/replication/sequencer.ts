/**
 * The single order of the pair's mutations. On the node that sequences, every write, unmap and
 * COMPARE AND WRITE (its own and those the partner forwards) takes a range lock, makes its
 * activity extent's bits durable in the dirty bitmap, and is applied here and on the partner
 * at once; it resolves only when both copies hold it. Alone, a mutation records its regions as
 * out of sync before it is applied.
 */
import { firstMismatch } from "../store/file-device.js";
import { DeviceUnavailableError } from "../store/block-device.js";
import { regionsOf } from "../store/dirty-bitmap.js";
import type { PairCore } from "./pair-core.js";
import { PeerLostError } from "./peer-connection.js";
import type { MessageOf } from "./protocol.js";

export type Mutation =
  | { kind: "write"; offset: number; data: Buffer; fua: boolean }
  | { kind: "unmap"; offset: number; length: number };

export class Sequencer {
  constructor(private readonly core: PairCore) {}

  /**
   * Runs a mutation of regions [first, last] with their activity extent marked active and its
   * bits durable in the dirty bitmap: a link loss or crash during it leaves them to be resynced.
   */
  private async inActiveExtent<T>(first: number, last: number, fn: () => Promise<T>): Promise<T> {
    const { hot, store } = this.core;
    const [ef, el] = hot.bounds(first, last);
    hot.enter(ef, el);
    try {
      if (!store.isDurable(ef, el)) await store.markDurable(ef, el);
      return await fn();
    } finally {
      hot.leave(ef, el);
    }
  }

  /** Applies a mutation here and on the partner; resolves when both hold it. */
  async sequenced(op: Mutation): Promise<void> {
    const core = this.core;
    const length = op.kind === "write" ? op.data.length : op.length;
    const [first, last] = regionsOf(op.offset, length, core.regionSize);
    const unlock =
      core.rangeLock.tryAcquire(op.offset, length) ?? (await core.rangeLock.acquire(op.offset, length));
    try {
      await this.inActiveExtent(first, last, () => this.mirror(op, first, last));
    } finally {
      unlock();
    }
  }

  private async mirror(op: Mutation, first: number, last: number): Promise<void> {
    const core = this.core;
    const conn = core.link?.conn;
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
        ? core.local.write(op.offset, op.data, { fua: op.fua })
        : core.local.unmap(op.offset, op.length);
    here.catch(() => undefined);
    let remoteError: unknown;
    try {
      await remote;
    } catch (e) {
      remoteError = e ?? new Error("partner refused the write");
    }
    try {
      await here;
    } catch (localError) {
      // This copy failed the write while the partner may hold it: the two copies may now answer
      // differently. The region is out of sync (its bit is durable already) and the link goes,
      // so only one node serves until the handshake copies the region to the other. The local
      // failure is this write's answer.
      core.outOfSync.setRange(first, last);
      const why = (localError as Error).message;
      core.log.error(
        { offset: op.offset, err: why },
        "this copy failed a mirrored write; the region is resynced",
      );
      if (remoteError === undefined) conn?.close(`this copy failed a mirrored write: ${why}`);
      throw localError;
    }
    if (remoteError === undefined) {
      core.stats.mirroredWrites++;
      return;
    }
    if (!(remoteError instanceof PeerLostError)) {
      // The partner could not apply it (its disk failed): it no longer holds a full copy.
      conn?.close(`partner failed a mirrored write: ${(remoteError as Error).message}`);
    }
    // Applied here, maybe not there: the region is out of sync (its bit is already durable).
    core.outOfSync.setRange(first, last);
    await core.lossHandling;
    if (core.mode() !== "alone") throw core.unavailable();
  }

  /** COMPARE AND WRITE in the pair's order: compared here, mirrored when it matches. */
  async compareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const core = this.core;
    const [first, last] = regionsOf(offset, data.length, core.regionSize);
    const unlock = await core.rangeLock.acquire(offset, data.length);
    try {
      const current = await core.local.read(offset, expected.length);
      const mismatch = firstMismatch(current, expected);
      if (mismatch >= 0) return mismatch;
      const write: Mutation = { kind: "write", offset, data, fua: false };
      await this.inActiveExtent(first, last, () => this.mirror(write, first, last));
      return -1;
    } finally {
      unlock();
    }
  }

  async applyAlone(op: Mutation): Promise<void> {
    const core = this.core;
    const length = op.kind === "write" ? op.data.length : op.length;
    const [first, last] = regionsOf(op.offset, length, core.regionSize);
    // Only the regions written are out of sync; the rest of the extent is durable ahead of use.
    core.outOfSync.setRange(first, last);
    await this.inActiveExtent(first, last, () =>
      op.kind === "write"
        ? core.local.write(op.offset, op.data, { fua: op.fua })
        : core.local.unmap(op.offset, op.length),
    );
  }

  async compareAndWriteAlone(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const core = this.core;
    const unlock = await core.rangeLock.acquire(offset, data.length);
    try {
      const current = await core.local.read(offset, expected.length);
      const mismatch = firstMismatch(current, expected);
      if (mismatch >= 0) return mismatch;
      await this.applyAlone({ kind: "write", offset, data, fua: false });
      return -1;
    } finally {
      unlock();
    }
  }

  /** A mutation the partner forwarded; once answered, the partner holds it too. */
  async serveForwarded(
    m: MessageOf<"forwardWrite"> | MessageOf<"forwardUnmap"> | MessageOf<"forwardCompareAndWrite">,
  ): Promise<number> {
    const core = this.core;
    const release = await core.gate.enter();
    try {
      if (core.mode() !== "sequencer")
        throw new DeviceUnavailableError("no longer the sequencer", "transitioning");
      if (m.type === "forwardWrite") {
        if (!core.inRange(m.body.offset, m.data.length)) throw new Error("write outside the device");
        await this.sequenced({ kind: "write", offset: m.body.offset, data: m.data, fua: m.body.fua });
        return 0;
      }
      if (m.type === "forwardUnmap") {
        if (!core.inRange(m.body.offset, m.body.length)) throw new Error("unmap outside the device");
        await this.sequenced({ kind: "unmap", offset: m.body.offset, length: m.body.length });
        return 0;
      }
      const half = m.data.length / 2;
      if (!Number.isInteger(half) || half === 0 || !core.inRange(m.body.offset, half)) {
        throw new Error("malformed compare and write");
      }
      return await this.compareAndWrite(m.body.offset, m.data.subarray(0, half), m.data.subarray(half));
    } finally {
      release();
    }
  }
}
