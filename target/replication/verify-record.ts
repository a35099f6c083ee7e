/**
 * The online verify run of a pair node, persisted beside the generation record
 * (`<data file>.pair-verify.json`, written atomically like it) so a run resumes after a restart
 * from the position last saved. The node that sequences writes drives the run and sends each
 * saved record to its partner, which saves it too: whichever node sequences after a reconnection
 * resumes from what it holds.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";

/** Mismatched regions listed by index (the counts go on beyond). */
export const MAX_LISTED_REGIONS = 256;

const iso = z.string().datetime();
const count = z.number().int().nonnegative();

export const VerifyRecordSchema = z
  .object({
    version: z.literal(1),
    runId: z.string().regex(/^[0-9a-f]{16}$/),
    /** running: walking the LUN or repairing; completed: every region compared and repair done; failed: stopped by an error */
    state: z.enum(["running", "completed", "failed"]),
    /** the node whose copy is kept where the copies differ */
    source: z.enum(["a", "b"]),
    rateBytesPerSecond: z.number().int().positive(),
    startedAt: iso,
    endedAt: iso.nullable(),
    /** the first byte not yet compared (the run resumes here) */
    nextOffset: count,
    bytesChecked: count,
    regionsMismatched: count,
    regionsRepaired: count,
    /** the first MAX_LISTED_REGIONS mismatched regions (indexes) */
    mismatchedRegions: z.array(count).max(MAX_LISTED_REGIONS),
    message: z.string().max(1000),
  })
  .strict();
export type VerifyRecord = z.infer<typeof VerifyRecordSchema>;

export function newRunId(): string {
  return randomBytes(8).toString("hex");
}

/** The verify record's file for a generation record's file (the same data file's name). */
export function verifyRecordFile(generationFile: string): string {
  return generationFile.endsWith(".pair-generation.json")
    ? generationFile.slice(0, -".pair-generation.json".length) + ".pair-verify.json"
    : `${generationFile}.verify`;
}

export async function loadVerifyRecord(file: string): Promise<VerifyRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const parsed = VerifyRecordSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not a valid verify record: ${parsed.error.message}`);
  return parsed.data;
}

/** Temporary file, fsync, rename, fsync of the directory. */
export async function saveVerifyRecord(file: string, record: VerifyRecord): Promise<void> {
  const valid = VerifyRecordSchema.parse(record);
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(JSON.stringify(valid, null, 2) + "\n");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const d = await fsp.open(dirname(file), "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
