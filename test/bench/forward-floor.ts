import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processCpuMs } from "../support/process-cpu.js";
import type { BenchResult } from "./qemu-bench.js";
import { connectToNodeServer } from "./round-trip.js";

/**
 * The receiving end in its own Node.js process: reads length-prefixed messages, writes each
 * payload to a file (one writev of the chunks it arrived in) at the offset it names, and
 * acknowledges the messages of one read in one write (as node b does). It prints its port.
 * argv[1]: the file.
 */
const RECEIVER = `
const net = require("node:net");
const fs = require("node:fs");
const fd = fs.openSync(process.argv[1], "w+");
fs.ftruncateSync(fd, 2 ** 30);
const s = net.createServer((c) => {
  c.setNoDelay(true);
  const chunks = [];
  let have = 0;
  let message = null;
  let acks = [];
  let scheduled = false;
  // The next n bytes received, as slices of the chunks (consumed).
  const take = (n) => {
    const out = [];
    have -= n;
    while (n > 0) {
      const first = chunks[0];
      if (first.length <= n) {
        out.push(chunks.shift());
        n -= first.length;
      } else {
        out.push(first.subarray(0, n));
        chunks[0] = first.subarray(n);
        n = 0;
      }
    }
    return out;
  };
  const flush = () => {
    scheduled = false;
    const out = Buffer.allocUnsafe(4 * acks.length);
    for (let i = 0; i < acks.length; i++) out.writeUInt32BE(acks[i], 4 * i);
    acks = [];
    c.write(out);
  };
  c.on("data", (d) => {
    chunks.push(d);
    have += d.length;
    for (;;) {
      if (message === null) {
        if (have < 12) return;
        const h = Buffer.concat(take(12));
        message = { length: h.readUInt32BE(0), id: h.readUInt32BE(4), block: h.readUInt32BE(8) };
      }
      if (have < message.length) return;
      fs.writevSync(fd, take(message.length), (message.block * message.length) % 2 ** 30);
      acks.push(message.id);
      message = null;
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    }
  });
});
s.listen(0, "127.0.0.1", () => console.log(s.address().port));
`;

/** A bench result (a message stands for a write) with each process's CPU per message. */
export interface ForwardFloor extends BenchResult {
  senderUsPerMessage: number;
  receiverUsPerMessage: number;
}

/**
 * What forwarding costs a Node.js process on this machine with nothing else in the way: this
 * process sends `bytes`-byte messages to another Node.js process over loopback TCP, `depth` in
 * flight, the messages queued in one turn in one write (as node a sends mirrored writes); the
 * other writes each to a file and acknowledges them (as node b does). No encryption or
 * authentication, no protocol checks, no iSCSI, no sequencing: a minimal forwarder, whose CPU per
 * message is about the floor under node a's extra CPU per mirrored write and under node b's on
 * this runtime and machine (most of it is the kernel's: TCP over loopback, the page cache).
 */
export async function forwardFloor(
  bytes = 4096,
  depth = 32,
  count = 200_000,
  warmup = 20_000,
): Promise<ForwardFloor> {
  const dir = mkdtempSync(join(tmpdir(), "hasan-floor-"));
  let child: ChildProcess | undefined;
  try {
    const server = await connectToNodeServer(RECEIVER, [join(dir, "floor.img")], "minimal receiver");
    child = server.child;
    const c = server.socket;
    const payload = Buffer.alloc(bytes, 0x66);
    let sent = 0;
    let acked = 0;
    let queued: Buffer[] = [];
    let scheduled = false;
    const pump = () => {
      scheduled = false;
      c.cork();
      for (const b of queued) c.write(b);
      queued = [];
      c.uncork();
    };
    const send = () => {
      sent++;
      const head = Buffer.allocUnsafe(12);
      head.writeUInt32BE(bytes, 0);
      head.writeUInt32BE(sent, 4);
      head.writeUInt32BE(sent, 8);
      queued.push(head, payload);
      if (!scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    const pids = [process.pid, child.pid ?? 0];
    let before: number[] = [];
    let startedAt = 0;
    let partial = 0;
    await new Promise<void>((resolve) => {
      c.on("data", (d: Buffer) => {
        const n = Math.floor((partial + d.length) / 4);
        partial = (partial + d.length) % 4;
        for (let i = 0; i < n; i++) {
          acked++;
          if (acked === warmup) {
            before = pids.map(processCpuMs);
            startedAt = performance.now();
          }
          if (acked === warmup + count) resolve();
          else if (sent < warmup + count) send();
        }
      });
      for (let i = 0; i < depth; i++) send();
    });
    const seconds = (performance.now() - startedAt) / 1000;
    const [sender = 0, receiver = 0] = pids.map((p, i) => ((processCpuMs(p) - before[i]!) * 1000) / count);
    c.destroy();
    return {
      seconds,
      iops: count / seconds,
      bytesPerSecond: (count * bytes) / seconds,
      senderUsPerMessage: sender,
      receiverUsPerMessage: receiver,
    };
  } finally {
    child?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
