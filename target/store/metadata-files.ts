/**
 * The names of the files a target keeps beside its data (LUN) file. Every one is named after
 * the data file, in the data file's directory, so that several data files can share one
 * directory without sharing metadata. For `/srv/san/a.img`:
 *
 *   a.img.lock                          held locked for the life of the process (data-lock.ts)
 *   a.img.pair-generation.json (.tmp)   the pair generation record (pair-generation.ts)
 *   a.img.dirty-bitmap                  the pair's dirty bitmap (dirty-bitmap.ts)
 *   a.img.pair-unit-state.json (.tmp)   the pair's shared reservations (pair-unit-state.ts)
 *   a.img.pr.json                       a standalone target's reservations (local-unit-state-store.ts)
 *   a.img.pair-generation.adopting      only while old fixed names are adopted (metadata-adoption.ts)
 *
 * Older versions named the pair files without reference to the data file (`legacyPairFiles`),
 * so two nodes whose data files shared a directory shared them too.
 */
import { basename, dirname, join } from "node:path";

export interface MetadataFiles {
  /** the data file the others are named after */
  readonly data: string;
  /** the directory of the data file, which holds them all */
  readonly dir: string;
  readonly lock: string;
  readonly generation: string;
  readonly generationTmp: string;
  readonly dirtyBitmap: string;
  readonly unitState: string;
  readonly unitStateTmp: string;
  readonly reservations: string;
  /** the old generation record while its node adopts the old fixed-name files */
  readonly adopting: string;
}

/** The files a pair node's stores read and write. */
export type PairMetadataFiles = Pick<
  MetadataFiles,
  "dir" | "generation" | "generationTmp" | "dirtyBitmap" | "unitState" | "unitStateTmp"
>;

export function metadataFiles(dataPath: string): MetadataFiles {
  const dir = dirname(dataPath);
  const base = basename(dataPath);
  if (base === "" || base === "." || base === "..") throw new Error(`${dataPath} does not name a data file`);
  const named = (suffix: string) => join(dir, `${base}.${suffix}`);
  return {
    data: dataPath,
    dir,
    lock: named("lock"),
    generation: named("pair-generation.json"),
    generationTmp: named("pair-generation.json.tmp"),
    dirtyBitmap: named("dirty-bitmap"),
    unitState: named("pair-unit-state.json"),
    unitStateTmp: named("pair-unit-state.json.tmp"),
    reservations: named("pr.json"),
    adopting: named("pair-generation.adopting"),
  };
}

/** The fixed names older versions gave the pair files in `dir`. */
export function legacyPairFiles(dir: string): { generation: string; dirtyBitmap: string; unitState: string } {
  return {
    generation: join(dir, "pair-generation.json"),
    dirtyBitmap: join(dir, "dirty-bitmap"),
    unitState: join(dir, "pair-unit-state.json"),
  };
}
