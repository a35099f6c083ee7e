import { chapSecretName, chapSource } from "../auth.js";
import { AGENT_TOKEN_SECRET } from "../agent-token-secret.js";
import { GENERATED_CHAP_SECRET, chapUsersOf } from "../chap-secret.js";
import type { ObservedForChildren } from "../desired-children.js";
import { ensureGeneratedSecrets as ensureCreatedOnce } from "../generated-secrets.js";
import { targetImageProblem } from "../image-policy.js";
import { joinErrors, type Pass, type ReconcileContext, type Step } from "../pass.js";
import { ensurePeerSecret } from "../peer-secret.js";

/**
 * Makes sure the Secrets the pods mount exist, never replacing a value (created-once-secret.ts):
 * the peer Secret (or the user's), the generated CHAP Secret and the agent token. Checked each
 * pass until seen, then on full passes. First, because the CHAP user name comes from the
 * generated Secret. Needs: target, periodic.
 */
export const ensureGeneratedSecrets: Step = async (pass, c) => {
  const t = pass.target;
  const uid = t.metadata.uid;
  const { secretsSeen } = c.memory;
  if (secretsSeen.has(uid) && !pass.periodic) return;
  const errors: string[] = [];
  try {
    const r = await ensurePeerSecret(c.client, t);
    if (r.outcome === "created") pass.log.info({ secret: r.name }, "created the peer Secret");
    if (r.outcome === "lostRace")
      pass.log.info({ secret: r.name }, "peer Secret created by someone else first; using it");
  } catch (e) {
    errors.push(`peer Secret: ${(e as Error).message}`);
  }
  const others = await ensureCreatedOnce(c.client, t, [GENERATED_CHAP_SECRET, AGENT_TOKEN_SECRET]);
  for (const r of others.ensured) {
    if (r.outcome === "created") pass.log.info({ secret: r.name }, `created the ${r.what}`);
    if (r.outcome === "lostRace")
      pass.log.info({ secret: r.name }, `${r.what} created by someone else first; using it`);
  }
  errors.push(...others.errors);
  if (errors.length) {
    secretsSeen.delete(uid);
    pass.secretsError = errors.join("; ");
    return;
  }
  secretsSeen.add(uid);
};

/** Reads the CHAP user names the pods need; a missing Secret is a spec error. Needs: target, periodic. */
export const readChapUsers: Step = async (pass, c) => {
  try {
    pass.chap = await chapUsers(pass, c);
  } catch (e) {
    pass.specError = (e as Error).message;
  }
};

/** A refused image creates or replaces no pod; pods already running stay. Needs: target. */
export const checkImagePolicy: Step = (pass, c) => {
  pass.imageError = targetImageProblem(pass.target, c.options.allowedTargetImages ?? [c.options.image]);
  pass.specError = joinErrors(pass.specError, pass.imageError);
  return Promise.resolve();
};

/** The CHAP user names from the Secret the pods use (the user's or the generated one); none without CHAP. */
async function chapUsers(pass: Pass, c: ReconcileContext): Promise<ObservedForChildren["chap"]> {
  const t = pass.target;
  const name = chapSecretName(t);
  const uid = t.metadata.uid;
  const cache = c.memory.generatedChapUsers;
  const generated = chapSource(t).kind === "generated";
  if (!generated || pass.periodic) cache.delete(uid);
  if (!name) return undefined;
  const cached = cache.get(uid);
  if (cached) return cached;
  const secret = await c.client.getOrUndefined<{ data?: Record<string, string> }>(
    "v1",
    "Secret",
    t.metadata.namespace,
    name,
  );
  if (!secret) {
    throw new Error(
      t.spec.auth?.chapSecretRef
        ? `spec.auth.chapSecretRef: secret ${name} not found`
        : `generated CHAP secret ${name} not created yet`,
    );
  }
  const users = chapUsersOf(t, secret.data);
  if (generated) cache.set(uid, users);
  return users;
}
