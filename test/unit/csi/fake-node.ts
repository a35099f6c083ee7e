// A recording stand-in for the node's commands and files: it keeps just enough state (node
// records, sessions, the multipath map, mounts, the filesystem on the LUN) for the node service's
// idempotency to show, and records every command line in order.
import { pino } from "pino";
import type { NodeDeps } from "../../../operator/csi/node/deps.js";
import type {
  NodeFs,
  PathKind,
  StagedVolume,
  StagingStore,
  VolumeStats,
} from "../../../operator/csi/node/host.js";
import type { CommandResult, CommandRunner } from "../../../operator/csi/node/runner.js";

export const IQN = "iqn.2024-01.dev.hasan:apps.pvc-1";
export const PORTALS = ["10.214.0.10:3260", "10.214.0.11:3260"];
export const WWID = "360a7e5a205f19f62485372da72b42e12";
export const DEVICE = `/dev/disk/by-id/dm-uuid-mpath-${WWID}`;

const ok = (stdout = ""): CommandResult => ({ code: 0, stdout, stderr: "" });
const fail = (code: number, stderr = ""): CommandResult => ({ code, stdout: "", stderr });

export class FakeNode implements CommandRunner, NodeFs, StagingStore {
  readonly commands: string[] = [];
  readonly records = new Set<string>();
  readonly sessions = new Set<string>();
  readonly mounts = new Map<string, string>();
  readonly paths = new Map<string, PathKind>();
  readonly staged = new Map<string, StagedVolume>();
  /** Filesystem on the LUN ("" = blank). */
  filesystem = "";
  deviceSize = 1n << 30n;
  /** Portals whose login fails with this iscsiadm exit code. */
  loginFails = new Map<string, number>();
  /** The map shows up only after this many looks (0: right after the first login). */
  deviceDelayPolls = 0;
  private polls = 0;

  deps(overrides: Partial<NodeDeps> = {}): NodeDeps {
    return {
      runner: this,
      fs: this,
      staging: this,
      sleep: async () => undefined,
      deviceWaitMs: 10_000,
      log: pino({ level: "silent" }),
      ...overrides,
    };
  }

  /** Commands other than the read-only looks (findmnt, session list, record show, blkid). */
  changes(): string[] {
    return this.commands.filter(
      (c) =>
        !c.startsWith("findmnt ") &&
        c !== "iscsiadm -m session" &&
        !/^iscsiadm -m node -T \S+ -p \S+$/.test(c) &&
        !c.startsWith("blkid "),
    );
  }

  async run(cmd: string, args: string[]): Promise<CommandResult> {
    this.commands.push([cmd, ...args].join(" "));
    const a = args.join(" ");
    if (cmd === "findmnt") {
      const p = args[args.length - 1]!;
      const fs = this.mounts.get(p);
      if (fs === undefined) return fail(1);
      return ok(args.includes("FSTYPE") ? `${fs}\n` : `${p}\n`);
    }
    if (cmd === "iscsiadm") return this.iscsiadm(args);
    if (cmd === "blkid") return this.filesystem ? ok(`${this.filesystem}\n`) : fail(2);
    if (cmd.startsWith("mkfs.")) {
      this.filesystem = cmd.slice(5);
      return ok();
    }
    if (cmd === "mount") {
      const target = args[args.length - 1]!;
      if (args[0] === "--bind") this.mounts.set(target, this.mounts.get(args[1]!) ?? "devtmpfs");
      else if (args[0] === "-t") this.mounts.set(target, args[1]!);
      return ok();
    }
    if (cmd === "umount") {
      this.mounts.delete(args[0]!);
      return ok();
    }
    if (cmd === "multipath" && args[0] === "-f") {
      this.paths.delete(DEVICE);
      return ok();
    }
    if (cmd === "blockdev") return ok(`${this.deviceSize}\n`);
    if (cmd === "multipathd" || cmd === "multipath" || cmd === "resize2fs" || cmd === "xfs_growfs")
      return ok();
    return fail(127, `unexpected command ${cmd} ${a}`);
  }

  private iscsiadm(args: string[]): CommandResult {
    if (args.join(" ") === "-m session") {
      if (!this.sessions.size) return fail(21, "iscsiadm: No active sessions.");
      return ok([...this.sessions].map((p, i) => `tcp: [${i + 1}] ${p},1 ${IQN} (non-flash)`).join("\n"));
    }
    const portal = args[args.indexOf("-p") + 1]!;
    const op = args.slice(6).join(" ");
    if (op === "") return this.records.has(portal) ? ok() : fail(21);
    if (op === "-o new") {
      this.records.add(portal);
      return ok();
    }
    if (op.startsWith("-o update")) return this.records.has(portal) ? ok() : fail(21);
    if (op === "--login") {
      const code = this.loginFails.get(portal);
      if (code) return fail(code, "iscsiadm: Could not login");
      if (this.sessions.has(portal)) return fail(15);
      this.sessions.add(portal);
      return ok();
    }
    if (op === "--logout") return this.sessions.delete(portal) ? ok() : fail(21);
    if (op === "-o delete") return this.records.delete(portal) ? ok() : fail(21);
    if (op === "-R") return this.sessions.has(portal) ? ok() : fail(21);
    return fail(1, `unexpected iscsiadm ${args.join(" ")}`);
  }

  async kind(p: string): Promise<PathKind | undefined> {
    if (p === DEVICE && !this.paths.has(DEVICE) && this.sessions.size > 0) {
      if (this.polls++ >= this.deviceDelayPolls) this.paths.set(DEVICE, "block");
    }
    return this.paths.get(p);
  }
  async mkdirp(p: string) {
    this.paths.set(p, "directory");
  }
  async touch(p: string) {
    if (!this.paths.has(p)) this.paths.set(p, "file");
  }
  async remove(p: string) {
    this.paths.delete(p);
  }
  async statfs(): Promise<VolumeStats> {
    return {
      totalBytes: 1000n,
      availableBytes: 600n,
      usedBytes: 400n,
      totalInodes: 100n,
      freeInodes: 90n,
      usedInodes: 10n,
    };
  }
  async read(id: string) {
    return this.staged.get(id);
  }
  async write(v: StagedVolume) {
    this.staged.set(v.volumeId, v);
  }
  async delete(id: string) {
    this.staged.delete(id);
  }
  async list() {
    return [...this.staged.values()];
  }
}
