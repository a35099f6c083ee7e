import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import type { LatencyResult } from "./pair-bench.js";

/** An echo server in its own Node.js process: it prints its port and answers every byte. */
const ECHO_SERVER = `
const net = require("node:net");
const s = net.createServer((c) => { c.setNoDelay(true); c.on("data", (d) => c.write(d)); });
s.listen(0, "127.0.0.1", () => console.log(s.address().port));
`;

/**
 * Runs `code` (a server that prints its port) in its own Node.js process with `args`, and
 * connects to it over loopback TCP with Nagle's algorithm off.
 */
export async function connectToNodeServer(
  code: string,
  args: string[],
  what: string,
): Promise<{ child: ChildProcess; socket: net.Socket }> {
  const child = spawn(process.execPath, ["-e", code, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once("exit", (code) => reject(new Error(`${what} exited with ${code}`)));
    });
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    await new Promise<void>((r) => socket.once("connect", () => r()));
    return { child, socket };
  } catch (e) {
    child.kill();
    throw e;
  }
}

/**
 * Times `count` round trips of `bytes` between this process and another Node.js process over
 * loopback TCP, one at a time: the least a mirrored write adds to a write's latency on this
 * machine (node a sends the write to node b and waits for its acknowledgement).
 */
export async function loopbackRoundTrip(bytes = 4096, count = 5000, warmup = 200): Promise<LatencyResult> {
  const { child, socket: c } = await connectToNodeServer(ECHO_SERVER, [], "echo server");
  try {
    const payload = Buffer.alloc(bytes, 0x72);
    const times: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve) => {
        let got = 0;
        const on = (d: Buffer) => {
          got += d.length;
          if (got < bytes) return;
          c.off("data", on);
          resolve();
        };
        c.on("data", on);
        c.write(payload);
      });
      if (i >= warmup) times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    c.destroy();
    times.sort((x, y) => x - y);
    return {
      meanUs: times.reduce((a, b) => a + b, 0) / times.length,
      p99Us: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]!,
    };
  } finally {
    child.kill();
  }
}
