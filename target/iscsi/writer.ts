/**
 * Sends PDUs as separate header / data / padding / digest buffers (no concatenation). Writes made
 * in the same turn of the event loop are corked together and leave in one writev.
 */
import type { Socket } from "node:net";
import { crc32cUpdate } from "./digest.js";
import { BHS_LENGTH, padLength } from "./pdu.js";

const EMPTY = Buffer.alloc(0);
const PADS = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];

export class PduWriter {
  headerDigest = false;
  dataDigest = false;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  /** A header buffer with room for the header digest when one is in force. */
  newHeader(): Buffer {
    return Buffer.allocUnsafe(this.headerDigest ? BHS_LENGTH + 4 : BHS_LENGTH);
  }

  /**
   * Queues one PDU. `header` comes from newHeader() and has its 48 bytes filled. `sent` is called
   * once the PDU (and all before it) left for the kernel, or the connection is gone: its data
   * buffer may then be reused.
   */
  send(header: Buffer, data?: Buffer, sent?: () => void): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) {
      sent?.();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      s.cork();
      setImmediate(this.uncork);
    }
    if (this.headerDigest) {
      header.writeUInt32LE(crc32cUpdate(header.subarray(0, BHS_LENGTH)) >>> 0, BHS_LENGTH);
    }
    s.write(header);
    if (data && data.length > 0) {
      s.write(data);
      const pad = padLength(data.length);
      if (pad) s.write(PADS[pad]!);
      if (this.dataDigest) {
        let crc = crc32cUpdate(data);
        if (pad) crc = crc32cUpdate(PADS[pad]!, crc);
        const d = Buffer.allocUnsafe(4);
        d.writeUInt32LE(crc >>> 0, 0);
        s.write(d);
      }
    }
    if (sent) s.write(EMPTY, () => sent());
  }

  /** Bytes queued in the socket and not yet handed to the kernel. */
  get backlog(): number {
    return this.socket.writableLength;
  }
}
