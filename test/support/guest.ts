/**
 * A Debian guest under qemu (TCG) that runs the Linux kernel's iSCSI initiator, dm-multipath and
 * file systems, which the host kernel lacks. The image is built once by hack/guest/build.sh (cached
 * under ~/.cache/hasan, keyed by its recipe) and booted with `snapshot=on`, so a guest never
 * changes it. Its PID 1 (hack/guest/init.sh) dials back to a TCP port of this process and runs
 * the bash it is sent: a test drives the guest command by command while it injects faults on
 * the host. The guest reaches the host's loopback as 10.0.2.2.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, type WriteStream } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { freePort, stopProcess } from "./processes.js";
import { repoRoot } from "./target-process.js";

/** The host's loopback as the guest sees it. */
export const HOST_FROM_GUEST = "10.0.2.2";

export interface GuestImage {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly disk: string;
}

let image: Promise<GuestImage> | null = null;

/** Builds the image on first use (printing what it does to stderr), then returns its files. */
export function guestImage(): Promise<GuestImage> {
  image ??= new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, "hack/guest/build.sh"), [], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
      process.stderr.write(d);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const dir = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !dir)
        return reject(new Error(`hack/guest/build.sh failed (${code}): ${err.slice(-4000)}`));
      resolve({
        dir,
        kernel: join(dir, "vmlinuz"),
        initrd: join(dir, "initrd.img"),
        disk: join(dir, "rootfs.raw"),
      });
    });
  });
  return image;
}

export interface GuestOptions {
  /** names the guest in logs and makes its initiator name (iqn.2026-12.dev.hasan.test:<name>) */
  name: string;
  memoryMb?: number;
  /** where the console log goes (a new temporary directory by default) */
  dir?: string;
  bootTimeoutMs?: number;
  /**
   * Host directories the guest mounts read-only (9p over virtio) once it is up, each at
   * `guestPath` (by default the same path as on the host, so symbolic links between them resolve).
   */
  shares?: readonly GuestShare[];
  /** Guest TCP ports reachable from the host's loopback (see `hostPort`). */
  forwardPorts?: readonly number[];
}

export interface GuestShare {
  hostPath: string;
  guestPath?: string;
}

export interface ExecResult {
  code: number;
  output: string;
}

export class Guest {
  readonly initiator: string;
  readonly consoleLog: string;
  readonly commandLog: string;
  private qemu!: ChildProcess;
  private server!: Server;
  private socket: Socket | null = null;
  private buffer = Buffer.alloc(0);
  private waiting: ((r: ExecResult | Error) => void) | null = null;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly commands: WriteStream;
  private exited: string | null = null;
  private readonly forwarded = new Map<number, number>();

  private constructor(readonly o: GuestOptions) {
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), `hasan-guest-${o.name}-`));
    this.initiator = `iqn.2026-12.dev.hasan.test:${o.name}`;
    this.consoleLog = join(dir, `${o.name}.console.log`);
    this.commandLog = join(dir, `${o.name}.commands.log`);
    this.commands = createWriteStream(this.commandLog, { flags: "a" });
  }

  /** Boots a guest and returns once its init is connected and ready for commands. */
  static async boot(o: GuestOptions): Promise<Guest> {
    const img = await guestImage();
    const g = new Guest(o);
    await g.start(img);
    try {
      await g.mountShares();
    } catch (e) {
      await g.stop();
      throw e;
    }
    return g;
  }

  private async start(img: GuestImage): Promise<void> {
    this.server = createServer();
    const connected = new Promise<Socket>((resolve) => this.server.once("connection", resolve));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const addr = this.server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    const append = [
      "root=/dev/vda rw console=ttyS0 panic=1 mitigations=off loglevel=4",
      "init=/usr/local/sbin/hasan-guest-init",
      `hasan.port=${port}`,
      `hasan.initiator=${this.initiator}`,
    ].join(" ");
    let netdev = "user,id=n0";
    for (const g of this.o.forwardPorts ?? []) {
      const h = await freePort();
      this.forwarded.set(g, h);
      netdev += `,hostfwd=tcp:127.0.0.1:${h}-:${g}`;
    }
    const args = [
      ...["-accel", "tcg", "-cpu", "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt"],
      ...["-m", String(this.o.memoryMb ?? 1024), "-smp", "1", "-nographic", "-no-reboot"],
      ...["-kernel", img.kernel, "-initrd", img.initrd, "-append", append],
      ...["-drive", `file=${img.disk},if=virtio,format=raw,snapshot=on`],
      ...["-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile="],
      ...(this.o.shares ?? []).flatMap((s, i) => [
        "-virtfs",
        `local,path=${s.hostPath},mount_tag=share${i},security_model=none,readonly=on`,
      ]),
    ];
    const log = createWriteStream(this.consoleLog, { flags: "a" });
    this.qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.qemu.stdout?.pipe(log);
    this.qemu.stderr?.pipe(log);
    const exited = new Promise<never>((_, reject) =>
      this.qemu.once("exit", (code, signal) => {
        this.exited = `qemu exited (${code ?? signal})`;
        this.waiting?.(new Error(`${this.exited}; console: ${this.consoleTail()}`));
        reject(
          new Error(`guest ${this.o.name}: ${this.exited} before it was up; console: ${this.consoleTail()}`),
        );
      }),
    );
    exited.catch(() => undefined);
    const timeoutMs = this.o.bootTimeoutMs ?? 180_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`guest ${this.o.name} not up after ${timeoutMs} ms; console: ${this.consoleTail()}`),
          ),
        timeoutMs,
      );
    });
    try {
      this.socket = await Promise.race([connected, exited, timeout]);
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    this.socket.on("data", (d: Buffer) => this.onData(d));
    this.socket.on("close", () => this.waiting?.(new Error(`guest ${this.o.name} closed its connection`)));
  }

  /** The host loopback port that reaches guest port `guestPort` (one of `forwardPorts`). */
  hostPort(guestPort: number): number {
    const h = this.forwarded.get(guestPort);
    if (h === undefined) throw new Error(`guest ${this.o.name}: port ${guestPort} is not forwarded`);
    return h;
  }

  /** Mounts every share (the guest kernel has 9p as modules). */
  private async mountShares(): Promise<void> {
    const shares = this.o.shares ?? [];
    if (!shares.length) return;
    const lines = ["set -e", "modprobe -a 9pnet_virtio 9p"];
    shares.forEach((s, i) => {
      const at = s.guestPath ?? s.hostPath;
      lines.push(
        `mkdir -p '${at}'`,
        `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 share${i} '${at}'`,
      );
    });
    await this.run(lines.join("\n"));
  }

  private onData(d: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, d]);
    const nl = this.buffer.indexOf(10);
    if (nl < 0) return;
    const m = /^HASAN-RESULT (\d+) (\d+)$/.exec(this.buffer.subarray(0, nl).toString("latin1"));
    if (!m) {
      this.waiting?.(
        new Error(`guest ${this.o.name} answered garbage: ${this.buffer.subarray(0, 200).toString()}`),
      );
      return;
    }
    const length = Number(m[2]);
    if (this.buffer.length < nl + 1 + length) return;
    const output = this.buffer.subarray(nl + 1, nl + 1 + length).toString("utf8");
    this.buffer = this.buffer.subarray(nl + 1 + length);
    const done = this.waiting;
    this.waiting = null;
    done?.({ code: Number(m[1]), output });
  }

  /** Runs bash in a subshell of the guest's init (one command at a time; `&` jobs live on). */
  exec(script: string, o: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const next = this.busy.then(() => this.execNow(script, o.timeoutMs ?? 120_000));
    this.busy = next.catch(() => undefined);
    return next;
  }

  private execNow(script: string, timeoutMs: number): Promise<ExecResult> {
    if (this.exited || !this.socket)
      return Promise.reject(new Error(`guest ${this.o.name}: ${this.exited ?? "not up"}`));
    const started = Date.now();
    this.commands.write(`\n$ ${script}\n`);
    return new Promise<ExecResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(
          new Error(`guest ${this.o.name}: no answer to \`${script.slice(0, 200)}\` after ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) return reject(r);
        this.commands.write(`${r.output}[exit ${r.code} after ${Date.now() - started} ms]\n`);
        resolve(r);
      };
      const body = Buffer.from(script, "utf8");
      this.socket!.write(`${body.length}\n`);
      this.socket!.write(body);
    });
  }

  /** Like exec, and throws with the output when the exit code is not 0. */
  async run(script: string, o: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(script, o);
    if (r.code !== 0)
      throw new Error(
        `guest ${this.o.name}: \`${script.slice(0, 300)}\` exited ${r.code}:\n${r.output.slice(-6000)}`,
      );
    return r.output;
  }

  /**
   * Copies the guest's kernel log and the iscsid and multipathd logs next to the console log
   * (for reading a failed run); returns the directory.
   */
  async saveLogs(): Promise<string> {
    const dir = dirname(this.consoleLog);
    for (const [name, cmd] of [
      ["dmesg", "dmesg"],
      ["iscsid", "cat /run/iscsid.log"],
      ["multipathd", "cat /run/multipathd.log"],
    ] as const) {
      const r = await this.exec(cmd, { timeoutMs: 30_000 }).catch((e: Error) => ({
        code: -1,
        output: e.message,
      }));
      await writeFile(join(dir, `${this.o.name}.${name}.log`), r.output);
    }
    return dir;
  }

  consoleTail(chars = 3000): string {
    try {
      return readFileSync(this.consoleLog, "utf8").slice(-chars);
    } catch {
      return "";
    }
  }

  /** Pulls the plug (the disk is a snapshot: nothing to keep). */
  async stop(): Promise<void> {
    this.socket?.destroy();
    if (this.qemu) await stopProcess(this.qemu, "SIGKILL");
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
    this.commands.end();
  }
}
