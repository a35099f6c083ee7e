import { FINALIZER, HASanTargetSchema, type HASanTarget } from "../../api/target.js";
import { addFinalizer, finalize, removeFinalizer } from "../finalizer.js";
import type { Step } from "../pass.js";
import { writeTargetStatus, unknownPair } from "./write-status.js";

/** A deleted target: forget what was remembered of it, clean up (finalize) and let it go. Needs: raw. */
export const cleanUpDeleted: Step = async (pass, c) => {
  const raw = pass.raw;
  if (!raw.metadata.deletionTimestamp) return;
  const uid = raw.metadata.uid;
  c.applied.forget(uid);
  c.memory.secretsSeen.delete(uid);
  c.memory.generatedChapUsers.delete(uid);
  c.tokens.forget(uid);
  if ((raw.metadata.finalizers ?? []).includes(FINALIZER)) {
    const parsed = HASanTargetSchema.safeParse(raw);
    const t = parsed.success ? parsed.data : (raw as HASanTarget);
    const done = await finalize(c.client, t);
    await removeFinalizer(c.client, t);
    pass.log.info({ done }, "cleaned up after deletion");
  }
  return "done";
};

/** Validates the spec; an invalid one gets a status saying why and nothing else. Needs: raw. */
export const validateSpec: Step = async (pass, c) => {
  const parsed = HASanTargetSchema.safeParse(pass.raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `spec.${i.path.slice(1).join(".")}: ${i.message}`)
      .join("; ");
    await writeTargetStatus(c, pass.target, unknownPair(pass.raw, issues), undefined, pass.log);
    return "done";
  }
  pass.target = parsed.data as HASanTarget;
};

/** Puts the cleanup finalizer on first; the update comes back through the informer. Needs: target. */
export const ensureFinalizer: Step = async (pass, c) => {
  if ((pass.target.metadata.finalizers ?? []).includes(FINALIZER)) return;
  await addFinalizer(c.client, pass.target);
  return "done";
};
