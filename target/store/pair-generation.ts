/**
 * The generation record of a pair node's data, persisted next to the LUN file
 * (`<data file>.pair-generation.json`, see metadata-files.ts), written atomically
 * (temporary file, fsync, rename, fsync of the directory).
 *
 * Like DRBD's generation identifiers:
 * - `current` names the data's lineage; it changes when this node starts writing alone
 *   while the partner was in sync (the old value moves to `bitmapUuid`).
 * - `bitmapUuid` is the generation the partner was last known to hold: the dirty bitmap
 *   records every region changed since. null while in sync.
 * - `history` keeps older generations (newest first) to recognise older partners.
 * - `consistent` is false while this node is a resync target (its copy is a mix of old and
 *   new regions); `syncSource` then names the generation it is being brought to.
 * - `initialized` is false for a node that has never been part of a pair nor served alone
 *   (brand-new metadata), whose data must not be trusted over a partner's.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { z } from "zod";
import type { MetadataFiles } from "./metadata-files.js";

const hex = z.string().regex(/^[0-9a-f]{16}$/, "a 16-digit hex generation id");

export const GenerationRecordSchema = z.object({
  version: z.literal(1),
  current: hex,
  bitmapUuid: hex.nullable(),
  history: z.array(hex).max(8),
  consistent: z.boolean(),
  syncSource: hex.nullable(),
  initialized: z.boolean(),
  regionSize: z.number().int().positive(),
  sizeBytes: z.number().int().positive(),
});
export type GenerationRecord = z.infer<typeof GenerationRecordSchema>;

export function newGenerationId(): string {
  let id = randomBytes(8).toString("hex");
  while (id === "0000000000000000") id = randomBytes(8).toString("hex");
  return id;
}

export function freshGeneration(regionSize: number, sizeBytes: number): GenerationRecord {
  return {
    version: 1,
    current: newGenerationId(),
    bitmapUuid: null,
    history: [],
    consistent: true,
    syncSource: null,
    initialized: false,
    regionSize,
    sizeBytes,
  };
}

/** Reads the record, or null when there is none (a brand-new node). */
export async function loadGeneration(
  files: Pick<MetadataFiles, "generation">,
): Promise<GenerationRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(files.generation, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const parsed = GenerationRecordSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`${files.generation} is not a valid generation record: ${parsed.error.message}`);
  }
  return parsed.data;
}

export async function saveGeneration(
  files: Pick<MetadataFiles, "dir" | "generation" | "generationTmp">,
  record: GenerationRecord,
): Promise<void> {
  const valid = GenerationRecordSchema.parse(record);
  const tmp = files.generationTmp;
  const fh = await fsp.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(JSON.stringify(valid, null, 2) + "\n");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, files.generation);
  const d = await fsp.open(files.dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
