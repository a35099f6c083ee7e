/**
 * Binary bodies for the frames every mirrored write exchanges (peer protocol 6): `write` and
 * `forwardWrite` requests and their `reply`. JSON and a zod schema cost more CPU per 4 KiB write
 * than the rest of the frame's handling; these layouts are fixed, and the checks below are as
 * strict as the schemas they stand for (protocol.ts, MessageBodies): a body of another length, a
 * number out of range or a bit that means nothing is refused. Flags in the frame header:
 *
 * - BINARY_BODY: the body has the binary layout of its type (any other type is refused);
 * - ACK_BATCH (with BINARY_BODY, reply only): the frame acknowledges several requests at once,
 *   each as `{ ok: true }`; its id is 0 and its body lists the ids.
 *
 * Layouts (big-endian):
 *
 *   write, forwardWrite:  offset u64 (at most 2^53 - 1) | flags u8 (bit 0: fua; others 0)
 *   reply:                (empty: { ok: true }) or result i32 ({ ok: true, result })
 *   reply with ACK_BATCH: id u32 (not 0), 1 to MAX_BATCHED_ACKS of them
 *
 * A reply that is not a plain success (an error, a refusal) keeps its JSON body.
 */
import type { Body, MessageType } from "./protocol.js";

export const BINARY_BODY = 0x01;
export const ACK_BATCH = 0x02;
/** The header flags a frame may carry. */
export const FRAME_FLAGS = BINARY_BODY | ACK_BATCH;
/** Acknowledgements one frame carries at most. */
export const MAX_BATCHED_ACKS = 1024;

const WRITE_BODY_BYTES = 9;
const RESULT_BYTES = 4;
const FUA = 0x01;

type WriteType = "write" | "forwardWrite";

/** Bytes of `body` in its binary layout, or -1 when it has none (then it travels as JSON). */
export function binaryBodyLength(type: MessageType, body: unknown): number {
  if (type === "write" || type === "forwardWrite") return WRITE_BODY_BYTES;
  if (type !== "reply") return -1;
  const r = body as Body<"reply">;
  if (!r.ok || r.error !== undefined || r.unavailable !== undefined) return -1;
  if (r.result === undefined) return 0;
  return Number.isInteger(r.result) && r.result >= -(2 ** 31) && r.result < 2 ** 31 ? RESULT_BYTES : -1;
}

/** Writes `body` (of the length binaryBodyLength gave) into `buf` at `at`. */
export function writeBinaryBody(type: MessageType, body: unknown, buf: Buffer, at: number): void {
  if (type === "write" || type === "forwardWrite") {
    const w = body as Body<WriteType>;
    buf.writeUInt32BE(Math.floor(w.offset / 2 ** 32), at);
    buf.writeUInt32BE(w.offset >>> 0, at + 4);
    buf.writeUInt8(w.fua ? FUA : 0, at + 8);
    return;
  }
  const r = body as Body<"reply">;
  if (r.result !== undefined) buf.writeInt32BE(r.result, at);
}

/** A body decoded from its binary layout, or why it is refused. */
export type BinaryBody = { body: Body<WriteType> | Body<"reply"> } | { acks: number[] } | { refused: string };

/** Decodes and checks the binary body of a frame of `type` with header flags `flags`. */
export function readBinaryBody(type: MessageType, flags: number, id: number, b: Buffer): BinaryBody {
  if (flags & ACK_BATCH) {
    if (type !== "reply") return { refused: "only replies batch acknowledgements" };
    if (id !== 0) return { refused: `a batch of acknowledgements has id ${id}, not 0` };
    const n = b.length / 4;
    if (!Number.isInteger(n) || n < 1 || n > MAX_BATCHED_ACKS)
      return { refused: `a batch of acknowledgements of ${b.length} bytes` };
    const acks = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const ack = b.readUInt32BE(i * 4);
      if (ack === 0) return { refused: "a batch of acknowledgements lists id 0" };
      acks[i] = ack;
    }
    return { acks };
  }
  if (type === "write" || type === "forwardWrite") {
    if (b.length !== WRITE_BODY_BYTES)
      return { refused: `binary body of ${b.length} bytes, not ${WRITE_BODY_BYTES}` };
    const high = b.readUInt32BE(0);
    if (high >= 2 ** 21) return { refused: "offset beyond 2^53" };
    const bits = b.readUInt8(8);
    if ((bits & ~FUA) !== 0) return { refused: `unknown write flags 0x${bits.toString(16)}` };
    return { body: { offset: high * 2 ** 32 + b.readUInt32BE(4), fua: bits === FUA } };
  }
  if (type === "reply") {
    if (b.length === 0) return { body: { ok: true } };
    if (b.length === RESULT_BYTES) return { body: { ok: true, result: b.readInt32BE(0) } };
    return { refused: `binary body of ${b.length} bytes` };
  }
  return { refused: "no binary body for this type" };
}
