import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

/**
 * Extent operations Node has no binding for, on one file, through a long-lived perl process:
 * punching holes (fallocate(2) with PUNCH_HOLE | KEEP_SIZE) for UNMAP, and lseek(2) with
 * SEEK_DATA / SEEK_HOLE for GET LBA STATUS. Spawning fallocate(1) or filefrag(8) per command
 * costs milliseconds; the co-process answers in microseconds. perl is on every Debian system
 * (perl-base is essential), the slim container image included.
 */
const FALLOCATE_SYSCALL: Partial<Record<NodeJS.Architecture, number>> = { x64: 285, arm64: 47 };
const PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01;

// Requests: "p OFFSET LENGTH" (punch), "d OFFSET" (next data), "h OFFSET" (next hole).
// Answers: "ok", "at N", "none" (no data at or after the offset), "err ERRNO".
// Arguments are forced numeric (+0): perl's syscall() passes strings as pointers.
const script = `
use strict; $| = 1;
my ($path, $nr, $mode) = @ARGV;
open(my $fh, "+<", $path) or die "cannot open $path: $!\\n";
my $fd = fileno($fh);
print "ready\\n";
while (my $line = <STDIN>) {
  my ($op, $off, $len) = split(" ", $line);
  if ($op eq "p") {
    my $r = syscall($nr + 0, $fd + 0, $mode + 0, $off + 0, $len + 0);
    print $r == 0 ? "ok\\n" : "err " . ($! + 0) . "\\n";
  } else {
    my $r = sysseek($fh, $off + 0, $op eq "d" ? 3 : 4);
    if (defined $r) { print "at " . ($r + 0) . "\\n"; }
    elsif ($! + 0 == 6) { print "none\\n"; }
    else { print "err " . ($! + 0) . "\\n"; }
  }
}
`;

type Answer = { kind: "ok" } | { kind: "at"; offset: number } | { kind: "none" };

export class FileExtentTool {
  private pending: { resolve: (a: Answer) => void; reject: (e: Error) => void }[] = [];
  private buffered = "";
  private dead: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding("utf8").on("data", (d: string) => this.onData(d));
    child.on("exit", (code, signal) =>
      this.fail(new Error(`extent tool process exited (${code ?? signal})`)),
    );
    child.on("error", (e) => this.fail(e));
    child.stdin.on("error", (e) => this.fail(e));
  }

  /** Starts the co-process for `path`; resolves undefined where it cannot run (no perl, other arch). */
  static async start(path: string): Promise<FileExtentTool | undefined> {
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
    const tool = new FileExtentTool(child);
    // The ready banner answers an implicit first request.
    const ready = new Promise<Answer>((resolve, reject) => tool.pending.push({ resolve, reject }));
    try {
      await ready;
      return tool;
    } catch {
      child.kill();
      return undefined;
    }
  }

  /** Deallocates [offset, offset + length); the range reads as zeros afterwards, the size is kept. */
  async punch(offset: number, length: number): Promise<void> {
    await this.ask(`p ${offset} ${length}`);
  }

  /** Offset of the first data byte at or after `offset`, or null when only a hole follows. */
  async nextData(offset: number): Promise<number | null> {
    const a = await this.ask(`d ${offset}`);
    return a.kind === "at" ? a.offset : null;
  }

  /** Offset of the first hole byte at or after `offset` (end of file counts as a hole). */
  async nextHole(offset: number): Promise<number | null> {
    const a = await this.ask(`h ${offset}`);
    return a.kind === "at" ? a.offset : null;
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }

  private ask(request: string): Promise<Answer> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<Answer>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${request}\n`);
    });
  }

  private onData(d: string): void {
    this.buffered += d;
    let nl: number;
    while ((nl = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const waiter = this.pending.shift();
      if (!waiter) continue;
      if (line === "ok" || line === "ready") waiter.resolve({ kind: "ok" });
      else if (line === "none") waiter.resolve({ kind: "none" });
      else if (line.startsWith("at ")) waiter.resolve({ kind: "at", offset: Number(line.slice(3)) });
      else waiter.reject(new Error(`extent operation failed: errno ${line.slice(4)}`));
    }
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const w of this.pending.splice(0)) w.reject(e);
  }
}
