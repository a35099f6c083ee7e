/**
 * The upgrade from the fixed names older versions gave a pair node's files in its data file's
 * directory (`pair-generation.json`, `dirty-bitmap`, `pair-unit-state.json`) to the names
 * metadata-files.ts gives them after the data file. Runs on start, under the data file's lock,
 * before the pair opens its files.
 *
 * A node adopts the old files only when its own generation record does not exist, and never
 * overwrites a file that exists under its new name. Two nodes whose data files share the
 * directory both see the old files, but only one may take them: the old generation record is
 * claimed by renaming it to `<data file>.pair-generation.adopting` (one atomic rename: the
 * other node's fails with ENOENT); only the claimant moves the dirty bitmap and the unit state,
 * then renames the claim to its generation record. A crash in between leaves the claim, and the
 * same node finishes on its next start; the other node never touches the old bitmap or unit
 * state. The node that did not get them starts with fresh metadata, which the pair's handshake
 * treats as a new node: it is resynced fully from its partner.
 *
 * The old temporary files (`pair-generation.json.tmp`, `pair-unit-state.json.tmp`) are what an
 * interrupted write left; nothing reads them, and they are left alone.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.js";
import { legacyPairFiles, type MetadataFiles } from "./metadata-files.js";

export type AdoptionOutcome =
  /** the node's own generation record exists: nothing to adopt */
  | { kind: "own" }
  /** the old files were renamed to the node's names (`moved`: the new names) */
  | { kind: "adopted"; moved: string[]; generation: string | null }
  /** no metadata of this node: it starts with fresh metadata */
  | { kind: "fresh"; takenByAnother: boolean };

export async function adoptLegacyPairMetadata(
  files: MetadataFiles,
  logger: Logger,
): Promise<AdoptionOutcome> {
  const legacy = legacyPairFiles(files.dir);
  const resuming = await exists(files.adopting);
  if (resuming) {
    if (await exists(files.generation)) {
      throw new Error(
        `both ${files.generation} and ${files.adopting} exist; keep the one that holds this node's generation record and remove the other`,
      );
    }
  } else {
    if (await exists(files.generation)) return { kind: "own" };
    // The claim: of two nodes renaming the same old record, one gets ENOENT.
    const seen = legacy.generation !== files.data && (await exists(legacy.generation));
    const claimed = seen && (await renameIfPresent(legacy.generation, files.adopting));
    if (!claimed) return await fresh(files, logger, seen);
    await syncDir(files.dir, logger);
  }
  const moved: string[] = [];
  const left: string[] = [];
  for (const [from, to] of [
    [legacy.dirtyBitmap, files.dirtyBitmap],
    [legacy.unitState, files.unitState],
  ] as const) {
    if (from === files.data || !(await exists(from))) continue;
    // Never over a file of the new name (this node's: nobody else writes it while it holds the lock).
    if (await exists(to)) {
      left.push(from);
      continue;
    }
    if (await renameIfPresent(from, to)) moved.push(to);
  }
  await fsp.rename(files.adopting, files.generation);
  await syncDir(files.dir, logger);
  moved.unshift(files.generation);
  const generation = await generationId(files.generation);
  logger.info(
    {
      dir: files.dir,
      data: files.data,
      adopted: moved,
      generation,
      ...(left.length ? { leftInPlace: left } : {}),
    },
    "adopted the pair metadata an older version kept under fixed names in the data file's directory",
  );
  return { kind: "adopted", moved, generation };
}

/** Nothing adopted and no generation record of its own: the node starts anew; says why. */
async function fresh(
  files: MetadataFiles,
  logger: Logger,
  takenByAnother: boolean,
): Promise<AdoptionOutcome> {
  const others = (await fsp.readdir(files.dir).catch(() => [] as string[]))
    .filter((f) => f.endsWith(".pair-generation.json") || f.endsWith(".pair-generation.adopting"))
    .map((f) => join(files.dir, f))
    .filter((f) => f !== files.generation && f !== files.adopting);
  const fields = { dir: files.dir, data: files.data, generationFile: files.generation };
  if (takenByAnother) {
    logger.warn(
      { ...fields, otherNodesMetadata: others },
      "the pair metadata an older version kept under fixed names in this directory was adopted by another data file's node; " +
        "this node starts with fresh metadata, which the pair's handshake treats as a new node: it is resynced fully from its partner",
    );
  } else {
    logger.info(
      { ...fields, ...(others.length ? { otherNodesMetadata: others } : {}) },
      "no pair metadata of this data file: this node starts with fresh metadata, which the pair's handshake treats as a new node: " +
        "it is resynced fully from its partner (nothing is copied when both nodes are new)",
    );
  }
  return { kind: "fresh", takenByAnother };
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** Renames `from` to `to`; false when `from` does not exist (any more). */
async function renameIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await fsp.rename(from, to);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

async function syncDir(dir: string, logger: Logger): Promise<void> {
  const d = await fsp.open(dir, "r");
  try {
    await d.sync();
  } catch (e) {
    logger.debug({ err: (e as Error).message }, "directory fsync not supported");
  } finally {
    await d.close();
  }
}

/** The adopted record's generation id, for the log (null when it cannot be read). */
async function generationId(path: string): Promise<string | null> {
  try {
    const record = JSON.parse(await fsp.readFile(path, "utf8")) as { current?: unknown };
    return typeof record.current === "string" ? record.current : null;
  } catch {
    return null;
  }
}
