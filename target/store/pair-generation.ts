/**
 * The generation record of a pair node's data, persisted next to the LUN file
 * (`pair-generation.json` in the metadata directory), written atomically
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
import { join } from "node:path";
import { z } from "zod";

export const GENERATION_FILE = "pair-generation.json";

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

/** Reads the record, or null when the directory holds none (a brand-new node). */
export async function loadGeneration(dir: string): Promise<GenerationRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(join(dir, GENERATION_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const parsed = GenerationRecordSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(
      `${join(dir, GENERATION_FILE)} is not a valid generation record: ${parsed.error.message}`,
    );
  }
  return parsed.data;
}

export async function saveGeneration(dir: string, record: GenerationRecord): Promise<void> {
  const valid = GenerationRecordSchema.parse(record);
  const path = join(dir, GENERATION_FILE);
  const tmp = `${path}.tmp`;
  const fh = await fsp.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(JSON.stringify(valid, null, 2) + "\n");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path);
  const d = await fsp.open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
