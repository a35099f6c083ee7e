/**
 * Writes a Secret volume the way the kubelet's atomic writer does: the files go into a fresh
 * `..<timestamp>` directory, the `..data` symlink is swapped to it with one rename, each key is a
 * symlink `KEY → ..data/KEY`, and the old directory is removed. A reader of `dir/KEY` sees the
 * old content or the new one, never a partial file; the file it opened may disappear under it.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";

let seq = 0;

export async function writeSecretVolume(dir: string, files: Record<string, string>): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const previous = await fsp.readlink(join(dir, "..data")).catch(() => undefined);
  const stamp = `..${new Date().toISOString().replace(/[-:T.Z]/g, "_")}${process.pid}_${++seq}`;
  await fsp.mkdir(join(dir, stamp));
  for (const [key, value] of Object.entries(files)) await fsp.writeFile(join(dir, stamp, key), value);
  await fsp.rm(join(dir, "..data_tmp"), { force: true });
  await fsp.symlink(stamp, join(dir, "..data_tmp"));
  await fsp.rename(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const key of Object.keys(files)) {
    const link = join(dir, key);
    if (!(await fsp.lstat(link).catch(() => undefined))) await fsp.symlink(join("..data", key), link);
  }
  if (previous) await fsp.rm(join(dir, previous), { recursive: true, force: true });
}
