import { run } from "./processes.js";

/** qemu-io against an iSCSI URL; `commands` are qemu-io commands such as "write -P 0xab 0 1M". */
export async function qemuIo(url: string, commands: string[], env?: NodeJS.ProcessEnv) {
  const args = ["-f", "raw", ...commands.flatMap((c) => ["-c", c]), url];
  const r = await run("qemu-io", args, { timeoutMs: 300_000, ...(env ? { env } : {}) });
  return { ...r, ok: r.code === 0 && !/failed|error/i.test(r.stdout + r.stderr) };
}

/** Fails with qemu-io's own words when a command failed or a pattern did not verify. */
export async function qemuIoOk(url: string, commands: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await qemuIo(url, commands, env);
  if (!r.ok)
    throw new Error(`qemu-io ${commands.join(" ; ")} on ${url} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Copies a raw file onto the start of the LUN (no resize), through the initiator. */
export async function qemuImgWrite(file: string, url: string) {
  const r = await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", file, url], {
    timeoutMs: 300_000,
  });
  if (r.code !== 0) throw new Error(`qemu-img convert ${file} -> ${url} failed: ${r.stdout}${r.stderr}`);
}

/** Reads the first `bytes` of the LUN into a raw file. */
export async function qemuImgRead(url: string, file: string, bytes: number) {
  const r = await run(
    "qemu-img",
    [
      "dd",
      "-f",
      "raw",
      "-O",
      "raw",
      `bs=1M`,
      `count=${Math.ceil(bytes / (1 << 20))}`,
      `if=${url}`,
      `of=${file}`,
    ],
    { timeoutMs: 300_000 },
  );
  if (r.code !== 0) throw new Error(`qemu-img dd ${url} -> ${file} failed: ${r.stdout}${r.stderr}`);
}
