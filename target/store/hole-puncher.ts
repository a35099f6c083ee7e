import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

/**
 * Punches holes (fallocate(2) with PUNCH_HOLE | KEEP_SIZE) in one file through a long-lived perl
 * process. Node has no binding for fallocate, and spawning fallocate(1) for every UNMAP costs
 * milliseconds each; the co-process answers in microseconds. perl is part of every Debian system
 * (perl-base is essential), including the slim container image.
 */
const FALLOCATE_SYSCALL: Partial<Record<NodeJS.Architecture, number>> = { x64: 285, arm64: 47 };
const PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01;

// Arguments are forced numeric (+0): perl's syscall() passes strings as pointers.
const script = `
use strict; $| = 1;
my ($path, $nr, $mode) = @ARGV;
open(my $fh, "+<", $path) or die "cannot open $path: $!\\n";
my $fd = fileno($fh);
print "ready\\n";
while (my $line = <STDIN>) {
  my ($off, $len) = split(" ", $line);
  my $r = syscall($nr + 0, $fd + 0, $mode + 0, $off + 0, $len + 0);
  print $r == 0 ? "ok\\n" : "err " . ($! + 0) . "\\n";
}
`;

export class HolePuncher {
  private pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private buffered = "";
  private dead: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding("utf8").on("data", (d: string) => this.onData(d));
    child.on("exit", (code, signal) =>
      this.fail(new Error(`hole punching process exited (${code ?? signal})`)),
    );
    child.on("error", (e) => this.fail(e));
    child.stdin.on("error", (e) => this.fail(e));
  }

  /** Starts the co-process for `path`; resolves undefined where it cannot run (no perl, other arch). */
  static async start(path: string): Promise<HolePuncher | undefined> {
    const nr = FALLOCATE_SYSCALL[process.arch];
    if (nr === undefined) return undefined;
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn("perl", ["-e", script, path, String(nr), String(PUNCH_HOLE_KEEP_SIZE)], {
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch {
      return undefined;
    }
    const puncher = new HolePuncher(child);
    // The first "line" is the ready banner; treat it as the answer to a no-op request.
    const ready = new Promise<void>((resolve, reject) => puncher.pending.push({ resolve, reject }));
    try {
      await ready;
      return puncher;
    } catch {
      child.kill();
      return undefined;
    }
  }

  punch(offset: number, length: number): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${offset} ${length}\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }

  private onData(d: string): void {
    this.buffered += d;
    let nl: number;
    while ((nl = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const waiter = this.pending.shift();
      if (!waiter) continue;
      if (line === "ok" || line === "ready") waiter.resolve();
      else waiter.reject(new Error(`fallocate(PUNCH_HOLE) failed: errno ${line.slice(4)}`));
    }
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const w of this.pending.splice(0)) w.reject(e);
  }
}
