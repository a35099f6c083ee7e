import { spawn, type ChildProcess } from "node:child_process";
import { freePort, run, waitFor } from "./processes.js";

/** Debian's tgt (user-space iSCSI target) serving one file as LUN 1, as a speed reference. */
export interface TgtHandle {
  readonly iqn: string;
  readonly port: number;
  url(): string;
  stop(): Promise<void>;
}

export async function startTgt(
  file: string,
  iqn = "iqn.2026-11.dev.hasan:tgt-reference",
): Promise<TgtHandle> {
  const port = await freePort();
  // tgtd's "control port" names its management socket (/var/run/tgtd/socket.N) and must be small.
  const controlPort = 1000 + Math.floor(Math.random() * 9000);
  const child: ChildProcess = spawn(
    "tgtd",
    ["-f", "-C", String(controlPort), "--iscsi", `portal=127.0.0.1:${port}`],
    {
      stdio: "ignore",
    },
  );
  const adm = (...args: string[]) => run("tgtadm", ["-C", String(controlPort), "--lld", "iscsi", ...args]);
  await waitFor(
    "tgtd control socket",
    async () => (await adm("--op", "show", "--mode", "target")).code === 0,
    15_000,
    100,
  );
  for (const args of [
    ["--op", "new", "--mode", "target", "--tid", "1", "-T", iqn],
    ["--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", file],
    ["--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"],
  ]) {
    const r = await adm(...args);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(" ")} failed: ${r.stderr}`);
  }
  return {
    iqn,
    port,
    url: () => `iscsi://127.0.0.1:${port}/${iqn}/1`,
    async stop() {
      await adm("--op", "delete", "--mode", "system", "--force");
      child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 200));
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
