import type { RecordOpener, RecordSealer } from "../../target/replication/frame-seal.js";
import { encodeFrame, frameBytes, type Message } from "../../target/replication/protocol.js";

/** A write frame of `data` numbered `id` (its offset follows from it). */
export const writeFrame = (id: number, data: Buffer) =>
  encodeFrame("write", id, { offset: id * 4096, fua: false }, data);
export const heartbeatFrame = (seq: number) => encodeFrame("heartbeat", 0, { seq, ack: 0 });

/** The frames sealed as the sealer's next record, as one buffer. */
export function sealRecord(sealer: RecordSealer, ...frames: Buffer[][]): Buffer {
  const parts = frames.flat();
  return Buffer.concat(sealer.seal(parts, frameBytes(parts)));
}

/**
 * Opens `bytes` in pieces of `step`, each copied into one scratch buffer that the next piece
 * overwrites, as the link reuses its read buffer.
 */
export function openInPieces(opener: RecordOpener, bytes: Buffer, step = bytes.length): Message[] {
  const scratch = Buffer.alloc(Math.min(step, bytes.length));
  const out: Message[] = [];
  for (let at = 0; at < bytes.length; at += step) {
    const n = bytes.subarray(at, at + step).copy(scratch);
    out.push(...opener.push(scratch.subarray(0, n)));
    scratch.fill(0xee);
  }
  return out;
}

/** What openByReads saw: the messages, and how many reads landed outside the scratch buffer. */
export interface ReadsOpened {
  messages: Message[];
  inPlace: number;
  /** the buffers reads landed in, other than the scratch buffer */
  targets: ArrayBufferLike[];
}

/**
 * Opens `bytes` the way the link's socket reads them (onread): each read of at most `readSize`
 * lands where the opener's readTarget says, the scratch buffer being overwritten after each.
 */
export function openByReads(opener: RecordOpener, bytes: Buffer, readSize: number): ReadsOpened {
  const scratch = Buffer.alloc(readSize);
  const out: ReadsOpened = { messages: [], inPlace: 0, targets: [] };
  for (let at = 0; at < bytes.length;) {
    const target = opener.readTarget(scratch);
    if (target.buffer !== scratch.buffer) {
      out.inPlace++;
      out.targets.push(target.buffer);
    }
    const n = bytes.copy(target, 0, at, at + Math.min(target.length, readSize));
    at += n;
    out.messages.push(...opener.pushRead(target, n, scratch));
    scratch.fill(0xee);
  }
  return out;
}
